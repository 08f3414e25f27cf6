"""Single-recording KD: the recording it reads (exactly one, the one named or the longest),
repeated to the training split's size, its first seconds, one-line errors for a recording that
is not there, a loss that is the teacher's outputs alone, and the data path of a real run: every
training batch is cut from that one recording through the heavy augmentation policy of the
shipped config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import REPO, SMALL_CNN, FixedLogits, run_config

from data_prep.windowset import WindowSet
from harkd.config import load_run_config
from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.losses import kd_kl
from harkd.distill.srkd import SRKD, SRKDParams


def train_recordings(ws: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(ws.recording[ws.mask("train")], return_counts=True)


def test_reads_exactly_the_longest_training_recording_by_default(hapt_quick_small: WindowSet):
    ws = hapt_quick_small
    ids, counts = train_recordings(ws)
    longest = ids[np.argmax(counts)]
    got = SRKD.training_set(ws, SRKDParams())
    assert set(got.recording.tolist()) == {longest} and (got.split == 0).all()
    # repeated to the training split's size: as many steps as a run on every window
    n_train, n_mine = int(ws.mask("train").sum()), int(counts.max())
    assert len(got.X) == n_train > n_mine
    mine = ws.mask("train") & (ws.recording == longest)
    assert np.array_equal(got.X[:n_mine], ws.X[mine])
    assert np.array_equal(got.start[:n_mine], ws.start[mine])
    _, copies = np.unique(got.start, return_counts=True)
    assert len(copies) == n_mine and copies.max() - copies.min() <= 1  # each as often
    one_pass = SRKD.training_set(ws, SRKDParams(epoch_windows=n_mine))
    assert np.array_equal(one_pass.X, ws.X[mine])


def test_a_named_recording_and_its_first_seconds(hapt_quick_small: WindowSet) -> None:
    ws = hapt_quick_small
    rec = ws.meta["recordings"]
    ids, _ = train_recordings(ws)
    pick = int(ids[-1])
    subject, session = str(rec[pick]["subject"]), str(rec[pick]["session"])
    got = SRKD.training_set(ws, SRKDParams(subject=subject, session=session))
    assert set(got.recording.tolist()) == {pick}
    window_s = ws.X.shape[-1] / ws.meta["rate_hz"]  # 2.56 s, a new window every 1.28 s
    short = SRKD.training_set(ws, SRKDParams(subject=subject, session=session, seconds=10.0))
    assert set(short.recording.tolist()) == {pick} and len(short.X) == len(got.X)
    assert 0 < len(np.unique(short.start)) < len(np.unique(got.start))
    span = (short.start.max() + ws.X.shape[-1] - short.start.min()) / ws.meta["rate_hz"]
    assert window_s <= span <= 10.0
    by_subject = SRKD.training_set(ws, SRKDParams(subject=subject))
    assert len(set(by_subject.recording.tolist())) == 1
    assert {str(rec[r]["subject"]) for r in by_subject.recording} == {subject}


def test_a_recording_that_is_not_there_is_one_line(hapt_quick_small: WindowSet) -> None:
    with pytest.raises(ValueError) as err:
        SRKD.training_set(hapt_quick_small, SRKDParams(subject="2"))  # a test subject
    msg = str(err.value)
    assert "subject='2'" in msg and "training recordings: ['1/exp01'" in msg and "\n" not in msg
    with pytest.raises(ValueError, match="shorter than one window"):
        SRKD.training_set(hapt_quick_small, SRKDParams(seconds=1.0))


def test_the_teachers_outputs_are_the_only_signal() -> None:
    ctx = DistillContext(3, 8, {"acc": [0], "gyro": [1]}, list("abc"))
    s, t = [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]
    d = build_distiller("srkd", ViewModel(FixedLogits(s), [0]),
                        {"t": FrozenTeacher(FixedLogits(t), [0, 1])}, ctx, {"temperature": 2.0})
    x = torch.randn(4, 2, 8)
    a = Batch(x=x, y=torch.zeros(4, dtype=torch.long), y_soft=torch.eye(3)[[0, 0, 0, 0]])
    b = Batch(x=x, y=torch.full((4,), 2), y_soft=torch.eye(3)[[2, 2, 2, 2]])
    la, lb = d.forward_train(a, 0)[1], d.forward_train(b, 0)[1]
    assert set(la) == {"kd"} and la["kd"].item() == lb["kd"].item()  # labels never matter
    expected = kd_kl(torch.tensor([s]), torch.tensor([t]), 2.0)
    assert la["kd"].item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.slow
def test_every_training_batch_comes_from_the_one_recording(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    """`assemble` on the shipped config's augmentation: the batch source holds that one
    recording's windows and nothing else; without augmentation every batch window is one."""
    from harkd.train.assemble import assemble
    from harkd.train.loop import fit

    ws = hapt_quick_small
    teacher_dir = tmp_path / "teacher"
    fit(run_config(tmp_path, "none", {}, model=SMALL_CNN), ws=ws, run_dir=teacher_dir,
        progress=False)
    teachers = {"t": {**SMALL_CNN, "run_dir": str(teacher_dir)}}
    shipped = load_run_config(REPO / "configs" / "distill" / "srkd.yaml").augment.model_dump()
    train = ws.mask("train")
    of_7 = [i for i, r in enumerate(ws.meta["recordings"]) if r["subject"] == "7"]
    longest_of_7 = max(of_7, key=lambda i: int((train & (ws.recording == i)).sum()))
    mine = train & (ws.recording == longest_of_7)
    for augment in (shipped, {"policy": "none"}):
        cfg = run_config(tmp_path, "srkd", {"subject": "7"}, augment=augment, teachers=teachers)
        run = assemble(cfg, ws)
        windows = run.normalizer(ws.X[mine])
        n_train = int(train.sum())  # the recording's windows repeated to the split's size
        assert torch.equal(run.batches.loader.x, windows[np.resize(np.arange(len(windows)),
                                                                   n_train)])
        batches = list(run.batches.epoch(0))
        assert sum(len(b.x) for b in batches) == n_train > int(mine.sum())
        kept = int(mine.sum())  # the other windows are dropped, and counted
        assert run.training_windows == {"split": n_train, "kept": kept,
                                        "dropped": n_train - kept, "per_epoch": n_train}
        if augment["policy"] == "none":
            flat, exact = windows.flatten(1), "donot_use_mm_for_euclid_dist"
            for b in batches:
                distance = torch.cdist(b.x.flatten(1), flat, compute_mode=exact)
                assert distance.min(dim=1).values.max() == 0
