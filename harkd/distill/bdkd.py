"""`bdkd`: Amara, Sepahvand, Meyer, Gross & Clark, "BD-KD: Balancing the Divergences for Online
Knowledge Distillation" (arXiv 2212.12965).

Online: the student and a teacher (the `peer`, any registered model on its own view) train
together from scratch. The student's distillation term mixes the forward KL(p_t || p_s), which
covers the teacher's mass and softens an over-confident student, and the reverse
KL(p_s || p_t), which seeks the teacher's mode and sharpens an under-confident one, with
per-sample weights set by the entropy gap (`losses.divergence_weights`): where
H(p_s^T) <= H(p_t^T) the forward KL gets `major` and the reverse `minor`, elsewhere the other
way round. The teacher learns as in deep mutual learning (Zhang et al., CVPR 2018): CE plus
the KL to the student's detached distribution. Per batch:

    L = CE(p_s, y) + T^2 mean_i [w_f,i KL(p_t^T || p_s^T) + w_r,i KL(p_s^T || p_t^T)]
        + CE(p_t, y) + beta T^2 mean_i KL(p_s^T || p_t^T)

with the teacher's logits detached in the student's term and the student's in the teacher's
(so each network's gradient is its own loss's). `teacher_kl: reverse` gives the teacher the
other direction, KL(p_t^T || p_s^T), a regulariser in the spirit of the paper's adjusted
teacher loss.

Departures: the paper's text available while this was written (abstract and summaries) states
the principle (sample-wise weights of the two directions from the teacher-student entropy gap,
a student-centred teacher term) but not its constants, so `major`, `minor` and `beta` are
harkd's parameters, to be chosen on validation; the networks are 1-D (HAR windows), and the
teacher may see another view than the student (acc+gyro teacher, acc-only student). The paper
claims better calibration as well as accuracy: every harkd run reports ECE beside macro-F1
(metrics.json, the run summary).

It takes no frozen teacher. Saved: the deployable model (model.safetensors) is the student;
the online teacher is part of the distiller's state, i.e. of the resumable training state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from pydantic import Field

from harkd.config import ModelConfig
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
from harkd.distill.iedml import view_channels
from harkd.distill.losses import balanced_kl, kl_rows, soft_cross_entropy
from harkd.models.base import build_model


class BDKDParams(MethodParams):
    peer: ModelConfig = Field(description="the online teacher, trained from scratch: {name, view, "
                                          "params}")
    temperature: float = Field(1.0, gt=0, description="softmax temperature T of every KL")
    major: float = Field(1.0, ge=0, description="weight of the KL direction the entropy gap picks")
    minor: float = Field(0.5, ge=0, description="weight of the other KL direction")
    beta: float = Field(1.0, ge=0, description="weight of the teacher's KL to the student")
    teacher_kl: Literal["dml", "reverse"] = Field(
        "dml", description="the teacher's KL: dml KL(p_s||p_t), reverse KL(p_t||p_s)"
    )


@register_distiller("bdkd")
class BDKD(Distiller):
    """BD-KD (Amara et al. 2022): online KD, entropy-balanced forward/reverse KL per sample."""

    params_model = BDKDParams
    params: BDKDParams
    teacher_count = (0, 0)
    example = Example(
        params={"peer": {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16]}}}
    )

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p = self.params.peer
        channels = view_channels(context.groups, p.view, "distill.params.peer")
        model = build_model(p.name, len(channels), context.num_classes, context.window, **p.params)
        self.peer = ViewModel(model, channels)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        t2 = p.temperature**2
        s_logits = self.student(batch.x).logits
        t_logits = self.peer(batch.x).logits
        if p.teacher_kl == "dml":
            teacher_kl = kl_rows(s_logits.detach(), t_logits, p.temperature)
        else:
            teacher_kl = kl_rows(t_logits, s_logits.detach(), p.temperature)
        return s_logits, {
            "ce": soft_cross_entropy(s_logits, batch.y_soft),
            "bd": balanced_kl(s_logits, t_logits.detach(), p.temperature, p.major, p.minor),
            "ce_peer": soft_cross_entropy(t_logits, batch.y_soft),
            "kl_peer": p.beta * t2 * teacher_kl.mean(),
        }
