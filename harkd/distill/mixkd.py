"""`mixkd`: Choi, Jeon, Kim, Rhee & Kim, "Understanding the Role of Mixup in Knowledge
Distillation: An Empirical Study" (WACV 2023, arXiv 2211.03946; official code MIX-KD).

Mixup inside KD, with the paper's two remedies for the over-smooth supervision that mixup
(in the teacher's training, the student's, or both) produces:
- partial mixup (PMU): only a fraction `mix_fraction` of each batch is mixed,
  x' = lam x_i + (1 - lam) x_j, y' = lam y_i + (1 - lam) y_j, lam ~ Beta(a, a), with a random
  partner j; the teacher sees the same mixed windows as the student;
- temperature rescaling (`temperature: std`): each window's logits are divided by their own
  standard deviation over the classes, z / std(z), for the teacher and the student alike, in
  both terms, which sharpens a smooth (mixup-trained) teacher exactly as much as it is smooth.

    L = (1 - alpha) CE(softmax(z_s / s_s), y') + alpha KL(softmax(z_t / s_t) || softmax(z_s / s_s))

with s = std(z) per window (a number as `temperature` gives Hinton's fixed T instead:
(1 - alpha) CE(z_s, y') + alpha T^2 KL at T). KL is the batch mean.

Before training the run measures the teacher's smoothness on the (clean) validation windows
and stores it in metrics.json under `method`: the mean max-probability and mean entropy at
T = 1, the entropy of the targets as distilled, and the teacher's validation macro-F1. A grid
over teachers trained with and without mixup (training nodes) and `mix_fraction` reports them
beside each result (configs/grids/mixkd.yaml).

Departures: the official PMU marks a random draw (with repeats) of `int(B * fraction)` windows
as unmixed and mixes the rest; here exactly round(B * mix_fraction) windows, drawn without
repeats, are mixed. The official evaluation also divides the student's logits by their std;
harkd scores and deploys the raw logits (the same predictions; ECE is of the raw logits). The
mixing draws from torch's global generator, which the checkpoint saves, so a resumed run mixes
as an uninterrupted one. 1-D windows [B, C, T] instead of images.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from harkd.augment.mixing import sample_beta
from harkd.distill.base import (
    Batch,
    Distiller,
    Example,
    OneTeacherParams,
    ValidationSplit,
    register_distiller,
)
from harkd.distill.losses import entropy, kd_kl, kl_rows, soft_cross_entropy, std_scaled


class MixKDParams(OneTeacherParams):
    alpha: float = Field(0.9, ge=0, le=1, description="weight of the KL term (CE gets 1 - alpha)")
    temperature: Literal["std"] | float = Field(
        "std", description="std: divide logits by their own std; a number: a fixed T"
    )
    mix_fraction: float = Field(0.1, ge=0, le=1, description="fraction of each batch mixed")
    mix_alpha: float = Field(1.0, gt=0, description="Beta(a, a) parameter of the mixing weight")


def partial_mixup(
    batch: Batch, fraction: float, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(student windows, teacher windows, labels) with round(B * fraction) windows mixed with a
    random partner, lam ~ Beta(alpha, alpha) each; the same mixing for both inputs."""
    x, x_teacher, y = batch.x, batch.teacher_x, batch.y_soft
    n = round(fraction * len(x))
    if n == 0:
        return x, x_teacher, y
    chosen = torch.randperm(len(x), generator=generator)[:n].to(x.device)
    partner = torch.randint(len(x), (n,), generator=generator).to(x.device)
    lam = sample_beta(alpha, n, generator, x)

    def mix(t: torch.Tensor) -> torch.Tensor:
        w = lam.to(t.dtype).view(-1, *([1] * (t.dim() - 1)))
        out = t.clone()
        out[chosen] = w * t[chosen] + (1 - w) * t[partner]
        return out

    return mix(x), (x_teacher if x_teacher is x else mix(x_teacher)), mix(y)


@register_distiller("mixkd")
class MixKD(Distiller):
    """MIX-KD (Choi et al., WACV 2023): partial mixup in KD, logits rescaled by their std."""

    params_model = MixKDParams
    params: MixKDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")}, params={"mix_fraction": 0.5})

    def prepare(self, val: ValidationSplit) -> dict[str, Any]:
        """The teacher's smoothness on the validation windows (module docstring)."""
        logits = val.logits(self.teachers[self.teacher_name])
        probs = F.softmax(logits, dim=1)
        t = self.params.temperature
        distilled = std_scaled(logits) if t == "std" else logits / t
        return {
            "teacher_max_prob": float(probs.max(dim=1).values.mean()),
            "teacher_entropy": float(entropy(logits).mean()),
            "target_entropy": float(entropy(distilled).mean()),
            "teacher_val_macro_f1": val.score(val.y, logits.argmax(dim=1).numpy()),
        }

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        x, x_teacher, y_soft = partial_mixup(
            batch, p.mix_fraction, p.mix_alpha, torch.default_generator
        )
        logits = self.student(x).logits
        t_logits = self.teachers[self.teacher_name](x_teacher).logits
        if p.temperature == "std":
            s, t = std_scaled(logits), std_scaled(t_logits)
            ce, kd = soft_cross_entropy(s, y_soft), kl_rows(t, s, 1.0).mean()
        else:
            ce, kd = soft_cross_entropy(logits, y_soft), kd_kl(logits, t_logits, p.temperature)
        return logits, {"ce": (1 - p.alpha) * ce, "kd": p.alpha * kd}
