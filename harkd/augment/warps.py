"""Smooth warps of time and magnitude: time-warp, magnitude-warp, drift, window-warp and -slice.

Time-warp and magnitude-warp: Um et al., ICMI 2017 (arXiv 1706.00527). Window-warp and
window-slice: Le Guennec, Malinowski & Tavenard, "Data Augmentation for Time Series
Classification using Convolutional Neural Networks", ECML/PKDD AALTD workshop 2016. Drift
follows tsaug's `Drift`.

Smooth random curves are natural cubic splines through a few random knots. The spline is
linear in the knot values, so it is one matrix product with a cached [knots, T] basis (the
drift's random walk and shift to 0 are folded into its basis too). Ops are written with as
few torch calls as possible: on small batches the per-call overhead dominates.
Every time map `tau` (input position of each output step) is resampled linearly by `resample`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from harkd.augment.base import (
    Augmenter,
    Range,
    check_range,
    choice,
    rand,
    randn,
    register_op,
    sample_range,
)


@lru_cache(maxsize=64)
def _spline_basis_np(n_knots: int, length: int) -> np.ndarray:
    """[n_knots, length]: row k is the natural cubic spline through the k-th unit knot vector."""
    knots = np.linspace(0.0, length - 1.0, n_knots)
    from scipy.interpolate import CubicSpline  # on use: keeps scipy out of every start-up

    return CubicSpline(knots, np.eye(n_knots), axis=0, bc_type="natural")(np.arange(length)).T


@lru_cache(maxsize=64)
def _basis(
    n_knots: int, length: int, kind: str, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """The spline basis, or for kind "walk" the basis of a random walk through the knots
    (cumulative sum of the knot values) shifted to start at 0, on `device` in `dtype`."""
    basis = _spline_basis_np(n_knots, length)
    if kind == "walk":
        basis = np.triu(np.ones((n_knots, n_knots))) @ basis
        basis = basis - basis[:, :1]
    return torch.from_numpy(np.ascontiguousarray(basis)).to(device, dtype)


def smooth_curve(knot_values: Tensor, length: int, kind: str = "spline") -> Tensor:
    """Natural cubic spline through `knot_values` [..., n_knots], sampled at `length` points.

    kind "walk": the spline through the running sum of the knot values, minus its first value.
    """
    *lead, n = knot_values.shape
    basis = _basis(n, length, kind, knot_values.device, knot_values.dtype)
    if len(lead) == 1:  # [B, n_knots]: no reshaping needed
        return knot_values @ basis
    return (knot_values.reshape(-1, n) @ basis).view(*lead, length)


@lru_cache(maxsize=16)
def _unit_grid(length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """[length] evenly spaced from 0 to 1 (read-only: shared between calls)."""
    return torch.arange(length, device=device, dtype=dtype) / (length - 1)


def resample(x: Tensor, tau: Tensor) -> Tensor:
    """Linear interpolation of `x` [B, C, T] at positions `tau` [B, T'] in [0, T-1].

    Exact at integer positions, the last one included (torch.lerp returns `end` at weight 1).
    """
    B, C, T = x.shape
    # truncation and floor differ only below 0, where the clamp makes both 0
    left = tau.long().clamp_(0, T - 2)
    w = (tau - left).unsqueeze(1)
    i0 = left.unsqueeze(1).expand(B, C, -1)
    x0 = x.gather(2, i0)
    x1 = x[..., 1:].gather(2, i0)  # x[t + 1] without building the index t + 1
    return x0.lerp_(x1, w)


def _check_knots(n_knots: int, where: str) -> int:
    if int(n_knots) < 2:
        raise ValueError(f"{where}: n_knots must be >= 2, got {n_knots}")
    return int(n_knots)


@register_op
class TimeWarp(Augmenter):
    """Resample the window along a smooth, random, monotone time map.

    A log-speed curve `sigma * spline(N(0, 1) knots)` gives a positive speed for each of the
    T-1 steps; its normalised cumulative sum maps output step t to input position tau(t) with
    tau(0) = 0 and tau(T-1) = T-1, strictly increasing. Linear resampling then keeps the first
    and last samples and never leaves each channel's value range.

    Args:
        p: probability that a sample is augmented.
        sigma: standard deviation of the log speed at the knots.
        n_knots: number of knots of the speed curve (>= 2).
    """

    name = "timewarp"

    def __init__(self, p: float = 1.0, sigma: float = 0.2, n_knots: int = 4) -> None:
        super().__init__(p)
        check_range(sigma, f"{self.name}.sigma", minimum=0.0)
        self.sigma = float(sigma)
        self.n_knots = _check_knots(n_knots, self.name)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, _, T = x.shape
        speed = smooth_curve(randn(g, (B, self.n_knots), x, std=self.sigma), T).exp_()
        cum = speed.cumsum(dim=1)  # speed[t] is the speed of step t-1 -> t; speed[0] unused
        first = cum[:, :1]
        # tau(0) = 0 and tau(T-1) = T-1 exactly: (c - c0) / (cT - c0) is exactly 0 and 1 there
        tau = (cum - first).div_(cum[:, -1:] - first).mul_(T - 1)
        return resample(x, tau)


@register_op
class MagnitudeWarp(Augmenter):
    """Multiply by a smooth positive gain curve `exp(sigma * spline(N(0, 1) knots))`.

    The gain is positive, so signs and zero crossings are kept.

    Args:
        p: probability that a sample is augmented.
        sigma: standard deviation of the log gain at the knots.
        n_knots: number of knots (>= 2).
        per_channel: one curve per channel (True) or one per sample (False).
    """

    name = "magwarp"

    def __init__(
        self, p: float = 1.0, sigma: float = 0.2, n_knots: int = 4, per_channel: bool = True
    ) -> None:
        super().__init__(p)
        check_range(sigma, f"{self.name}.sigma", minimum=0.0)
        self.sigma = float(sigma)
        self.n_knots = _check_knots(n_knots, self.name)
        self.per_channel = bool(per_channel)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, C, T = x.shape
        knots = randn(g, (B, C if self.per_channel else 1, self.n_knots), x, std=self.sigma)
        return x * smooth_curve(knots, T).exp_()


@register_op
class Drift(Augmenter):
    """Add a smooth random drift (tsaug `Drift`, additive kind).

    The drift is a spline through a Gaussian random walk at `n_knots` knots, shifted to start
    at 0 and scaled so its largest magnitude is `max_drift` (times the sample's per-channel
    value range when `normalize`).

    Args:
        p: probability that a sample is augmented.
        max_drift: largest drift, a number or a [low, high] range drawn per sample and channel.
        n_knots: number of knots (>= 2).
        per_channel: one drift per channel (True) or one shared by all channels (False).
        normalize: scale the drift by each channel's value range in the window.
    """

    name = "drift"

    def __init__(
        self,
        p: float = 1.0,
        max_drift: Range = 0.5,
        n_knots: int = 4,
        per_channel: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__(p)
        check_range(max_drift, f"{self.name}.max_drift", minimum=0.0)
        self.max_drift = max_drift
        self.n_knots = _check_knots(n_knots, self.name)
        self.per_channel = bool(per_channel)
        self.normalize = bool(normalize)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, C, T = x.shape
        c = C if self.per_channel else 1
        curve = smooth_curve(randn(g, (B, c, self.n_knots), x), T, kind="walk")
        peak = curve.abs().amax(dim=-1, keepdim=True).clamp_min_(1e-12)
        # max_drift / peak (* the value range), in place on the small [B, c, 1] tensors
        drift = sample_range(self.max_drift, (B, c, 1), g, x)
        scale = peak.reciprocal_().mul_(drift) if isinstance(drift, float) else drift.div_(peak)
        if self.normalize:
            low, high = torch.aminmax(x, dim=-1, keepdim=True)
            scale.mul_(high.sub_(low))
        return torch.addcmul(x, curve, scale)


@register_op
class WindowWarp(Augmenter):
    """Speed up or slow down one random stretch of the window, then resample back to T.

    A stretch of `ratio * (T-1)` steps at a random position is scaled in time by a factor
    drawn from `scales`; the rest keeps its speed; the result is resampled to T steps (first
    and last samples kept).

    Args:
        p: probability that a sample is augmented.
        ratio: length of the warped stretch as a fraction of the window, in (0, 1).
        scales: time-scale factors to draw from (> 0; 2 doubles the stretch's duration).
    """

    name = "window_warp"

    def __init__(
        self, p: float = 1.0, ratio: float = 0.1, scales: tuple[float, ...] = (0.5, 2.0)
    ) -> None:
        super().__init__(p)
        if not 0.0 < ratio < 1.0 or not scales or min(scales) <= 0:
            raise ValueError(
                f"{self.name}: need 0 < ratio < 1 and scales > 0, got {ratio}, {scales}"
            )
        self.ratio, self.scales = float(ratio), tuple(float(s) for s in scales)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, _, T = x.shape
        w = self.ratio * (T - 1)
        a = rand(g, (B, 1), x) * (T - 1 - w)
        s = choice(self.scales, (B, 1), g, x)
        total = (T - 1) + (s - 1) * w  # length of the warped time line
        t = torch.arange(T, device=x.device, dtype=x.dtype) * (total / (T - 1))
        tau = torch.where(t <= a, t, torch.where(t <= a + s * w, a + (t - a) / s, t - (s - 1) * w))
        return resample(x, tau.clamp(0, T - 1))


@register_op
class WindowSlice(Augmenter):
    """Crop a random stretch of the window and stretch it back to T steps (linear).

    Args:
        p: probability that a sample is augmented.
        ratio: kept fraction of the window, a number or a [low, high] range drawn per sample.
    """

    name = "window_slice"

    def __init__(self, p: float = 1.0, ratio: Range = 0.9) -> None:
        super().__init__(p)
        low, high = check_range(ratio, f"{self.name}.ratio", minimum=0.0)
        if low <= 0 or high > 1:
            raise ValueError(f"{self.name}: ratio must be in (0, 1], got {ratio!r}")
        self.ratio = ratio

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        B, _, T = x.shape
        span = sample_range(self.ratio, (B, 1), g, x) * (T - 1)
        start = rand(g, (B, 1), x).mul_((T - 1) - span)
        grid = _unit_grid(T, x.device, x.dtype)
        if isinstance(span, float):
            tau = torch.add(start, grid, alpha=span)
        else:
            tau = torch.addcmul(start, grid, span)
        return resample(x, tau.clamp_(0, T - 1))
