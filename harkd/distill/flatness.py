"""Flatness of a trained model's minimum: its loss under small random weight perturbations.

The seed claim this measures: self-distilled students (`selfkd`, born-again chains) reach
flatter minima than their teachers, which ties to better generalisation (Keskar et al., "On
Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima", ICLR 2017).

    increase(sigma) = mean_d L(theta + eps_d) - L(theta),
    eps_d,p ~ N(0, (sigma ||theta_p|| / sqrt(n_p))^2 I) for each parameter tensor theta_p,

L the mean cross-entropy of the model (eval mode) on the windows given. Each tensor's noise
has an expected norm of about sigma ||theta_p||: scaled to the tensor, as the filter-normalised
directions of Li et al. ("Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018), so
that a network whose weights are merely rescaled (BatchNorm makes many such) does not look
flatter. Buffers (BatchNorm's running statistics) are not perturbed. The draws come from a
generator seeded with `seed`; the weights are restored afterwards. A flatter minimum has a
smaller increase. `benchmarks/bench_flatness.py` prints it for runs and their teachers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Flatness:
    """The loss at the weights (`base`) and under perturbations of relative size `sigma`
    (`perturbed`: the mean over `draws`; `spread`: the standard deviation over them)."""

    sigma: float
    draws: int
    base: float
    perturbed: float
    spread: float

    @property
    def increase(self) -> float:
        return self.perturbed - self.base


@torch.no_grad()
def mean_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Mean cross-entropy of `model` (returning `ModelOutput`) on windows x [N, C, T], labels y."""
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, len(x), batch_size):
        logits = model(x[i:i + batch_size].to(device)).logits.float()
        total += float(F.cross_entropy(logits, y[i:i + batch_size].to(device), reduction="sum"))
    return total / len(x)


@torch.no_grad()
def flatness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    sigma: float,
    draws: int = 20,
    seed: int = 0,
) -> Flatness:
    """The loss of `model` on (x, y) at its weights and under `draws` random perturbations of
    relative size `sigma` (module docstring)."""
    if sigma < 0 or draws < 1:
        raise ValueError(f"flatness: sigma must be >= 0 and draws >= 1, got {sigma}, {draws}")
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.numel()]
    saved = [p.detach().clone() for p in params]
    scales = [sigma * float(p.norm()) / p.numel() ** 0.5 for p in params]
    g = torch.Generator().manual_seed(seed)
    base = mean_loss(model, x, y)
    losses = []
    try:
        for _ in range(draws):
            for p, p0, s in zip(params, saved, scales, strict=True):
                noise = torch.randn(p.shape, generator=g, dtype=torch.float32) * s
                p.copy_(p0 + noise.to(p.device, p.dtype))
            losses.append(mean_loss(model, x, y))
    finally:
        for p, p0 in zip(params, saved, strict=True):
            p.copy_(p0)
        model.train(was_training)
    spread = float(torch.tensor(losses).std()) if draws > 1 else 0.0
    return Flatness(sigma, draws, base, sum(losses) / draws, spread)
