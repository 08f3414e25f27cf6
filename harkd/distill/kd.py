"""`kd`: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv 1503.02531).

Loss: (1 - alpha) * CE(student, y_soft) + alpha * T^2 * KL(p_t^T || p_s^T), batch-mean KL.
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
    MethodParams,
    ViewModel,
    register_distiller,
    select_teacher,
)
from harkd.distill.losses import kd_kl, soft_cross_entropy


class KDParams(MethodParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    teacher: str | None = Field(None, description="teacher name (default: the only teacher)")


@register_distiller("kd")
class KD(Distiller):
    """Hinton et al. 2015: CE plus T^2 KL to one frozen teacher's softened logits."""

    params_model = KDParams
    params: KDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")}, params={"alpha": 0.5})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        self.teacher_name = select_teacher(teachers, self.params.teacher, "kd")

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        logits = self.student(batch.x).logits
        t_logits = self.teachers[self.teacher_name](batch.teacher_x).logits
        return logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft),
            "kd": p.alpha * kd_kl(logits, t_logits, p.temperature),
        }
