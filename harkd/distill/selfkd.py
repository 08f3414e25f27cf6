"""`selfkd`: self-distillation, a student taught by itself or by no teacher at all.

- `variant: self` (Tf-KD_self of Yuan, Tay, Li, Wang & Feng, "Revisiting Knowledge Distillation
  via Label Smoothing Regularization", CVPR 2020): the teacher is a pre-trained copy of the
  student's own architecture (checked: same model class and parameter shapes), and
      L = (1 - alpha) CE(z_s, y) + alpha T^2 KL(p_t^T || p_s^T)     (batch-mean KL).
  Born-again networks (Furlanello, Lipton, Tschannen, Itti & Anandkumar, "Born Again Neural
  Networks", ICML 2018) are chains of it: generation k is taught by generation k - 1 of the
  same architecture; `alpha: 1` is their teacher-only loss. The chains are training nodes of
  the experiment engine (configs/grids/born_again.yaml), never hand-made run directories.
- `variant: virtual` (Tf-KD_reg, the same paper): no teacher; a manually designed virtual
  teacher p^d puts `correct_prob` (a >= 0.9 in the paper) on the true class and
  (1 - a) / (K - 1) on each other class (`losses.virtual_teacher`), softened as
  softmax(p^d / T):
      L = (1 - alpha) CE(z_s, y) + alpha KL(softmax(p^d / T) || softmax(z_s / T)).

The claim that self-distilled students reach flatter minima is measured by
`harkd.distill.flatness` (loss under small random weight perturbations), student against its
teacher: `python benchmarks/bench_flatness.py RUN_DIR ...`.

Departures: the official Tf-KD_reg code compares the virtual teacher with the student's
softmax at T = 1 and averages KLDivLoss over classes as well as windows (hence its large
multipliers); harkd follows the paper's equation (both at T, batch-mean KL, no multiplier).
Mixed labels (mixup) mix the per-class virtual teachers by their weights. Born-again ensembles
(BANE) are not provided. 1-D networks on HAR windows instead of image CNNs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

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
from harkd.distill.losses import kd_kl, kl_rows, soft_cross_entropy, virtual_teacher


class SelfKDParams(MethodParams):
    variant: Literal["virtual", "self"] = Field(
        "virtual", description="virtual: a designed teacher, no run; self: a pre-trained self"
    )
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    correct_prob: float = Field(
        0.9, gt=0, lt=1, description="virtual teacher: probability of the true class"
    )


def same_architecture(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two models are of one class with parameters of the same names and shapes."""
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (a, b)]
    return type(a) is type(b) and shapes[0] == shapes[1]


@register_distiller("selfkd")
class SelfKD(Distiller):
    """Self-distillation (Yuan et al. 2020): a pre-trained self, or a virtual teacher."""

    params_model = SelfKDParams
    params: SelfKDParams
    teacher_count = (0, 1)
    example = Example(params={"variant": "virtual", "alpha": 0.5, "temperature": 4.0})

    @classmethod
    def check_config(
        cls, params: Mapping[str, Any] | MethodParams, teachers: list[str]
    ) -> MethodParams:
        parsed = super().check_config(params, teachers)
        wanted = 0 if parsed.variant == "virtual" else 1
        if len(teachers) != wanted:
            raise ValueError(
                f"method 'selfkd' variant {parsed.variant!r} takes {wanted} teacher(s) (the "
                f"virtual variant none, the self variant the student's pre-trained self); the "
                f"config names {sorted(teachers) or 'none'}"
            )
        return parsed

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        for name, teacher in teachers.items():
            if not same_architecture(teacher.model, student.model):
                n_t, n_s = (sum(p.numel() for p in m.parameters()) for m in (teacher, student))
                raise ValueError(
                    f"method 'selfkd' variant 'self': teacher {name!r} "
                    f"({type(teacher.model).__name__}, {n_t:,} parameters) is not the student's "
                    f"architecture ({type(student.model).__name__}, {n_s:,} parameters)"
                )

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        logits = self.student(batch.x).logits
        ce = (1 - p.alpha) * soft_cross_entropy(logits, batch.y_soft)
        if p.variant == "virtual":
            kl = kl_rows(virtual_teacher(batch.y_soft, p.correct_prob), logits, p.temperature)
            return logits, {"ce": ce, "reg": p.alpha * kl.mean()}
        (teacher,) = self.teachers.values()
        t_logits = teacher(batch.teacher_x).logits
        return logits, {"ce": ce, "kd": p.alpha * kd_kl(logits, t_logits, p.temperature)}
