"""`kd`: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv 1503.02531).

Loss: (1 - alpha) * CE(student, y_soft) + alpha * T^2 * KL(p_t^T || p_s^T), batch-mean KL.

With `pool: true` the KL term also runs over a batch of unlabelled pool windows drawn with
each labelled batch (`split.pool` of the data protocol): the mean KL is taken over the labelled
and the pool windows together, so the teacher's soft labels on windows nobody labelled are a
training signal. This is the transfer set of Hinton et al. (section 2: "the transfer set ...
could consist entirely of unlabeled data") and the unlabelled-data distillation of semi-supervised
KD (e.g. Xie et al., "Self-training with Noisy Student", CVPR 2020, without the iterations);
CE stays on the labelled windows only.
"""

from __future__ import annotations

import torch
from pydantic import Field

from harkd.distill.base import (
    Batch,
    Distiller,
    Example,
    OneTeacherParams,
    register_distiller,
)
from harkd.distill.losses import kd_kl, soft_cross_entropy


class KDParams(OneTeacherParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    pool: bool = Field(False, description="also distil on unlabelled pool windows")


@register_distiller("kd")
class KD(Distiller):
    """Hinton et al. 2015: CE plus T^2 KL to one frozen teacher's softened logits."""

    params_model = KDParams
    params: KDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")}, params={"alpha": 0.5})

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        teacher = self.teachers[self.teacher_name]
        logits = self.student(batch.x).logits
        t_logits = teacher(batch.teacher_x).logits
        ce = (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft)
        s_all, t_all = logits, t_logits
        if p.pool and batch.x_pool is not None:
            s_all = torch.cat([logits, self.student(batch.x_pool).logits])
            t_all = torch.cat([t_logits, teacher(batch.teacher_pool).logits])
        return logits, {"ce": ce, "kd": p.alpha * kd_kl(s_all, t_all, p.temperature)}
