"""`none`: the model alone, cross-entropy against its (possibly mixed) soft labels.

The baseline every distillation method is judged against, and how `harkd train` trains
teachers, students and peers. CE against `y_soft` (not the hard label) keeps mixing
augmentations such as mixup (Zhang et al., ICLR 2018) correct.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    FrozenTeacher,
    ViewModel,
    register_distiller,
)
from harkd.distill.losses import soft_cross_entropy


@register_distiller("none")
class NoDistillation(Distiller):
    """The model alone: cross-entropy on its labels (teachers named in the config are unused)."""

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, {}, context, params)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.student(batch.x).logits
        return logits, {"ce": soft_cross_entropy(logits, batch.y_soft)}
