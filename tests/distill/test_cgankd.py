"""cGAN-KD: the teacher filter and the generated windows' term against hand arithmetic, the GAN
stage's alternation (generator and discriminator each get gradients only in their own steps),
the frozen GAN in the main stage, and a run on real HAPT windows that saves the generated
windows (npz) and plots them beside real ones (PNG)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import SMALL_CNN, FixedLogits, run_config

from data_prep.windowset import WindowSet
from harkd.distill.base import (
    Batch,
    DistillContext,
    FrozenTeacher,
    ViewModel,
    build_distiller,
)
from harkd.distill.cgankd import teacher_filter
from harkd.models import build_model

GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
CTX = DistillContext(4, 32, GROUPS, list("abcd"))


def test_teacher_filter_by_hand() -> None:
    # teacher CE on the assigned class: -log softmax; rows 0-3 get 0.05, 0.7, 1.4, 3.0 roughly
    probs = torch.tensor([0.95, 0.5, 0.25, 0.05])
    logits = torch.stack([torch.log(torch.tensor([p, 1 - p])) for p in probs.tolist()])
    y = torch.zeros(4, dtype=torch.long)
    ce = -torch.log(probs)
    # the 0.5 quantile of 4 CEs interpolates between the 2nd and 3rd: keep the two lowest
    assert teacher_filter(logits, y, 0.5).tolist() == [True, True, False, False]
    assert teacher_filter(logits, y, 1.0).all()
    assert float(torch.quantile(ce, 0.5)) < float(ce[2])


def make(student: torch.nn.Module | None = None, teacher: torch.nn.Module | None = None,
         **params: object) -> torch.nn.Module:
    torch.manual_seed(0)
    student = student or build_model("tiny_xs", 3, 4, 32)
    teacher = teacher or build_model("cnn1d", 6, 4, 32, widths=[8, 16], kernel=3)
    return build_distiller("cgankd", ViewModel(student, GROUPS["acc"]),
                           {"t": FrozenTeacher(teacher, list(range(6)))}, CTX,
                           {"gan_epochs": 1, "width": 8, "d_width": 8, **params})


def real_batch(n: int = 8, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    return Batch(x=torch.randn(n, 6, 32, generator=g), y=y,
                 y_soft=torch.nn.functional.one_hot(y, 4).float())


def _has_grad(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_generator_and_discriminator_get_gradients_only_in_their_own_steps() -> None:
    d = make(d_steps=2)
    d.set_stage("gan")
    d.train()
    trainable = {id(p) for p in d.trainable_parameters()}
    gan = {id(p) for m in (d.generator, d.discriminator) for p in m.parameters()}
    assert trainable == gan
    turns = []
    for step in range(6):
        d.zero_grad(set_to_none=True)
        logits, losses = d.forward_train(real_batch(seed=step), epoch=0)
        assert logits is None
        sum(losses.values()).backward()
        turns.append((set(losses), _has_grad(d.discriminator), _has_grad(d.generator)))
        assert not _has_grad(d.student) and not _has_grad(d.teachers["t"])
    d_step, g_step = ({"d"}, True, False), ({"g"}, False, True)
    assert turns == [d_step, d_step, g_step] * 2


def test_main_stage_trains_the_student_on_real_and_teacher_labelled_generated_windows() -> None:
    s_logits, t_logits = [0.0, 1.0, 2.0, 0.5], [2.0, 0.0, 0.0, 1.0]
    d = make(FixedLogits(s_logits), FixedLogits(t_logits), temperature=2.0, fake_ratio=0.5,
             filter_quantile=1.0)
    d.set_stage("main")
    d.train()
    assert not d.generator.training and not d.discriminator.training
    b = real_batch(8)
    logits, losses = d.forward_train(b, 0)
    assert logits.shape == (8, 4) and set(losses) == {"ce", "kd_fake"}
    assert int(d.made) == 4 and int(d.kept) == 4  # quantile 1: the filter keeps every window
    # both give every window the same logits: the mean KL over the kept windows is one KL
    p_t = torch.softmax(torch.tensor(t_logits) / 2, 0)
    log_p_s = torch.log_softmax(torch.tensor(s_logits) / 2, 0)
    kl = float((p_t * (p_t.log() - log_p_s)).sum())
    assert losses["kd_fake"].item() == pytest.approx(4 * kl, rel=1e-5)  # T^2 KL
    ce = -float(torch.log_softmax(torch.tensor(s_logits), 0)[b.y].mean())
    assert losses["ce"].item() == pytest.approx(ce, rel=1e-5)
    sum(losses.values()).backward()
    assert not _has_grad(d.generator) and not _has_grad(d.discriminator)
    assert {id(p) for p in d.trainable_parameters()} == {id(p) for p in d.student.parameters()}


def test_generated_windows_are_filtered_and_labelled_by_the_teacher() -> None:
    d = make(filter_quantile=0.5)
    gen = d.generated_windows()
    assert gen.x.shape == (64, 6, 32) and sorted(set(gen.y.tolist())) <= [0, 1, 2, 3]
    assert gen.kept.sum() == 32  # the median of 64 distinct CEs keeps half
    assert np.allclose(gen.teacher_probs.sum(axis=1), 1.0, atol=1e-5)
    again = d.generated_windows()  # a fixed draw
    assert np.array_equal(gen.x, again.x) and math.isfinite(float(gen.x.std()))


@pytest.mark.slow
def test_a_run_saves_and_plots_the_generated_windows(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    from harkd.train.loop import fit

    ws = hapt_quick_small
    teacher_dir = tmp_path / "teacher"
    fit(run_config(tmp_path, "none", {}, model=SMALL_CNN), ws=ws, run_dir=teacher_dir,
        progress=False)
    teachers = {"t": {**SMALL_CNN, "run_dir": str(teacher_dir)}}
    cfg = run_config(tmp_path, "cgankd", {"gan_epochs": 1, "width": 16, "d_width": 16},
                     teachers=teachers)
    result = fit(cfg, ws=ws, run_dir=tmp_path / "run", progress=False)
    assert [h["stage"] for h in result.history] == ["gan", "main"]
    assert set(result.history[0]["losses"]) == {"d", "g"}
    with np.load(tmp_path / "run" / "generated.npz", allow_pickle=False) as npz:
        k = ws.num_classes
        assert npz["x"].shape == (16 * k, ws.X.shape[1], ws.X.shape[2])
        assert npz["label_names"].tolist() == ws.label_names
        assert npz["kept"].dtype == bool and 0 < npz["kept"].sum() < 16 * k
        made, kept = int(npz["count_made"]), int(npz["count_kept"])
        assert made == int(ws.mask("train").sum()) and 0 < kept < made  # fake_ratio 1
    png = (tmp_path / "run" / "generated.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    def crash_after_the_gan_stage(epoch: int) -> None:
        raise KeyboardInterrupt(epoch)

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, ws=ws, run_dir=tmp_path / "cut", progress=False,
            on_epoch_end=crash_after_the_gan_stage)
    resumed = fit(cfg, ws=ws, run_dir=tmp_path / "cut", progress=False)
    assert resumed.metrics == result.metrics  # the step counters and the GAN resume
    with np.load(tmp_path / "run" / "generated.npz") as a, \
            np.load(tmp_path / "cut" / "generated.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
