"""`none`: the model alone, cross-entropy against its (possibly mixed) soft labels.

The baseline every distillation method is judged against, and how `harkd train` trains
teachers, students and peers. CE against `y_soft` (not the hard label) keeps mixing
augmentations such as mixup (Zhang et al., ICLR 2018) correct.
"""

from __future__ import annotations

from typing import Any

import torch

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    FrozenTeacher,
    MethodParams,
    ViewModel,
    parse_params,
    register_distiller,
)
from harkd.distill.losses import soft_cross_entropy


class NoneParams(MethodParams):
    """`none` has no parameters."""


@register_distiller("none")
class NoDistillation(Distiller):
    """Cross-entropy only. Teachers, when the config names some, are not used or kept."""

    def __init__(
        self,
        student: ViewModel,
        teachers: dict[str, FrozenTeacher],
        context: DistillContext,
        **params: Any,
    ) -> None:
        super().__init__(student, {}, context)
        parse_params(NoneParams, params, "none")

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.student(batch.x).logits
        return logits, {"ce": soft_cross_entropy(logits, batch.y_soft)}
