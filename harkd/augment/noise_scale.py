"""Amplitude ops: jitter (additive Gaussian noise) and scaling (random gain).

Both come from Um et al., "Data augmentation of wearable sensor data for Parkinson's disease
monitoring using convolutional neural networks", ICMI 2017 (arXiv 1706.00527).
"""

from __future__ import annotations

import torch
from torch import Tensor

from harkd.augment.base import Augmenter, Range, check_range, randn, register_op, sample_range


@register_op
class Jitter(Augmenter):
    """Add Gaussian noise `sigma * N(0, 1)` to every sample, channel and time step.

    Args:
        p: probability that a sample is augmented.
        sigma: noise standard deviation, a number or a [low, high] range drawn per sample.
        relative: if True, `sigma` is relative to each sample's per-channel standard deviation
            over time; otherwise absolute (in the units of `x`, i.e. standard deviations of
            the training set for normalised windows).
    """

    name = "jitter"

    def __init__(self, p: float = 1.0, sigma: Range = 0.05, relative: bool = False) -> None:
        super().__init__(p)
        check_range(sigma, f"{self.name}.sigma", minimum=0.0)
        self.sigma = sigma
        self.relative = bool(relative)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        scale = sample_range(self.sigma, (x.shape[0], 1, 1), g, x)
        if self.relative:
            scale = x.std(dim=-1, keepdim=True).mul_(scale)
        if isinstance(scale, float):
            if g.device == x.device:  # one call: normal_(0, scale) into a new tensor, add x
                return torch.normal(x, scale, generator=g)
            return randn(g, x.shape, x, std=scale).add_(x)
        return randn(g, x.shape, x).mul_(scale).add_(x)


@register_op
class Scaling(Augmenter):
    """Multiply each sample (and channel) by a log-normal gain `exp(sigma * N(0, 1))`.

    The gain is positive, so signs and zero crossings are kept. Um et al. draw the gain from
    N(1, sigma); the log-normal is the same to first order for small sigma and never negative.

    Args:
        p: probability that a sample is augmented.
        sigma: standard deviation of the log gain.
        per_channel: one gain per channel (True) or one per sample (False).
    """

    name = "scaling"

    def __init__(self, p: float = 1.0, sigma: float = 0.1, per_channel: bool = True) -> None:
        super().__init__(p)
        check_range(sigma, f"{self.name}.sigma", minimum=0.0)
        self.sigma = float(sigma)
        self.per_channel = bool(per_channel)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        c = x.shape[1] if self.per_channel else 1
        return x * randn(g, (x.shape[0], c, 1), x, std=self.sigma).exp_()
