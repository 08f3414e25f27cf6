"""`cgankd`: Ding, Wang, Xu, Wang & Welch, "Distilling and Transferring Knowledge via
cGAN-generated Samples for Image Classification and Regression" (cGAN-KD, 2023, arXiv
2104.03164; the official code was not copied).

Two stages. `gan` (`gan_epochs`, no model selection): a class-conditional GAN on the training
windows, a small conv generator G(z, y) and a projection discriminator D(x, y) (Miyato &
Koyama 2018; `generators`), hinge loss, `d_steps` discriminator steps per generator step; each
player's parameters get gradients only in its own steps (`generators.frozen`). `main`: the GAN
is frozen; each batch of real windows is joined by round(fake_ratio * B) generated ones of
uniformly drawn classes, filtered by the teacher as the paper prescribes for classification
(a generated window whose teacher cross-entropy on its class exceeds the `filter_quantile`
quantile of the batch's is dropped) and labelled with the teacher's soft outputs (at T):

    L = (1 - alpha) CE(z_s, y) + alpha T^2 KL(p_t || p_s) on the real windows
        + fake_weight T^2 mean_kept KL(p_t^T || p_s^T) on the kept generated ones,

real and generated windows in one student pass (the paper adds the processed fake samples to
the training set). `generated_windows`: 16 per class for generated.npz / generated.png, with
how many windows the filter saw and kept in training (up to the selected epoch).

Departures: 1-D windows and small networks instead of BigGAN; the GAN trains with the run's
optimiser settings; no density-ratio subsampling (the paper's cDR-RS) before the filter; the
filter's quantile is taken per batch of generated windows, not over one large generated set.
"""

from __future__ import annotations

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
    GeneratedWindows,
    OneTeacherParams,
    Stage,
    ViewModel,
    register_distiller,
)
from harkd.distill.generators import (
    ProjectionDiscriminator,
    WindowGenerator,
    frozen,
    full_channels,
    hinge_d,
    hinge_g,
)
from harkd.distill.losses import kd_kl, soft_cross_entropy


class CGANKDParams(OneTeacherParams):
    gan_epochs: int = Field(20, ge=1, description="epochs of the GAN stage")
    noise_dim: int = Field(64, ge=1, description="size of the generator's noise vector")
    width: int = Field(64, ge=4, description="channels of the generator's first map")
    d_width: int = Field(64, ge=4, description="channels of the discriminator")
    d_steps: int = Field(1, ge=1, description="discriminator steps per generator step")
    fake_ratio: float = Field(1.0, gt=0, description="generated windows per real window")
    filter_quantile: float = Field(0.9, gt=0, le=1, description="keep generated windows whose "
                                   "teacher CE is at most this quantile of the batch's")
    temperature: float = Field(1.0, gt=0, description="softmax temperature T of the soft labels")
    fake_weight: float = Field(1.0, ge=0, description="weight of the generated windows' term")
    alpha: float = Field(0.0, ge=0, le=1, description="weight of KD on the real windows")


def teacher_filter(t_logits: torch.Tensor, y: torch.Tensor, quantile: float) -> torch.Tensor:
    """Which generated windows to keep [B]: teacher CE on their class <= its `quantile`."""
    ce = F.cross_entropy(t_logits.float(), y, reduction="none")
    return ce <= torch.quantile(ce, quantile)


@register_distiller("cgankd")
class CGANKD(Distiller):
    """cGAN-KD (Ding et al. 2023): a class-conditional GAN's teacher-filtered windows join KD."""

    params_model = CGANKDParams
    params: CGANKDParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")},
                      params={"gan_epochs": 1, "width": 8, "d_width": 8})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p, k = self.params, context.num_classes
        channels = full_channels(context.groups)
        self.generator = WindowGenerator(p.noise_dim, channels, context.window, p.width, k)
        self.discriminator = ProjectionDiscriminator(channels, k, p.d_width)
        for name in ("gan_steps", "made", "kept"):
            self.register_buffer(name, torch.zeros((), dtype=torch.long))

    def stages(self) -> list[Stage]:
        return [Stage("gan", self.params.gan_epochs, selects_model=False), Stage("main")]

    def train(self, mode: bool = True) -> CGANKD:
        super().train(mode)
        if self.stage != "gan":  # the GAN is frozen once trained
            self.generator.eval()
            self.discriminator.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        if self.stage == "gan":
            return [*self.generator.parameters(), *self.discriminator.parameters()]
        return list(self.student.parameters())

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:
        if self.stage == "gan":
            return None, self._gan_step(batch)
        p, teacher = self.params, self.teachers[self.teacher_name]
        n_real = len(batch.x)
        n_fake = max(2, round(p.fake_ratio * n_real))
        with torch.no_grad():
            fake, y_fake = self.generator.sample(n_fake, batch.x.device)
            t_fake = teacher(fake).logits
            keep = teacher_filter(t_fake, y_fake, p.filter_quantile)
        if self.training:
            self.made += len(fake)
            self.kept += int(keep.sum())
        logits = self.student(torch.cat([batch.x, fake[keep]])).logits
        real, fake_logits = logits[:n_real], logits[n_real:]
        losses = {"ce": (1 - p.alpha) * soft_cross_entropy(real, batch.y_soft),
                  "kd_fake": p.fake_weight * kd_kl(fake_logits, t_fake[keep], p.temperature)}
        if p.alpha > 0:
            t_real = teacher(batch.teacher_x).logits
            losses["kd"] = p.alpha * kd_kl(real, t_real, p.temperature)
        return real, losses

    def _gan_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """A discriminator step (`d_steps` in a row) or a generator step, by the step count."""
        d_turn = int(self.gan_steps) % (self.params.d_steps + 1) < self.params.d_steps
        if self.training:
            self.gan_steps += 1
        if d_turn:
            with torch.no_grad():
                fake, y_fake = self.generator.sample(len(batch.x), batch.x.device)
            real_scores = self.discriminator(batch.x, batch.y)
            return {"d": hinge_d(real_scores, self.discriminator(fake, y_fake))}
        fake, y_fake = self.generator.sample(len(batch.x), batch.x.device)
        with frozen(self.discriminator):
            return {"g": hinge_g(self.discriminator(fake, y_fake))}

    @torch.no_grad()
    def generated_windows(self) -> GeneratedWindows:
        """16 windows per class from a fixed draw, filtered and labelled by the teacher."""
        was_training = self.training
        self.eval()
        k = self.context.num_classes
        x, y = self.generator.sample(16 * k, self.made.device, torch.Generator().manual_seed(0))
        t_logits = self.teachers[self.teacher_name](x).logits.float()
        keep = teacher_filter(t_logits, y, self.params.filter_quantile)
        self.train(was_training)
        return GeneratedWindows(
            x=x.float().cpu().numpy(), y=y.cpu().numpy(), kept=keep.cpu().numpy(),
            teacher_probs=F.softmax(t_logits, dim=1).cpu().numpy(),
            counts={"made": int(self.made), "kept": int(self.kept)},
        )
