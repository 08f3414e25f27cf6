"""Loss terms shared by the distillation methods (pure functions of tensors).

- `soft_cross_entropy`: CE against a label distribution (one-hot, or mixed by mixup/cutmix).
- `kd_kl`: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv
  1503.02531, 2015): T^2 * KL(p_t^T || p_s^T), averaged over the batch.
- `normalized_distance`, `cosine_distance`, `abs_cosine`: the factor losses of IE-KD (Huang et al.,
  "Revisiting Knowledge Distillation: An Inheritance and Exploration Framework", CVPR 2021).
- `reconstruction_l1`: the factor auto-encoder's reconstruction loss (IE-KD stage 1).
- `similarity_gram`, `similarity_keeping`: the batch Gram matrices of similarity-keeping KD
  (Huang, Chen & Wei 2022, arXiv 2212.03329).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, y_soft: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k y_k log softmax(logits)_k (logits, y_soft: [B, K])."""
    return -(y_soft * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def kd_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes, averaged over the batch."""
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()
    return kl * temperature**2


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Each sample flattened and scaled to unit L2 norm: [B, ...] -> [B, N]."""
    return F.normalize(x.reshape(x.shape[0], -1), p=2, dim=1)


def normalized_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean |a/||a||_2 - b/||b||_2| with each sample flattened and normalised on its own."""
    return (_unit_rows(a) - _unit_rows(b)).abs().mean()


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - cos(a_i, b_i) (flattened samples)."""
    return (1 - (_unit_rows(a) * _unit_rows(b)).sum(dim=1)).mean()


def abs_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of |cos(a_i, b_i)|: zero when the factors are orthogonal."""
    return (_unit_rows(a) * _unit_rows(b)).sum(dim=1).abs().mean()


def reconstruction_l1(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Mean absolute reconstruction error."""
    return (x - x_rec).abs().mean()


def similarity_gram(f: torch.Tensor) -> torch.Tensor:
    """Batch similarity [B, B] of a feature map f [B, C, T].

    Each channel is zero-centred and L2-normalised over time, the map is flattened, and
    G = f f^T / C, so G_ij is the mean over channels of the correlation between sample i's
    and sample j's time course of that channel (a channel that is constant gives 0).
    """
    if f.dim() != 3:
        raise ValueError(f"similarity_gram expects a [B, C, T] map, got shape {tuple(f.shape)}")
    channels = f.shape[1]
    f = f - f.mean(dim=2, keepdim=True)
    f = F.normalize(f, p=2, dim=2).reshape(f.shape[0], -1)
    return f @ f.t() / channels


def similarity_keeping(f_teacher: torch.Tensor, f_student: torch.Tensor) -> torch.Tensor:
    """MSE between the teacher's and the student's batch Gram matrices ([B, C, T] maps)."""
    return F.mse_loss(similarity_gram(f_student), similarity_gram(f_teacher))
