"""AMAL: the look-ahead gradient against finite differences, the per-window weights it learns,
the carved meta split, hand-computed losses, and a run whose metrics state the validation use."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from data_prep.windowset import WindowSet
from harkd.distill.amal import AMAL, VALIDATION_USE, lookahead_gradient
from harkd.distill.base import (
    Batch,
    DistillContext,
    FrozenTeacher,
    ValidationSplit,
    ViewModel,
    build_distiller,
)
from harkd.distill.losses import kl_rows, soft_cross_entropy_rows
from harkd.models.base import ModelOutput
from harkd.train.metrics import macro_f1
from tests.distill.distill_helpers import SMALL_CNN, FixedLogits, run_config

SUBJECTS = ("s1", "s2", "s3", "s4", "s5")
CTX = DistillContext(2, 8, {"acc": [0], "gyro": [1]}, ["a", "b"], 10, SUBJECTS)


class Linear(nn.Module):
    """A tiny model: one linear map of the flattened window (no BatchNorm, no dropout)."""

    def __init__(self, inputs: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(inputs, classes)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(self.fc(x.flatten(1)), {})


def test_lookahead_gradient_matches_finite_differences() -> None:
    """d L_meta(theta - eta grad L(theta, lambda)) / d lambda_i by autograd through the inner
    step equals central differences of the same quantity computed by an explicit SGD step on a
    copy of the model."""
    torch.manual_seed(0)
    model = Linear(6, 3).double()
    x, y = torch.randn(5, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])
    t_logits = torch.randn(5, 3, dtype=torch.float64)
    meta_x, meta_y = torch.randn(7, 6, dtype=torch.float64), torch.tensor([2, 0, 1, 1, 0, 2, 1])
    lam = torch.randn(5, dtype=torch.float64)
    lr, temp = 0.5, 2.0

    def rows(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        logits = m(x).logits
        ce = soft_cross_entropy_rows(logits, F.one_hot(y, 3).double())
        return ce, kl_rows(t_logits, logits, temp) * temp**2

    def meta_loss(weights_logit: torch.Tensor) -> float:
        m = copy.deepcopy(model)
        ce, kd = rows(m)
        w = torch.sigmoid(weights_logit)
        (w * ce + (1 - w) * kd).mean().backward()
        with torch.no_grad():
            for p in m.parameters():
                p -= lr * p.grad
            return F.cross_entropy(m(meta_x).logits, meta_y).item()

    grad = lookahead_gradient(model, lam, *rows(model), meta_x, meta_y, lr)
    eps = 1e-6
    numeric = torch.tensor([
        (meta_loss(lam + eps * e) - meta_loss(lam - eps * e)) / (2 * eps)
        for e in torch.eye(5, dtype=torch.float64)
    ], dtype=torch.float64)
    print("autograd", grad.tolist(), "finite differences", numeric.tolist())
    assert grad.abs().max() > 1e-4  # the weights matter to the meta loss
    assert torch.allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    assert all(p.grad is None for p in model.parameters())  # the model is left untouched


def fixed_amal(**params: object) -> AMAL:
    """AMAL with a fixed-logits student ([0, 0]) and teacher ([ln 3, 0]) on 2 classes."""
    student = ViewModel(FixedLogits([0.0, 0.0]), [0])
    teacher = FrozenTeacher(FixedLogits([math.log(3.0), 0.0]), [1])
    return build_distiller("amal", student, {"t": teacher}, CTX, params)


def fixed_batch(subject: list[int]) -> Batch:
    n = len(subject)
    y = torch.zeros(n, dtype=torch.long)
    return Batch(x=torch.zeros(n, 2, 8), y=y, y_soft=F.one_hot(y, 2).float(),
                 index=torch.arange(n), subject=torch.tensor(subject))


def test_losses_by_hand_and_carved_subjects_left_out_of_them() -> None:
    """Student p_s = (1/2, 1/2), teacher p_t = (3/4, 1/4), label 0, T 1: CE = ln 2 and
    KL = 3/4 ln(3/2) + 1/4 ln(1/2) per window, weighed 1/4 and 3/4 (init_ce_weight 0.25); the
    meta subject's windows (s2 here) are left out of the loss."""
    d = fixed_amal(temperature=1.0, init_ce_weight=0.25, meta_split="carved", meta_fraction=0.2)
    again = fixed_amal(meta_split="carved", meta_fraction=0.2)
    assert len(d.meta_subjects) == 1 and d.meta_subjects == again.meta_subjects  # seeded
    d.meta_subjects = [1]
    d.eval()  # no weight update
    _, losses = d.forward_train(fixed_batch([0, 1, 1, 2]), 0)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert losses["ce"].item() == pytest.approx(0.25 * math.log(2), rel=1e-6)
    assert losses["kd"].item() == pytest.approx(0.75 * kl, rel=1e-6)
    assert d.prepare(ValidationSplit(torch.zeros(2, 2, 8), np.zeros(2, int), macro_f1)) == {
        "meta_split": "carved", "meta_subjects": ["s2"]}


def test_training_steps_move_only_the_batch_windows_weights() -> None:
    torch.manual_seed(0)
    student = ViewModel(Linear(8, 2), [0])
    teacher = FrozenTeacher(FixedLogits([2.0, -2.0]), [1])
    d = build_distiller("amal", student, {"t": teacher}, CTX, {"meta_split": "carved",
                                                               "meta_fraction": 0.4})
    assert d.state_dict()["mix_logits"].shape == (10,)  # checkpointed with the distiller
    meta = d.meta_subjects
    subject = [s for s in range(5) if s not in meta][:2] * 2 + meta * 2
    g = torch.Generator().manual_seed(1)
    batch = Batch(x=torch.randn(len(subject), 2, 8, generator=g),
                  y=torch.tensor([0, 1] * (len(subject) // 2)), y_soft=torch.zeros(0),
                  index=torch.tensor([3, 7, 0, 9, 4, 5, 6, 8][: len(subject)]),
                  subject=torch.tensor(subject))
    batch.y_soft = F.one_hot(batch.y, 2).float()
    before = d.mix_logits.clone()
    d.train()
    _, losses = d.forward_train(batch, 0)
    sum(losses.values()).backward()
    moved = torch.nonzero(d.mix_logits != before).flatten().tolist()
    trained = [i for i, s in zip(batch.index.tolist(), subject, strict=True) if s not in meta]
    assert sorted(moved) == sorted(trained)  # meta windows and windows not in the batch keep theirs
    assert int(d.meta_step) == 1
    assert all(p.grad is not None for p in d.student.parameters())


def test_val_meta_split_needs_prepare_and_reports_the_validation_use() -> None:
    d = fixed_amal()
    with pytest.raises(ValueError, match="prepare"):
        d.forward_train(fixed_batch([0, 1]), 0)
    report = d.prepare(ValidationSplit(torch.zeros(4, 2, 8), np.array([0, 1, 0, 1]), macro_f1))
    assert report == {"meta_split": "val", "validation_use": VALIDATION_USE}
    d.train()
    _, losses = d.forward_train(fixed_batch([0, 1]), 0)
    assert set(losses) == {"ce", "kd"} and int(d.meta_step) == 1
    no_index = fixed_batch([0, 1])
    no_index.index = None
    with pytest.raises(ValueError, match=r"Batch\.index"):
        d.forward_train(no_index, 0)


def test_carved_split_needs_two_subjects() -> None:
    student = ViewModel(FixedLogits([0.0, 0.0]), [0])
    teacher = FrozenTeacher(FixedLogits([0.0, 0.0]), [1])
    one = DistillContext(2, 8, {"acc": [0], "gyro": [1]}, ["a", "b"], 4, ("s1",))
    with pytest.raises(ValueError, match="at least 2 training subjects; the run has 1"):
        build_distiller("amal", student, {"t": teacher}, one, {"meta_split": "carved"})


class RunCutError(Exception):
    """Raised by the epoch hook to cut a run short."""


def interrupt_after_first_epoch(epoch: int) -> None:
    if epoch == 0:
        raise RunCutError


@pytest.mark.slow
def test_a_run_states_its_validation_use_and_resumes_with_its_weights(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    """AMAL through `fit` on the small real HAPT subset (a 1-epoch teacher run): metrics.json
    says validation drives the meta-objective, and a run cut after its first epoch resumes
    with its per-window weights and meta batches to the same result as an uncut one."""
    from harkd.train.loop import fit

    teacher_dir = tmp_path / "teacher"
    fit(run_config(tmp_path, "none", {}, model=SMALL_CNN), ws=hapt_quick_small,
        run_dir=teacher_dir, progress=False)
    teacher = {**SMALL_CNN, "run_dir": str(teacher_dir)}
    train = {"epochs": 2, "batch_size": 128, "seed": 0, "patience": None, "threads": 1}
    cfg = run_config(tmp_path, "amal", {"temperature": 1.0}, teachers={"t": teacher}, train=train)
    full = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "full", progress=False)
    method = json.loads((tmp_path / "full" / "metrics.json").read_text())["metrics"]["method"]
    assert method == {"meta_split": "val", "validation_use": VALIDATION_USE}
    with pytest.raises(RunCutError):
        fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "cut", progress=False,
            on_epoch_end=interrupt_after_first_epoch)
    resumed = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "cut", progress=False)
    assert resumed.metrics == full.metrics
    assert [h["losses"] for h in resumed.history] == [h["losses"] for h in full.history]
    weights = [(tmp_path / run / "model.safetensors").read_bytes() for run in ("full", "cut")]
    assert weights[0] == weights[1]
