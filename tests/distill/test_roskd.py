"""RoS-KD: one teacher drawn per step (seeded, resumable), the KL to the drawn teacher by hand,
the student's weight average by hand and handed over when the student is scored, and a run
through `fit` whose saved model is the averaged student."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from distill_helpers import SMALL_CNN, SMALL_DATA, FixedLogits, run_config
from safetensors.torch import load_file

from data_prep.windowset import WindowSet
from harkd.data import load_windowset
from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.roskd import blend_into, teacher_draw

LN3 = math.log(3)
GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
CTX = DistillContext(num_classes=2, window=8, groups=GROUPS, label_names=["a", "b"])
#: two teachers: "a" says [3/4, 1/4], "b" says [1/4, 3/4] for every window
TEACHERS = {"a": [LN3, 0.0], "b": [0.0, LN3]}


def make(**params: object):
    student = ViewModel(FixedLogits([0.0, 0.0]), GROUPS["acc"])
    teachers = {n: FrozenTeacher(FixedLogits(z), GROUPS["acc"]) for n, z in TEACHERS.items()}
    return build_distiller("roskd", student, teachers, CTX,
                           {"alpha": 1.0, "temperature": 1.0, **params})


def batch() -> Batch:
    y = torch.tensor([0, 1, 1])
    return Batch(x=torch.zeros(3, 6, 8), y=y, y_soft=torch.nn.functional.one_hot(y, 2).float())


def test_draws_are_uniform_seeded_and_depend_on_the_step_only():
    draws = [teacher_draw(0, step, 3) for step in range(3000)]
    counts = [draws.count(k) for k in range(3)]
    assert all(abs(c - 1000) < 100 for c in counts), counts  # 1000 +- 3 sd
    assert draws == [teacher_draw(0, step, 3) for step in range(3000)]
    assert draws != [teacher_draw(1, step, 3) for step in range(3000)]


def test_each_step_distils_from_the_drawn_teacher():
    d = make(smoothing=0.0, seed=4)
    # KL([3/4, 1/4] || [1/2, 1/2]) = 3/4 ln(3/2) + 1/4 ln(1/2), the same for "b" by symmetry;
    # the student is moved towards each step's teacher, so its logits tell which one it was
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    d.train()
    opt = torch.optim.SGD(d.trainable_parameters(), lr=1.0)
    for step in range(6):
        before = d.student.model.logits.detach().clone()
        _, losses = d.forward_train(batch(), epoch=0)
        if step == 0:
            assert losses["kd"].item() == pytest.approx(kl, abs=1e-6)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        moved = d.student.model.logits.detach() - before
        wanted = "a" if teacher_draw(4, step, 2) == 0 else "b"
        assert (moved[0] > moved[1]) == (wanted == "a")
    assert int(d.steps) == 6


def test_blend_by_hand():
    average, model = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    with torch.no_grad():
        average.weight.fill_(1.0), average.bias.fill_(-1.0)
        model.weight.fill_(2.0), model.bias.fill_(3.0)
    blend_into(average, model, 0.9)
    assert average.weight.item() == pytest.approx(1.1)  # 0.9 * 1 + 0.1 * 2
    assert average.bias.item() == pytest.approx(-0.6)  # 0.9 * -1 + 0.1 * 3


def test_the_student_takes_the_average_when_it_is_scored():
    d = make(smoothing=0.5)
    d.train()
    opt = torch.optim.SGD(d.trainable_parameters(), lr=1.0)
    expected = d.student.model.logits.detach().clone()  # the average starts at the initial weights
    for _ in range(3):
        _, losses = d.forward_train(batch(), epoch=0)  # folds in the previous step's update
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        expected = 0.5 * expected + 0.5 * d.student.model.logits.detach()  # by hand, every step
    trained = d.student.model.logits.detach().clone()
    assert not torch.allclose(trained, expected)
    d.eval()  # scoring: the last update is folded in and the student takes the average
    assert torch.allclose(d.student.model.logits, expected)
    assert torch.allclose(d.average.logits, expected)
    d.eval()  # idempotent
    assert torch.allclose(d.student.model.logits, expected)
    plain = make(smoothing=0.0)
    plain.train()
    plain.student.model.logits.data += 1.0
    plain.eval()
    assert plain.student.model.logits.tolist() == [1.0, 1.0]  # no smoothing: untouched


def test_a_restored_state_continues_the_draws_and_the_average():
    d = make()
    d.train()
    for _ in range(5):
        d.forward_train(batch(), epoch=0)
    again = make()
    again.load_state_dict(d.state_dict())
    assert int(again.steps) == 5
    assert torch.equal(again.average.logits, d.average.logits)


@pytest.mark.slow
def test_fit_saves_the_averaged_student(hapt_quick_small: WindowSet, tmp_path: Path):
    """Two acc+gyro teachers trained on two disjoint subject subsets of the real HAPT subset,
    then RoS-KD through `fit` on all of it: the teachers pass the compatibility check (same
    normalisation, no test subject), and the saved model is the average the checkpoint holds."""
    from harkd.train.loop import fit

    teachers, subsets = {}, []
    for k in range(2):
        subset = {"count": 2, "index": k, "overlap": 0.0}
        data = {**SMALL_DATA, "split": {**SMALL_DATA["split"], "subset": subset}}
        cfg = run_config(tmp_path, "none", {}, model=SMALL_CNN, data_overrides=data)
        ws = load_windowset(cfg, cache_dir=tmp_path / "cache")
        subsets.append(set(ws.meta["split_subjects"]["train"]))
        fit(cfg, ws=ws, run_dir=tmp_path / f"t{k}", progress=False)
        teachers[f"subset{k}"] = {**SMALL_CNN, "run_dir": str(tmp_path / f"t{k}")}
    assert not subsets[0] & subsets[1]
    assert subsets[0] | subsets[1] == set(hapt_quick_small.meta["split_subjects"]["train"])
    cfg = run_config(tmp_path, "roskd", {"smoothing": 0.9}, teachers=teachers,
                     train={"epochs": 2, "batch_size": 128, "seed": 0, "patience": None,
                            "threads": 1, "selection": "last"})
    result = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "student", progress=False)
    assert 0 <= result.metrics["test"]["macro_f1"] <= 1
    saved = load_file(str(tmp_path / "student" / "model.safetensors"))
    last = load_file(str(tmp_path / "student" / "last.safetensors"))
    for k, v in saved.items():
        assert torch.equal(v, last[f"best.average.{k}"]), k
        assert torch.equal(v, last[f"best.student.model.{k}"]), k
