"""`crd`: Tian, Krishnan & Isola, "Contrastive Representation Distillation" (ICLR 2020, arXiv
1910.10699; the authors' code: github.com/HobbitLong/RepDistiller).

Embedding heads g_S, g_T (linear, then L2 normalisation, `embed_dim` 128) map the student's
and the teacher's pooled features ("embedding", flattened) to s_i, t_i. A memory bank keeps one
vector per training window and network (N = the training windows, `Batch.index` picks the
rows); after each step window i's rows become normalise(m * row + (1 - m) * new), m 0.5. For
window i, K negatives are drawn uniformly among the other N - 1 windows (never i itself), and
the critic of the paper's NCE objective (its eq. 18) scores the bank rows r_j:

    P_j = exp(a_i . r_j / tau) / Z,    h_j = P_j / (P_j + K / N)
    L_nce(a, bank) = -mean_i [log h_pos + sum_negatives log(1 - h_neg)]

with Z fixed at the first step to N times the mean of exp(a . r / tau) (as in the code).
crd = L_nce(s, teacher bank) + L_nce(t, student bank). Loss: CE + alpha * T^2 * KL + beta * crd,
the paper's CRD+KD (the code's -a 1 -b 0.8); alpha 0 is CRD alone. tau 0.07, embed_dim 128 and
the momentum are the paper's; K = 2048 negatives keeps its ratio (16,384 of CIFAR-100's 50,000
images) for hapt-quick's ~6k training windows. A teacher on acc+gyro and an acc-only student
is the paper's cross-modal setting: only the embeddings meet.

Where this departs: the code draws negatives among the other classes' samples; here among
all other windows, the paper's instance-level definition. The critic is one [B, N] product,
gathered (the numbers of gathering K rows first, cheaper when K is a third of N).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    Example,
    FrozenTeacher,
    OneTeacherParams,
    ViewModel,
    register_distiller,
)
from harkd.distill.contrast_memory import ContrastMemory, nce_loss
from harkd.distill.features import check_feature_names, input_channels, probe_features
from harkd.distill.losses import kd_kl, soft_cross_entropy


class CRDParams(OneTeacherParams):
    alpha: float = Field(1.0, ge=0, description="weight of the KD term (0: CRD alone)")
    beta: float = Field(0.8, ge=0, description="weight of the contrastive term")
    temperature: float = Field(4.0, gt=0, description="KD softmax temperature T")
    nce_temperature: float = Field(0.07, gt=0, description="tau of the critic exp(a.r / tau)")
    negatives: int = Field(2048, ge=1, description="K negatives per window, from the bank")
    embed_dim: int = Field(128, ge=1, description="width of the embedding heads")
    momentum: float = Field(0.5, ge=0, lt=1, description="memory bank momentum m")
    pair: tuple[str, str] = Field(
        ("embedding", "embedding"), description="(teacher feature, student feature)"
    )


@register_distiller("crd")
class CRD(Distiller):
    """Tian et al. 2020: contrast student and teacher embeddings against a memory bank (NCE)."""

    params_model = CRDParams
    params: CRDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")}, params={"negatives": 16, "embed_dim": 8})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p = self.params
        if context.train_windows < 2:
            raise ValueError("method 'crd' needs the training windows' count for its memory bank")
        channels = input_channels(context.groups)
        t_name, s_name = p.pair
        t_shapes = probe_features(self.teachers[self.teacher_name], channels, context.window)
        s_shapes = probe_features(student, channels, context.window)
        t_dim = math.prod(check_feature_names(t_shapes, t_name, "the teacher", "pair"))
        s_dim = math.prod(check_feature_names(s_shapes, s_name, "the student", "pair"))
        self.embed_s = nn.Linear(s_dim, p.embed_dim)
        self.embed_t = nn.Linear(t_dim, p.embed_dim)
        self.memory = ContrastMemory(context.train_windows, p.embed_dim, p.momentum)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        if batch.index is None:
            raise ValueError("method 'crd' needs each window's index in the training split")
        t_name, s_name = p.pair
        s_out = self.student(batch.x)
        t_out = self.teachers[self.teacher_name](batch.teacher_x)
        s = F.normalize(self.embed_s(s_out.features[s_name].flatten(1)).float(), dim=1)
        t = F.normalize(self.embed_t(t_out.features[t_name].flatten(1)).float(), dim=1)
        rows = self.memory.contrast_index(batch.index, p.negatives)
        n = self.context.train_windows
        crd = nce_loss(self.memory.critic(s, 1, rows, p.nce_temperature), n) + nce_loss(
            self.memory.critic(t, 0, rows, p.nce_temperature), n
        )
        self.memory.update(batch.index, s, t)
        return s_out.logits, {
            "ce": soft_cross_entropy(s_out.logits, batch.y_soft),
            "kd": p.alpha * kd_kl(s_out.logits, t_out.logits, p.temperature),
            "crd": p.beta * crd,
        }
