"""`cudfkd`: Li, Zhou, Li, Wang, Yu & Bu, "Dynamic Data-Free Knowledge Distillation by
Easy-to-Hard Learning Strategy" (CuDFKD, Information Sciences 2023, arXiv 2208.13648; the
authors' code was read, none copied).

Data-free: the student never receives a training window (`data_free`: the trainer's batches
carry only their size). A generator turns noise into windows; the training alternates
`student_steps` student steps and `generator_steps` generator steps, each player's parameters
getting gradients only in its own steps (`generators.frozen`):

- generator: L_G = bn_weight * L_BN - adv_weight * mean_i JS(p_t^T(x_i) || p_s^T(x_i)), with
  L_BN the teacher's BatchNorm statistics prior (DeepInversion; `generators.BNStatistics`) and
  the Jensen-Shannon term the teacher-student disagreement the generator seeks;
- student, on fresh generated windows: L_S = mean_i v_i * l_i, l_i = T^2 KL(p_t^T || p_s^T),
  with the self-paced easy-to-hard weights of the paper, v_i = 1[l_i < lambda] (`spl: hard`)
  or (1 - l_i / lambda) 1[l_i < lambda] (`spl: soft`), and the pace
  lambda = lambda_0 + lambda_growth * epoch rising over the epochs: at first only the windows
  the student already nearly matches count, then ever harder ones.

The student is evaluated on the real test subjects as every run is; its model selection reads
the validation windows unless `train.selection: last` (configs/distill/cudfkd.yaml), which
keeps the run free of real windows until the test.

Departures: 1-D windows [B, C, T] and a small conv generator instead of the paper's image
generators; the pace grows per epoch (the code grows it per iteration, capped); no memory bank
of past samples, no output-entropy or activation terms; the paper's constants are image ones,
so `lambda_0`, `lambda_growth` and the weights are harkd's, to be chosen on validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    Example,
    FrozenTeacher,
    GeneratedWindows,
    OneTeacherParams,
    ViewModel,
    register_distiller,
)
from harkd.distill.generators import BNStatistics, WindowGenerator, frozen, full_channels
from harkd.distill.losses import kl_rows


class CuDFKDParams(OneTeacherParams):
    temperature: float = Field(1.0, gt=0, description="softmax temperature T of the KL and JS")
    noise_dim: int = Field(64, ge=1, description="size of the generator's noise vector")
    width: int = Field(64, ge=4, description="channels of the generator's first map")
    bn_weight: float = Field(1.0, ge=0, description="weight of the BatchNorm statistics prior")
    adv_weight: float = Field(1.0, ge=0, description="weight of the generator's disagreement term")
    student_steps: int = Field(1, ge=1, description="student steps per round")
    generator_steps: int = Field(1, ge=1, description="generator steps per round")
    spl: Literal["hard", "soft"] = Field("hard", description="self-paced weights: hard or soft")
    lambda_0: float = Field(1.0, gt=0, description="the pace at epoch 0 (loss threshold)")
    lambda_growth: float = Field(0.2, ge=0, description="the pace's growth per epoch")


def self_paced_weights(losses: torch.Tensor, pace: float, kind: str) -> torch.Tensor:
    """Self-paced weights [B] of per-sample losses [B]: 1[l < pace] (hard) or
    (1 - l / pace) 1[l < pace] (soft); no gradient flows through them."""
    losses = losses.detach()
    inside = (losses < pace).to(losses.dtype)
    return inside if kind == "hard" else inside * (1 - losses / pace)


def js_rows(a_logits: torch.Tensor, b_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-sample Jensen-Shannon divergence of softmax(a/T) and softmax(b/T): [B, K] -> [B]."""
    p, q = F.softmax(a_logits / temperature, dim=1), F.softmax(b_logits / temperature, dim=1)
    log_m = (0.5 * (p + q)).clamp_min(1e-12).log()
    kl_p, kl_q = F.kl_div(log_m, p, reduction="none"), F.kl_div(log_m, q, reduction="none")
    return 0.5 * (kl_p + kl_q).sum(dim=1)


@register_distiller("cudfkd")
class CuDFKD(Distiller):
    """CuDFKD (Li et al. 2023): data-free KD, generator vs student, easy-to-hard self-pacing."""

    data_free = True
    params_model = CuDFKDParams
    params: CuDFKDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")}, params={"lambda_0": 100.0, "width": 8})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p = self.params
        channels = full_channels(context.groups)
        self.generator = WindowGenerator(p.noise_dim, channels, context.window, p.width)
        self.bn_prior = BNStatistics(self.teachers[self.teacher_name].model)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def student_turn(self) -> bool:
        p = self.params
        return int(self.steps) % (p.student_steps + p.generator_steps) < p.student_steps

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p, teacher = self.params, self.teachers[self.teacher_name]
        student_turn = self.student_turn()
        if self.training:
            self.steps += 1
        if student_turn:
            with torch.no_grad():
                x, _ = self.generator.sample(len(batch.x), batch.x.device)
            logits = self.student(x).logits
            rows = kl_rows(teacher(x).logits, logits, p.temperature) * p.temperature**2
            pace = p.lambda_0 + p.lambda_growth * epoch
            v = self_paced_weights(rows, pace, p.spl)
            return logits, {"kd": (v * rows).mean()}
        x, _ = self.generator.sample(len(batch.x), batch.x.device)
        with frozen(self.student):
            logits = self.student(x).logits
        with self.bn_prior:
            t_logits = teacher.with_input_grad(x).logits
        adv = js_rows(t_logits, logits, p.temperature).mean()
        return logits.detach(), {"bn": p.bn_weight * self.bn_prior.loss, "adv": -p.adv_weight * adv}

    @torch.no_grad()
    def generated_windows(self) -> GeneratedWindows:
        """16 windows per class' worth, from a fixed noise draw, labelled by the teacher."""
        was_training = self.training
        self.eval()
        device = self.steps.device
        rng = torch.Generator().manual_seed(0)
        x, _ = self.generator.sample(16 * self.context.num_classes, device, rng)
        probs = F.softmax(self.teachers[self.teacher_name](x).logits.float(), dim=1)
        self.train(was_training)
        return GeneratedWindows(
            x=x.float().cpu().numpy(), y=probs.argmax(1).cpu().numpy(),
            kept=np.ones(len(x), dtype=bool), teacher_probs=probs.cpu().numpy(),
        )
