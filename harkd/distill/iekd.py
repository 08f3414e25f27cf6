"""`iekd`: Inheritance and Exploration KD (Huang et al., "Revisiting Knowledge Distillation: An
Inheritance and Exploration Framework", CVPR 2021, arXiv 2107.00181; official code by its
authors, aliyun/Revisiting-Knowledge-Distillation-an-Inheritance-and-Exploration-Framework).

Stage "ae" (`ae_epochs`, no model selection): a factor auto-encoder learns to reconstruct the
frozen teacher's chosen feature map (L1). Stage "main": the auto-encoder is frozen and its
encoder turns the teacher's map into factors F_T; the student's map is split by channel into an
inheritance part and an exploration part (first/second half, or a fixed random permutation kept
as a buffer, so it is saved with the checkpoint), each encoded to the factor size by its own
encoder that trains with the student;
    L = (1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T)
        + lambda_inh * L_inh + lambda_exp * L_exp,
    L_inh = mean |F_inh/||F_inh|| - F_T/||F_T|||,   L_exp = -(same between F_exp and F_T)
(distance "l1"), or L_inh = 1 - cos(F_inh, F_T), L_exp = |cos(F_exp, F_T)| (distance
"cosine": the exploration part is pushed towards orthogonal factors, as in the official code's
negative cosine loss). alpha = 0 (the default) is IE-KD alone; alpha > 0 adds Hinton's KD term,
the combination the paper reports on top of other distillers. Factor maps of different lengths
are aligned by `features.align_time`.

The auto-encoder follows the official one in 1-D: every layer a k=3, stride 1, padding 1
convolution, BatchNorm and LeakyReLU(0.1); encoder cin -> cin -> factor -> factor, decoder
factor -> factor -> cin -> cin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

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
    OneTeacherParams,
    Stage,
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
from harkd.distill.losses import (
    abs_cosine,
    cosine_distance,
    kd_kl,
    normalized_distance,
    reconstruction_l1,
    soft_cross_entropy,
)

Distance = Literal["l1", "cosine"]
Split = Literal["natural", "random"]


class FactorCoder(nn.Sequential):
    """Three (Conv1d k=3 s=1 p=1, BatchNorm, LeakyReLU 0.1) layers: cin -> cin -> cout -> cout."""

    def __init__(self, cin: int, cout: int) -> None:
        layers: list[nn.Module] = []
        for a, b in ((cin, cin), (cin, cout), (cout, cout)):
            layers += [nn.Conv1d(a, b, 3, 1, 1, bias=False), nn.BatchNorm1d(b), nn.LeakyReLU(0.1)]
        super().__init__(*layers)


class FactorAutoEncoder(nn.Module):
    """Encoder cin -> factor, mirrored decoder factor -> cin; returns (factor, reconstruction)."""

    def __init__(self, cin: int, factor: int) -> None:
        super().__init__()
        self.encoder = FactorCoder(cin, factor)
        self.decoder = FactorCoder(factor, cin)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encoder(x)
        return f, self.decoder(f)


class InheritExplore(nn.Module):
    """Channel split of a network's map plus one encoder per part; computes (L_inh, L_exp).

    The split indices are persistent buffers: a random split is drawn once (from `seed`) and
    saved with the checkpoint.
    """

    def __init__(
        self, channels: int, factor: int, split: Split, seed: int, distance: Distance
    ) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"IE split needs a feature map with >= 2 channels, got {channels}")
        if split == "random":
            order = torch.randperm(channels, generator=torch.Generator().manual_seed(seed))
        else:
            order = torch.arange(channels)
        half = channels // 2
        self.register_buffer("inh_index", order[:half].clone())
        self.register_buffer("exp_index", order[half:].clone())
        self.enc_inh = FactorCoder(half, factor)
        self.enc_exp = FactorCoder(channels - half, factor)
        self.distance = distance

    def forward(self, f: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f: the network's map [B, C, T]; target: the other side's factors [B, factor, T']."""
        f_inh = self.enc_inh(f.index_select(1, self.inh_index))
        f_exp = self.enc_exp(f.index_select(1, self.exp_index))
        f_inh, t_inh = align_time(f_inh, target)
        f_exp, t_exp = align_time(f_exp, target)
        if self.distance == "l1":
            return normalized_distance(f_inh, t_inh), -normalized_distance(f_exp, t_exp)
        return cosine_distance(f_inh, t_inh), abs_cosine(f_exp, t_exp)


class IEParams(MethodParams):
    """Parameters shared by `iekd` and `iedml`."""

    feature: tuple[str, str] = Field(DEFAULT_PAIR, description="(teacher/peer, student) feature")
    factor: int | None = Field(None, ge=1, description="factor channels (default: see method)")
    split: Split = "natural"
    split_seed: int = Field(0, description="seed of the random channel permutation")
    distance: Distance = "l1"
    lambda_inh: float = Field(1.0, ge=0)
    lambda_exp: float = Field(1.0, ge=0)


class IEKDParams(IEParams, OneTeacherParams):
    ae_epochs: int = Field(10, ge=1, description="epochs of auto-encoder pre-training (stage 1)")
    alpha: float = Field(0.0, ge=0, le=1, description="weight of an added KD term (CE: 1 - alpha)")
    temperature: float = Field(4.0, gt=0, description="softmax temperature T of the KD term")


@register_distiller("iekd")
class IEKD(Distiller):
    """Huang et al., CVPR 2021: teacher factor auto-encoder, then inheritance and exploration."""

    params_model = IEKDParams
    params: IEKDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")}, params={"ae_epochs": 1})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p = self.params
        channels = input_channels(context.groups)
        t_shape = check_feature_names(
            probe_features(self.teachers[self.teacher_name], channels, context.window),
            p.feature[0],
            "the teacher",
            "feature",
        )
        s_shape = check_feature_names(
            probe_features(student, channels, context.window),
            p.feature[1],
            "the student",
            "feature",
        )
        factor = p.factor or max(1, t_shape[0] // 2)  # the official factor rate 0.5
        self.teacher_ae = FactorAutoEncoder(t_shape[0], factor)
        self.ie = InheritExplore(s_shape[0], factor, p.split, p.split_seed, p.distance)
        self.set_stage("ae")

    def stages(self) -> list[Stage]:
        return [Stage("ae", self.params.ae_epochs, selects_model=False), Stage("main")]

    def set_stage(self, name: str) -> None:
        if name not in ("ae", "main"):
            raise ValueError(f"iekd has stages 'ae' and 'main', got {name!r}")
        super().set_stage(name)
        self.teacher_ae.requires_grad_(name == "ae")
        self.train(self.training)

    def train(self, mode: bool = True) -> IEKD:
        super().train(mode)
        if self.stage != "ae":
            self.teacher_ae.eval()  # frozen in stage 2, BatchNorm statistics included
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        if self.stage == "ae":
            return list(self.teacher_ae.parameters())
        return super().trainable_parameters()

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        p = self.params
        t_out = self.teachers[self.teacher_name](batch.teacher_x)
        f_t = as_map(t_out.features[p.feature[0]])
        if self.stage == "ae":
            return None, {"recon": reconstruction_l1(f_t, self.teacher_ae(f_t)[1])}
        with torch.no_grad():
            target = self.teacher_ae.encoder(f_t)
        out = self.student(batch.x)
        l_inh, l_exp = self.ie(as_map(out.features[p.feature[1]]), target)
        losses = {
            "ce": (1 - p.alpha) * soft_cross_entropy(out.logits, batch.y_soft),
            "inh": p.lambda_inh * l_inh,
            "exp": p.lambda_exp * l_exp,
        }
        if p.alpha > 0:
            losses["kd"] = p.alpha * kd_kl(out.logits, t_out.logits, p.temperature)
        return out.logits, losses
