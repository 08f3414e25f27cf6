"""`sk`: similarity-keeping KD (Huang, Chen & Wei 2022, arXiv 2212.03329).

For each chosen (teacher feature, student feature) pair, each sample's map is zero-centred and
L2-normalised over time per channel, flattened, and the batch Gram matrix G = f f^T / channels
([B, B]) is formed; the loss is MSE(G_t, G_s) summed over the pairs. Only [B, B] matrices are
compared, so channel counts and temporal lengths never need to match: the natural cross-modal
method (acc+gyro teacher -> acc-only student). Total:
(1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T) + beta * SK.

A pooled vector [B, D] ("embedding") has no time axis: centring over a single time step would
zero it, so it is read as one channel whose "time" axis is D ([B, 1, D]); its G is then the
Pearson correlation between the samples' embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import Field

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
from harkd.distill.features import DEFAULT_PAIR, check_feature_names, input_channels, probe_features
from harkd.distill.losses import kd_kl, similarity_keeping, soft_cross_entropy


class SKParams(OneTeacherParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    beta: float = Field(100.0, ge=0, description="weight of the summed similarity-keeping terms")
    pairs: list[tuple[str, str]] = Field(
        default_factory=lambda: [DEFAULT_PAIR],
        min_length=1,
        description="(teacher feature, student feature) names",
    )


def as_sequence(f: torch.Tensor) -> torch.Tensor:
    """[B, C, T] unchanged; a vector [B, D] becomes one channel over D steps, [B, 1, D]."""
    return f.unsqueeze(1) if f.dim() == 2 else f


@register_distiller("sk")
class SimilarityKeeping(Distiller):
    """Huang, Chen & Wei 2022: KD plus matching batch-similarity (Gram) matrices of features."""

    params_model = SKParams
    params: SKParams
    teacher_count = (1, None)
    example = Example(
        teachers={"t": ("acc", "gyro")},
        params={"pairs": [["final", "final"], ["embedding", "embedding"]]},
    )

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        channels = input_channels(context.groups)
        t_shapes = probe_features(self.teachers[self.teacher_name], channels, context.window)
        s_shapes = probe_features(student, channels, context.window)
        for t_name, s_name in self.params.pairs:
            check_feature_names(t_shapes, t_name, "the teacher", "pairs")
            check_feature_names(s_shapes, s_name, "the student", "pairs")

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        s_out = self.student(batch.x)
        t_out = self.teachers[self.teacher_name](batch.teacher_x)
        sk = sum(
            similarity_keeping(as_sequence(t_out.features[t]), as_sequence(s_out.features[s]))
            for t, s in p.pairs
        )
        return s_out.logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(s_out.logits, batch.y_soft),
            "kd": p.alpha * kd_kl(s_out.logits, t_out.logits, p.temperature),
            "sk": p.beta * sk,
        }
