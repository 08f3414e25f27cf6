"""`pskd`: progressive skeleton-to-sensor KD (Ni, Ngu & Yan, "Progressive Cross-modal Knowledge
Distillation for Human Action Recognition", ACM MM 2022, arXiv 2208.08090; no public code).

Several frozen teachers (e.g. skeleton, accelerometer and their fusion) teach an accelerometer
student. Progressive schedule: `order` lists the teachers from the one that joins first; the
k-th later teacher joins at epoch `boundaries[k]` (0-based). `mode: cumulative` keeps earlier
teachers active (the candidates of ACS grow), `single` uses only the current stage's teacher.
The default order is nearest-to-student first: by decreasing overlap (intersection over union
of the channel sets) between the teacher's view and the student's, so for an [acc] student:
acc -> fusion [skeleton, acc] -> skeleton.

Adaptive-Confidence Semantic (ACS) loss, as defined in docs/architecture.md 16: per sample,
the candidates are the active teachers whose prediction (argmax) is the true class; the
confidence of a teacher is its softmax probability (T = 1) of the true class.
- hard: the target is the softened distribution softmax(z/T) of the most confident candidate,
  loss T^2 * KL(target || softmax(s/T));
- soft: the target mixes every candidate's softened distribution with weights
  softmax(confidence / tau) over the candidates (tau -> 0 gives the hard variant);
- a sample without any candidate uses CE on its label distribution instead.
Total: (1 - alpha) * CE + alpha * ACS. With mixed labels (mixup, cutmix) the true class is the
argmax of `y_soft` (the dominant component) for choosing candidates; the CE terms use `y_soft`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
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
from harkd.distill.losses import soft_cross_entropy

Variant = Literal["hard", "soft"]


class PSKDParams(MethodParams):
    variant: Variant = Field("hard", description="ACS target: the best candidate or a mixture")
    order: list[str] | None = Field(
        None, description="teacher names, first to join first (default: nearest to the student)"
    )
    boundaries: list[int] = Field(
        default_factory=list,
        description="0-based epoch at which each later teacher of `order` joins",
    )
    mode: Literal["cumulative", "single"] = "cumulative"
    alpha: float = Field(0.5, ge=0, le=1, description="weight of ACS (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T of the targets")
    tau: float = Field(1.0, gt=0, description="soft variant: temperature of the weights")


def view_overlap(teacher: ViewModel, student: ViewModel) -> float:
    """Intersection over union of the channel sets two models read."""
    a, b = set(teacher.channels.tolist()), set(student.channels.tolist())
    return len(a & b) / len(a | b)


def nearest_first(student: ViewModel, teachers: Mapping[str, FrozenTeacher]) -> list[str]:
    """Teacher names by decreasing view overlap with the student (ties keep the given order)."""
    return sorted(teachers, key=lambda n: -view_overlap(teachers[n], student))


def acs_targets(
    teacher_logits: torch.Tensor, y: torch.Tensor, temperature: float, variant: Variant, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """ACS targets [B, C] and the mask [B] of samples that have a correct teacher.

    teacher_logits: [K, B, C] of the active teachers; y: [B] true classes. Rows of samples
    without a correct teacher are undefined (zero) and must not be used.
    """
    probs = teacher_logits.softmax(dim=-1)
    conf = probs.gather(-1, y.view(1, -1, 1).expand(len(probs), -1, 1)).squeeze(-1)  # [K, B]
    correct = teacher_logits.argmax(dim=-1) == y.unsqueeze(0)  # [K, B]
    has_teacher = correct.any(dim=0)
    soft_t = (teacher_logits / temperature).softmax(dim=-1)  # [K, B, C]
    if variant == "hard":
        best = conf.masked_fill(~correct, -1.0).argmax(dim=0)  # [B]
        target = soft_t[best, torch.arange(len(y), device=y.device)]
    else:
        weights = (conf / tau).masked_fill(~correct, float("-inf")).softmax(dim=0)
        target = (weights.nan_to_num(0.0).unsqueeze(-1) * soft_t).sum(dim=0)
    return target * has_teacher.unsqueeze(-1), has_teacher


def acs_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y_soft: torch.Tensor,
    temperature: float,
    variant: Variant = "hard",
    tau: float = 1.0,
) -> torch.Tensor:
    """Batch mean of T^2 KL(target || softmax(s/T)) where a teacher is correct, else CE."""
    target, has_teacher = acs_targets(
        teacher_logits, y_soft.argmax(dim=1), temperature, variant, tau
    )
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    kl = (torch.xlogy(target, target) - target * log_q).sum(dim=1) * temperature**2
    ce = -(y_soft * F.log_softmax(student_logits, dim=1)).sum(dim=1)
    return torch.where(has_teacher, kl, ce).mean()


@register_distiller("pskd")
class PSKD(Distiller):
    """Ni, Ngu & Yan, ACM MM 2022: teachers join progressively; ACS picks a target per sample."""

    params_model = PSKDParams
    params: PSKDParams
    teacher_count = (1, None)
    example = Example(
        teachers={"acc": ("acc",), "fusion": ("skeleton", "acc"), "skeleton": ("skeleton",)},
        params={"boundaries": [1, 2]},
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
        self.order = list(p.order) if p.order is not None else nearest_first(student, teachers)
        unknown = [n for n in self.order if n not in teachers]
        unused = [n for n in teachers if n not in self.order]
        if unknown or unused or len(set(self.order)) != len(self.order):
            raise ValueError(
                f"distill.params.order={self.order} must name each teacher once; teachers: "
                f"{sorted(teachers)}"
            )
        b = p.boundaries
        if len(b) != len(self.order) - 1 or any(e < 1 for e in b) or b != sorted(set(b)):
            raise ValueError(
                f"distill.params.boundaries={b}: need {len(self.order) - 1} strictly increasing "
                f"epochs >= 1 (one per teacher after the first of {self.order})"
            )

    def active_teachers(self, epoch: int) -> list[str]:
        """Teacher names active at `epoch` (0-based)."""
        stage = sum(epoch >= e for e in self.params.boundaries)
        return self.order[: stage + 1] if self.params.mode == "cumulative" else [self.order[stage]]

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        logits = self.student(batch.x).logits
        t_logits = torch.stack(
            [self.teachers[n](batch.teacher_x).logits for n in self.active_teachers(epoch)]
        )
        return logits, {
            "ce": (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft),
            "acs": p.alpha
            * acs_loss(logits, t_logits, batch.y_soft, p.temperature, p.variant, p.tau),
        }
