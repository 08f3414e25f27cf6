"""`ls`: label smoothing, the part of knowledge distillation that needs no teacher.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision" (CVPR 2016, section
7): the target is `(1 - eps) * y + eps / K`. Yuan et al., "Revisiting Knowledge Distillation
via Label Smoothing Regularization" (CVPR 2020) show that KD's gain partly is this
regularisation, a uniform "virtual teacher"; Müller, Kornblith & Hinton, "When Does Label
Smoothing Help?" (NeurIPS 2019) relate the two. harkd uses it as the control every
distillation lift must beat: a teacher's soft labels count only where they help more than
uniformly softened ones.

Loss: CE(student, (1 - eps) * y_soft + eps * sum(y_soft) / K), batch mean; `sum(y_soft)`
keeps class weights (which scale `y_soft`'s columns) and mixed labels exact.
"""

from __future__ import annotations

import torch
from pydantic import Field

from harkd.distill.base import (
    Batch,
    Distiller,
    Example,
    MethodParams,
    register_distiller,
)
from harkd.distill.losses import soft_cross_entropy


class LSParams(MethodParams):
    smoothing: float = Field(0.1, ge=0, lt=1, description="eps: the mass spread over the classes")


@register_distiller("ls")
class LabelSmoothing(Distiller):
    """Label smoothing (Szegedy et al. 2016): CE against (1 - eps) y + eps / K; no teacher."""

    params_model = LSParams
    params: LSParams
    teacher_count = (0, 0)
    example = Example(params={"smoothing": 0.2})

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        eps = self.params.smoothing
        mass = batch.y_soft.sum(dim=1, keepdim=True)
        target = (1 - eps) * batch.y_soft + eps * mass / batch.y_soft.shape[1]
        logits = self.student(batch.x).logits
        return logits, {"ce": soft_cross_entropy(logits, target)}
