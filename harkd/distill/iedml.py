"""`iedml`: the mutual-learning form of IE-KD (Huang et al., CVPR 2021, arXiv 2107.00181, their
DML setting): two networks, the student and a peer, train from scratch and each distils into
the other with the inheritance and exploration losses of `iekd`, on top of deep mutual learning
(Zhang et al., "Deep Mutual Learning", CVPR 2018): each network also matches the other's
(detached) class distribution, as the official IE-DML processor trains CE + KL per network.

Each network n has a factor auto-encoder AE_n on its own chosen map (trained by L1
reconstruction together with the networks, on the detached map, so it follows the network
without shaping it) and an `InheritExplore` split with two encoders. Per batch:
    L = CE_s + CE_p + lambda_dml (KL(p_p || p_s) + KL(p_s || p_p))
        + lambda_inh (L_inh^s + L_inh^p) + lambda_exp (L_exp^s + L_exp^p)
        + lambda_rec (Rec_s + Rec_p),
with each KL at temperature 1 against the other network's detached distribution; L_*^s compares
the student's parts with the peer's factors AE_p.encoder(f_p) and L_*^p the peer's parts with
the student's factors, each target detached. The official code alternates an
update of one network and then of the other within each batch; with detached targets the summed
loss gives each network the same gradient as its own update, both taken from the batch's
starting state (one optimiser step instead of two).

It takes no teacher (a config naming one is an error). `forward` runs the student; the peer sees the
student's augmented batch through its own view. Saved: the run's deployable model
(model.safetensors) is the student alone; the peer, both auto-encoders, both encoder pairs and
the split index buffers are part of the distiller's state dict, i.e. of the resumable training
state the trainer keeps (last.safetensors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import Field

from harkd.config import ModelConfig
from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    Example,
    FrozenTeacher,
    ViewModel,
    register_distiller,
)
from harkd.distill.features import as_map, check_feature_names, input_channels, probe_features
from harkd.distill.iekd import FactorAutoEncoder, IEParams, InheritExplore
from harkd.distill.losses import kd_kl, reconstruction_l1, soft_cross_entropy
from harkd.models.base import build_model


class IEDMLParams(IEParams):
    peer: ModelConfig = Field(description="the peer network: {name, view, params}")
    lambda_rec: float = Field(1.0, ge=0, description="weight of the auto-encoders' L1 loss")
    lambda_dml: float = Field(1.0, ge=0, description="weight of the mutual KL terms (0: IE only)")


def view_channels(groups: dict[str, list[int]], view: list[str], who: str) -> list[int]:
    """Channel indices of the groups in `view`, in order; an unknown group is an error."""
    unknown = [g for g in view if g not in groups]
    if unknown:
        raise ValueError(f"{who}.view names unknown group(s) {unknown}; groups: {sorted(groups)}")
    return [i for g in view for i in groups[g]]


@register_distiller("iedml")
class IEDML(Distiller):
    """IE-KD as mutual learning (Huang et al., CVPR 2021): student and peer teach each other."""

    params_model = IEDMLParams
    params: IEDMLParams
    teacher_count = (0, 0)
    example = Example(
        params={
            "peer": {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16]}}
        }
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
        channels = view_channels(context.groups, p.peer.view, "distill.params.peer")
        model = build_model(
            p.peer.name, len(channels), context.num_classes, context.window, **p.peer.params
        )
        self.peer = ViewModel(model, channels)
        n_in = input_channels(context.groups)
        p_shape = check_feature_names(
            probe_features(self.peer, n_in, context.window), p.feature[0], "the peer", "feature"
        )
        s_shape = check_feature_names(
            probe_features(student, n_in, context.window), p.feature[1], "the student", "feature"
        )
        factor = p.factor or max(1, min(p_shape[0], s_shape[0]) // 2)
        self.ae_student = FactorAutoEncoder(s_shape[0], factor)
        self.ae_peer = FactorAutoEncoder(p_shape[0], factor)
        self.ie_student = InheritExplore(s_shape[0], factor, p.split, p.split_seed, p.distance)
        self.ie_peer = InheritExplore(p_shape[0], factor, p.split, p.split_seed + 1, p.distance)

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        s_out, p_out = self.student(batch.x), self.peer(batch.x)
        f_s = as_map(s_out.features[p.feature[1]])
        f_p = as_map(p_out.features[p.feature[0]])
        fac_s, rec_s = self.ae_student(f_s.detach())
        fac_p, rec_p = self.ae_peer(f_p.detach())
        inh_s, exp_s = self.ie_student(f_s, fac_p.detach())
        inh_p, exp_p = self.ie_peer(f_p, fac_s.detach())
        recon = reconstruction_l1(f_s.detach(), rec_s) + reconstruction_l1(f_p.detach(), rec_p)
        return s_out.logits, {
            "ce": soft_cross_entropy(s_out.logits, batch.y_soft),
            "ce_peer": soft_cross_entropy(p_out.logits, batch.y_soft),
            "dml": p.lambda_dml * kd_kl(s_out.logits, p_out.logits.detach(), 1.0),
            "dml_peer": p.lambda_dml * kd_kl(p_out.logits, s_out.logits.detach(), 1.0),
            "inh": p.lambda_inh * inh_s,
            "exp": p.lambda_exp * exp_s,
            "inh_peer": p.lambda_inh * inh_p,
            "exp_peer": p.lambda_exp * exp_p,
            "recon": p.lambda_rec * recon,
        }
