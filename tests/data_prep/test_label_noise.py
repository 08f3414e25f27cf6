"""Seeded label noise (`split.label_noise`): it touches training labels only, at the configured
rate; symmetric noise moves labels to other classes, boundary noise moves the windows nearest
an activity change to the neighbouring activity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.config import LabelNoiseConfig, load_data_config
from data_prep.label_noise import add_label_noise, nearest_other_class
from data_prep.pipeline import prepare
from harkd.cli import main
from harkd.config import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"
HAPT_QUICK = CONFIGS / "hapt-quick.yaml"
HAPT_BUDGET = CONFIGS / "hapt-budget.yaml"
SMALL = ["subjects=[1, 2, 3, 4, 5, 6, 7, 8]", "split.test_subjects=[2, 4]",
         "split.val_subjects=[3, 5]"]  # fmt: skip
ARRAYS = ("X", "subject", "recording", "start", "split")


def noisy(kind: str, rate: float, seed: int = 0, protocol: Path = HAPT_QUICK, cache: Path = None,
          extra: tuple[str, ...] = ()):
    option = f"split.label_noise={{kind: {kind}, rate: {rate}, seed: {seed}}}"
    overrides = [*SMALL, option, *extra] if protocol == HAPT_QUICK else [option, *extra]
    return prepare(load_data_config(protocol, overrides), cache, progress=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("noise")


@pytest.fixture(scope="module")
def clean(cache):
    return prepare(load_data_config(HAPT_QUICK, SMALL), cache, progress=False)


@pytest.mark.parametrize("kind", ["symmetric", "boundary"])
@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_noise_touches_training_labels_only_at_the_rate(clean, cache, kind, rate):
    ws = noisy(kind, rate, cache=cache)
    train = clean.mask("train")
    changed = ws.y != clean.y
    assert not changed[~train].any()  # validation and test labels as recorded
    assert int(changed.sum()) == round(rate * int(train.sum()))
    assert ws.meta["label_noise"] == {"kind": kind, "rate": rate, "seed": 0,
                                      "training_windows": int(train.sum()),
                                      "relabelled": int(changed.sum())}
    for name in ARRAYS:  # the windows themselves are the same
        np.testing.assert_array_equal(getattr(ws, name), getattr(clean, name))
    assert ws.meta["norm"] == clean.meta["norm"]
    assert set(np.unique(ws.y[changed])) <= set(range(ws.num_classes))
    again = noisy(kind, rate, cache=cache)
    assert again.meta["from_cache"]
    np.testing.assert_array_equal(again.y, ws.y)


def test_symmetric_noise_is_seeded_and_spreads_over_the_other_classes(clean, cache):
    a = noisy("symmetric", 0.3, seed=0, cache=cache)
    b = noisy("symmetric", 0.3, seed=1, cache=cache)
    assert not np.array_equal(a.y != clean.y, b.y != clean.y)  # another seed, other windows
    changed = a.y != clean.y
    offsets = (a.y[changed] - clean.y[changed]) % clean.num_classes
    assert set(offsets.tolist()) == set(range(1, clean.num_classes))  # every other class drawn


def test_boundary_noise_takes_the_windows_nearest_another_activity(clean, cache):
    ws = noisy("boundary", 0.1, cache=cache)
    train = np.flatnonzero(clean.mask("train"))
    distance, other = nearest_other_class(clean.y[train], clean.recording[train],
                                          clean.start[train])
    changed = ws.y[train] != clean.y[train]
    # each relabelled window got its nearest other activity, and none was farther from an
    # activity change than a window left alone
    np.testing.assert_array_equal(ws.y[train][changed], other[changed])
    assert distance[changed].max() <= distance[~changed].min()
    # HAPT's activities are parted by unlabelled or transition stretches, so the neighbouring
    # activity is a few windows away; still every relabelled window ends or starts its run
    for i in np.flatnonzero(changed):
        rec = clean.recording[train] == clean.recording[train][i]
        between = np.abs(clean.start[train][rec] - clean.start[train][i]) < distance[i]
        assert (clean.y[train][rec][between] == clean.y[train][i]).all()


def test_boundary_noise_by_hand():
    # one recording of 6 windows (64 samples apart): 3 of class 0, then 3 of class 1, and a
    # second recording of class 2 only (no boundary: never chosen)
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    recording = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    start = np.array([0, 64, 128, 192, 256, 320, 0, 64])
    distance, other = nearest_other_class(y, recording, start)
    assert distance.tolist() == [192, 128, 64, 64, 128, 192, np.inf, np.inf]
    assert other.tolist() == [1, 1, 1, 0, 0, 0, -1, -1]
    train = np.ones(8, dtype=bool)
    noisy_y, report = add_label_noise(y, train, recording, start, 3,
                                      LabelNoiseConfig(kind="boundary", rate=0.25))
    assert noisy_y.tolist() == [0, 0, 1, 0, 1, 1, 2, 2]  # round(0.25 * 8) = 2: the pair at 64
    assert report["relabelled"] == 2
    with pytest.raises(ConfigError, match="asks for 7 boundary windows, but only 6 of the 8"):
        add_label_noise(y, train, recording, start, 3, LabelNoiseConfig(kind="boundary", rate=0.9))


def test_symmetric_noise_by_hand():
    y = np.arange(20) % 4
    train = np.arange(20) < 10  # the last 10 are validation / test windows
    noisy_y, report = add_label_noise(y, train, np.zeros(20, int), np.arange(20) * 64, 4,
                                      LabelNoiseConfig(kind="symmetric", rate=0.5, seed=3))
    changed = noisy_y != y
    assert changed.sum() == 5 and not changed[10:].any()  # round(0.5 * 10) of the training ten
    assert report == {"kind": "symmetric", "rate": 0.5, "seed": 3, "training_windows": 10,
                      "relabelled": 5}


def test_the_pool_keeps_its_missing_labels(cache):
    ws = noisy("symmetric", 0.3, protocol=HAPT_BUDGET, cache=cache)
    plain = prepare(load_data_config(HAPT_BUDGET), cache, progress=False)
    pool = plain.mask("pool")
    assert (ws.y[pool] == -1).all()
    changed = ws.y != plain.y
    assert changed.sum() == round(0.3 * plain.mask("train").sum())
    assert not changed[~plain.mask("train")].any()


def test_a_subset_keeps_the_noisy_labels_of_the_full_training_set(cache):
    """Noise is drawn over every training subject before a subset is cut, so a window's noisy
    label is the same for each RoS-KD teacher and for the student."""
    full = noisy("symmetric", 0.3, cache=cache)
    subset = "split.subset={count: 2, index: 0, overlap: 0}"
    part = noisy("symmetric", 0.3, cache=cache, extra=(subset,))
    mine = full.mask("train") & np.isin(full.subject, part.meta["split_subjects"]["train"])
    assert 0 < mine.sum() < full.mask("train").sum()
    np.testing.assert_array_equal(part.y[part.mask("train")], full.y[mine])


def test_prep_reports_noise_and_subset(cache, capsys):
    option = "split.label_noise={kind: boundary, rate: 0.1}"
    subset = "split.subset={count: 2, index: 1, overlap: 0}"
    argv = ["prep", str(HAPT_QUICK), *SMALL, option, subset, "--cache-dir", str(cache),
            "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    noise = next(line for line in out if line.startswith("noise"))
    assert noise == "noise     130 of 1,300 training labels changed (boundary, rate 0.1, seed 0)"
    subset = next(line for line in out if line.startswith("subset"))
    assert subset.startswith("subset    trains on 2 of the training subjects; left out: [")
    dropped = next(line for line in out if line.startswith("dropped"))
    assert "windows_outside_subject_subset" in dropped
    assert main(["prep", str(HAPT_QUICK), *SMALL, "split.label_noise={rate: 0}",
                 "--cache-dir", str(cache), "--no-progress"]) == 2  # a config error
    assert "split.label_noise.rate" in capsys.readouterr().err
