"""MIX-KD: the std rescaling and the loss against hand arithmetic, partial mixup mixing exactly
the configured fraction (the teacher seeing the same mixing), the teacher's smoothness on
validation, the shipped grid's graph, and a run end to end on real HAPT windows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import REPO, SMALL_CNN, TRAIN, FixedLogits, run_config

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.distill.base import (
    Batch,
    DistillContext,
    FrozenTeacher,
    ValidationSplit,
    ViewModel,
    build_distiller,
)
from harkd.distill.losses import std_scaled
from harkd.distill.mixkd import partial_mixup

CTX = DistillContext(3, 8, {"acc": [0], "gyro": [1]}, ["a", "b", "c"])


def softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_std_scaling_by_hand() -> None:
    # [0, 0, 6]: mean 2, squared deviations 4 + 4 + 16 = 24, unbiased variance 12
    got = std_scaled(torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]]))
    assert got.tolist()[0] == pytest.approx([1.0, 2.0, 3.0])
    assert got.tolist()[1] == pytest.approx([0.0, 0.0, 6 / math.sqrt(12)])


def make(student: list[float], teacher: list[float], **params: object) -> torch.nn.Module:
    teachers = {"t": FrozenTeacher(FixedLogits(teacher), [0, 1])}
    return build_distiller("mixkd", ViewModel(FixedLogits(student), [0]), teachers, CTX,
                           {"mix_fraction": 0.0, **params})


def one_hot_batch(labels: list[int]) -> Batch:
    y = torch.tensor(labels)
    return Batch(x=torch.randn(len(labels), 2, 8), y=y,
                 y_soft=torch.nn.functional.one_hot(y, 3).float())


def test_std_rescaled_loss_by_hand() -> None:
    d = make([0.0, 0.0, 6.0], [1.0, 2.0, 3.0], alpha=0.9)
    _, losses = d.forward_train(one_hot_batch([2, 2]), 0)
    p_s = softmax([0.0, 0.0, 6 / math.sqrt(12)])  # the student's logits over their std
    p_t = softmax([1.0, 2.0, 3.0])  # the teacher's std is 1
    kl = sum(t * math.log(t / s) for t, s in zip(p_t, p_s, strict=True))
    assert losses["ce"].item() == pytest.approx(0.1 * -math.log(p_s[2]), abs=1e-6)
    assert losses["kd"].item() == pytest.approx(0.9 * kl, abs=1e-6)


def test_fixed_temperature_is_hintons_kd() -> None:
    d = make([0.0, 0.0, 6.0], [1.0, 2.0, 3.0], alpha=0.5, temperature=2.0)
    _, losses = d.forward_train(one_hot_batch([0]), 0)
    p_s, p_t = softmax([0.0, 0.0, 3.0]), softmax([0.5, 1.0, 1.5])
    kl = sum(t * math.log(t / s) for t, s in zip(p_t, p_s, strict=True))
    assert losses["ce"].item() == pytest.approx(0.5 * -math.log(softmax([0, 0, 6])[0]), abs=1e-5)
    assert losses["kd"].item() == pytest.approx(0.5 * 4 * kl, abs=1e-6)


def mixing_partner(v: float, i: int, y_mixed: torch.Tensor, y: torch.Tensor) -> int | None:
    """The window j and weight lam with v = lam i + (1 - lam) j whose labels mix the same way."""
    for j in range(len(y)):
        if j != i:
            lam = (v - j) / (i - j)
            mixed = lam * y[i] + (1 - lam) * y[j]
            if 0 <= lam <= 1 and torch.allclose(y_mixed, mixed, atol=1e-5):
                return j
    return None


@pytest.mark.parametrize(("fraction", "mixed"), [(0.0, 0), (0.25, 4), (0.5, 8), (1.0, 16)])
def test_partial_mixup_mixes_exactly_the_fraction(fraction: float, mixed: int) -> None:
    x = torch.arange(16.0).view(16, 1, 1).expand(16, 2, 4).clone()  # window i is all i
    y = torch.nn.functional.one_hot(torch.arange(16) % 3, 3).float()
    batch = Batch(x=x, y=y.argmax(1), y_soft=y, x_teacher=x + 100)
    xs, xt, ys = partial_mixup(batch, fraction, 1.0, torch.Generator().manual_seed(3))
    changed = [i for i in range(16) if not torch.equal(xs[i], x[i])]
    assert mixed - 2 <= len(changed) <= mixed  # a window may draw itself as its partner
    for i in changed:  # a convex mix of two windows of the batch, labels mixed alike
        v = float(xs[i, 0, 0])
        assert torch.all(xs[i] == v) and mixing_partner(v, i, ys[i], y) is not None
    assert all(torch.equal(ys[i], y[i]) for i in range(16) if i not in changed)
    assert torch.allclose(xt - 100, xs, atol=1e-4)  # the teacher's windows get the same mixing
    if fraction == 0.0:
        assert xs is x and ys is y
    again = partial_mixup(batch, fraction, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(again[0], xs)  # the generator alone decides


def test_partial_mixup_counts_on_a_large_batch() -> None:
    x = torch.randn(200, 2, 4)
    y = torch.nn.functional.one_hot(torch.randint(0, 3, (200,)), 3).float()
    xs, _, _ = partial_mixup(Batch(x=x, y=y.argmax(1), y_soft=y), 0.3, 1.0,
                             torch.Generator().manual_seed(0))
    changed = int((xs != x).flatten(1).any(dim=1).sum())
    assert 55 <= changed <= 60  # 60 drawn; a few draw themselves as partner


def test_teacher_smoothness_on_validation_by_hand() -> None:
    d = make([0.0, 0.0, 0.0], [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    val = ValidationSplit(torch.zeros(2, 2, 8), np.array([0, 0]),
                          lambda y, p: float((y == p).mean()))
    report = d.prepare(val)
    p0 = softmax([2.0, 0.0, 0.0])
    h0 = -sum(p * math.log(p) for p in p0)
    assert report["teacher_max_prob"] == pytest.approx((p0[0] + 1 / 3) / 2, abs=1e-6)
    assert report["teacher_entropy"] == pytest.approx((h0 + math.log(3)) / 2, abs=1e-6)
    assert report["teacher_val_macro_f1"] == 1.0  # both rows argmax to class 0 (first of ties)
    # row 2's logits have std 0: rescaled they stay 0 (uniform), row 1's become [2/std, 0, 0]
    s = std_scaled(torch.tensor([[2.0, 0.0, 0.0]]))[0].tolist()
    h_target = -sum(p * math.log(p) for p in softmax(s))
    assert report["target_entropy"] == pytest.approx((h_target + math.log(3)) / 2, abs=1e-5)


def test_shipped_grid_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", str(REPO / "configs" / "grids" / "mixkd.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "node teacher " in out and "node teacher_mixup" in out
    assert "2 training nodes, 24 cells" in out
    assert out.count("needs teacher_mixup") == 12


@pytest.fixture(scope="module")
def teacher_dir(hapt_quick_small: WindowSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small acc+gyro cnn1d trained 1 epoch on the small HAPT subset."""
    from harkd.train.loop import fit

    root = tmp_path_factory.mktemp("mixkd-teacher")
    fit(run_config(root, "none", {}, model=SMALL_CNN), ws=hapt_quick_small, run_dir=root / "t",
        progress=False)
    return root / "t"


def mixkd_config(root: Path, teacher: Path, epochs: int) -> object:
    return run_config(root, "mixkd", {"mix_fraction": 0.5},
                      teachers={"t": {**SMALL_CNN, "run_dir": str(teacher)}},
                      train={**TRAIN, "epochs": epochs})


def test_mixkd_end_to_end_records_teacher_smoothness(
    hapt_quick_small: WindowSet, teacher_dir: Path, tmp_path: Path
) -> None:
    from harkd.train.loop import fit

    cfg = mixkd_config(tmp_path, teacher_dir, 2)
    result = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "run", progress=False)
    smooth = result.metrics["method"]
    k = hapt_quick_small.num_classes
    assert 1 / k <= smooth["teacher_max_prob"] <= 1.0
    assert 0.0 <= smooth["teacher_entropy"] <= math.log(k)
    stored = json.loads((teacher_dir / "metrics.json").read_text())
    assert smooth["teacher_val_macro_f1"] == pytest.approx(stored["metrics"]["val"]["macro_f1"])
    assert 0.0 <= result.metrics["test"]["macro_f1"] <= 1.0
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["metrics"]["method"] == smooth


def test_mixkd_resumes_as_an_uninterrupted_run(
    hapt_quick_small: WindowSet, teacher_dir: Path, tmp_path: Path
) -> None:
    """The mixing draws from torch's global generator, which the checkpoint carries."""
    from harkd.train.loop import fit

    class CrashError(Exception):
        pass

    def crash_after_first(epoch: int) -> None:
        if epoch == 0:
            raise CrashError

    full = fit(mixkd_config(tmp_path, teacher_dir, 3), ws=hapt_quick_small,
               run_dir=tmp_path / "full", progress=False)
    with pytest.raises(CrashError):
        fit(mixkd_config(tmp_path, teacher_dir, 3), ws=hapt_quick_small,
            run_dir=tmp_path / "cut", progress=False, on_epoch_end=crash_after_first)
    resumed = fit(mixkd_config(tmp_path, teacher_dir, 3), ws=hapt_quick_small,
                  run_dir=tmp_path / "cut", progress=False)
    assert not resumed.from_cache and resumed.metrics == full.metrics
    assert [h["losses"] for h in resumed.history] == [h["losses"] for h in full.history]
