"""Named augmentation policies: YAML lists of ops, composable with '+'.

`configs/augment/policies.yaml` maps a policy name to a list of ops, each a mapping with `op`
(a registered op name, see `harkd.augment.base.list_ops`) and that op's parameters. A name
given to `build_policy` may join several policies with '+' ("rotation+timewarp+jitter"); their
ops run in that order. "none" is the identity (an empty list).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harkd.augment.base import AugmentContext, Augmenter, check_batch, get_op
from harkd.config import ConfigError, load_yaml
from harkd.shipped import SHIPPED_CONFIGS

#: the default policy file: the shipped configs/augment/policies.yaml
DEFAULT_POLICIES = SHIPPED_CONFIGS / "augment" / "policies.yaml"


class Policy:
    """A composed pipeline of ops; call it as `policy(x [B, C, T], y_soft [B, K], generator)`."""

    def __init__(self, name: str, ops: Sequence[Augmenter]) -> None:
        self.name = name
        self.ops = list(ops)

    def __call__(
        self, x: Tensor, y_soft: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Validate the batch once, then run every op in order (no autograd)."""
        check_batch(x, y_soft, where=f"policy {self.name!r}")
        with torch.no_grad():
            for op in self.ops:
                x, y_soft = op.apply(x, y_soft, generator)
        return x, y_soft

    def describe(self) -> list[dict[str, Any]]:
        """Each op with all its parameters."""
        return [op.describe() for op in self.ops]

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, ops={self.ops!r})"


def load_policies(path: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Read and check a policy file: policy name -> list of {"op": ..., parameters}.

    Every op name and parameter is checked, so a typo fails here naming the file and policy.
    """
    path = Path(path) if path is not None else DEFAULT_POLICIES
    raw = load_yaml(path).get("policies")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a top-level 'policies' mapping of name -> list of ops")
    out: dict[str, list[dict[str, Any]]] = {}
    for name, ops in raw.items():
        where = f"{path}: policy {name!r}"
        if "+" in str(name):
            raise ConfigError(f"{where}: '+' is reserved for composing policies")
        if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o for o in ops):
            raise ConfigError(f"{where}: expected a list of mappings, each with an 'op' key")
        try:
            out[str(name)] = [
                get_op(o["op"]).spec({k: v for k, v in o.items() if k != "op"}) for o in ops
            ]
        except (KeyError, ValueError) as err:
            raise ConfigError(f"{where}: {err.args[0]}") from None
    return out


def list_policies(path: str | Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Policy name -> its ops with every parameter (defaults filled), as `harkd augment --list`."""
    return load_policies(path)


def _norm_tensors(norm: Mapping[str, Any] | None) -> dict[str, Tensor] | None:
    if norm is None:
        return None
    missing = {"mean", "std"} - set(norm)
    if missing:
        raise ValueError(f"norm must have 'mean' and 'std', missing {sorted(missing)}")
    mean, std = (torch.as_tensor(norm[k], dtype=torch.float32).flatten() for k in ("mean", "std"))
    if mean.shape != std.shape or not bool(torch.isfinite(mean).all()):
        raise ValueError(
            f"norm: mean {tuple(mean.shape)} and std {tuple(std.shape)} must match and be finite"
        )
    if not bool((std > 0).all()) or not bool(torch.isfinite(std).all()):
        raise ValueError(f"norm: every std must be finite and > 0, got {std.tolist()}")
    return {"mean": mean, "std": std}


def build_policy(
    name: str,
    groups: dict[str, list[int]],
    norm: Mapping[str, Any] | None = None,
    path: str | Path | None = None,
) -> Policy:
    """Build the policy `name` ("a" or "a+b+...") for batches laid out as `groups`.

    Args:
        name: a policy from the policy file, or several joined by '+'.
        groups: channel group -> indices into x's channel axis (WindowSet.groups).
        norm: {"mean": [C], "std": [C]} when x is per-channel standardised (WindowSet
            meta["norm"]); rotation then acts in raw units. None: x is in raw units.
        path: policy file (default configs/augment/policies.yaml).
    """
    policies = load_policies(path)
    parts = [part.strip() for part in name.split("+")]
    unknown = [part for part in parts if part not in policies]
    if unknown:
        raise KeyError(
            f"unknown augmentation policy {unknown} in {name!r}; known: {sorted(policies)}"
        )
    context = AugmentContext(
        groups={k: list(v) for k, v in groups.items()}, norm=_norm_tensors(norm)
    )
    ops = []
    for part in parts:
        for spec in policies[part]:
            params = {k: v for k, v in spec.items() if k != "op"}
            ops.append(get_op(spec["op"]).from_params(params, context))
    return Policy(name, ops)
