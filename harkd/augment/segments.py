"""Ops that reorder or mask parts of a window: permutation, reverse, time and channel dropout.

Permutation of segments: Um et al., ICMI 2017 (arXiv 1706.00527). Reversal and time-point
dropout follow tsaug's `Reverse` and `Dropout` (Wen et al., "Time Series Data Augmentation for
Deep Learning: A Survey", IJCAI 2021, arXiv 2002.12478); channel dropout is the sensor-level
dropout of Iwana & Uchida, "An empirical survey of data augmentation for time series
classification with neural networks", PLOS ONE 2021 (arXiv 2007.15951).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from harkd.augment.base import Augmenter, rand, register_op


@register_op
class Permutation(Augmenter):
    """Cut the window into `n_segments` pieces and concatenate them in a random order.

    Args:
        p: probability that a sample is augmented.
        n_segments: number of pieces (>= 2).
        equal: equal-length pieces (True) or random cut points (False): sorted uniform
            positions, spaced so that every piece has at least one step.
    """

    name = "permutation"

    def __init__(self, p: float = 1.0, n_segments: int = 4, equal: bool = False) -> None:
        super().__init__(p)
        if int(n_segments) < 2:
            raise ValueError(f"{self.name}: n_segments must be >= 2, got {n_segments}")
        self.n_segments = int(n_segments)
        self.equal = bool(equal)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, C, T = x.shape
        n = self.n_segments
        if n > T:
            raise ValueError(f"{self.name}: n_segments {n} > window length {T}")
        dev = x.device
        if self.equal:
            cuts = torch.linspace(0, T, n + 1, device=dev).round().long()[1:-1].expand(B, -1)
        else:  # sorted uniforms spaced apart: n-1 strictly increasing cut points in 1..T-1
            u = rand(g, (B, n - 1), x).sort(dim=-1).values
            cuts = (u * (T - n + 1)).long() + torch.arange(1, n, device=dev)
        zero = torch.zeros(B, 1, dtype=torch.long, device=dev)
        full = torch.full((B, 1), T, dtype=torch.long, device=dev)
        start = torch.cat([zero, cuts], dim=1)
        length = torch.cat([cuts, full], dim=1) - start
        order = rand(g, (B, n), x).argsort(dim=-1)
        out_len = length.gather(1, order)
        out_end = out_len.cumsum(dim=1)
        t = torch.arange(T, device=dev).expand(B, -1).contiguous()
        k = torch.zeros_like(t)  # output segment of each step (a loop over the few segments)
        for j in range(n - 1):
            k += t >= out_end[:, j : j + 1]
        offset = t - (out_end - out_len).gather(1, k)
        src = start.gather(1, order.gather(1, k)) + offset
        return x.gather(2, src.unsqueeze(1).expand(-1, C, -1))


@register_op
class Reverse(Augmenter):
    """Reverse the time axis (tsaug `Reverse`)."""

    name = "reverse"

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        return x.flip(-1)


@register_op
class TimeDropout(Augmenter):
    """Drop random blocks of time steps and fill them (tsaug `Dropout`).

    Each time step after the first starts a dropped block of `size` steps with probability
    `rate / size`, so about a fraction `rate` of the steps is dropped.

    Args:
        p: probability that a sample is augmented.
        rate: expected fraction of dropped steps.
        size: block length in steps.
        fill: "ffill" (hold the last kept value) or a number.
        per_channel: independent blocks per channel (True) or shared by all channels.
    """

    name = "time_dropout"

    def __init__(
        self,
        p: float = 1.0,
        rate: float = 0.05,
        size: int = 1,
        fill: str | float = "ffill",
        per_channel: bool = False,
    ) -> None:
        super().__init__(p)
        if not 0.0 <= rate <= 1.0 or int(size) < 1:
            raise ValueError(f"{self.name}: need 0 <= rate <= 1 and size >= 1, got {rate}, {size}")
        if isinstance(fill, str) and fill != "ffill":
            raise ValueError(f"{self.name}: fill must be 'ffill' or a number, got {fill!r}")
        self.rate, self.size, self.fill, self.per_channel = (
            float(rate),
            int(size),
            fill,
            per_channel,
        )

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, C, T = x.shape
        rows = B * C if self.per_channel else B
        q = self.rate / self.size
        gaps = _gap_positions(rows, T, q, g, x)
        if gaps is not None and self.size == 1 and self.fill == "ffill" and _covers(gaps, T):
            # few drops: find each dropped step's source at the K candidates per row, then one
            # gather with the map t -> t, or -> the last kept step before t where t is dropped
            index = _dropout_index(T, *gaps).view(B, -1, T + 1)[..., :T]
            return x.gather(2, index.expand(B, C, T))
        dropped = _steps_mask(rows, T, q, gaps, g, x)
        if self.size > 1:  # step t is dropped if a block started in (t - size, t]
            padded = F.pad(dropped.unsqueeze(1).to(x.dtype), (self.size - 1, 0))
            dropped = F.max_pool1d(padded, self.size, stride=1).squeeze(1) > 0
        dropped = dropped.view(B, -1, T)  # [B, 1, T], or [B, C, T] per channel
        if self.fill != "ffill":
            return x.masked_fill(dropped, float(self.fill))
        # each step reads the last kept step at or before it (dense: no host sync on a GPU)
        t = torch.arange(T, device=x.device)
        last_kept = torch.where(dropped, 0, t).cummax(dim=-1).values
        return x.gather(2, last_kept.expand(B, C, T))


@lru_cache(maxsize=64)
def _gap_count(T: int, q: float) -> int:
    """K geometric gaps per row: the binomial count of True steps among the T-1 candidates plus
    4 standard deviations plus 4; a row needs more than K with probability about 1e-6 (T 128,
    q 0.05), and `_steps_mask` then draws the rest of that row step by step."""
    n = T - 1
    return math.ceil(n * q + 4 * math.sqrt(n * q * (1 - q)) + 4)


def _sparse_steps(T: int, q: float) -> bool:
    """Whether True steps with probability `q` are placed by geometric gaps (`_gap_positions`):
    when that draws fewer than half the uniforms of one per step."""
    return 0.0 < q < 1.0 and _gap_count(T, q) < (T - 1) // 2


def _gap_positions(
    rows: int, T: int, q: float, g: torch.Generator, like: Tensor
) -> tuple[Tensor, Tensor] | None:
    """Per row, K candidate True steps placed by geometric gaps, as two Long [rows, K]: `extra`,
    each gap minus 1, and `before`, each position minus 1, increasing (>= T - 1: beyond the
    window). floor(log(1 - U) / log(1 - q)) + 1, U uniform in [0, 1), is geometric on
    {1, 2, ...} with success probability q, so the positions inside the window are those of
    independent Bernoulli(q) steps up to the K-th candidate (see `_covers`). None when gaps
    would not save draws (then one uniform per step).
    """
    if not _sparse_steps(T, q):
        return None
    k = _gap_count(T, q)
    # log1p(-U) <= 0 and 1 / log1p(-q) < 0: the product is >= 0, so .long() is its floor
    extra = rand(g, (rows, k), like).neg_().log1p_().mul_(1.0 / math.log1p(-q)).long()
    # position_j - 1 = sum_{i <= j} (extra_i + 1) - 1 = cumsum(extra)_j + j
    return extra, extra.cumsum(dim=1).add_(_arange(k, like.device))


def _covers(gaps: tuple[Tensor, Tensor], T: int) -> bool:
    """Whether every row's K-th candidate lies beyond the window, so that the gaps place all of
    its True steps (one host read of an int)."""
    return int(gaps[1][:, -1].min()) >= T - 1


def _dropout_index(T: int, extra: Tensor, before: Tensor) -> Tensor:
    """Long [rows, T + 1] (the last column is scratch): step t reads step t if it is kept,
    else the last kept step before it, for the dropped steps at the gaps of `_gap_positions`
    (when they cover the window, `_covers`).

    A drop starts a new run of drops when its gap is > 1 (extra > 0: the step before it is
    kept); the last kept step of a run is its first position - 1, carried to the later drops
    of the run by a running maximum (positions increase); a run starting at step 1 reads step 0.
    Candidates beyond the window are written into the scratch column.
    """
    source = extra.sign_().mul_(before).cummax(dim=1).values  # extra is not needed any more
    index = _identity_rows(before.shape[0], T, before.device).clone()
    index[:, 1:].scatter_(1, before.clamp_(max=T - 1), source)
    return index


def _scatter_true(rows: int, T: int, before: Tensor, like: Tensor) -> Tensor:
    """Bool [rows, T], True at the positions `before` + 1 inside the window."""
    out = torch.zeros(rows, T + 1, dtype=torch.bool, device=like.device)
    out[:, 1:].scatter_(1, before.clamp(max=T - 1), True)
    return out[:, :T]


@lru_cache(maxsize=16)
def _arange(n: int, device: torch.device) -> Tensor:
    """[n] 0, 1, ..., n - 1 (long, read-only: shared between calls)."""
    return torch.arange(n, device=device)


@lru_cache(maxsize=16)
def _identity_rows(rows: int, T: int, device: torch.device) -> Tensor:
    """[rows, T + 1], every row 0, 1, ..., T (long, read-only: clone before writing)."""
    return torch.arange(T + 1, device=device).expand(rows, T + 1).contiguous()


def _steps_mask(
    rows: int,
    T: int,
    q: float,
    gaps: tuple[Tensor, Tensor] | None,
    g: torch.Generator,
    like: Tensor,
) -> Tensor:
    """Bool [rows, T]: each step but the first is True with probability `q`, independently.

    From the `gaps` that `_gap_positions` drew (about q*T uniforms per row) when it gave some;
    a row whose K-th candidate falls inside the window (rare) draws one uniform per step after
    it, which keeps the steps independent (the gaps are memoryless). Otherwise one uniform per
    step.
    """
    if q <= 0.0:
        return torch.zeros(rows, T, dtype=torch.bool, device=like.device)
    if gaps is None:
        out = rand(g, (rows, T), like) < q
        out[:, 0] = False
        return out
    out = _scatter_true(rows, T, gaps[1], like)
    if not _covers(gaps, T):
        last = gaps[1][:, -1:] + 1  # each row's K-th candidate step
        after = _arange(T, like.device) > last
        out |= (rand(g, (rows, T), like) < q) & after
    return out


@register_op
class ChannelDropout(Augmenter):
    """Set whole channels to `fill` (0 is the training mean for standardised windows).

    Args:
        p: probability that a sample is augmented.
        rate: probability that each channel of an augmented sample is dropped.
        fill: value written into dropped channels.
    """

    name = "channel_dropout"

    def __init__(self, p: float = 1.0, rate: float = 0.2, fill: float = 0.0) -> None:
        super().__init__(p)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{self.name}: rate must be in [0, 1], got {rate}")
        self.rate, self.fill = float(rate), float(fill)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        drop = rand(g, (x.shape[0], x.shape[1], 1), x) < self.rate
        return x.masked_fill(drop, self.fill)
