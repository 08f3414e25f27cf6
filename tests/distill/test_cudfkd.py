"""CuDFKD: the self-paced weights, the JS term and the BatchNorm prior against hand arithmetic,
the alternation of student and generator steps (each player's gradients only in its own), and,
on the data path of a real run, that the student never receives a training window."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import SMALL_CNN, run_config

from data_prep.windowset import WindowSet
from harkd.distill.base import (
    Batch,
    DistillContext,
    FrozenTeacher,
    ViewModel,
    build_distiller,
)
from harkd.distill.cudfkd import js_rows, self_paced_weights
from harkd.distill.generators import BNStatistics
from harkd.models import build_model

GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
CTX = DistillContext(4, 32, GROUPS, list("abcd"))


def test_self_paced_weights_by_hand() -> None:
    losses = torch.tensor([0.5, 1.0, 1.5, 3.0])
    assert self_paced_weights(losses, 2.0, "hard").tolist() == [1.0, 1.0, 1.0, 0.0]
    assert self_paced_weights(losses, 2.0, "soft").tolist() == pytest.approx([0.75, 0.5, 0.25, 0])
    assert self_paced_weights(losses, 0.4, "hard").sum() == 0  # nothing is easy enough yet


def test_js_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # p = (1/2, 1/2) and (3/4, 1/4)
    b = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])  # q = (1/2, 1/2) and (1/4, 3/4)
    m = 0.5  # the mean of (3/4, 1/4) and (1/4, 3/4) is uniform
    expected = 0.75 * math.log(0.75 / m) + 0.25 * math.log(0.25 / m)  # KL(p||m) = KL(q||m)
    assert js_rows(a, b, 1.0).tolist() == pytest.approx([0.0, expected], abs=1e-6)


def test_bn_prior_by_hand() -> None:
    bn = torch.nn.BatchNorm1d(2).eval()
    bn.running_mean.copy_(torch.tensor([1.0, -1.0]))
    bn.running_var.copy_(torch.tensor([4.0, 1.0]))
    x = torch.tensor([[[3.0, -1.0], [0.0, -2.0]], [[3.0, -1.0], [0.0, -2.0]]])  # [2, 2, 2]
    prior = BNStatistics(torch.nn.Sequential(bn))
    with prior:
        bn(x)
    # channel 0: mean 1, var 4 (matches); channel 1: mean -1, var 1 (matches)
    assert prior.loss.item() == pytest.approx(0.0, abs=1e-6)
    with prior:
        bn(x + 1.0)  # means off by 1 in both channels: ||(1, 1)||_2
    assert prior.loss.item() == pytest.approx(math.sqrt(2), rel=1e-6)


def make(**params: object) -> torch.nn.Module:
    torch.manual_seed(0)
    student = ViewModel(build_model("tiny_xs", 3, 4, 32), GROUPS["acc"])
    teacher = FrozenTeacher(build_model("cnn1d", 6, 4, 32, widths=[8, 16], kernel=3),
                            list(range(6)))
    return build_distiller("cudfkd", student, {"t": teacher}, CTX,
                           {"lambda_0": 100.0, "width": 8, **params})


def empty_batch(n: int = 8) -> Batch:
    return Batch(x=torch.empty(n, 6, 0), y=torch.full((n,), -1), y_soft=torch.zeros(n, 4))


def _has_grad(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_student_and_generator_steps_alternate_with_their_own_gradients() -> None:
    d = make(student_steps=2, generator_steps=1)
    d.train()
    turns = []
    for _ in range(6):
        d.zero_grad(set_to_none=True)
        logits, losses = d.forward_train(empty_batch(), epoch=0)
        assert logits.shape == (8, 4)
        sum(losses.values()).backward()
        turns.append((set(losses), _has_grad(d.student), _has_grad(d.generator)))
        assert not _has_grad(d.teachers["t"])
    student, generator = ({"kd"}, True, False), ({"bn", "adv"}, False, True)
    assert turns == [student, student, generator] * 2


def test_generator_step_seeks_disagreement() -> None:
    d = make(bn_weight=0.0, student_steps=1, generator_steps=1)
    d.train()
    d.forward_train(empty_batch(), 0)  # the student's turn
    _, losses = d.forward_train(empty_batch(), 0)
    assert losses["adv"].item() < 0  # minus the JS divergence the generator maximises


@pytest.mark.slow
def test_the_student_never_receives_a_real_training_window(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    """Through `assemble`'s batch source and the method, a few real optimisation steps: the
    batches carry no window, and no window the student sees is a training window."""
    from harkd.train.assemble import assemble
    from harkd.train.loop import fit

    ws = hapt_quick_small
    teacher_dir = tmp_path / "teacher"
    fit(run_config(tmp_path, "none", {}, model=SMALL_CNN), ws=ws, run_dir=teacher_dir,
        progress=False)
    teachers = {"t": {**SMALL_CNN, "run_dir": str(teacher_dir)}}
    cfg = run_config(tmp_path, "cudfkd", {"width": 16}, teachers=teachers)
    run = assemble(cfg, ws)
    d = run.distiller
    seen: list[torch.Tensor] = []
    d.student.model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    opt = torch.optim.AdamW(d.trainable_parameters(), lr=1e-3)
    d.train()
    batches = list(run.batches.epoch(0))
    assert len(batches) == len(run.batches) > 1
    assert sum(len(b.x) for b in batches) == int(ws.mask("train").sum())
    for b in batches[:6]:
        assert b.x.shape[2] == 0 and b.x_teacher is None and b.x_pool is None
        assert (b.y == -1).all() and not b.y_soft.any()
        _, losses = d.forward_train(b, 0)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    train = run.normalizer(ws.X[ws.mask("train")])[:, run.channels].flatten(1)
    inputs = torch.cat(seen).flatten(1)
    assert len(inputs) == sum(len(b.x) for b in batches[:6])
    exact = "donot_use_mm_for_euclid_dist"
    nearest = torch.cdist(inputs, train, compute_mode=exact).min(dim=1).values
    assert nearest.min().item() > 1e-3
    gen = d.generated_windows()
    assert gen.x.shape == (16 * ws.num_classes, ws.X.shape[1], ws.X.shape[2])
    assert np.allclose(gen.teacher_probs.sum(axis=1), 1.0, atol=1e-5)
