"""Mixing ops that also mix the soft labels: mixup and time-segment cutmix.

Mixup: Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018 (arXiv 1710.09412).
CutMix: Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with
Localizable Features", ICCV 2019 (arXiv 1905.04899); here the cut is a stretch of time steps.
Each sample is mixed with a partner from a random permutation of the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from harkd.augment.base import Augmenter, rand, randint, register_op


def sample_beta(alpha: float, n: int, g: torch.Generator, like: Tensor) -> Tensor:
    """`n` draws from Beta(alpha, alpha) by inverting its CDF at uniforms from `g`.

    (torch.distributions.Beta cannot take a generator; inversion keeps `g` the only source.)
    """
    u = torch.rand(n, generator=g, device=g.device, dtype=torch.float64).cpu().numpy()
    from scipy.special import betaincinv  # on use: keeps scipy out of every start-up

    return torch.from_numpy(betaincinv(alpha, alpha, u)).to(like.device, like.dtype)


def _check_labels(y_soft: Tensor, where: str) -> None:
    if not y_soft.is_floating_point():
        raise TypeError(f"{where}: y_soft must be float soft labels [B, K], got {y_soft.dtype}")


class _Mixing(Augmenter):
    """Shared parameter handling; subclasses implement `apply` (they change labels)."""

    def __init__(self, p: float, alpha: float) -> None:
        super().__init__(p)
        if not alpha > 0:
            raise ValueError(f"{self.name}: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def _partners(self, B: int, g: torch.Generator, like: Tensor) -> tuple[Tensor, Tensor]:
        """Partner index per sample and the mask of samples that get mixed."""
        perm = torch.randperm(B, generator=g, device=g.device).to(like.device)
        mixed = rand(g, (B,), like) < self.p
        return perm, mixed


@register_op
class Mixup(_Mixing):
    """`x' = lam x + (1 - lam) x[perm]`, `y' = lam y + (1 - lam) y[perm]`, lam ~ Beta(a, a).

    Args:
        p: probability that a sample is mixed (others keep lam = 1).
        alpha: Beta parameter.
    """

    name = "mixup"

    def __init__(self, p: float = 1.0, alpha: float = 0.2) -> None:
        super().__init__(p, alpha)

    def apply(self, x: Tensor, y_soft: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.p == 0.0:
            return x, y_soft
        _check_labels(y_soft, self.name)
        B = x.shape[0]
        perm, mixed = self._partners(B, g, x)
        lam = torch.where(
            mixed, sample_beta(self.alpha, B, g, x), torch.ones_like(mixed, dtype=x.dtype)
        )
        x_out = torch.lerp(x[perm], x, lam.view(-1, 1, 1))
        y_out = torch.lerp(y_soft[perm], y_soft, lam.view(-1, 1).to(y_soft.dtype))
        return x_out, y_out


@register_op
class CutMix(_Mixing):
    """Paste a random stretch of a partner window; labels mix by the pasted fraction.

    The pasted length is round((1 - lam) T) steps with lam ~ Beta(a, a), at a uniform random
    start; the labels become `(1 - f) y + f y[perm]` with f = pasted length / T exactly.

    Args:
        p: probability that a sample is mixed.
        alpha: Beta parameter.
    """

    name = "cutmix"

    def __init__(self, p: float = 1.0, alpha: float = 1.0) -> None:
        super().__init__(p, alpha)

    def apply(self, x: Tensor, y_soft: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.p == 0.0:
            return x, y_soft
        _check_labels(y_soft, self.name)
        B, _, T = x.shape
        perm, mixed = self._partners(B, g, x)
        lam = sample_beta(self.alpha, B, g, x)
        length = torch.where(mixed, ((1 - lam) * T).round().long(), torch.zeros_like(perm))
        start = randint(g, T - length + 1, (B,), x)
        t = torch.arange(T, device=x.device)
        inside = (t >= start.view(-1, 1)) & (t < (start + length).view(-1, 1))
        x_out = torch.where(inside.unsqueeze(1), x[perm], x)
        frac = (length.to(y_soft.dtype) / T).view(-1, 1)
        return x_out, torch.lerp(y_soft, y_soft[perm], frac)
