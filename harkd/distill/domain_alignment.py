"""Subject (domain) alignment: gradient reversal and maximum mean discrepancy.

- `GradientReversal` (Ganin & Lempitsky, "Unsupervised Domain Adaptation by
  Backpropagation", ICML 2015): the identity forward; backward, the incoming gradient times
  -`scale`. Put between an encoder and a domain discriminator, one optimiser step trains the
  discriminator to tell the domains apart and the encoder to make them indistinguishable.
- `mmd` (Gretton et al., "A Kernel Two-Sample Test", JMLR 2012; the multi-bandwidth Gaussian
  kernel of Long et al., "Learning Transferable Features with Deep Adaptation Networks", ICML
  2015): the biased estimate
      MMD^2(X, Y) = mean k(X, X) + mean k(Y, Y) - 2 mean k(X, Y),
  k a sum of Gaussian kernels exp(-||a - b||^2 / (s * h)), h the mean squared distance of the
  pooled rows (no gradient through it), s in `BANDWIDTHS`. It is zero for identical sets and
  positive for any two different sets (the Gaussian kernel is characteristic).
- `subject_mmd`: the mean, over the subjects of a batch, of MMD^2 between a subject's embeddings
  and the other subjects' (TASKED's alignment of the subjects' distributions).
"""

from __future__ import annotations

import torch
from torch import nn

#: multipliers of the data-driven bandwidth h
BANDWIDTHS = (0.25, 0.5, 1.0, 2.0, 4.0)


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, scale: float):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor):
        return -ctx.scale * grad, None


class GradientReversal(nn.Module):
    """Identity forward; multiplies the gradient by -`scale` on the way back."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Reverse.apply(x, self.scale)


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: torch.Tensor) -> torch.Tensor:
    """Sum over s in `BANDWIDTHS` of exp(-||a_i - b_j||^2 / (s * bandwidth)): [N, M]."""
    d2 = torch.cdist(a, b).pow(2)
    return sum(torch.exp(-d2 / (s * bandwidth)) for s in BANDWIDTHS)


def mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Biased MMD^2 between the rows of x [N, D] and y [M, D] (module docstring)."""
    pooled = torch.cat([x, y])
    bandwidth = mean_squared_distance(pooled)
    return (
        gaussian_kernel(x, x, bandwidth).mean()
        + gaussian_kernel(y, y, bandwidth).mean()
        - 2 * gaussian_kernel(x, y, bandwidth).mean()
    )


def mean_squared_distance(x: torch.Tensor) -> torch.Tensor:
    """The bandwidth h: the mean squared distance between the rows of x, without gradient."""
    with torch.no_grad():
        return torch.cdist(x, x).pow(2).mean().clamp_min(1e-8)


def subject_mmd(embedding: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
    """Mean over the batch's subjects of MMD^2(that subject's rows, the other rows), each as
    `mmd` computes it (the pooled rows are always the whole batch, so one kernel matrix serves
    every subject); zero when the batch holds one subject only. embedding: [B, D]; subject:
    [B] ids."""
    _, member = subject.unique(return_inverse=True)
    if int(member.max()) == 0:
        return embedding.sum() * 0.0
    k = gaussian_kernel(embedding, embedding, mean_squared_distance(embedding))
    onehot = torch.nn.functional.one_hot(member).to(k.dtype).t()  # [S, B]
    n = onehot.sum(dim=1)
    rest = len(embedding) - n
    row = onehot @ k.sum(dim=1)  # each subject's rows against every row
    within = ((onehot @ k) * onehot).sum(dim=1)  # each subject's rows against its own
    cross = row - within
    others = k.sum() - 2 * row + within
    return (within / n**2 + others / rest**2 - 2 * cross / (n * rest)).mean()
