"""The `device` reader: Axivity .cwa, GENEActiv .bin and ActiGraph .gt3x files written here in
their real formats, read back through actipy and harkd; calibration, non-wear, annotations, bad
files and `harkd prep` on device recordings."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib.util
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from device_files import (
    AX6_GYRO_UNIT,
    cwa_blocks,
    write_cwa,
    write_geneactiv_bin,
    write_gt3x,
    write_long_cwa,
)

from data_prep.configio import ConfigError
from data_prep.readers import get_reader
from data_prep.readers.annotations import Timeline, assign, load_annotations
from data_prep.recording import RecordingError
from harkd.cli import main

needs_actipy = pytest.mark.skipif(
    importlib.util.find_spec("actipy") is None or shutil.which("java") is None,
    reason="needs actipy (pip install '.[devices]') and a Java runtime on PATH; "
    "`make setup` and CI install both",
)
RATE = 100
START = dt.datetime(2024, 3, 1, 10, 0, 0)
START_S = (START - dt.datetime(1970, 1, 1)).total_seconds()
QUANTUM = 1 / 256  # counts per g of every writer here
read = get_reader("device")


def moving(seconds: float, rate: int = RATE) -> np.ndarray:
    """A worn device: 0.5 g at 1 Hz on x, 0.1 g at 0.3 Hz on y, gravity on z."""
    t = np.arange(int(seconds * rate)) / rate
    return np.stack(
        [0.5 * np.sin(2 * np.pi * t), 0.1 * np.sin(2 * np.pi * 0.3 * t), np.ones_like(t)], axis=1
    )


def still(seconds: float, rate: int = RATE) -> np.ndarray:
    """A device lying flat: exactly 1 g on z."""
    return np.tile([0.0, 0.0, 1.0], (int(seconds * rate), 1))


def write_annotations(path: Path, rows: list[tuple]) -> Path:
    columns = ["subject", "start", "end", "label", "session"][: len(rows[0])]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def plain(**options):
    """Options that read the signals untouched (no calibration, no non-wear)."""
    return {"calibrate_gravity": False, "detect_nonwear": False, **options}


@needs_actipy
@pytest.mark.parametrize(
    ("name", "writer", "atol"),
    [
        ("P01.cwa", write_cwa, QUANTUM / 2),
        ("P01.bin", write_geneactiv_bin, QUANTUM / 2),
        ("P01.gt3x", write_gt3x, QUANTUM / 2 + 5e-4),  # ActiGraph's parser rounds to 1 mg
    ],
)
def test_each_format_reads_back_signals_rate_and_time_stamps(tmp_path, name, writer, atol):
    acc = moving(60)
    writer(tmp_path / name, acc)
    result = read(tmp_path / name, **plain())
    assert len(result) == 1
    rec = result[0]
    assert (rec.subject, rec.session, rec.source) == ("P01", "P01", str(tmp_path / name))
    assert rec.channels == ["acc_x", "acc_y", "acc_z"] and rec.units == ["g"] * 3
    assert rec.groups == {"acc": [0, 1, 2]} and rec.rate_hz == RATE
    assert rec.signals.dtype == np.float32 and rec.signals.shape == acc.shape
    np.testing.assert_allclose(rec.signals, acc, atol=atol + 1e-6)
    # the device clock's time stamps, to the parsers' millisecond
    np.testing.assert_allclose(rec.timestamps, START_S + np.arange(len(acc)) / RATE, atol=1.5e-3)
    assert (rec.labels == -1).all()
    details = result.details[str(tmp_path / name)]
    assert details["rate_hz"] == RATE and details["start"] == "2024-03-01 10:00:00"
    assert details["calibrate_gravity"] is False and "calibrated" not in details


def test_long_cwa_written_chunk_by_chunk_is_the_same_file(tmp_path):
    acc = moving(61)  # 6,100 samples: 76 whole blocks and a part block
    write_cwa(tmp_path / "whole.cwa", acc)
    chunks = (acc[:1600], acc[1600:4000], acc[4000:])
    write_long_cwa(tmp_path / "parts.cwa", iter(chunks), len(acc))
    assert (tmp_path / "parts.cwa").read_bytes() == (tmp_path / "whole.cwa").read_bytes()
    with pytest.raises(ValueError, match="not whole blocks of 80"):
        write_long_cwa(tmp_path / "bad.cwa", iter((acc[:100], acc[100:])), len(acc))
    with pytest.raises(ValueError, match="held 1600 samples, not 6100"):
        write_long_cwa(tmp_path / "short.cwa", iter(chunks[:1]), len(acc))


@needs_actipy
def test_gzipped_cwa_and_ax6_gyroscope_in_deg_per_s(tmp_path):
    acc = moving(20)
    gyro = np.stack(
        [200 * np.sin(np.arange(len(acc)) / 50), np.full(len(acc), -30.0), np.zeros(len(acc))],
        axis=1,
    )
    write_cwa(tmp_path / "ax6.cwa", acc, gyro=gyro)
    with open(tmp_path / "ax6.cwa", "rb") as raw, gzip.open(tmp_path / "P02.cwa.gz", "wb") as gz:
        shutil.copyfileobj(raw, gz)
    (tmp_path / "ax6.cwa").unlink()
    (rec,) = read(tmp_path, **plain())
    assert (rec.subject, rec.session) == ("P02", "P02")
    assert rec.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert rec.units == ["g"] * 3 + ["deg/s"] * 3
    assert rec.groups == {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
    np.testing.assert_allclose(rec.signals[:, :3], acc, atol=1 / 2048)
    np.testing.assert_allclose(rec.signals[:, 3:], gyro, atol=0.5 / AX6_GYRO_UNIT + 1e-4)


def _miscalibrated() -> tuple[np.ndarray, np.ndarray]:
    """(true, measured): 100 s still in each of 8 orientations; the device has per-axis
    offsets of 40, -30, 50 mg and gains of 1.03, 0.97, 1.02."""
    dirs = np.array(
        [
            [1, 0, 0],
            [-1, 0, 0],
            [0, 1, 0],
            [0, -1, 0],
            [0, 0, 1],
            [0, 0, -1],
            [1, 1, 1],
            [-1, 1, -1],
        ],
        dtype=float,
    )
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    true = np.repeat(dirs, 100 * RATE, axis=0)
    true += np.random.default_rng(0).normal(0, 0.003, true.shape)
    return true, true * [1.03, 0.97, 1.02] + [0.04, -0.03, 0.05]


@needs_actipy
def test_gravity_calibration_corrects_a_miscalibrated_device(tmp_path):
    true, measured = _miscalibrated()
    write_cwa(tmp_path / "P01.cwa", measured)
    result = read(tmp_path / "P01.cwa", detect_nonwear=False)
    details = result.details[str(tmp_path / "P01.cwa")]
    assert details["calibrated"] is True and details["calibration_still_windows"] >= 50
    assert details["calibration_error_before_mg"] > 30 > 1 > details["calibration_error_after_mg"]
    assert "device_recordings_not_calibrated" not in result.counts
    np.testing.assert_allclose(result[0].signals, true, atol=5e-3)
    norms = np.linalg.norm(result[0].signals.reshape(8, -1, 3).mean(axis=1), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)
    (raw,) = read(tmp_path / "P01.cwa", **plain())
    np.testing.assert_allclose(raw.signals, measured, atol=QUANTUM / 2 + 1e-6)


@needs_actipy
def test_one_orientation_cannot_calibrate_and_is_counted(tmp_path):
    acc = still(600) + [0.0, 0.0, 0.02]  # 1.02 g on z: wrong, but one face cannot show it
    write_cwa(tmp_path / "P01.cwa", acc)
    result = read(tmp_path / "P01.cwa", detect_nonwear=False)
    details = result.details[str(tmp_path / "P01.cwa")]
    assert details["calibrated"] is False and details["calibration_error_before_mg"] > 15
    assert result.counts["device_recordings_not_calibrated"] == 1
    np.testing.assert_allclose(result[0].signals, acc, atol=QUANTUM / 2 + 1e-6)


@needs_actipy
def test_nonwear_becomes_unlabelled_counted_and_clipped(tmp_path):
    acc = np.vstack([moving(180), still(300), moving(180)])
    write_cwa(tmp_path / "P01.cwa", acc)
    write_annotations(tmp_path / "labels.csv", [("P01", 0, 660, "walk")])
    options = dict(annotations="labels.csv", label_map={"walk": 1}, nonwear_patience="2m")
    result = read(tmp_path / "P01.cwa", calibrate_gravity=False, **options)
    (rec,) = result
    off = rec.labels == -1
    # the still stretch (180 s to 480 s) is 30 windows of 10 s; actipy counts a still run of
    # n windows as n - 1 windows from its start: non-wear from 180.00 s to 470.00 s
    np.testing.assert_array_equal(np.flatnonzero(off), np.arange(18_000, 47_001))
    assert result.counts["device_samples_nonwear"] == off.sum()
    assert result.counts["device_samples_annotated_in_nonwear"] == off.sum()
    assert "device_samples_unannotated" not in result.counts  # the row covers everything
    assert result.details[str(tmp_path / "P01.cwa")]["nonwear_episodes"] == 1
    assert (rec.labels[:18_000] == 1).all() and (rec.labels[48_000:] == 1).all()

    clipped = np.vstack([still(300), moving(180), still(300)])
    write_cwa(tmp_path / "P02.cwa", clipped)
    result = read(
        tmp_path / "P02.cwa", **plain(detect_nonwear=True, clip_to_wear=True, nonwear_patience="2m")
    )
    (rec,) = result
    # the first still run is non-wear up to 290.00 s, the second from 480.00 s to 770.00 s,
    # and the file's last 10 s window stays worn: the wear span is samples 29,001..77,999
    first = round((rec.timestamps[0] - START_S) * RATE)
    assert (first, len(rec.signals)) == (29_001, 48_999)
    assert result.counts["device_samples_clipped_to_wear"] == 29_001
    np.testing.assert_allclose(rec.signals, clipped[first:], atol=QUANTUM)
    assert result.counts["device_samples_nonwear"] == 2 * 29_001


@needs_actipy
def test_annotations_iso_with_zone_and_seconds_map_onto_samples(tmp_path):
    for subject in ("P01", "P02"):
        write_cwa(tmp_path / f"{subject}.cwa", moving(60))
    rows = [  # the devices' clocks show Central European Time (+01:00)
        ("P01", "2024-03-01T10:00:10.005+01:00", "2024-03-01T10:00:30.005+01:00", "walk"),
        ("P01", "2024-03-01T09:00:40.005Z", "2024-03-01T09:00:50.005Z", "sit"),
        ("P02", 5.005, 20.505, "walk"),
    ]
    write_annotations(tmp_path / "labels.csv", rows)
    result = read(
        tmp_path,
        **plain(annotations="labels.csv", label_map={"walk": 1, "sit": 2}, timezone="Europe/Paris"),
    )
    p01, p02 = result
    expected = np.full(6000, -1)
    expected[1001:3001], expected[4001:5001] = 1, 2
    np.testing.assert_array_equal(p01.labels, expected)
    expected = np.full(6000, -1)
    expected[501:2051] = 1
    np.testing.assert_array_equal(p02.labels, expected)
    assert p01.label_names == {1: "walk", 2: "sit"}
    assert result.counts["device_samples_unannotated"] == 12_000 - 3000 - 1550


def _timeline(subject: str = "P01", seconds: float = 60) -> Timeline:
    t = START_S + np.arange(int(seconds * RATE)) / RATE
    return Timeline(subject, subject, f"{subject}.cwa", t, float(RATE))


@pytest.mark.parametrize(
    ("row", "line", "message"),
    [
        (("P01", "10", "12", "run"), 3, "label 'run' is not in label_map"),
        (("P01", "2024-03-01T10:00:05", "2024-03-01T10:00:06", "sit"), 3, "has no time zone"),
        (
            ("P01", "5", "2024-03-01T10:00:06Z", "sit"),
            3,
            "must both be ISO 8601 times or both seconds",
        ),
        (("P01", "9", "8", "sit"), 3, "is not after start"),
        (("P01", "yesterday", "8", "sit"), 3, "neither ISO 8601 time nor seconds"),
        (("P01", "", "8", "sit"), 3, "empty start"),
        (("P09", "1", "2", "sit"), 3, "subject 'P09' has no recording"),
        (("P01", "20", "30", "sit"), 3, "overlaps the one at {csv}:2"),
        (("P01", "50", "61", "sit"), 3, "outside its recording"),
        (  # written in UTC+5 for a device in UTC: 5 hours before the recording
            ("P01", "2024-03-01T10:00:40+05:00", "2024-03-01T10:00:50+05:00", "sit"),
            3,
            "its wall-clock time would fit, so its time zone (UTC+05:00) differs",
        ),
    ],
)
def test_bad_annotations_name_the_row(tmp_path, row, line, message):
    csv = write_annotations(tmp_path / "labels.csv", [("P01", "10", "25", "walk"), row])
    label_map = {"walk": 1, "sit": 2}
    with pytest.raises(RecordingError) as err:
        assign(load_annotations(csv, label_map), [_timeline()], dt.timezone.utc)
    assert str(err.value).startswith(f"{csv}:{line}: ")
    assert message.format(csv=csv) in str(err.value)


def test_annotation_files_refused_whole(tmp_path):
    label_map = {"walk": 1}
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RecordingError, match="empty.csv: empty file"):
        load_annotations(tmp_path / "empty.csv", label_map)
    (tmp_path / "blank.csv").write_text("subject,start,end,label\nP01,1,2,walk\n\nP01,3,4,run\n")
    with pytest.raises(RecordingError, match=r"blank.csv:4: label 'run' is not in label_map"):
        load_annotations(tmp_path / "blank.csv", label_map)
    (tmp_path / "cols.csv").write_text("who,start,end,label\nP01,1,2,walk\n")
    with pytest.raises(RecordingError, match=r"column\(s\) \['subject'\] not found"):
        load_annotations(tmp_path / "cols.csv", label_map)
    parquet = tmp_path / "labels.parquet"
    stamps = pd.to_datetime(["2024-03-01 10:00:01", "2024-03-01 10:00:02"]).tz_localize("UTC")
    pd.DataFrame(
        {"subject": ["P01"], "start": stamps[:1], "end": stamps[1:], "label": ["jog"]}
    ).to_parquet(parquet)
    with pytest.raises(RecordingError, match=r"labels.parquet row 1: label 'jog'"):
        load_annotations(parquet, label_map)
    (rows,) = assign(load_annotations(parquet, {"jog": 3}), [_timeline()], dt.timezone.utc)
    assert [(s - START_S, e - START_S) for _, s, e in rows] == [(1.0, 2.0)]
    # seconds from start are ambiguous when a subject has two recordings and no session column
    two = [_timeline(), Timeline("P01", "day2", "P01_day2.cwa", _timeline().t + 86_400, 100.0)]
    csv = write_annotations(tmp_path / "labels.csv", [("P01", "1", "2", "walk")])
    with pytest.raises(RecordingError, match="has 2 recordings; times in seconds from start need"):
        assign(load_annotations(csv, label_map), two, None)
    csv = write_annotations(tmp_path / "labels.csv", [("P01", "1", "2", "walk", "day2")])
    (first, second) = assign(load_annotations(csv, label_map), two, None)
    assert not first and [(s - START_S) for _, s, _ in second] == [86_401.0]


@needs_actipy
def test_subject_pattern_manifest_and_time_gaps(tmp_path):
    folder = tmp_path / "watch"
    folder.mkdir()
    for name in ("P01_day1.cwa", "P01_day2.cwa", "P02_day1.cwa"):
        write_cwa(folder / name, moving(20))
    pattern = r"(?P<subject>P\d+)_(?P<session>day\d)"
    recs = read(folder, **plain(subject_pattern=pattern))
    assert [(r.subject, r.session) for r in recs] == [
        ("P01", "day1"),
        ("P01", "day2"),
        ("P02", "day1"),
    ]
    with pytest.raises(RecordingError, match=r"P01_day1.cwa: subject_pattern '.*' does not match"):
        read(folder, **plain(subject_pattern="(?P<subject>Q)"))

    (folder / "manifest.csv").write_text("file,subject\nP01_day2.cwa,alice\nP02_day1.cwa,bob\n")
    result = read(folder, **plain(manifest="manifest.csv"))
    assert [(r.subject, r.session) for r in result] == [("alice", "P01_day2"), ("bob", "P02_day1")]
    assert result.counts["device_files_not_in_manifest"] == 1
    (folder / "manifest.csv").write_text("file,subject\nP01_day2.cwa,alice\nP03.cwa,carol\n")
    with pytest.raises(RecordingError, match=r"manifest.csv:3: file 'P03.cwa' not found"):
        read(folder, **plain(manifest="manifest.csv"))

    # blocks 10.. continue the file 10 s late (at 18 s, after 8 s of samples): a gap above
    # max_gap_s splits the recording
    path = tmp_path / "gap.cwa"
    write_cwa(path, moving(8))
    later = cwa_blocks(moving(8), RATE, int(START_S) + 10, first_block=10)
    path.write_bytes(path.read_bytes() + later)
    result = read(path, **plain())
    assert [r.session for r in result] == ["gap/part0", "gap/part1"]
    assert [len(r.signals) for r in result] == [800, 800]
    assert result.counts["runs_split_at_time_gap"] == 1
    assert result[1].timestamps[0] - result[0].timestamps[-1] == pytest.approx(10.01, abs=2e-3)


@needs_actipy
def test_damaged_files_are_errors_naming_the_file(tmp_path):
    good = write_cwa(tmp_path / "good.cwa", moving(20)).read_bytes()
    cases = {
        "empty.cwa": (b"", "empty file"),
        "magic.cwa": (b"ZZ" + good[2:], "not an Axivity .cwa file: it starts with b'ZZ'"),
        "truncated.cwa": (good[:-300], "Stopping at truncated CWA data"),
        "checksum.cwa": (
            good[:1500] + bytes([good[1500] ^ 0xFF]) + good[1501:],
            "block checksum mismatch",
        ),
        "header_only.cwa": (good[:1024], "actipy could not read it: Error reading"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(RecordingError) as err:
            read(tmp_path / name, **plain())
        assert str(err.value).startswith(f"{tmp_path / name}: ") and message in str(err.value)
    result = read(tmp_path / "truncated.cwa", **plain(allow_read_errors=True))
    assert result.counts["device_read_errors"] == 1 and len(result[0].signals) == 1920

    text = write_geneactiv_bin(tmp_path / "good.bin", moving(30)).read_text()
    (tmp_path / "short.bin").write_text(text[: len(text) // 2])
    with pytest.raises(RecordingError, match="short.bin: actipy's parser reported 2 read error"):
        read(tmp_path / "short.bin", **plain())
    (tmp_path / "notes.bin").write_text("Matrix\n")
    with pytest.raises(RecordingError, match="notes.bin: not a GENEActiv .bin file"):
        read(tmp_path / "notes.bin", **plain())
    (tmp_path / "text.gt3x").write_text("hello")
    with pytest.raises(RecordingError, match="text.gt3x: not an ActiGraph .gt3x file"):
        read(tmp_path / "text.gt3x", **plain())
    with zipfile.ZipFile(tmp_path / "nolog.gt3x", "w") as zf:
        zf.writestr("info.txt", "Sample Rate: 100\n")
    with pytest.raises(RecordingError, match=r"must hold info.txt and log.bin .* \['info.txt'\]"):
        read(tmp_path / "nolog.gt3x", **plain())


def test_options_are_checked_before_any_file_is_read(tmp_path):
    for options, message in [
        ({"clip_to_wear": True, "detect_nonwear": False}, "clip_to_wear needs detect_nonwear"),
        ({"annotations": "a.csv"}, "annotations need label_map"),
        ({"timezone": "Mars/Olympus"}, "expected an IANA zone name"),
        ({"nonwear_patience": "soon"}, "expected a positive duration"),
        ({"subject_pattern": "P(\\d+)"}, "needs a (?P<subject>...) group"),
        ({"calibrate": True}, "calibrate"),
    ]:
        with pytest.raises(ConfigError) as err:
            read(tmp_path, **options)
        assert message in str(err.value)


def _device_config(tmp_path: Path, folder: Path, **reader_options) -> Path:
    import yaml

    config = {
        "name": "device-test",
        "reader": "device",
        "path": str(folder),
        "reader_options": reader_options,
        "groups": ["acc"],
        "rate_hz": 50,
        "window": {"length": 100, "step": 50, "unit": "samples"},
        "labels": {1: "walk", 2: "sit"},
        "split": {"kind": "fixed", "test_subjects": ["P03"], "val_subjects": ["P02"]},
    }
    path = tmp_path / "device.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@needs_actipy
def test_harkd_prep_on_device_files(tmp_path, capsys):
    folder = tmp_path / "watch"
    folder.mkdir()
    for subject in ("P01", "P02", "P03"):
        write_cwa(folder / f"{subject}.cwa", moving(60))
    write_annotations(
        folder / "labels.csv",
        [(s, 0, 30, "walk") for s in ("P01", "P02", "P03")]
        + [(s, 30, 60, "sit") for s in ("P01", "P02", "P03")],
    )
    config = _device_config(
        tmp_path,
        folder,
        annotations="labels.csv",
        label_map={"walk": 1, "sit": 2},
        nonwear_patience="2m",
    )
    cache = tmp_path / "cache"
    argv = ["prep", str(config), "--cache-dir", str(cache), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"read      device from {folder}: 3 recordings, 3 subjects, 18,000 samples"
    assert out[1] == "channels  3 at 50 Hz: acc ['acc_x', 'acc_y', 'acc_z']"
    files = [line for line in out if line.startswith(("files", " " * 10))]
    assert len(files) == 3 and files[0].startswith("files     P01.cwa: device Axivity 4321,")
    assert "calibrated False" in files[0] and "nonwear_episodes 0" in files[0]
    repaired = next(line for line in out if line.startswith("repaired"))
    assert "reader_device_recordings_not_calibrated: 3" in repaired
    assert out[-1].endswith("(written)")

    from data_prep.windowset import WindowSet

    ws = WindowSet.load(Path(out[-1].split()[1][: -len(".npz")]))
    assert ws.meta["read"]["details"][str(folder / "P01.cwa")]["rate_hz"] == 100.0
    # resampled to 50 Hz, the 1 Hz sine on x is still the sine written
    t = (ws.start[:, None] + np.arange(100)) / 50
    np.testing.assert_allclose(ws.X[:, 0, :], 0.5 * np.sin(2 * np.pi * t), atol=0.01)
    np.testing.assert_allclose(ws.X[:, 2, :], 1.0, atol=0.01)
    assert set(ws.y[ws.start + 100 <= 1500].tolist()) == {0}
    assert set(ws.y[ws.start >= 1500].tolist()) == {1}

    # a damaged file: one line naming it, and nothing written to the cache
    (folder / "P04.cwa").write_bytes((folder / "P01.cwa").read_bytes()[:-100])
    fresh = tmp_path / "fresh-cache"
    assert main(["prep", str(config), "--cache-dir", str(fresh), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"harkd prep: {folder / 'P04.cwa'}: ")
    assert not fresh.exists() or not any(fresh.iterdir())
    # editing the annotations gives a new cache key
    (folder / "P04.cwa").unlink()
    write_annotations(folder / "labels.csv", [(s, 0, 60, "walk") for s in ("P01", "P02", "P03")])
    assert main(argv) == 0  # (it warns that `sit`, no longer annotated, has no windows)
    out = capsys.readouterr().out.splitlines()
    assert next(line for line in out if line.startswith("cache")).endswith("(written)")


def test_missing_actipy_or_java_is_one_clear_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "watch"
    folder.mkdir()
    for subject in ("P01", "P02", "P03"):
        write_cwa(folder / f"{subject}.cwa", moving(5))
    argv = ["prep", str(_device_config(tmp_path, folder)), "--cache-dir", str(tmp_path / "c")]
    monkeypatch.setitem(sys.modules, "actipy", None)  # `import actipy` raises ImportError
    assert main([*argv, "--no-progress"]) == 3
    assert capsys.readouterr().err.strip() == (
        "harkd prep: reader 'device' needs the actipy package: pip install 'harkd[devices]' "
        "(make setup installs it)"
    )
    monkeypatch.delitem(sys.modules, "actipy")
    if importlib.util.find_spec("actipy") is not None:
        monkeypatch.setattr("data_prep.readers.device.shutil.which", lambda name: None)
        assert main([*argv, "--no-progress"]) == 3
        err = capsys.readouterr().err.strip()
        assert err.startswith("harkd prep: reader 'device' needs a Java runtime")
        assert "run `make setup`" in err


@needs_actipy
def test_shipped_example_config_prepares_device_files(tmp_path):
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare
    from harkd.shipped import config_file

    folder = tmp_path / "watch"
    folder.mkdir()
    rows = []
    for k in range(1, 6):
        write_cwa(folder / f"P0{k}.cwa", moving(60))
        rows += [  # the devices' clocks show London time: GMT in March
            (f"P0{k}", "2024-03-01T10:00:00Z", "2024-03-01T10:00:30Z", "walking"),
            (f"P0{k}", "2024-03-01T10:00:30+00:00", "2024-03-01T10:01:00+00:00", "sitting"),
        ]
    write_annotations(folder / "labels.csv", rows)
    cfg = load_data_config(config_file("configs/data/device-example.yaml"), [f"path={folder}"])
    ws = prepare(cfg, cache_dir=tmp_path / "cache", progress=False)
    assert ws.meta["rate_hz"] == 50 and ws.meta["channels"] == ["acc_x", "acc_y", "acc_z"]
    assert ws.meta["read"]["recordings"] == 5 and len(ws.meta["read"]["details"]) == 5
    assert set(ws.label_names[k] for k in np.unique(ws.y)) == {"sitting", "walking"}
    assert ws.meta["repair"]["reader_device_recordings_not_calibrated"] == 5


@pytest.mark.parametrize(
    "spans",
    [[], [(0, 10)], [(90, 100)], [(0, 10), (90, 100)], [(20, 30), (50, 51)], [(0, 100)]],
)
def test_wear_span_runs_from_the_first_to_the_last_worn_sample(spans):
    from data_prep.readers.device import _wear_span

    nonwear = np.zeros(100, dtype=bool)
    for a, b in spans:
        nonwear[a:b] = True
    worn = np.flatnonzero(~nonwear)
    expected = slice(int(worn[0]), int(worn[-1]) + 1) if worn.size else slice(0, 0)
    assert _wear_span(spans, 100) == expected
