"""The `wisdm` reader on WISDM v1.1 raw text, including the file's known malformed lines."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.readers import ReadResult, get_reader
from data_prep.recording import RecordingError
from data_prep.repair import repair

T0 = 49105962326000  # a real WISDM time stamp (ns)
STEP = 50_000_000  # 20 Hz


def rec(user: int, activity: str, k: int, x: float = 0.5, end: str = ";") -> str:
    return f"{user},{activity},{T0 + k * STEP},{x},9.8,-1.25{end}"


# line numbers in comments; every known defect of WISDM_ar_v1.1_raw.txt appears once
LINES = [
    rec(33, "Jogging", 0),  # 1
    rec(33, "Jogging", 1, end=""),  # 2 missing semicolon
    rec(33, "Jogging", 2) + rec(33, "Jogging", 3),  # 3 two records on one line
    "33,Jogging,0,1.0,2.0,3.0;",  # 4 time stamp 0
    rec(33, "Jogging", 4, end=",;"),  # 5 trailing comma
    f"33,Jogging,{T0 + 5 * STEP},0.5,,-1.25;",  # 6 empty field
    f"33,Walking,{T0 + 6 * STEP},0.",  # 7 line ending mid-record ...
    "5,9.8,-1.25;",  # 8 ... completed by the next line
    "",  # 9 blank
    rec(33, "Walking", 200),  # 10 10 s later: a new run
    rec(7, "Sitting", 0),  # 11 another user
    rec(7, "Sitting", 1),  # 12
]


@pytest.fixture()
def wisdm_file(tmp_path):
    path = tmp_path / "WISDM_ar_v1.1_raw.txt"
    path.write_text("\n".join(LINES) + "\n")
    return path


def test_reads_records_and_counts_every_repair(wisdm_file):
    recs = get_reader("wisdm")(wisdm_file.parent)  # the folder is accepted
    assert isinstance(recs, ReadResult)
    assert recs.counts == {
        "blank_lines": 1,
        "empty_value_as_nan": 1,
        "missing_semicolon": 1,
        "records_joined_across_lines": 1,
        "records_sharing_a_line": 1,
        "runs_split_at_time_gap": 1,
        "timestamp_zero": 1,
        "trailing_comma": 1,
    }
    assert recs.examples["timestamp_zero"] == [f"{wisdm_file}:4"]
    assert recs.examples["records_joined_across_lines"] == [f"{wisdm_file}:7"]
    assert [(r.subject, r.session, r.n_samples) for r in recs] == [
        ("33", "run0", 7),
        ("33", "run1", 1),
        ("7", "run0", 2),
    ]
    first = recs[0]
    assert first.source == f"{wisdm_file}:1-8"
    np.testing.assert_allclose(first.timestamps - first.timestamps[0], np.arange(7) * 0.05)
    assert first.signals[:, 0].tolist()[:6] == [0.5] * 6 and np.isnan(first.signals[5, 1])
    assert first.labels.tolist() == [2] * 6 + [1]
    assert first.label_names[2] == "Jogging" and first.units == ["m/s^2"] * 3
    assert first.rate_hz == 20.0 and first.groups == {"acc": [0, 1, 2]}


def test_empty_field_is_interpolated_by_repair(wisdm_file):
    (first, *_), counts = repair(get_reader("wisdm")(wisdm_file)[0], max_gap_s=0.1)
    assert counts == {"samples_interpolated": 1}
    assert first.validate().signals[5, 1] == pytest.approx(9.8)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("33,Jogging,49105962326000,0.5,9.8;", "5 fields"),
        ("33,Running,49105962326000,0.5,9.8,1.0;", "unknown activity 'Running'"),
        ("33,Jogging,49105962326000,0.5,abc,1.0;", "non-numeric value 'abc'"),
        ("x3,Jogging,49105962326000,0.5,9.8,1.0;", "user and timestamp must be integers"),
        ("33,Jogging,4910596", "line ends mid-record"),
    ],
)
def test_malformed_record_names_file_and_line(tmp_path, line, why):
    path = tmp_path / "w.txt"
    path.write_text(f"{rec(1, 'Walking', 0)}\n{line}\n{rec(1, 'Walking', 1)}\n")
    with pytest.raises(RecordingError, match=rf"w\.txt:2: {why}"):
        get_reader("wisdm")(path)
    recs = get_reader("wisdm")(path, on_bad_line="skip")
    assert recs.counts == {"bad_records_skipped": 1}
    assert recs.examples == {"bad_records_skipped": [f"{path}:2"]}
    assert [r.n_samples for r in recs] == [2]


def test_truncated_last_line_and_empty_file(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text(f"{rec(1, 'Walking', 0)}\n1,Walking,49")
    with pytest.raises(RecordingError, match=r"w\.txt:2: file ends mid-record"):
        get_reader("wisdm")(path)
    path.write_text("")
    with pytest.raises(RecordingError, match=r"w\.txt: no records"):
        get_reader("wisdm")(path)


def test_backward_time_starts_a_new_recording(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("\n".join(rec(1, "Walking", k) for k in (0, 1, 2, 0, 1)) + "\n")
    recs = get_reader("wisdm")(path)
    assert [r.n_samples for r in recs] == [3, 2]
    assert recs.counts == {"runs_split_at_backward_time": 1}
    assert recs.examples == {}


def test_wisdm_protocol_windows_10_s_at_20_hz(tmp_path):
    from pathlib import Path

    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    jitter = np.random.default_rng(0).integers(-2_000_000, 2_000_000, size=520)
    lines = [
        f"{user},Walking,{T0 + k * STEP + jitter[k]},{k % 7},9.8,-1.25;"
        for user in (1, 2, 3)
        for k in range(520)
    ]
    lines[10] = "1,Walking,0,0.0,0.0,0.0;"  # time stamp 0: skipped and counted
    path = tmp_path / "WISDM_ar_v1.1_raw.txt"
    path.write_text("\n".join(lines) + "\n")
    config = Path(__file__).resolve().parents[2] / "configs" / "data" / "wisdm.yaml"
    overrides = [
        f"path={path}",
        "split.kind=fixed",
        "split.test_subjects=[3]",
        "split.val_subjects=[2]",
    ]
    ws = prepare(load_data_config(config, overrides), tmp_path / "cache", progress=False)
    assert ws.X.shape == (12, 3, 200) and ws.meta["rate_hz"] == 20
    assert ws.label_names[ws.y[0]] == "Walking" and set(ws.y.tolist()) == {0}
    assert ws.meta["split_subjects"] == {"train": ["1"], "val": ["2"], "test": ["3"]}
    # what the reader repaired or skipped in the file is carried into the prepared set
    assert ws.meta["repair"]["reader_timestamp_zero"] == 1
