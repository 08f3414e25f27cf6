"""BD-KD: each KL direction on its own against hand arithmetic, the entropy switch, the online
teacher's and the student's gradients kept apart, and a run end to end on real HAPT windows."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from distill_helpers import SMALL_CNN, FixedLogits, run_config

from data_prep.windowset import WindowSet
from harkd.distill.base import Batch, DistillContext, ViewModel, build_distiller
from harkd.distill.losses import balanced_kl, divergence_weights, entropy, kl_rows

LN3, LN9 = math.log(3), math.log(9)
#: sample 0: student [0.5, 0.5] less certain than teacher [0.75, 0.25];
#: sample 1: student [0.9, 0.1] more certain than teacher [0.5, 0.5]
STUDENT = torch.tensor([[0.0, 0.0], [LN9, 0.0]])
TEACHER = torch.tensor([[LN3, 0.0], [0.0, 0.0]])
FORWARD_0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # KL(p_t || p_s)
REVERSE_0 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)  # KL(p_s || p_t)
FORWARD_1 = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
REVERSE_1 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)


def test_forward_and_reverse_kl_each_by_hand() -> None:
    forward = kl_rows(TEACHER, STUDENT, 1.0)
    reverse = kl_rows(STUDENT, TEACHER, 1.0)
    assert forward.tolist() == pytest.approx([FORWARD_0, FORWARD_1], abs=1e-6)
    assert reverse.tolist() == pytest.approx([REVERSE_0, REVERSE_1], abs=1e-6)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert entropy(TEACHER).tolist() == pytest.approx([h, math.log(2)], abs=1e-6)


def test_the_entropy_gap_picks_the_direction_per_sample() -> None:
    w_fwd, w_rev = divergence_weights(STUDENT, TEACHER, 1.0, major=1.0, minor=0.25)
    # sample 0: the student is the more uncertain -> reverse (mode-seeking) gets `major`
    # sample 1: the student is over-confident -> forward (mass-covering) gets `major`
    assert w_fwd.tolist() == [0.25, 1.0] and w_rev.tolist() == [1.0, 0.25]


def test_each_direction_alone_through_the_balanced_term() -> None:
    only_reverse = balanced_kl(STUDENT[:1], TEACHER[:1], 1.0, major=1.0, minor=0.0)
    only_forward = balanced_kl(STUDENT[1:], TEACHER[1:], 1.0, major=1.0, minor=0.0)
    assert only_reverse.item() == pytest.approx(REVERSE_0, abs=1e-6)
    assert only_forward.item() == pytest.approx(FORWARD_1, abs=1e-6)
    both = balanced_kl(STUDENT, TEACHER, 1.0, major=1.0, minor=0.5)
    expected = (REVERSE_0 + 0.5 * FORWARD_0 + FORWARD_1 + 0.5 * REVERSE_1) / 2
    assert both.item() == pytest.approx(expected, abs=1e-6)


def test_temperature_softens_both_and_scales_by_t_squared() -> None:
    # at T = 2 sample 0's teacher is softmax([ln 3 / 2, 0]) = [sqrt 3, 1] / (sqrt 3 + 1)
    pt = [math.sqrt(3) / (math.sqrt(3) + 1), 1 / (math.sqrt(3) + 1)]
    forward = sum(p * math.log(p / 0.5) for p in pt)
    got = balanced_kl(STUDENT[:1], TEACHER[:1], 2.0, major=0.0, minor=1.0)  # forward is minor
    assert got.item() == pytest.approx(4 * forward, abs=1e-6)


def make_bdkd(**params: object) -> tuple[torch.nn.Module, Batch]:
    """BD-KD with a student and an online teacher whose logits are their parameters."""
    ctx = DistillContext(2, 8, {"acc": [0], "gyro": [1]}, ["a", "b"])
    student = ViewModel(FixedLogits(STUDENT.tolist()), [0])
    d = build_distiller("bdkd", student, {}, ctx,
                        {"peer": {"name": "cnn1d", "view": ["acc", "gyro"]}, **params})
    d.peer = ViewModel(FixedLogits(TEACHER.tolist()), [0, 1])
    y = torch.tensor([0, 0])
    return d, Batch(x=torch.zeros(2, 2, 8), y=y, y_soft=torch.nn.functional.one_hot(y, 2).float())


def test_student_and_teacher_terms_by_hand_and_their_gradients_kept_apart() -> None:
    d, batch = make_bdkd(major=1.0, minor=0.0, beta=0.5)
    logits, losses = d.forward_train(batch, 0)
    ce_s = (-math.log(0.5) - math.log(0.9)) / 2
    ce_t = (-math.log(0.75) - math.log(0.5)) / 2
    assert losses["ce"].item() == pytest.approx(ce_s, abs=1e-6)
    assert losses["ce_peer"].item() == pytest.approx(ce_t, abs=1e-6)
    assert losses["bd"].item() == pytest.approx((REVERSE_0 + FORWARD_1) / 2, abs=1e-6)
    # the teacher learns as in mutual learning: KL(p_s || p_t), the student as target
    assert losses["kl_peer"].item() == pytest.approx(0.5 * (REVERSE_0 + REVERSE_1) / 2, abs=1e-6)
    losses["bd"].backward(retain_graph=True)
    assert d.peer.model.logits.grad is None and d.student.model.logits.grad is not None
    d.student.model.logits.grad = None
    losses["kl_peer"].backward()
    assert d.student.model.logits.grad is None and d.peer.model.logits.grad is not None
    reverse, _ = make_bdkd(beta=1.0, teacher_kl="reverse")
    _, r_losses = reverse.forward_train(batch, 0)
    assert r_losses["kl_peer"].item() == pytest.approx((FORWARD_0 + FORWARD_1) / 2, abs=1e-6)


def test_bdkd_takes_no_frozen_teacher_and_names_bad_params() -> None:
    ctx = DistillContext(2, 8, {"acc": [0]}, ["a", "b"])
    student = ViewModel(FixedLogits([0.0, 0.0]), [0])
    with pytest.raises(ValueError, match="peer.view names unknown group"):
        build_distiller("bdkd", student, {}, ctx, {"peer": {"name": "cnn1d", "view": ["gyro"]}})
    with pytest.raises(ValueError, match="unknown parameter 'alpha'"):
        build_distiller("bdkd", student, {}, ctx, {"peer": {"name": "cnn1d"}, "alpha": 0.5})


def test_bdkd_end_to_end_on_real_windows(hapt_quick_small: WindowSet, tmp_path: Path) -> None:
    from harkd.train.checkpoint import load_checkpoint, load_run_model
    from harkd.train.loop import fit
    from harkd.train.rundir import RunDir

    cfg = run_config(tmp_path, "bdkd", {"peer": SMALL_CNN, "temperature": 2.0},
                     train={"epochs": 2, "batch_size": 128, "seed": 0, "patience": None,
                            "threads": 1})
    result = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "run", progress=False)
    for split in ("val", "test"):  # calibration beside macro-F1, as the paper claims both
        m = result.metrics[split]
        assert 0.0 <= m["ece"] <= 1.0 and 0.0 <= m["macro_f1"] <= 1.0
    assert set(result.history[0]["losses"]) == {"ce", "bd", "ce_peer", "kl_peer"}
    model, card = load_run_model(tmp_path / "run")  # the deployable model: the student alone
    assert card.method == "bdkd" and card.view == ["acc"]
    tensors, _ = load_checkpoint(RunDir(tmp_path / "run"))
    assert any(k.startswith("distiller.peer.") for k in tensors)  # the online teacher resumes
