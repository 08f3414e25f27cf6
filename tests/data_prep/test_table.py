"""The `table` reader on CSV and Parquet files with a column map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_prep.readers import get_reader
from data_prep.recording import RecordingError

COLUMNS = {
    "subject": "user",
    "session": "trial",
    "timestamp": "t_ms",
    "label": "activity",
    "channels": {"acc_x": "ax", "acc_y": "ay", "acc_z": "az"},
    "units": {"acc_x": "g", "acc_y": "g", "acc_z": "g"},
    "groups": {"acc": ["acc_x", "acc_y", "acc_z"]},
}
LABEL_MAP = {"walking": 1, "sitting": 4, "null": -1}
CSV = """user,trial,t_ms,ax,ay,az,activity,extra
1,a,0,0.1,0.2,0.3,walking,x
2,a,0,1.1,1.2,1.3,sitting,y
1,a,20,0.4,0.5,0.6,walking,z
1,a,40,0.7,,0.9,null,z
1,b,0,2.0,2.0,2.0,,z
"""


def read(path, **options):
    return get_reader("table")(path, **{"columns": COLUMNS, "label_map": LABEL_MAP, **options})


@pytest.fixture()
def csv_file(tmp_path):
    path = tmp_path / "samples.csv"
    path.write_text(CSV)
    return path


def test_csv_groups_rows_by_subject_and_session(csv_file):
    recs = read(csv_file, timestamp_unit="ms")
    assert [(r.subject, r.session, r.n_samples) for r in recs] == [
        ("1", "a", 3),
        ("2", "a", 1),
        ("1", "b", 1),
    ]
    r = recs[0]
    want = np.float32([[0.1, 0.3], [0.4, 0.6], [0.7, 0.9]])
    np.testing.assert_array_equal(r.signals[:, [0, 2]], want)
    assert np.isnan(r.signals[2, 1])  # the empty cell: NaN for the repair stage
    np.testing.assert_allclose(r.timestamps, [0.0, 0.02, 0.04])
    assert r.labels.tolist() == [1, 1, -1] and recs[2].labels.tolist() == [-1]
    assert r.label_names == {1: "walking", 4: "sitting"}
    assert r.rate_hz == 50.0  # from the median time-stamp step
    assert r.units == ["g"] * 3 and r.groups == {"acc": [0, 1, 2]}
    assert r.channels == ["acc_x", "acc_y", "acc_z"] and r.source == str(csv_file)


def test_parquet_with_integer_labels_and_a_declared_rate(tmp_path):
    frame = pd.DataFrame(
        {
            "user": [3, 3, 3, 4],
            "ax": [0.5, 0.25, 0.125, 1.0],
            "ay": np.zeros(4),
            "az": np.ones(4, dtype=np.float32),
            "activity": [2.0, 2.0, np.nan, 5.0],
        }
    )
    path = tmp_path / "samples.parquet"
    frame.to_parquet(path)
    columns = {k: v for k, v in COLUMNS.items() if k not in ("session", "timestamp")}
    recs = get_reader("table")(path, columns=columns, rate_hz=25)
    assert [(r.subject, r.session, r.rate_hz) for r in recs] == [("3", "", 25.0), ("4", "", 25.0)]
    assert recs[0].signals[:, 0].tolist() == [0.5, 0.25, 0.125]
    assert recs[0].labels.tolist() == [2, 2, -1] and recs[1].labels.tolist() == [5]
    assert recs[0].timestamps is None
    recs[0].validate()


def test_non_numeric_cell_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(CSV.replace("0.4,0.5", "0.4,oops"))
    with pytest.raises(RecordingError, match=r"bad\.csv:4: column 'ay': non-numeric value 'oops'"):
        read(path)


def test_non_numeric_parquet_cell_names_the_row(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.DataFrame(
        {"user": [1, 1], "ax": ["1.0", "n/a?"], "ay": [0.0, 0], "az": [0.0, 0]}
    ).to_parquet(path)
    columns = {k: COLUMNS[k] for k in ("subject", "channels", "units")}
    with pytest.raises(RecordingError, match=r"bad\.parquet row 2: column 'ax': non-numeric"):
        get_reader("table")(path, columns=columns, rate_hz=50)


def test_missing_column_lists_the_files_columns(csv_file):
    columns = {**COLUMNS, "channels": {**COLUMNS["channels"], "acc_z": "accz"}}
    with pytest.raises(
        RecordingError, match=r"column\(s\) \['accz'\] not found; the file has \['user'"
    ):
        read(csv_file, columns=columns)


def test_label_outside_the_map(csv_file):
    with pytest.raises(
        RecordingError, match=r"samples\.csv:3: column 'activity': label 'sitting'; exp"
    ):
        read(csv_file, label_map={"walking": 1, "null": -1})
    with pytest.raises(RecordingError, match=r"samples\.csv:2: .*'walking'; expected an integer"):
        read(csv_file, label_map=None)


def test_empty_files_and_bad_maps(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(RecordingError, match=r"empty\.csv: empty file"):
        read(path)
    path.write_text(CSV.splitlines()[0] + "\n")
    with pytest.raises(RecordingError, match=r"empty\.csv: no data rows"):
        read(path)
    with pytest.raises(ValueError, match=r"no unit for channel\(s\) \['acc_z'\]"):
        read(path, columns={**COLUMNS, "units": {"acc_x": "g", "acc_y": "g"}})
    with pytest.raises(ValueError, match="rate_hz is required"):
        read(path, columns={k: v for k, v in COLUMNS.items() if k != "timestamp"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['chanels'\]"):
        read(path, columns={**COLUMNS, "chanels": {}})


def test_csv_with_jittered_time_stamps_through_the_pipeline(tmp_path):
    from data_prep.config import validate_data_config
    from data_prep.pipeline import prepare

    rng = np.random.default_rng(0)
    n = 300  # 6 s at 50 Hz per subject
    frames = []
    for user in (1, 2, 3):
        t_ms = np.arange(n) * 20.0 + rng.uniform(-3, 3, n)
        acc = rng.normal(size=(n, 3))
        frames.append(pd.DataFrame({"user": user, "t_ms": t_ms, "activity": "walking"}))
        frames[-1][["ax", "ay", "az"]] = acc
    path = tmp_path / "samples.csv"
    pd.concat(frames).to_csv(path, index=False)
    columns = {k: v for k, v in COLUMNS.items() if k != "session"}
    cfg = validate_data_config(
        {
            "name": "csv",
            "reader": "table",
            "path": str(path),
            "reader_options": {"columns": columns, "label_map": LABEL_MAP, "timestamp_unit": "ms"},
            "groups": ["acc"],
            "labels": {1: "walking"},
            "split": {"kind": "fixed", "test_subjects": [3], "val_subjects": [2]},
        }
    )
    ws = prepare(cfg, tmp_path / "cache", progress=False)
    assert ws.meta["rate_hz"] == 50.0 and ws.X.shape[1:] == (3, 128)
    assert len(ws) == 9  # 3 windows (128 samples, step 64) per 6 s subject
