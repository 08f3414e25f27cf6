"""Loss terms shared by the distillation methods (pure functions of tensors).

- `soft_cross_entropy` (`_rows`: per sample): CE against a label distribution (one-hot, or
  mixed by mixup/cutmix).
- `kd_kl`: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv
  1503.02531, 2015): T^2 * KL(p_t^T || p_s^T), averaged over the batch.
- `normalized_distance`, `cosine_distance`, `abs_cosine`: the factor losses of IE-KD (Huang et al.,
  "Revisiting Knowledge Distillation: An Inheritance and Exploration Framework", CVPR 2021).
- `reconstruction_l1`: the factor auto-encoder's reconstruction loss (IE-KD stage 1).
- `similarity_gram`, `similarity_keeping`: the batch Gram matrices of similarity-keeping KD
  (Huang, Chen & Wei 2022, arXiv 2212.03329).
- `kl_rows`, `entropy`: per-sample KL and entropy of softened distributions.
- `divergence_weights`, `balanced_kl`: BD-KD's entropy-switched forward / reverse KL (Amara et
  al., arXiv 2212.12965).
- `std_scaled`: MIX-KD's per-sample logit rescaling (Choi et al., WACV 2023).
- `virtual_teacher`: the manually designed teacher of Tf-KD_reg (Yuan et al., CVPR 2020).
- `label_ce_rows`: each teacher's per-sample CE on the true class (CA-MKD's confidence, CES-KD's
  difficulty).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, y_soft: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_k y_k log softmax(logits)_k (logits, y_soft: [B, K])."""
    return soft_cross_entropy_rows(logits, y_soft).mean()


def soft_cross_entropy_rows(logits: torch.Tensor, y_soft: torch.Tensor) -> torch.Tensor:
    """Per sample -sum_k y_k log softmax(logits)_k: [B, K] -> [B]."""
    return -(y_soft * F.log_softmax(logits, dim=1)).sum(dim=1)


def kd_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """T^2 * KL(softmax(t/T) || softmax(s/T)), summed over classes, averaged over the batch."""
    return kl_rows(teacher_logits, student_logits, temperature).mean() * temperature**2


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


# -- online, self and assistant methods (bdkd, mixkd, selfkd) -----------------------------------


def kl_rows(target_logits: torch.Tensor, logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per sample KL(softmax(target/T) || softmax(logits/T)), summed over classes: [B, K] -> [B]."""
    log_p = F.log_softmax(target_logits / temperature, dim=1)
    log_q = F.log_softmax(logits / temperature, dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1)


def entropy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Per sample entropy (nats) of softmax(logits / T): [B, K] -> [B]."""
    log_p = F.log_softmax(logits / temperature, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def divergence_weights(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    major: float,
    minor: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BD-KD's per-sample weights (w_forward, w_reverse), each [B], from the entropy gap.

    Where the student's softened distribution is at most as uncertain as the teacher's
    (H(p_s^T) <= H(p_t^T): the student over-confident), the mass-covering forward KL gets
    `major` and the reverse KL `minor`; where the student is the more uncertain, the
    mode-seeking reverse KL gets `major`. No gradient flows through the switch.
    """
    with torch.no_grad():
        over = entropy(student_logits, temperature) <= entropy(teacher_logits, temperature)
        hi = torch.full_like(over, major, dtype=student_logits.dtype)
        lo = torch.full_like(over, minor, dtype=student_logits.dtype)
    return torch.where(over, hi, lo), torch.where(over, lo, hi)


def balanced_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    major: float,
    minor: float,
) -> torch.Tensor:
    """BD-KD's student term (Amara et al., arXiv 2212.12965): T^2 times the batch mean of
    w_f KL(p_t^T || p_s^T) + w_r KL(p_s^T || p_t^T), weights from `divergence_weights`."""
    w_fwd, w_rev = divergence_weights(student_logits, teacher_logits, temperature, major, minor)
    forward = kl_rows(teacher_logits, student_logits, temperature)
    reverse = kl_rows(student_logits, teacher_logits, temperature)
    return (w_fwd * forward + w_rev * reverse).mean() * temperature**2


def std_scaled(logits: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Logits divided by their own standard deviation over the classes (unbiased), per sample:
    the temperature rescaling of MIX-KD (Choi et al., WACV 2023)."""
    return logits / logits.std(dim=1, keepdim=True).clamp_min(eps)


def virtual_teacher(y_soft: torch.Tensor, correct_prob: float) -> torch.Tensor:
    """Yuan et al.'s (CVPR 2020) manually designed teacher p^d [B, K]: `correct_prob` on the
    true class and (1 - correct_prob) / (K - 1) on each other class; a mixed or weighted
    label mixes the per-class rows by its normalised weights. Tf-KD_reg softens it as
    softmax(p^d / T), i.e. it takes the place of teacher logits in `kl_rows`."""
    y = y_soft / y_soft.sum(dim=1, keepdim=True)
    k = y.shape[1]
    return correct_prob * y + (1 - correct_prob) / (k - 1) * (1 - y)


# -- multi-teacher methods (camkd, cskd, roskd) -------------------------------------------------


def label_ce_rows(teacher_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each teacher's cross-entropy on the true class, per sample: [K, B, C] and [B] -> [K, B]
    (how far each teacher's prediction is from the one-hot label)."""
    k, b, c = teacher_logits.shape
    ce = F.cross_entropy(teacher_logits.reshape(k * b, c), y.repeat(k), reduction="none")
    return ce.view(k, b)
