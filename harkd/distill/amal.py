"""`amal`: Sivasubramanian, Maheshwari, Shenoy, AP & Ramakrishnan, "Adaptive Mixing of Auxiliary
Losses in Supervised Learning" (AAAI 2023, arXiv 2202.03250).

Each training window i has its own CE/KD mixing weight w_i = sigmoid(lambda_i), learned by a
bi-level objective on held-out meta windows. Per batch (theta: the student's parameters):

    L(theta, lambda) = mean_i [w_i CE_i + (1 - w_i) T^2 KL(p_t^T || p_s^T)_i]
    theta'(lambda)   = theta - eta grad_theta L(theta, lambda)           (one look-ahead step)
    lambda_i        <- lambda_i - meta_lr * B * d CE_meta(theta'(lambda)) / d lambda_i

then the student steps on L with the new weights. The look-ahead runs through
`torch.func.functional_call` with copies of the buffers (BatchNorm statistics untouched); the
lambdas are distiller state, checkpointed with it. Meta windows (`meta_split`): `val`, seeded
batches of the validation split (the paper's setting; metrics.json says under
`method.validation_use` that model selection reads the same windows); `carved`, a seeded
`meta_fraction` of the training subjects, whose windows in each batch are the meta windows and
never enter L, so validation stays clean for selection.

Departures: the paper keeps a free weight per loss and window; harkd mixes the two terms
convexly, which keeps the loss's scale; the meta gradient is scaled by the batch size B;
carved meta windows are augmented like their batch. 1-D networks on HAR windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.func import functional_call

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    Example,
    FrozenTeacher,
    OneTeacherParams,
    ValidationSplit,
    ViewModel,
    register_distiller,
)
from harkd.distill.losses import kl_rows, soft_cross_entropy_rows

VALIDATION_USE = ("per-window loss weights meta-learned on the validation split (one-step "
                  "look-ahead); model selection reads the same windows")


class AMALParams(OneTeacherParams):
    temperature: float = Field(4.0, gt=0, description="softmax temperature T of the KD term")
    init_ce_weight: float = Field(0.5, gt=0, lt=1, description="every window's first CE weight")
    inner_lr: float = Field(0.1, gt=0, description="step size eta of the look-ahead")
    meta_lr: float = Field(1.0, gt=0, description="step size of the per-window weight logits")
    meta_split: Literal["val", "carved"] = Field(
        "val", description="meta windows: the validation split, or carved training subjects"
    )
    meta_fraction: float = Field(0.2, gt=0, lt=1, description="carved: share of the subjects")
    meta_batch: int = Field(128, ge=2, description="val: meta windows per step")
    seed: int = Field(0, description="seed of the meta batches and of the carved subjects")


def lookahead_gradient(student: nn.Module, mix_logits: torch.Tensor, ce_rows: torch.Tensor,
                       kd_rows: torch.Tensor, meta_x: torch.Tensor, meta_y: torch.Tensor,
                       inner_lr: float) -> torch.Tensor:
    """d CE(student_theta'(meta_x), meta_y) / d mix_logits, theta' one SGD step of size
    `inner_lr` on mean(w CE + (1 - w) KD), w = sigmoid(mix_logits); ce_rows and kd_rows [B]
    must come from `student`'s forward pass with its graph."""
    lam = mix_logits.detach().requires_grad_(True)
    w = torch.sigmoid(lam)
    inner = (w * ce_rows + (1 - w) * kd_rows).mean()
    named = [(n, p) for n, p in student.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(inner, [p for _, p in named], create_graph=True,
                                allow_unused=True)
    fast = {n: p if g is None else p - inner_lr * g for (n, p), g in zip(named, grads, strict=True)}
    buffers = {n: b.clone() for n, b in student.named_buffers()}
    meta_logits = functional_call(student, {**fast, **buffers}, (meta_x,)).logits
    return torch.autograd.grad(F.cross_entropy(meta_logits, meta_y), lam)[0]


@register_distiller("amal")
class AMAL(Distiller):
    """AMAL (Sivasubramanian et al. 2023): per-window CE/KD weights meta-learned by look-ahead."""

    params_model = AMALParams
    params: AMALParams
    teacher_count = (1, None)
    example = Example(teachers={"t": ("acc", "gyro")},
                      params={"meta_split": "carved", "meta_fraction": 0.34})

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__(student, teachers, context, params)
        p = self.params
        if context.train_windows < 1:
            raise ValueError("method 'amal' keeps a weight per training window: the run names "
                             "no training windows")
        start = math.log(p.init_ce_weight / (1 - p.init_ce_weight))
        self.register_buffer("mix_logits", torch.full((context.train_windows,), start))
        self.register_buffer("meta_step", torch.zeros((), dtype=torch.long))
        n = len(context.train_subjects)
        if p.meta_split == "carved" and n < 2:
            raise ValueError(f"method 'amal' meta_split 'carved' needs at least 2 training "
                             f"subjects; the run has {n}")
        n_meta = min(n - 1, max(1, round(p.meta_fraction * n))) if p.meta_split == "carved" else 0
        #: the carved meta subjects, as positions in `context.train_subjects`
        self.meta_subjects = sorted(np.random.default_rng(p.seed).choice(n, n_meta, False).tolist())
        self.val: tuple[torch.Tensor, torch.Tensor] | None = None

    def prepare(self, val: ValidationSplit) -> dict[str, Any]:
        if self.params.meta_split == "carved":
            names = [self.context.train_subjects[s] for s in self.meta_subjects]
            return {"meta_split": "carved", "meta_subjects": names}
        self.val = (val.x, torch.as_tensor(val.y, dtype=torch.long, device=val.x.device))
        return {"meta_split": "val", "validation_use": VALIDATION_USE}

    def _meta_windows(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mask of the batch's training rows, the meta windows and labels or None)."""
        if self.params.meta_split == "carved":
            if batch.subject is None:
                raise ValueError("method 'amal' meta_split 'carved' needs Batch.subject")
            meta = torch.isin(batch.subject, batch.subject.new_tensor(self.meta_subjects))
            windows = (batch.x[meta], batch.y[meta]) if int(meta.sum()) >= 2 else None
            return ~meta, windows
        if self.val is None:
            raise ValueError("method 'amal' meta_split 'val': prepare(validation) was not called")
        x, y = self.val
        rng = np.random.default_rng([self.params.seed, int(self.meta_step)])
        pick = torch.from_numpy(rng.choice(len(x), min(self.params.meta_batch, len(x)),
                                           replace=False)).to(x.device)
        return torch.ones_like(batch.y, dtype=torch.bool), (x[pick], y[pick])

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params
        if batch.index is None:
            raise ValueError("method 'amal' needs each window's training index (Batch.index)")
        logits = self.student(batch.x).logits
        t_logits = self.teachers[self.teacher_name](batch.teacher_x).logits
        train, meta = self._meta_windows(batch)
        ce_rows = soft_cross_entropy_rows(logits, batch.y_soft)[train]
        kd_rows = kl_rows(t_logits, logits, p.temperature)[train] * p.temperature**2
        index = batch.index[train]
        if self.training and meta is not None and len(index):
            grad = lookahead_gradient(self.student, self.mix_logits[index], ce_rows, kd_rows,
                                      *meta, p.inner_lr)
            with torch.no_grad():
                self.mix_logits[index] -= p.meta_lr * len(index) * grad
                self.meta_step += 1
        w = torch.sigmoid(self.mix_logits[index])
        n = max(len(index), 1)
        return logits, {"ce": (w * ce_rows).sum() / n, "kd": ((1 - w) * kd_rows).sum() / n}
