"""Ops that lower the signal's resolution: pooling, smoothing by convolution, quantisation.

They are the batched counterparts of tsaug's `Pool`, `Convolve` and `Quantize` (Wen et al.,
"Time Series Data Augmentation for Deep Learning: A Survey", IJCAI 2021, arXiv 2002.12478).
Sizes drawn from a list loop over the distinct sizes (a handful), never over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from harkd.augment.base import Augmenter, randint, register_op


def _sizes(size: int | Sequence[int], where: str, minimum: int) -> tuple[int, ...]:
    sizes = (int(size),) if isinstance(size, (int, float)) else tuple(int(s) for s in size)
    if not sizes or min(sizes) < minimum:
        raise ValueError(f"{where}: sizes must be integers >= {minimum}, got {size!r}")
    return sizes


def _per_sample_size(sizes: tuple[int, ...], x: Tensor, g: torch.Generator) -> Tensor | None:
    """Index into `sizes` for each sample (None when there is one size: nothing to draw)."""
    if len(sizes) == 1:
        return None
    return randint(g, len(sizes), (x.shape[0],), x)


def _by_size(x: Tensor, sizes: tuple[int, ...], pick: Tensor | None, fn) -> Tensor:
    """Apply `fn(x_subset, size)` to the samples that drew each size."""
    if pick is None:
        return fn(x, sizes[0])
    out = torch.empty_like(x)
    for i, s in enumerate(sizes):
        rows = pick == i
        if bool(rows.any()):
            out[rows] = fn(x[rows], s)
    return out


@register_op
class Pool(Augmenter):
    """Replace each block of `size` steps by its mean / max / min (the last block may be short).

    Args:
        p: probability that a sample is augmented.
        kind: "ave", "max" or "min".
        size: block length, or a list of lengths drawn per sample.
    """

    name = "pool"

    def __init__(self, p: float = 1.0, kind: str = "ave", size: int | Sequence[int] = 2) -> None:
        super().__init__(p)
        if kind not in ("ave", "max", "min"):
            raise ValueError(f"{self.name}: kind must be 'ave', 'max' or 'min', got {kind!r}")
        self.kind, self.size = kind, size
        self._sizes = _sizes(size, self.name, 1)

    def _pool(self, x: Tensor, s: int) -> Tensor:
        # strided slices instead of a reduction over a tiny last axis (much faster on CPU)
        T = x.shape[-1]
        if s == 1:
            return x.clone()
        n = -(-T // s)
        pad = n * s - T
        if pad == 0:
            # write the pooled value into the first of each block's s slots of the output,
            # then copy it to the other s - 1 (no padding, no separate upsampling pass)
            blocks = x.reshape(*x.shape[:-1], n, s)
            out = torch.empty_like(blocks)
            pooled = out[..., 0]
            if self.kind == "ave":
                torch.add(blocks[..., 0], blocks[..., 1], out=pooled)
                for j in range(2, s):
                    pooled.add_(blocks[..., j])
                pooled.div_(s)
            else:
                pick = torch.maximum if self.kind == "max" else torch.minimum
                pick(blocks[..., 0], blocks[..., 1], out=pooled)
                for j in range(2, s):
                    pick(pooled, blocks[..., j], out=pooled)
            out[..., 1:] = pooled.unsqueeze(-1)
            return out.view(x.shape)
        # zeros add nothing to a block's sum; a repeated edge changes no block's max or min
        mode = "constant" if self.kind == "ave" else "replicate"
        padded = F.pad(x, (0, pad), mode=mode)
        slices = [padded[..., j::s] for j in range(s)]
        if self.kind == "ave":
            pooled = slices[0] + slices[1]
            for sl in slices[2:]:
                pooled += sl
            count = torch.full((n,), float(s), device=x.device, dtype=x.dtype)
            count[-1] = s - pad  # the short last block averages only its real samples
            pooled = pooled / count
        else:
            pooled = slices[0]
            pick = torch.maximum if self.kind == "max" else torch.minimum
            for sl in slices[1:]:
                pooled = pick(pooled, sl)
        # nearest-neighbour upsampling by an integer factor repeats each value s times
        return F.interpolate(pooled, scale_factor=s, mode="nearest")[..., :T]

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        return _by_size(x, self._sizes, _per_sample_size(self._sizes, x, g), self._pool)


@lru_cache(maxsize=32)
def _kernel(window: str, size: int) -> Tensor:
    from scipy.signal import get_window  # on use: scipy.signal takes ~1 s to import

    w = torch.from_numpy(get_window(window, size, fftbins=False)).float()
    return w / w.sum()


@lru_cache(maxsize=32)
def _taps(window: str, size: int) -> tuple[int, list[float]]:
    """(index of the first non-zero weight, the weights from there to the last non-zero one)."""
    w = _kernel(window, size).tolist()
    nonzero = [i for i, v in enumerate(w) if v != 0.0] or [0]
    return nonzero[0], w[nonzero[0] : nonzero[-1] + 1]


@register_op
class Convolve(Augmenter):
    """Smooth each channel with a normalised window (scipy window name).

    The edges are extended by mirroring with the edge sample repeated (scipy's "reflect"
    mode, as tsaug does).

    Args:
        p: probability that a sample is augmented.
        window: scipy.signal window name ("hann", "hamming", "boxcar", ...).
        size: kernel length, or a list of lengths drawn per sample.
    """

    name = "convolve"

    def __init__(self, p: float = 1.0, window: str = "hann", size: int | Sequence[int] = 7) -> None:
        super().__init__(p)
        self.window, self.size = window, size
        self._sizes = _sizes(size, self.name, 1)
        for s in self._sizes:
            if not bool(torch.isfinite(_kernel(window, s)).all()):
                raise ValueError(f"{self.name}: window {window!r} of size {s} sums to zero")

    def _smooth(self, x: Tensor, s: int) -> Tensor:
        # mirrored edges and a sum of shifted copies: faster than F.pad + conv1d for short kernels
        T = x.shape[-1]
        left, right = (s - 1) // 2, s // 2
        if max(left, right) > T:
            raise ValueError(f"{self.name}: kernel size {s} too long for windows of {T} steps")
        # taps of weight 0 (both ends of a Hann window) add nothing: skip them, and pad only
        # the extended indices first - left .. T - 1 + last - left that the others read
        first, weights = _taps(self.window, s)
        lo, hi = first - left, T - 1 + first + len(weights) - 1 - left
        parts = [x[..., :-lo].flip(-1)] if lo < 0 else []
        parts.append(x[..., max(lo, 0) : min(hi, T - 1) + 1])
        if hi > T - 1:
            parts.append(x[..., T - (hi - T + 1) :].flip(-1))
        padded = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        out = padded[..., 0:T] * weights[0]
        for j in range(1, len(weights)):
            out.add_(padded[..., j : j + T], alpha=weights[j])
        return out

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        return _by_size(x, self._sizes, _per_sample_size(self._sizes, x, g), self._smooth)


@register_op
class Quantize(Augmenter):
    """Snap each channel to `n_levels` uniform levels between its min and max in the window.

    Each value is replaced by the centre of its level's bin.

    Args:
        p: probability that a sample is augmented.
        n_levels: number of levels, or a list drawn per sample.
    """

    name = "quantize"

    def __init__(self, p: float = 1.0, n_levels: int | Sequence[int] = 10) -> None:
        super().__init__(p)
        self.n_levels = n_levels
        self._levels = _sizes(n_levels, self.name, 2)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        pick = _per_sample_size(self._levels, x, g)
        if pick is None:
            n: Tensor | float = float(self._levels[0])
        else:
            n = torch.as_tensor(self._levels, device=x.device, dtype=x.dtype)[pick].view(-1, 1, 1)
        low, high = torch.aminmax(x, dim=-1, keepdim=True)
        span = high.sub_(low).clamp_min_(1e-12)
        # in place on one buffer: ((x - low) / span * n).floor(), at most n - 1, then the centre
        # of that level's bin, low + (level + 0.5) * span / n
        level = (x - low).div_(span).mul_(n).floor_()
        level = level.clamp_max_(n - 1) if pick is None else torch.minimum(level, n - 1, out=level)
        return level.add_(0.5).mul_(span / n).add_(low)
