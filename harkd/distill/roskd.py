"""`roskd`: Jaiswal, Ashutosh, Rousseau, Peng, Wang & Ding, "RoS-KD: A Robust Stochastic
Knowledge Distillation Approach for Noisy Medical Imaging" (arXiv 2210.08388, 2022).

K frozen teachers, each trained on one of K overlapping subsets of the training data, so that
no single teacher's memorised label noise dominates; the student learns a smooth, robust
function from all of them:

- Teachers: in harkd each is a training node of the experiment engine on one subject subset
  (`split.subset` of the data protocol: `count` subsets with a configurable `overlap`; see
  configs/grids/roskd.yaml); subsets are cut by subject, so no test subject is ever in one.
- Stochastic teacher: at every training step one teacher is drawn uniformly; the draw of step n
  depends only on (`seed`, n), so a resumed run draws as an uninterrupted one.
- Student smoothing: the student's weights are averaged over the steps, theta_bar <- m theta_bar
  + (1 - m) theta after every update (`smoothing` = m; 0 turns it off). Whenever the student is
  scored (each epoch's validation, the end of the run) it takes the averaged weights, so the
  smoothed student is the one selected, saved and exported, and training continues from it.

Loss: (1 - alpha) CE(s, y) + alpha T^2 KL(p_{t_n}^T || p_s^T), t_n the teacher drawn at step n.

Where the 1-D version departs: the paper splits the training images into overlapping subsets; a
wearable protocol must keep a subject's windows together, so harkd's subsets are of subjects.
The paper smooths the student's parameters as they are updated; harkd keeps the moving average
beside the trained weights and hands it to the student at each evaluation (once per epoch),
because an average folded back after every step would only shrink the learning rate.
"""

from __future__ import annotations

import copy
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
)
from harkd.distill.losses import kd_kl, soft_cross_entropy


class RoSKDParams(MethodParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    smoothing: float = Field(
        0.9, ge=0, lt=1, description="momentum m of the student's weight average (0: off)"
    )
    seed: int = Field(0, description="seed of the per-step teacher draws")


def teacher_draw(seed: int, step: int, n_teachers: int) -> int:
    """The teacher index drawn at training step `step` (uniform, a function of seed and step)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    return int(torch.randint(n_teachers, (1,), generator=generator))


@torch.no_grad()
def blend_into(average: torch.nn.Module, model: torch.nn.Module, momentum: float) -> None:
    """average <- momentum * average + (1 - momentum) * model, for every floating-point tensor
    of the state (weights and BatchNorm statistics); other tensors are copied."""
    for a, m in zip(average.state_dict().values(), model.state_dict().values(), strict=True):
        if a.is_floating_point():
            a.mul_(momentum).add_(m, alpha=1 - momentum)
        else:
            a.copy_(m)


@register_distiller("roskd")
class RoSKD(Distiller):
    """Jaiswal et al. 2022: one of K teachers on data subsets drawn per step; smoothed student."""

    params_model = RoSKDParams
    params: RoSKDParams
    teacher_count = (2, None)
    example = Example(
        teachers={"subset0": ("acc", "gyro"), "subset1": ("acc", "gyro"), "subset2": ("acc",)},
        params={"smoothing": 0.5},
    )

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        self.names = list(teachers)
        self.average = copy.deepcopy(student.model).requires_grad_(False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        # 1 while the student holds an update not yet folded into the average
        self.register_buffer("unfolded", torch.zeros((), dtype=torch.long))

    def _fold(self) -> None:
        if int(self.unfolded):
            blend_into(self.average, self.student.model, self.params.smoothing)
            self.unfolded.zero_()

    def train(self, mode: bool = True) -> RoSKD:
        """Switching to evaluation hands the averaged weights to the student (docstring)."""
        if not mode and int(self.unfolded) and self.params.smoothing > 0:
            self._fold()  # the last step's update
            self.student.model.load_state_dict(self.average.state_dict())
        return super().train(mode)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        step = int(self.steps)
        if self.training:
            self._fold()  # the previous step's update
            self.steps += 1
            self.unfolded.fill_(1)  # the optimiser updates the student after this call
        teacher = self.teachers[self.names[teacher_draw(p.seed, step, len(self.names))]]
        logits = self.student(batch.x).logits
        t_logits = teacher(batch.teacher_x).logits
        return logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft),
            "kd": p.alpha * kd_kl(logits, t_logits, p.temperature),
        }
