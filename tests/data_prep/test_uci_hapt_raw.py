"""The `uci_hapt_raw` reader on RawData/ folders written from the real HAPT data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from data_prep.readers import get_reader
from data_prep.recording import RecordingError

HAPT_QUICK = Path(__file__).resolve().parents[2] / "configs" / "data" / "hapt-quick.yaml"
EXPERIMENTS = ("exp01", "exp03")  # user 1's first and user 2's first experiment


@pytest.fixture(scope="module")
def real_rawdata(tmp_path_factory, hapt_raw_recordings, rawdata_writer):
    """(dataset root, the recordings written): two real experiments in the RawData/ layout."""
    recs = [r for r in hapt_raw_recordings if r.session in EXPERIMENTS]
    return rawdata_writer(tmp_path_factory.mktemp("UCI_HAPT"), recs).parent, recs


def test_labels_file_matches_the_original(real_rawdata):
    root, _ = real_rawdata
    rows = (root / "RawData" / "labels.txt").read_text().splitlines()
    assert rows[0] == "1 1 5 250 1232"  # the first row of the original UCI HAPT labels.txt
    assert [sorted(p.name for p in (root / "RawData").glob("*_exp*"))] == [
        [
            "acc_exp01_user01.txt",
            "acc_exp03_user02.txt",
            "gyro_exp01_user01.txt",
            "gyro_exp03_user02.txt",
        ]
    ]


def test_reads_the_same_recordings_as_the_pickle(real_rawdata):
    root, want = real_rawdata
    got = get_reader("uci_hapt_raw")(root)
    assert [(r.subject, r.session) for r in got] == [("1", "exp01"), ("2", "exp03")]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.signals, w.signals)
        np.testing.assert_array_equal(g.labels, w.labels)
        assert (g.channels, g.units, g.groups, g.rate_hz) == (
            w.channels,
            w.units,
            w.groups,
            w.rate_hz,
        )
    # the RawData/ folder itself is accepted too
    assert len(get_reader("uci_hapt_raw")(root / "RawData")) == 2


def test_both_readers_give_the_same_windows(real_rawdata, tmp_path):
    root, _ = real_rawdata
    common = ["subjects=[1, 2]", "split.test_subjects=[2]", "split.val_subjects=[]"]
    from_pickle = prepare(load_data_config(HAPT_QUICK, common), tmp_path, progress=False)
    from_text = prepare(
        load_data_config(HAPT_QUICK, [*common, "reader=uci_hapt_raw", f"path={root}"]),
        tmp_path,
        progress=False,
    )
    sessions = [r["session"] for r in from_pickle.meta["recordings"]]
    keep = np.isin(np.array(sessions)[from_pickle.recording], EXPERIMENTS)
    assert keep.sum() == len(from_text) > 100
    np.testing.assert_array_equal(from_pickle.X[keep], from_text.X)
    for name in ("y", "subject", "start", "split"):
        np.testing.assert_array_equal(getattr(from_pickle, name)[keep], getattr(from_text, name))


def _write(raw: Path, name: str, text: str) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    (raw / name).write_text(text)
    return raw


GOOD = "0.1 0.2 0.3\n0.4 0.5 0.6\n0.7 0.8 0.9\n"


@pytest.mark.parametrize(
    ("acc", "labels", "error"),
    [
        ("", "1 1 5 0 1\n", r"acc_exp01_user01.txt: empty file"),
        (
            "0.1 0.2 0.3\n0.4 0.5\n0.7 0.8 0.9\n",
            "1 1 5 0 1\n",
            r"acc_exp01_user01.txt:2: expected 3",
        ),
        (
            "0.1 0.2 0.3\n0.4 abc 0.6\n0.7 0.8 0.9\n",
            "1 1 5 0 1\n",
            r"acc_exp01_user01.txt:2: non-numeric",
        ),
        ("0.1 0.2 0.3 0.4\n" * 3, "1 1 5 0 1\n", r"acc_exp01_user01.txt:1: expected 3 .* got 4"),
        (GOOD, "1 1 13 0 1\n", r"labels.txt:1: activity 13 outside the HAPT label map"),
        (GOOD, "1 1 5 0 1\n1 1 5 1\n", r"labels.txt:2: expected 5 columns"),
        (GOOD, "1 1 5 0 x\n", r"labels.txt:1: non-integer cell"),
        (GOOD, "1 1 5 2 7\n", r"labels.txt:1: segment 2..7 ends past the 3 samples"),
        (GOOD, "1 1 5 0 1\n9 4 1 0 1\n", r"labels.txt:2: labels for experiment 9 user 4"),
        (GOOD, "\n", r"labels.txt: empty file"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, acc, labels, error):
    raw = _write(tmp_path / "RawData", "acc_exp01_user01.txt", acc)
    _write(raw, "gyro_exp01_user01.txt", GOOD)
    _write(raw, "labels.txt", labels)
    with pytest.raises(RecordingError, match=error):
        get_reader("uci_hapt_raw")(tmp_path)


def test_missing_and_mismatched_files(tmp_path):
    raw = _write(tmp_path / "RawData", "labels.txt", "1 1 5 0 1\n")
    with pytest.raises(FileNotFoundError, match="no acc_expXX_userYY.txt"):
        get_reader("uci_hapt_raw")(tmp_path)
    _write(raw, "acc_exp01_user01.txt", GOOD)
    with pytest.raises(FileNotFoundError, match="gyro_exp01_user01.txt: missing"):
        get_reader("uci_hapt_raw")(tmp_path)
    _write(raw, "gyro_exp01_user01.txt", GOOD + "1 1 1\n")
    with pytest.raises(RecordingError, match="gyro_exp01_user01.txt: 4 rows but .* has 3"):
        get_reader("uci_hapt_raw")(tmp_path)
    with pytest.raises(FileNotFoundError, match="no labels.txt"):
        get_reader("uci_hapt_raw")(tmp_path / "elsewhere")
