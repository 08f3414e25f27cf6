"""`kd`: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv 1503.02531).

Loss: (1 - alpha) * CE(student, y_soft) + alpha * T^2 * KL(p_t^T || p_s^T), batch-mean KL.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    FrozenTeacher,
    MethodParams,
    ViewModel,
    parse_params,
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
    """Logit distillation from one frozen teacher."""

    def __init__(
        self,
        student: ViewModel,
        teachers: dict[str, FrozenTeacher],
        context: DistillContext,
        **params: Any,
    ) -> None:
        super().__init__(student, teachers, context)
        self.params = parse_params(KDParams, params, "kd")
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
