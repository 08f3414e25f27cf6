"""`prepare` end to end: the real hapt-quick and hapt-12 protocols, caching, drops and errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from data_prep.recording import RecordingError
from data_prep.windowset import SPLITS
from harkd.config import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"
HAPT_QUICK = CONFIGS / "hapt-quick.yaml"
HAPT_12 = CONFIGS / "hapt-12.yaml"


def _split_subjects(ws):
    return {s: set(ws.subject[ws.mask(s)].tolist()) for s in SPLITS}


def _check_invariants(ws, recordings=None):
    subjects = _split_subjects(ws)
    assert all(subjects.values())
    assert not (subjects["train"] & subjects["val"] or subjects["train"] & subjects["test"])
    assert not subjects["val"] & subjects["test"]
    assert {s: set(v) for s, v in ws.meta["split_subjects"].items()} == subjects
    train = ws.X[ws.mask("train")]
    np.testing.assert_allclose(
        ws.meta["norm"]["mean"], train.mean(axis=(0, 2)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(ws.meta["norm"]["std"], train.std(axis=(0, 2)), rtol=1e-4)
    if recordings is not None:  # every window is a slice of its own recording
        for i in np.random.default_rng(0).choice(len(ws), 50, replace=False):
            rec = recordings[ws.meta["recordings"][ws.recording[i]]["session"]]
            assert rec.subject == ws.subject[i]
            np.testing.assert_array_equal(ws.X[i], rec.signals[ws.start[i] : ws.start[i] + 128].T)


def test_hapt_quick_full(tmp_path, hapt_raw_recordings):
    cfg = load_data_config(HAPT_QUICK)
    ws = prepare(cfg, tmp_path, progress=False)
    assert ws.X.shape == (10_666, 6, 128) and ws.X.dtype == np.float32
    assert [int(ws.mask(s).sum()) for s in SPLITS] == [6385, 1209, 3072]
    assert ws.meta["split_subjects"]["test"] == ["2", "4", "9", "10", "12", "13", "18", "20", "24"]
    assert len(ws.meta["split_subjects"]["train"]) == 18
    assert ws.label_names == [
        "WALKING",
        "WALKING_UPSTAIRS",
        "WALKING_DOWNSTAIRS",
        "SITTING",
        "STANDING",
        "LAYING",
    ]
    assert ws.groups == {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
    assert ws.meta["read"] == {"recordings": 61, "subjects": 30, "samples": 1_122_772}
    assert ws.meta["dropped"] == {
        "windows_impure": 2137,
        "windows_null": 4023,
        "windows_unselected_label": 627,
    }
    assert np.bincount(ws.y, minlength=6).min() > 1400
    assert ws.meta["from_cache"] is False
    _check_invariants(ws, {r.session: r for r in hapt_raw_recordings})
    # the second run is a cache hit with equal arrays
    again = prepare(cfg, tmp_path, progress=False)
    assert again.meta["from_cache"] is True and again.meta["cache_path"] == ws.meta["cache_path"]
    for name in ("X", "y", "subject", "recording", "start", "split"):
        np.testing.assert_array_equal(getattr(again, name), getattr(ws, name))
    drop = ("from_cache",)
    assert {k: v for k, v in again.meta.items() if k not in drop} == {
        k: v for k, v in ws.meta.items() if k not in drop
    }


def test_hapt_quick_small_fixture(hapt_quick_small):
    ws = hapt_quick_small
    assert ws.meta["split_subjects"] == {
        "train": ["1", "6", "7", "8"],
        "val": ["3", "5"],
        "test": ["2", "4"],
    }
    assert [int(ws.mask(s).sum()) for s in SPLITS] == [1300, 670, 638]
    _check_invariants(ws)


def test_hapt_12_test_windows_overlap_90_percent(tmp_path):
    overrides = [
        "subjects=[1, 2, 3, 4, 5, 6]",
        "split.k=3",
        "split.fold=1",
        "split.n_val_subjects=1",
    ]
    ws = prepare(load_data_config(HAPT_12, overrides), tmp_path, progress=False)
    assert ws.num_classes == 12 and ws.meta["split_subjects"]["test"] == ["3", "4"]
    assert (ws.meta["step"], ws.meta["test_step"]) == (64, 13)
    for split, step in (("train", 64), ("test", 13)):
        m = ws.mask(split)
        assert (ws.start[m] % step == 0).all()
        assert set(ws.y[m].tolist()) >= {0, 5}
    assert set(ws.y[ws.mask("test")].tolist()) & set(range(6, 12))  # transitions are windows too
    _check_invariants(ws)


@pytest.fixture
def synthetic_rawdata(tmp_path, rawdata_writer, make_recording):
    """Four users: the third recording (user 3) is shorter than one window."""
    recs = [
        make_recording([-1] * 40 + [1] * 300 + [4] * 300 + [7] * 200, user=1, exp=1),
        make_recording([2] * 400 + [-1] * 200, user=2, exp=2, seed=1),
        make_recording([1] * 100, user=3, exp=3, seed=2),
        make_recording([5] * 300 + [6] * 300, user=4, exp=4, seed=3),
    ]
    return rawdata_writer(tmp_path / "UCI_HAPT", recs).parent


def _synthetic_config(root, *more):
    base = [
        "reader=uci_hapt_raw",
        f"path={root}",
        "split.test_subjects=[4]",
        "split.val_subjects=[2]",
    ]
    return load_data_config(HAPT_QUICK, [*base, *more])


def test_short_recordings_and_null_windows_are_counted(synthetic_rawdata, tmp_path):
    ws = prepare(_synthetic_config(synthetic_rawdata), tmp_path / "c", progress=False)
    dropped = ws.meta["dropped"]
    assert dropped["recordings_shorter_than_window"] == 1
    assert dropped["samples_in_short_recordings"] == 100
    assert dropped["windows_null"] >= 1 and dropped["windows_unselected_label"] >= 1
    assert ws.meta["split_subjects"] == {"train": ["1"], "val": ["2"], "test": ["4"]}
    kept = prepare(
        _synthetic_config(synthetic_rawdata, "null_class=keep"), tmp_path / "c", progress=False
    )
    assert kept.label_names[-1] == "null" and (kept.y == 6).sum() == dropped["windows_null"]
    assert "windows_null" not in kept.meta["dropped"]


def test_cache_key_follows_source_and_config(synthetic_rawdata, tmp_path, monkeypatch):
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "env-cache"))
    cfg = _synthetic_config(synthetic_rawdata)
    first = prepare(cfg, progress=False)
    assert Path(first.meta["cache_path"]).parent == tmp_path / "env-cache"
    assert prepare(cfg, progress=False).meta["from_cache"] is True
    other = prepare(_synthetic_config(synthetic_rawdata, "purity=0.9"), progress=False)
    assert (
        other.meta["from_cache"] is False and other.meta["cache_path"] != first.meta["cache_path"]
    )
    acc = synthetic_rawdata / "RawData" / "acc_exp01_user01.txt"
    os.utime(acc, ns=(acc.stat().st_atime_ns, acc.stat().st_mtime_ns + 10**9))
    assert prepare(cfg, progress=False).meta["from_cache"] is False


@pytest.mark.parametrize(
    ("overrides", "error", "kind"),
    [
        (["labels.13=FOO"], r"labels \[13\] are not labels of", ConfigError),
        (["groups=[acc, mag]"], r"groups \['mag'\] not in", ConfigError),
        (["subjects=[1, 9]"], r"subjects \['9'\] are not in", ConfigError),
        (["split.test_subjects=[3]"], r"test_subjects \['3'\] are not in the data", ConfigError),
        (["split.label_budget=2"], "label_budget=2 but only 1 training subjects", ConfigError),
        (["window.length=1000"], "no recording is at least one window long", RecordingError),
        (["rate_hz=33.3333"], "rational factor", RecordingError),
    ],
)
def test_bad_configs_name_the_problem(synthetic_rawdata, tmp_path, overrides, error, kind):
    with pytest.raises(kind, match=error):
        prepare(_synthetic_config(synthetic_rawdata, *overrides), tmp_path, progress=False)


def test_nan_gaps_are_repaired_and_reported(tmp_path, rawdata_writer, make_recording):
    gappy = make_recording([1] * 700, user=1, exp=1)
    gappy.signals[100:103, 0] = np.nan  # 3 samples <= 0.1 s at 50 Hz: interpolated
    gappy.signals[400:420, 4] = np.inf  # 20 samples: cut, the recording is split in two
    recs = [gappy, make_recording([2] * 300, 2, 2, seed=1), make_recording([3] * 300, 3, 3, seed=2)]
    root = rawdata_writer(tmp_path / "UCI_HAPT", recs).parent
    ws = prepare(_synthetic_config(root, "split.test_subjects=[3]"), tmp_path / "c", progress=False)
    assert ws.meta["repair"] == {
        "recording_splits": 1,
        "samples_cut_nan": 20,
        "samples_interpolated": 3,
    }
    sessions = [r["session"] for r in ws.meta["recordings"]]
    assert sessions[:2] == ["exp01/part0", "exp01/part1"]
    assert [r["samples"] for r in ws.meta["recordings"][:2]] == [400, 280]
    assert np.isfinite(ws.X).all()
