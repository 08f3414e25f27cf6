"""`cskd`: curriculum expert selection, after Amara, Ziaeefard, Meyer, Gross & Clark, "CES-KD:
Curriculum-based Expert Selection for Guided Knowledge Distillation" (arXiv 2209.07606,
2022).

A ladder of frozen teachers of rising capacity (assistants, then the teacher) guides the
student; each window learns from one teacher, chosen by how hard the window is: easy windows
from lower-capacity teachers, hard windows from higher-capacity ones, and the thresholds move
over the epochs so that ever more windows learn from the larger teachers.

- Ladder: `order` (lowest capacity first), by default the teachers by their number of
  parameters (ties keep the configured order).
- Difficulty (our measure; the paper ranks images by how hard they are to classify): the mean
  over the ladder's teachers of their cross-entropy on the window's true class.
- Curriculum: windows are ranked by difficulty within the batch, q_i = rank_i / B in [0, 1)
  (0 the easiest). With progress p = min(1, epoch / ramp_epochs), the threshold between
  teachers k - 1 and k (k = 1 .. K-1) is t_k = (k / K) (1 - p), and window i learns from
  teacher k_i = #{k : q_i >= t_k}. At the start the ladder splits each batch into K equal
  difficulty strata; the thresholds then fall linearly, and from epoch `ramp_epochs` every
  window learns from the largest teacher.

Loss: (1 - alpha) CE(s, y) + alpha T^2 mean_i KL(p_{t(k_i)}^T || p_s^T).

Where the 1-D version departs: the ranks are taken within each (shuffled) training batch
rather than over the whole training set, so no pass over the data is needed before training and
a resumed run sees the same choices; the difficulty measure is the one stated above.
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
)
from harkd.distill.losses import kl_rows, label_ce_rows, soft_cross_entropy


class CSKDParams(MethodParams):
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    order: list[str] | None = Field(
        None, description="teacher names, lowest capacity first (default: by parameter count)"
    )
    ramp_epochs: int = Field(
        10, ge=1, description="epochs over which the thresholds fall to the largest teacher"
    )


def by_capacity(teachers: Mapping[str, FrozenTeacher]) -> list[str]:
    """Teacher names by increasing number of parameters (ties keep the given order)."""
    return sorted(teachers, key=lambda n: sum(p.numel() for p in teachers[n].parameters()))


def curriculum_choice(difficulty: torch.Tensor, n_teachers: int, progress: float) -> torch.Tensor:
    """Ladder index [B] of the teacher each window learns from (module docstring).

    difficulty: [B] (larger: harder); progress: 0 at the start, 1 once the ramp is over.
    """
    b = len(difficulty)
    rank = torch.empty(b, dtype=torch.long, device=difficulty.device)
    rank[torch.argsort(difficulty, stable=True)] = torch.arange(b, device=difficulty.device)
    q = rank.to(torch.float64) / b
    k = torch.arange(1, n_teachers, device=difficulty.device, dtype=torch.float64)
    thresholds = k / n_teachers * (1 - progress)
    return (q.unsqueeze(1) >= thresholds.unsqueeze(0)).sum(dim=1)


@register_distiller("cskd")
class CSKD(Distiller):
    """Amara et al. 2022 (CES-KD): one teacher per window from a ladder, by difficulty."""

    params_model = CSKDParams
    params: CSKDParams
    teacher_count = (2, None)
    example = Example(
        teachers={"assistant": ("acc",), "teacher": ("acc", "gyro")}, params={"ramp_epochs": 2}
    )

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        order = self.params.order
        self.ladder = list(order) if order is not None else by_capacity(teachers)
        if sorted(self.ladder) != sorted(teachers):
            raise ValueError(
                f"distill.params.order={self.ladder} must name each teacher once; teachers: "
                f"{sorted(teachers)}"
            )

    def choose(self, t_logits: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
        """Ladder index [B] per window from the ladder's logits [K, B, C] and labels [B]."""
        difficulty = label_ce_rows(t_logits, y).mean(dim=0)
        progress = min(1.0, epoch / self.params.ramp_epochs)
        return curriculum_choice(difficulty, len(self.ladder), progress)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        logits = self.student(batch.x).logits
        t_logits = torch.stack([self.teachers[n](batch.teacher_x).logits for n in self.ladder])
        chosen = self.choose(t_logits, batch.y, epoch)
        target = t_logits[chosen, torch.arange(len(chosen), device=chosen.device)]
        kl = kl_rows(target, logits, p.temperature).mean() * p.temperature**2
        return logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft),
            "kd": p.alpha * kl,
        }
