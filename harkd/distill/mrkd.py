"""`mrkd`: modality-relation distillation: the student learns how the teacher's modality
embeddings relate within each window, not only the teacher's outputs.

The teacher encodes each modality on its own and exposes one embedding per modality (the
feature "modalities", [B, D, M]: `cnn1d_branches`, one cnn1d trunk per channel group, e.g. acc
and gyro). For window i, with u_m the L2-normalised embedding of modality m, the relation is the
Gram matrix G_i[m, n] = u_m . u_n (cosine similarities, M x M). The student predicts one
embedding per teacher modality from its own pooled features ("embedding") with light heads (a
linear map per modality, `head_dim` wide) and forms its Gram matrix the same way:

    gram = mean_i mean_{m,n} (G_s,i[m, n] - G_t,i[m, n])^2

Loss: (1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T) + beta * gram. Normalising first
makes the term blind to the embeddings' scale; it is zero when the predicted embeddings equal
the teacher's (up to a positive scale per modality). An acc-only student thus learns, window by
window, how far its acc and the gyro the teacher saw agree.

Where this comes from: the seed's modality-level Gram matrix, in the line of relational KD
(Park et al., "Relational Knowledge Distillation", CVPR 2019: relations between samples) and
similarity-preserving KD (Tung & Mori, ICCV 2019: batch Gram matrices), here between the
modalities of one window; there is no paper to follow for it, and alpha, T and beta are
unfitted defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    Example,
    FrozenTeacher,
    OneTeacherParams,
    ViewModel,
    register_distiller,
)
from harkd.distill.features import check_feature_names, input_channels, probe_features
from harkd.distill.losses import kd_kl, soft_cross_entropy


class MRKDParams(OneTeacherParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    beta: float = Field(10.0, ge=0, description="weight of the modality Gram term")
    head_dim: int = Field(64, ge=1, description="width of each predicted modality embedding")
    modalities: str = Field("modalities", description="teacher feature [B, D, M]")
    student_feature: str = Field("embedding", description="student feature the heads read")


def modality_gram(embeddings: torch.Tensor) -> torch.Tensor:
    """Per window cosine similarities of its modality embeddings: [B, D, M] -> [B, M, M]."""
    u = F.normalize(embeddings, p=2, dim=1)
    return u.transpose(1, 2) @ u


def gram_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two [B, D_s, M] and [B, D_t, M] embeddings' Gram matrices."""
    return F.mse_loss(modality_gram(student), modality_gram(teacher))


@register_distiller("mrkd")
class ModalityRelationKD(Distiller):
    """Modality-relation KD: KD plus matching the teacher's per-window modality Gram matrix."""

    params_model = MRKDParams
    params: MRKDParams
    teacher_count = (1, None)
    example = Example(
        teachers={"t": ("acc", "gyro")}, params={"head_dim": 8}, teacher_model="cnn1d_branches"
    )

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p = self.params
        channels = input_channels(context.groups)
        t_shapes = probe_features(self.teachers[self.teacher_name], channels, context.window)
        t_shape = check_feature_names(t_shapes, p.modalities, "the teacher", "modalities")
        if len(t_shape) != 2 or t_shape[1] < 2:
            raise ValueError(
                f"distill.params.modalities: the teacher's feature {p.modalities!r} has shape "
                f"{t_shape}; expected [D, M] per window with M >= 2 modalities "
                f"(a per-modality teacher such as cnn1d_branches)"
            )
        s_shapes = probe_features(student, channels, context.window)
        s_shape = check_feature_names(s_shapes, p.student_feature, "the student", "student_feature")
        self.n_modalities = t_shape[1]
        self.heads = nn.Linear(s_shape[0], self.n_modalities * p.head_dim)

    def predicted_modalities(self, features: torch.Tensor) -> torch.Tensor:
        """The student's embedding per teacher modality: [B, D_s] (a map [B, C, T] is averaged
        over time first) -> [B, head_dim, M]."""
        out = self.heads(features if features.dim() == 2 else features.mean(-1))
        return out.view(len(out), self.n_modalities, -1).transpose(1, 2)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        s_out = self.student(batch.x)
        t_out = self.teachers[self.teacher_name](batch.teacher_x)
        predicted = self.predicted_modalities(s_out.features[p.student_feature])
        return s_out.logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(s_out.logits, batch.y_soft),
            "kd": p.alpha * kd_kl(s_out.logits, t_out.logits, p.temperature),
            "gram": p.beta * gram_loss(predicted, t_out.features[p.modalities]),
        }
