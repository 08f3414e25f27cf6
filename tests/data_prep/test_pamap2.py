"""The `pamap2` reader on small Protocol/subjectXXX.dat files (54 columns, NaN padding)."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.readers import get_reader
from data_prep.recording import RecordingError
from data_prep.repair import repair

N = 60  # rows: 0.6 s at 100 Hz


def table(seed: int = 0, n: int = N) -> np.ndarray:
    """[n, 54]: transient (0) then walking (4); heart rate every 10th row; hand drops rows 20-21."""
    x = np.round(np.random.default_rng(seed).normal(size=(n, 54)), 4)
    x[:, 0] = np.round(5.64 + np.arange(n) * 0.01, 2)
    x[:, 1] = np.where(np.arange(n) < 10, 0, 4)
    x[:, 2] = np.nan
    x[::10, 2] = 100 + np.arange(0, n, 10)  # bpm readings 100, 110, ... at rows 0, 10, ...
    x[20:22, 3:20] = np.nan  # a dropped hand IMU sample pair
    return x


def write(path, x: np.ndarray) -> None:
    """The Protocol format: space-separated, `NaN` for missing values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = (" ".join("NaN" if np.isnan(v) else f"{v:g}" for v in row) for row in x)
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture()
def protocol(tmp_path):
    x101, x102 = table(0), table(1)
    write(tmp_path / "Protocol" / "subject101.dat", x101)
    write(tmp_path / "Protocol" / "subject102.dat", x102)
    return tmp_path, x101


def test_default_hand_acc16_and_gyro(protocol):
    root, x = protocol
    recs = get_reader("pamap2")(root)
    assert recs.counts == {}
    assert [(r.subject, r.session) for r in recs] == [("101", "protocol"), ("102", "protocol")]
    r = recs[0]
    assert r.channels == [f"hand_{k}_{a}" for k in ("acc", "gyro") for a in "xyz"]
    assert r.units == ["m/s^2"] * 3 + ["rad/s"] * 3
    assert r.groups == {
        "hand_acc": [0, 1, 2],
        "acc": [0, 1, 2],
        "hand_gyro": [3, 4, 5],
        "gyro": [3, 4, 5],
    }
    np.testing.assert_array_equal(r.signals, x[:, [4, 5, 6, 10, 11, 12]].astype(np.float32))
    np.testing.assert_array_equal(r.labels, [-1] * 10 + [4] * 50)
    np.testing.assert_allclose(r.timestamps, x[:, 0])
    assert r.rate_hz == 100.0 and r.label_names[4] == "walking"
    assert r.source.endswith("subject101.dat (rows 1-60)")


def test_dropped_samples_are_repaired_downstream(protocol):
    rec = get_reader("pamap2")(protocol[0] / "Protocol" / "subject101.dat")[0]
    assert np.isnan(rec.signals[20:22]).all()
    (fixed,), counts = repair(rec, max_gap_s=0.05)
    assert counts == {"samples_interpolated": 2}
    expected = rec.signals[19] + (rec.signals[22] - rec.signals[19]) / 3
    np.testing.assert_allclose(fixed.validate().signals[20], expected, rtol=1e-5)


def test_imus_sensors_and_heart_rate_options(protocol):
    root, x = protocol
    (r, _) = get_reader("pamap2")(
        root, imus=["ankle", "chest"], sensors=["acc6", "mag", "temperature"], heart_rate=True
    )
    assert r.channels[:7] == [
        "ankle_acc6g_x",
        "ankle_acc6g_y",
        "ankle_acc6g_z",
        "ankle_mag_x",
        "ankle_mag_y",
        "ankle_mag_z",
        "ankle_temp",
    ]
    assert r.groups["mag"] == r.groups["ankle_mag"] == [3, 4, 5]
    assert r.groups["chest_temp"] == [13] and r.groups["heart_rate"] == [14]
    assert r.units[-3:] == ["uT", "degC", "bpm"]
    np.testing.assert_array_equal(r.signals[:, 13], x[:, 20].astype(np.float32))
    hr = r.signals[:, 14]
    assert hr[0] == 100 and hr[5] == pytest.approx(105) and hr[50] == 150
    assert np.isnan(hr[51:]).all()  # after the last reading: left to repair (trimmed)


def test_time_gap_splits_the_recording(tmp_path):
    x = table()
    x[30:, 0] += 5.0
    write(tmp_path / "subject105.dat", x)
    recs = get_reader("pamap2")(tmp_path)
    assert [(r.session, r.n_samples) for r in recs] == [
        ("protocol-run0", 30),
        ("protocol-run1", 30),
    ]
    assert recs.counts == {"runs_split_at_time_gap": 1}


def test_column_count_error_names_file_and_line(tmp_path):
    path = tmp_path / "subject101.dat"
    write(path, table())
    lines = path.read_text().splitlines()
    lines[6] += " 1.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=r"subject101\.dat:7: expected 54 .*got 55"):
        get_reader("pamap2")(path)


def test_unknown_activity_names_its_line(tmp_path):
    x = table()
    x[41, 1] = 8
    write(tmp_path / "subject101.dat", x)
    with pytest.raises(
        RecordingError, match=r"subject101\.dat:42: column 2: activity 8\.0 outside"
    ):
        get_reader("pamap2")(tmp_path)


def test_bad_options_and_paths(tmp_path):
    with pytest.raises(
        ValueError, match=r"imus=\['wrist'\]: choose from \['hand', 'chest', 'ankle'\]"
    ):
        get_reader("pamap2")(tmp_path, imus="wrist")
    with pytest.raises(FileNotFoundError, match="no subjectXXX.dat files"):
        get_reader("pamap2")(tmp_path)


def test_pamap2_protocol_windows_the_hand_imu_at_50_hz(tmp_path):
    from pathlib import Path

    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    for subject in (101, 105, 106):
        x = table(subject, n=1000)
        x[500:, 1] = 17  # ironing after 5 s
        x[600:650, 3:20] = np.nan  # a 0.5 s hand drop-out: the recording is cut
        write(tmp_path / "Protocol" / f"subject{subject}.dat", x)
    config = Path(__file__).resolve().parents[2] / "configs" / "data" / "pamap2.yaml"
    ws = prepare(load_data_config(config, [f"path={tmp_path}"]), tmp_path / "c", progress=False)
    assert ws.channels == [f"hand_{k}_{a}" for k in ("acc", "gyro") for a in "xyz"]
    assert ws.groups == {"acc": [0, 1, 2], "gyro": [3, 4, 5]} and ws.meta["rate_hz"] == 50
    assert ws.meta["split_subjects"] == {"train": ["101"], "val": ["105"], "test": ["106"]}
    assert ws.meta["repair"] == {
        "recording_splits": 3,
        "samples_cut_nan": 150,
        "samples_interpolated": 6,
    }
    # per subject: walking 0.1-5 s (3 windows), ironing 5-6 s and 6.5-10 s (0 + 1 windows)
    assert (
        sorted(ws.label_names[i] for i in ws.y[ws.subject == "101"])
        == ["ironing"] + ["walking"] * 3
    )
