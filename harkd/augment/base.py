"""Base class, registry and shared helpers of the batched augmenters (docs/architecture.md 6).

Every augmenter maps a batch `(x [B, C, T], y_soft [B, K], generator)` to a new
`(x, y_soft)`. Random parameters are drawn per sample, only from the given
`torch.Generator`, with fully batched torch code (no Python loop over samples). Each op has a
probability `p`: every sample is augmented independently with probability `p`, the others pass
through unchanged; `p=0` returns the inputs themselves and draws nothing.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

#: a parameter given either as one value or as a [low, high] range sampled per sample
Range = float | Sequence[float]


@dataclass(frozen=True)
class AugmentContext:
    """What some ops need to know about the batch layout.

    Attributes:
        groups: channel group name -> channel indices into the `C` axis of `x`
            (the WindowSet's `groups`, e.g. {"acc": [0, 1, 2], "gyro": [3, 4, 5]}).
        norm: optional per-channel standardisation of `x` ({"mean": [C], "std": [C]}, the
            WindowSet's `meta["norm"]`); ops that act in physical units (rotation) undo it,
            transform, and redo it. None means `x` is in raw units.
    """

    groups: dict[str, list[int]] = field(default_factory=dict)
    norm: dict[str, Tensor] | None = None


class Augmenter:
    """One batched augmentation op.

    Subclasses set `name`, take their parameters as keyword arguments stored under the same
    attribute names (so `describe()` can list them), and implement `transform(x, g)` for
    label-preserving ops or override `apply` for ops that also change `y_soft` (mixing).
    """

    name: ClassVar[str] = ""

    def __init__(self, p: float = 1.0) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"{self.name}: p must be in [0, 1], got {p}")
        self.p = float(p)

    @classmethod
    def param_names(cls) -> list[str]:
        """The op's parameters (constructor keywords other than the batch `context`)."""
        skip = {"self", "context"}
        return [n for n in inspect.signature(cls.__init__).parameters if n not in skip]

    @classmethod
    def spec(cls, params: dict[str, Any]) -> dict[str, Any]:
        """{"op": name, every parameter: its value} (defaults filled); unknown keys raise."""
        allowed = cls.param_names()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"op {cls.name!r}: unknown parameter(s) {unknown}; allowed: {allowed}")
        sig = inspect.signature(cls.__init__).parameters
        return {"op": cls.name, **{n: sig[n].default for n in allowed}, **params}

    @classmethod
    def from_params(cls, params: dict[str, Any], context: AugmentContext) -> Augmenter:
        """Build from a YAML parameter mapping (validated by `spec`) and the batch context."""
        cls.spec(params)
        if "context" in inspect.signature(cls.__init__).parameters:
            return cls(**params, context=context)
        return cls(**params)

    def describe(self) -> dict[str, Any]:
        """{"op": name, parameter: value, ...} with every constructor parameter."""
        return {"op": self.name, **{n: getattr(self, n) for n in self.param_names()}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "op")
        return f"{type(self).__name__}({args})"

    def __call__(
        self, x: Tensor, y_soft: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Validate the batch, then augment it (see `apply`)."""
        check_batch(x, y_soft, where=self.name)
        with torch.no_grad():
            return self.apply(x, y_soft, generator)

    def apply(self, x: Tensor, y_soft: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """Augment a batch already validated; each sample with probability `p`."""
        if self.p == 0.0:
            return x, y_soft
        return gate(self.p, x, self.transform(x, g), g), y_soft

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:  # pragma: no cover - abstract
        """Augment every sample of `x` (the gating by `p` happens in `apply`)."""
        raise NotImplementedError


_OPS: dict[str, type[Augmenter]] = {}


def register_op(cls: type[Augmenter]) -> type[Augmenter]:
    """Class decorator: register an op under its `name`."""
    if not cls.name or cls.name in _OPS:
        raise ValueError(f"op class {cls.__name__} has an empty or duplicate name {cls.name!r}")
    _OPS[cls.name] = cls
    return cls


def get_op(name: str) -> type[Augmenter]:
    """The op class registered as `name`, or KeyError listing the known ops."""
    if name not in _OPS:
        raise KeyError(f"unknown augmentation op {name!r}; known ops: {sorted(_OPS)}")
    return _OPS[name]


def list_ops() -> list[str]:
    """Names of every registered op."""
    return sorted(_OPS)


def check_batch(x: Tensor, y_soft: Tensor, where: str) -> None:
    """Raise TypeError/ValueError unless `x` is a finite float [B, C, T] and `y_soft` [B, K]."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 3:
        got = f"{type(x).__name__} {getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}"
        raise TypeError(f"{where}: x must be a floating torch.Tensor [B, C, T], got {got}")
    if not isinstance(y_soft, Tensor) or y_soft.ndim != 2 or y_soft.shape[0] != x.shape[0]:
        got = tuple(getattr(y_soft, "shape", ()))
        raise TypeError(f"{where}: y_soft must be a torch.Tensor [B={x.shape[0]}, K], got {got}")
    # a sum is finite unless some value is NaN/inf (or it overflows): a cheap first test, one
    # reduction per tensor; the exact count only runs when a sum is not finite
    if not math.isfinite(float(x.sum())):
        n = int((~torch.isfinite(x)).sum())
        if n:
            raise ValueError(
                f"{where}: x holds {n} NaN/inf value(s); augmenters need finite inputs"
            )
    if (
        y_soft.is_floating_point()
        and not math.isfinite(float(y_soft.sum()))
        and not bool(torch.isfinite(y_soft).all())
    ):
        raise ValueError(f"{where}: y_soft holds NaN/inf value(s)")


def _to(t: Tensor, like: Tensor) -> Tensor:
    """`t` on `like`'s device (random numbers are drawn on the generator's device)."""
    return t if t.device == like.device else t.to(like.device)


def rand(g: torch.Generator, shape: Sequence[int], like: Tensor) -> Tensor:
    """Uniform [0, 1) numbers from `g`, on `like`'s device and dtype."""
    return _to(torch.rand(tuple(shape), generator=g, device=g.device, dtype=like.dtype), like)


def randn(g: torch.Generator, shape: Sequence[int], like: Tensor, std: float = 1.0) -> Tensor:
    """Normal numbers N(0, std^2) from `g`, on `like`'s device and dtype."""
    out = torch.normal(0.0, std, tuple(shape), generator=g, device=g.device, dtype=like.dtype)
    return _to(out, like)


def randint(g: torch.Generator, high: Tensor | int, shape: Sequence[int], like: Tensor) -> Tensor:
    """Integers uniform in [0, high) (high may be a tensor broadcast to `shape`), int64."""
    u = _to(torch.rand(tuple(shape), generator=g, device=g.device, dtype=torch.float64), like)
    high_t = torch.as_tensor(high, device=like.device, dtype=torch.float64)
    return torch.minimum((u * high_t).long(), (high_t - 1).long())


def sample_range(
    value: Range, shape: Sequence[int], g: torch.Generator, like: Tensor
) -> Tensor | float:
    """A parameter per entry of `shape`: the constant `value` as a float, or uniform in
    [low, high] (a tensor of `shape`)."""
    if isinstance(value, (int, float)):
        return float(value)
    low, high = check_range(value, "range")
    return rand(g, shape, like).mul_(high - low).add_(low)


def check_range(value: Range, what: str, minimum: float | None = None) -> tuple[float, float]:
    """Normalise a scalar or [low, high] parameter to (low, high), validating it."""
    if isinstance(value, (int, float)):
        low = high = float(value)
    elif isinstance(value, Sequence) and len(value) == 2:
        low, high = float(value[0]), float(value[1])
    else:
        raise ValueError(f"{what}: expected a number or [low, high], got {value!r}")
    if low > high:
        raise ValueError(f"{what}: low {low} > high {high}")
    if minimum is not None and low < minimum:
        raise ValueError(f"{what}: values must be >= {minimum}, got {value!r}")
    return low, high


def gate(p: float, x: Tensor, out: Tensor, g: torch.Generator) -> Tensor:
    """Keep `out` for each sample with probability `p`, otherwise the original `x`."""
    if p >= 1.0:
        return out
    keep = rand(g, (x.shape[0], 1, 1), x) < p
    return torch.where(keep, out, x)


def choice(
    values: Sequence[float], shape: Sequence[int], g: torch.Generator, like: Tensor
) -> Tensor:
    """Entries drawn uniformly from `values`."""
    table = torch.as_tensor(list(values), device=like.device, dtype=like.dtype)
    return table[randint(g, len(values), shape, like)]
