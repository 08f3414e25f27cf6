"""`camkd`: Zhang, Chen & Wang, "Confidence-Aware Multi-Teacher Knowledge Distillation" (ICASSP
2022, arXiv 2201.00007; official code github.com/Rorozhl/CA-MKD).

Several frozen teachers, which may see different views (acc+gyro cnn1d, acc-only cnn1d,
transformer, tinyhar). Per sample i, each teacher k's confidence comes from its cross-entropy
on the true label, CE_ki: the closer its prediction to the one-hot label, the larger its weight

    w_ki = (1 - softmax_k(CE_ki)) / (K - 1)        (sums to 1 over the K teachers)

Loss: CE(s, y) + alpha * L_kd + beta * L_feat, with
    L_kd   = mean_i sum_k w_ki T^2 KL(p_t,k^T || p_s^T)
    L_feat = mean_i sum_k w_ki MSE(r_k(f_s), f_t,k)
where f_s, f_t,k are a chosen feature map of the student and of teacher k and r_k a learned
regressor to teacher k's channels (a 1x1 convolution and BatchNorm). As in the official code,
the feature term starts after `warmup_epochs` epochs (1 there) and the defaults are alpha 1,
beta 50, T 4.

Where the 1-D version departs: the paper weighs the feature term by the CE of each teacher's
classifier applied to the regressed student feature; harkd's models have no classifier that
takes an aligned map, so the feature term reuses the logit-term weights w_ki. The maps are
aligned in time by `features.align_time` (the longer pooled to the shorter; the paper pools or
interpolates the student's 2-D map to the teacher's size), and the regressor has no ReLU, so it
fits teachers whose features take negative values (the transformer's). The official code also
divides both terms by K, a constant rescaling of alpha and beta that harkd leaves out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import Field
from torch import nn

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
from harkd.distill.features import (
    DEFAULT_PAIR,
    align_time,
    as_map,
    check_feature_names,
    input_channels,
    probe_features,
)
from harkd.distill.losses import kl_rows, label_ce_rows, soft_cross_entropy


class CAMKDParams(MethodParams):
    alpha: float = Field(1.0, ge=0, description="weight of the confidence-weighted KL term")
    beta: float = Field(50.0, ge=0, description="weight of the confidence-weighted feature term")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T")
    pair: tuple[str, str] = Field(DEFAULT_PAIR, description="(teacher feature, student feature)")
    warmup_epochs: int = Field(1, ge=0, description="epochs before the feature term starts")


def confidence_weights(teacher_logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CA-MKD's weights [K, B] from teacher logits [K, B, C] and labels [B] (no gradient)."""
    with torch.no_grad():
        ce = label_ce_rows(teacher_logits, y)
        return (1 - ce.softmax(dim=0)) / (len(teacher_logits) - 1)


def map_mse_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per sample mean squared difference of two maps of one shape: [B, ...] -> [B]."""
    return (a - b).pow(2).flatten(1).mean(dim=1)


@register_distiller("camkd")
class CAMKD(Distiller):
    """Zhang et al. 2022: teachers weighted per window by their label CE (logits and features)."""

    params_model = CAMKDParams
    params: CAMKDParams
    teacher_count = (2, None)
    example = Example(
        teachers={"acc_gyro": ("acc", "gyro"), "acc": ("acc",)},
        params={"warmup_epochs": 0},
    )

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        t_name, s_name = self.params.pair
        channels = input_channels(context.groups)
        s_shape = check_feature_names(
            probe_features(student, channels, context.window), s_name, "the student", "pair"
        )
        regressors = {}
        for name, teacher in teachers.items():
            t_shapes = probe_features(teacher, channels, context.window)
            t_shape = check_feature_names(t_shapes, t_name, f"teacher {name!r}", "pair")
            regressors[name] = nn.Sequential(
                nn.Conv1d(s_shape[0], t_shape[0], kernel_size=1), nn.BatchNorm1d(t_shape[0])
            )
        self.regressors = nn.ModuleDict(regressors)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        t_name, s_name = p.pair
        s_out = self.student(batch.x)
        t_outs = {n: t(batch.teacher_x) for n, t in self.teachers.items()}
        t_logits = torch.stack([o.logits for o in t_outs.values()])
        weights = confidence_weights(t_logits, batch.y)
        kl = torch.stack([kl_rows(t, s_out.logits, p.temperature) for t in t_logits])
        losses = {
            "ce": soft_cross_entropy(s_out.logits, batch.y_soft),
            "kd": p.alpha * p.temperature**2 * (weights * kl).sum(dim=0).mean(),
        }
        losses["feat"] = s_out.logits.new_zeros(())  # logged as 0 until the term starts
        if epoch >= p.warmup_epochs:
            f_s = as_map(s_out.features[s_name])
            mse = []
            for name, out in t_outs.items():
                f_r, f_t = align_time(self.regressors[name](f_s), out.features[t_name])
                mse.append(map_mse_rows(f_r, f_t))
            losses["feat"] = p.beta * (weights * torch.stack(mse)).sum(dim=0).mean()
        return s_out.logits, losses
