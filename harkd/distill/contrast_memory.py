"""The memory bank and NCE objective of contrastive representation distillation (Tian, Krishnan
& Isola, "Contrastive Representation Distillation", ICLR 2020, arXiv 1910.10699), used by
`harkd.distill.crd`: one bank row per training window and network, updated with momentum, K
negatives per window drawn among the other windows, and the paper's NCE loss (its eq. 18) on the
critic values exp(a . r / tau) / Z.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def nce_loss(p: torch.Tensor, n_data: int, eps: float = 1e-7) -> torch.Tensor:
    """The NCE objective on critic values p [B, 1 + K] (column 0 the positive): with noise
    K / N, -mean_i [log(p_0 / (p_0 + noise)) + sum_j log(noise / (p_j + noise))]."""
    noise = (p.shape[1] - 1) / n_data
    log_pos = torch.log(p[:, 0] / (p[:, 0] + noise + eps))
    log_neg = torch.log(noise / (p[:, 1:] + noise + eps))
    return -(log_pos.sum() + log_neg.sum()) / len(p)


class ContrastMemory(nn.Module):
    """One bank row per training window for the student and the teacher, and the critic's Z."""

    def __init__(self, n_windows: int, dim: int, momentum: float) -> None:
        super().__init__()
        bound = 1 / math.sqrt(dim / 3)  # the code's initialisation
        self.register_buffer("student", (torch.rand(n_windows, dim) * 2 - 1) * bound)
        self.register_buffer("teacher", (torch.rand(n_windows, dim) * 2 - 1) * bound)
        self.register_buffer("z", torch.full((2,), -1.0))  # Z of the student, teacher bank
        self.momentum = momentum

    def contrast_index(self, index: torch.Tensor, k: int) -> torch.Tensor:
        """[B, 1 + K]: each window's own row, then K rows drawn uniformly among the others."""
        n = len(self.student)
        draw = torch.randint(0, n - 1, (len(index), k), device=index.device)
        return torch.cat([index[:, None], draw + (draw >= index[:, None]).long()], dim=1)

    def critic(
        self, anchor: torch.Tensor, which: int, rows: torch.Tensor, tau: float
    ) -> torch.Tensor:
        """P [B, 1 + K] of `anchor` [B, d] against bank `which` (0 student, 1 teacher)."""
        bank = self.student if which == 0 else self.teacher
        out = (anchor @ bank.t()).gather(1, rows).div(tau).exp()
        if self.z[which] < 0:
            self.z[which] = out.detach().mean() * len(bank)
        return out / self.z[which].clone()  # the other bank's Z may be set after this

    @torch.no_grad()
    def update(self, index: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> None:
        """Move window `index`'s rows towards the new embeddings (momentum, renormalised); the
        banks are replaced, not changed in place, as this step's critic still needs them."""
        m = self.momentum
        for name, new in (("student", s), ("teacher", t)):
            bank = getattr(self, name).clone()
            bank[index] = F.normalize(bank[index] * m + new.detach().float() * (1 - m), dim=1)
            setattr(self, name, bank)
