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
from scipy.signal import get_window
from torch import Tensor

from harkd.augment.base import Augmenter, randint, register_op


def _sizes(size: int | Sequence[int], where: str, minimum: int) -> tuple[int, ...]:
    sizes = (int(size),) if isinstance(size, (int, float)) else tuple(int(s) for s in size)
    if not sizes or min(sizes) < minimum:
        raise ValueError(f"{where}: sizes must be integers >= {minimum}, got {size!r}")
    return sizes


def _per_sample_size(sizes: tuple[int, ...], x: Tensor, g: torch.Generator) -> Tensor:
    """Index into `sizes` for each sample (all zeros when there is one size)."""
    if len(sizes) == 1:
        return torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    return randint(g, len(sizes), (x.shape[0],), x)


def _by_size(x: Tensor, sizes: tuple[int, ...], pick: Tensor, fn) -> Tensor:
    """Apply `fn(x_subset, size)` to the samples that drew each size."""
    if len(sizes) == 1:
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
        n = -(-T // s)
        pad = n * s - T
        # zeros add nothing to a block's sum; a repeated edge changes no block's max or min
        mode = "constant" if self.kind == "ave" else "replicate"
        padded = F.pad(x, (0, pad), mode=mode) if pad else x
        slices = [padded[..., j::s] for j in range(s)]
        if self.kind == "ave":
            pooled = slices[0] + slices[1] if s > 1 else slices[0]
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
    w = torch.from_numpy(get_window(window, size, fftbins=False)).float()
    return w / w.sum()


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
        parts = [x[..., :left].flip(-1), x, x[..., T - right :].flip(-1)]
        padded = torch.cat(parts, dim=-1)
        weights = _kernel(self.window, s).tolist()
        out = padded[..., 0:T] * weights[0]
        for j in range(1, s):
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
        n = torch.as_tensor(self._levels, device=x.device, dtype=x.dtype)[pick].view(-1, 1, 1)
        low = x.amin(dim=-1, keepdim=True)
        span = (x.amax(dim=-1, keepdim=True) - low).clamp_min(1e-12)
        level = torch.minimum(((x - low) / span * n).floor(), n - 1)
        return low + (level + 0.5) * (span / n)
