"""Label budgets and the unlabelled pool: synthetic UCI HAPT RawData/ recordings and the real
`hapt-budget` protocol, through `prepare`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from data_prep.config import load_data_config
from data_prep.pipeline import POOL_REASONS, prepare
from data_prep.windowing import label_windows
from data_prep.windowset import SPLITS
from harkd.cli import main
from harkd.config import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"
HAPT_BUDGET = CONFIGS / "hapt-budget.yaml"
HAPT_QUICK = CONFIGS / "hapt-quick.yaml"
ARRAYS = ("X", "y", "subject", "recording", "start", "split")
NO_BUDGET = ["split.label_budget=null", "split.pool=false"]


def _labels(user: int) -> np.ndarray:
    """A label track with every kind of window: unlabelled (-1), a transition (7, outside the
    6 classes), clean activities and short alternating runs that make impure windows."""
    runs = [(-1, 150 + 16 * user), (1, 300), (7, 200), (4, 300)]
    runs += [(5, 60), (6, 60), (2, 60)] * 2 + [(6, 300), (-1, 100)]
    return np.concatenate([np.full(n, label, dtype=np.int64) for label, n in runs])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, rawdata_writer, make_recording):
    """Eight users in the UCI HAPT RawData/ layout: (source folder, user -> label track)."""
    labels = {user: _labels(user) for user in range(1, 9)}
    recs = [make_recording(lab, user=u, exp=u, seed=u) for u, lab in labels.items()]
    root = tmp_path_factory.mktemp("hapt") / "UCI_HAPT"
    return rawdata_writer(root, recs).parent, labels


def _prep(synthetic, cache: Path, *overrides: str):
    """hapt-budget (with its pool) on the synthetic users: test user 8, 2 validation users
    drawn from the other 7, so 5 training users of which the budget (2 unless overridden)
    keep their labels."""
    root, _ = synthetic
    base = [
        "reader=uci_hapt_raw",
        f"path={root}",
        "split.test_subjects=[8]",
        "split.n_val_subjects=2",
        "split.label_budget=2",
    ]
    return prepare(load_data_config(HAPT_BUDGET, [*base, *overrides]), cache, progress=False)


def _category(track: np.ndarray, start: int, ws) -> str | int:
    """What the window at `start` is, recomputed from the label track: its class index, or
    the reason it has no usable label."""
    values, counts = np.unique(track[start : start + ws.meta["window"]], return_counts=True)
    major = int(values[counts.argmax()])  # ties: the smallest id, as np.unique sorts
    if counts.max() / ws.meta["window"] < ws.meta["purity"] - 1e-9:
        return "windows_impure"
    if major == -1:
        return "windows_null"
    if major not in ws.meta["label_ids"]:
        return "windows_unselected_label"
    return ws.meta["label_ids"].index(major)


def _account(ws, labels: dict[int, np.ndarray]) -> tuple[Counter, Counter]:
    """Check every window the protocol cuts is in exactly one split or dropped; return the
    (pool, dropped) counts by reason, recomputed from the label tracks."""
    subjects = ws.meta["split_subjects"]
    hidden = set(ws.meta.get("hidden_subjects", []))
    training = set(subjects["train"]) | hidden
    seen = set()
    pooled, dropped = Counter(), Counter()
    for i, rec in enumerate(ws.meta["recordings"]):
        subject, track = rec["subject"], labels[int(rec["subject"])]
        assert rec["samples"] == len(track)
        step = ws.meta["test_step"] if subject in subjects["test"] else ws.meta["step"]
        mine = np.flatnonzero(ws.recording == i)
        kept = {int(ws.start[k]): k for k in mine}
        for start in range(0, len(track) - ws.meta["window"] + 1, step):
            what = _category(track, start, ws)
            usable = isinstance(what, int)  # has a class label
            k = kept.pop(start, None)
            if k is not None and ws.split[k] < len(SPLITS):  # a labelled split
                assert usable and what == ws.y[k] and subject in subjects[SPLITS[ws.split[k]]]
            else:  # pooled or dropped: by the budget when the label is usable, else by reason
                assert not usable or subject in hidden
                counts = dropped if k is None else pooled
                counts["windows_label_budget" if usable else what] += 1
            if k is not None:
                seen.add(k)
                if ws.split[k] == 3:
                    assert ws.y[k] == -1 and subject in training
        assert not kept  # no window off the recording's grid
    assert seen == set(range(len(ws)))  # every window of the WindowSet accounted once
    return pooled, dropped


def test_pool_holds_training_subjects_unlabelled_windows(synthetic, tmp_path):
    ws = _prep(synthetic, tmp_path)
    subjects = ws.meta["split_subjects"]
    assert subjects["test"] == ["8"] and len(subjects["val"]) == 2
    assert len(subjects["train"]) == 2 and len(subjects["pool"]) == 3
    assert subjects["pool"] == ws.meta["hidden_subjects"]
    everyone = [s for part in subjects.values() for s in part]
    assert sorted(everyone, key=int) == [str(u) for u in range(1, 9)]
    pool = ws.mask("pool")
    assert (ws.y[pool] == -1).all() and (ws.y[~pool] >= 0).all()
    in_pool = set(ws.subject[pool].tolist())
    assert in_pool == set(subjects["train"]) | set(subjects["pool"])  # never val or test
    for split in SPLITS:
        assert set(ws.subject[ws.mask(split)].tolist()) == set(subjects[split])
    pooled, dropped = _account(ws, synthetic[1])
    assert dict(pooled) == {k: v for k, v in ws.meta["pool"].items() if v}
    assert set(ws.meta["pool"]) == set(POOL_REASONS) and all(ws.meta["pool"].values())
    assert sum(ws.meta["pool"].values()) == int(pool.sum())
    assert dict(dropped) == ws.meta["dropped"]  # only val and test windows are dropped
    assert set(ws.meta["dropped"]) == {"windows_impure", "windows_null", "windows_unselected_label"}
    assert "windows_label_budget" not in ws.meta["dropped"]


def test_without_the_pool_the_budget_drops_and_counts(synthetic, tmp_path):
    pooled_ws = _prep(synthetic, tmp_path)
    ws = _prep(synthetic, tmp_path, "split.pool=false")
    assert not ws.mask("pool").any() and "pool" not in ws.meta
    assert "pool" not in ws.meta["split_subjects"]
    assert ws.meta["hidden_subjects"] == pooled_ws.meta["split_subjects"]["pool"]
    pooled, dropped = _account(ws, synthetic[1])
    assert not pooled and dict(dropped) == ws.meta["dropped"]
    # the pool takes exactly what is dropped without it, reason by reason
    both = Counter(pooled_ws.meta["dropped"]) + Counter(pooled_ws.meta["pool"])
    assert both == Counter(ws.meta["dropped"])
    for split in SPLITS:  # the labelled splits are the same windows
        for name in ARRAYS:
            a, b = getattr(ws.subset(split), name), getattr(pooled_ws.subset(split), name)
            np.testing.assert_array_equal(a, b)


def test_pool_without_budget_adds_windows_and_changes_nothing_else(synthetic, tmp_path):
    plain = _prep(synthetic, tmp_path, *NO_BUDGET)
    ws = _prep(synthetic, tmp_path, "split.label_budget=null")
    assert "hidden_subjects" not in ws.meta and ws.meta["split_subjects"]["pool"] == []
    assert ws.meta["pool"]["windows_label_budget"] == 0
    assert set(ws.subject[ws.mask("pool")].tolist()) == set(plain.meta["split_subjects"]["train"])
    assert ws.meta["norm"] == plain.meta["norm"]  # statistics of the labelled windows only
    for split in SPLITS:
        for name in ARRAYS:
            a, b = getattr(ws.subset(split), name), getattr(plain.subset(split), name)
            np.testing.assert_array_equal(a, b)
    pooled, dropped = _account(ws, synthetic[1])
    assert dict(pooled) == {k: v for k, v in ws.meta["pool"].items() if v}


def test_normalisation_comes_from_the_labelled_training_windows(synthetic, tmp_path):
    ws = _prep(synthetic, tmp_path)
    train = ws.X[ws.mask("train")].astype(np.float64)
    np.testing.assert_allclose(ws.meta["norm"]["mean"], train.mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(ws.meta["norm"]["std"], train.std(axis=(0, 2)), rtol=1e-6)
    assert ws.meta["norm"] == _prep(synthetic, tmp_path, "split.pool=false").meta["norm"]


def test_cache_round_trip_and_keys(synthetic, tmp_path):
    fresh = _prep(synthetic, tmp_path)
    cached = _prep(synthetic, tmp_path)
    assert (fresh.meta["from_cache"], cached.meta["from_cache"]) == (False, True)
    for name in ARRAYS:
        a, b = getattr(fresh, name), getattr(cached, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert {k: v for k, v in fresh.meta.items() if k != "from_cache"} == {
        k: v for k, v in cached.meta.items() if k != "from_cache"
    }
    paths = {
        _prep(synthetic, tmp_path, *more).meta["cache_path"]
        for more in ([], ["split.pool=false"], ["split.label_budget_seed=1"], NO_BUDGET)
    }
    assert len(paths) == 4  # every option is in the key
    unused = ["split.label_budget=null", "split.label_budget_seed=7", "split.pool=false"]
    again = _prep(synthetic, tmp_path, *unused)
    assert again.meta["from_cache"] is True  # unused options leave the key as before


def test_budget_above_the_training_subjects_is_one_line(synthetic, tmp_path, capsys):
    with pytest.raises(ConfigError, match="split.label_budget=6 but only 5 training subjects"):
        _prep(synthetic, tmp_path, "split.label_budget=6")
    root, _ = synthetic
    argv = ["prep", str(HAPT_BUDGET), "reader=uci_hapt_raw", f"path={root}"]
    argv += ["split.test_subjects=[8]", "split.label_budget=9", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "split.label_budget=9 but only 4 training subjects" in err[0]


def test_prep_reports_the_pool(synthetic, tmp_path, capsys):
    root, _ = synthetic
    argv = ["prep", str(HAPT_BUDGET), "reader=uci_hapt_raw", f"path={root}"]
    argv += ["split.test_subjects=[8]", "split.n_val_subjects=2", "split.label_budget=2"]
    assert main([*argv, "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    ws = _prep(synthetic, tmp_path)
    line = next(line for line in out if line.startswith("pool"))
    n_pool = int(ws.mask("pool").sum())
    assert line.startswith(
        f"pool      {n_pool:,} unlabelled windows (subjects with hidden labels: 3)"
    )
    assert f"windows_label_budget: {ws.meta['pool']['windows_label_budget']:,}" in line
    assert main([*argv, "split.pool=false", "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    assert not any(line.startswith("pool") for line in capsys.readouterr().out.splitlines())


def test_windowing_returns_the_rejected_windows_by_reason():
    labels = np.array([2, 2, 1, 1, -1, -1, -1, -1, 7, 7, 7, 7, 1, 1, 1, 2])
    win = label_windows(labels, 4, 4, 0.6, {1: 0, 2: 1}, null_index=None)
    assert win.starts.tolist() == [12]
    assert {k: v.tolist() for k, v in win.rejected.items()} == {
        "windows_impure": [0],
        "windows_null": [4],
        "windows_unselected_label": [8],
    }
    assert dict(win.dropped) == {k: 1 for k in win.rejected}


def test_hapt_budget_on_the_real_data(tmp_path):
    quick = prepare(load_data_config(HAPT_QUICK), tmp_path, progress=False)
    ws = prepare(load_data_config(HAPT_BUDGET), tmp_path, progress=False)
    subjects = ws.meta["split_subjects"]
    assert subjects["val"] == quick.meta["split_subjects"]["val"]
    assert subjects["test"] == quick.meta["split_subjects"]["test"]
    assert len(subjects["train"]) == 3 and len(subjects["pool"]) == 15
    assert (
        sorted(subjects["train"] + subjects["pool"], key=int)
        == (quick.meta["split_subjects"]["train"])
    )
    assert [int(ws.mask(s).sum()) for s in (*SPLITS, "pool")] == [1164, 1209, 3072, 9336]
    assert ws.meta["pool"] == {
        "windows_impure": 1278,
        "windows_label_budget": 5221,
        "windows_null": 2483,
        "windows_unselected_label": 354,
    }
    assert (ws.y[ws.mask("pool")] == -1).all()
    assert not set(ws.subject[ws.mask("pool")].tolist()) & set(subjects["val"] + subjects["test"])
    # the same validation and test windows as hapt-quick; the training windows are its own
    for split in ("val", "test"):
        for name in ARRAYS:
            a, b = getattr(ws.subset(split), name), getattr(quick.subset(split), name)
            np.testing.assert_array_equal(a, b)
    labelled = np.isin(quick.subject, subjects["train"]) & quick.mask("train")
    np.testing.assert_array_equal(ws.X[ws.mask("train")], quick.X[labelled])
    # what hapt-quick drops of the training subjects, and its hidden labels, are the pool
    hidden = int((quick.mask("train") & ~labelled).sum())
    assert Counter(ws.meta["pool"]) + Counter(ws.meta["dropped"]) == Counter(
        quick.meta["dropped"]
    ) + Counter(windows_label_budget=hidden)
