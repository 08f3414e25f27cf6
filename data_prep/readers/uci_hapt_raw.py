"""Reader `uci_hapt_raw`: the original UCI HAPT `RawData/` layout.

UCI "Smartphone-Based Recognition of Human Activities and Postural Transitions" (Reyes-Ortiz,
Oneto, Samà, Parra & Anguita, Neurocomputing 2016): 30 users, 61 experiments, a waist-worn
smartphone sampled at 50 Hz. `RawData/acc_expXX_userYY.txt` (accelerometer, g) and
`gyro_expXX_userYY.txt` (gyroscope, rad/s) hold three space-separated columns per sample;
`labels.txt` holds rows `experiment user activity start end` with 0-based inclusive sample
ranges. Unlabelled samples get -1.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from data_prep.readers import ReaderOptions, register_reader
from data_prep.recording import Recording, RecordingError

RATE_HZ = 50.0
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
UNITS = ["g", "g", "g", "rad/s", "rad/s", "rad/s"]
GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
LABEL_NAMES = {
    1: "WALKING",
    2: "WALKING_UPSTAIRS",
    3: "WALKING_DOWNSTAIRS",
    4: "SITTING",
    5: "STANDING",
    6: "LAYING",
    7: "STAND_TO_SIT",
    8: "SIT_TO_STAND",
    9: "SIT_TO_LIE",
    10: "LIE_TO_SIT",
    11: "STAND_TO_LIE",
    12: "LIE_TO_STAND",
}

_ACC_FILE = re.compile(r"^acc_exp(\d+)_user(\d+)\.txt$")


def hapt_recording(
    signals: np.ndarray, labels: np.ndarray, user: int, exp: int, source: str
) -> Recording:
    """One HAPT experiment as a `Recording` (shared by both HAPT readers)."""
    return Recording(
        signals=np.ascontiguousarray(signals, dtype=np.float32),
        channels=list(CHANNELS),
        units=list(UNITS),
        rate_hz=RATE_HZ,
        labels=labels.astype(np.int64, copy=False),
        subject=str(user),
        session=f"exp{exp:02d}",
        groups={k: list(v) for k, v in GROUPS.items()},
        source=source,
        label_names=dict(LABEL_NAMES),
    )


@register_reader("uci_hapt_raw", ReaderOptions)
def read(path: str | Path, options: ReaderOptions) -> list[Recording]:
    """UCI HAPT original RawData/ text files (acc + gyro, 50 Hz, labels.txt)."""
    root = Path(path)
    raw = root / "RawData" if (root / "RawData").is_dir() else root
    labels_file = raw / "labels.txt"
    if not labels_file.is_file():
        raise FileNotFoundError(f"{raw}: no labels.txt (expected the UCI HAPT RawData/ folder)")
    acc_files = sorted(
        (int(m[1]), int(m[2]), p) for p in raw.iterdir() if (m := _ACC_FILE.match(p.name))
    )
    if not acc_files:
        raise FileNotFoundError(f"{raw}: no acc_expXX_userYY.txt files")
    segments = _read_labels(labels_file)
    recordings = []
    for exp, user, acc_path in acc_files:
        gyro_path = raw / f"gyro_exp{exp:02d}_user{user:02d}.txt"
        if not gyro_path.is_file():
            raise FileNotFoundError(
                f"{gyro_path}: missing (its accelerometer file {acc_path.name} exists)"
            )
        acc, gyro = _read_xyz(acc_path), _read_xyz(gyro_path)
        if len(acc) != len(gyro):
            raise RecordingError(
                f"{gyro_path}: {len(gyro)} rows but {acc_path.name} has {len(acc)}; "
                "the two files of one experiment must have one row per sample each"
            )
        labels = np.full(len(acc), -1, dtype=np.int64)
        for line_no, activity, start, end in segments.pop((exp, user), []):
            if end >= len(acc):
                raise RecordingError(
                    f"{labels_file}:{line_no}: segment {start}..{end} ends past the "
                    f"{len(acc)} samples of {acc_path.name}"
                )
            labels[start : end + 1] = activity
        recordings.append(hapt_recording(np.hstack([acc, gyro]), labels, user, exp, str(acc_path)))
    if segments:
        (exp, user), rows = next(iter(segments.items()))
        raise RecordingError(
            f"{labels_file}:{rows[0][0]}: labels for experiment {exp} user {user}, "
            f"which has no acc_exp{exp:02d}_user{user:02d}.txt"
        )
    return recordings


def _read_xyz(path: Path) -> np.ndarray:
    """A [T, 3] float array from a space-separated text file; errors name file and line."""
    text = path.read_text()
    if not text.strip():
        raise RecordingError(f"{path}: empty file")
    rows = text.splitlines()
    out = np.empty((len(rows), 3), dtype=np.float64)
    try:
        flat = np.array(text.split(), dtype=np.float64)
        if flat.size == out.size:
            out[:] = flat.reshape(-1, 3)
            return out
    except ValueError:
        pass
    for i, row in enumerate(rows, 1):  # slow path only to name the bad line
        cells = row.split()
        if len(cells) != 3:
            raise RecordingError(
                f"{path}:{i}: expected 3 space-separated columns, got {len(cells)}"
            )
        try:
            out[i - 1] = [float(c) for c in cells]
        except ValueError:
            raise RecordingError(f"{path}:{i}: non-numeric cell in {row.strip()!r}") from None
    return out


def _read_labels(path: Path) -> dict[tuple[int, int], list[tuple[int, int, int, int]]]:
    """(experiment, user) -> [(line, activity, start, end)] from labels.txt."""
    segments: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    lines = path.read_text().splitlines()
    if not any(line.strip() for line in lines):
        raise RecordingError(f"{path}: empty file")
    for i, line in enumerate(lines, 1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 5:
            raise RecordingError(
                f"{path}:{i}: expected 5 columns (experiment user activity start end), "
                f"got {len(cells)}"
            )
        try:
            exp, user, activity, start, end = (int(c) for c in cells)
        except ValueError:
            raise RecordingError(f"{path}:{i}: non-integer cell in {line.strip()!r}") from None
        if activity not in LABEL_NAMES:
            raise RecordingError(
                f"{path}:{i}: activity {activity} outside the HAPT label map {sorted(LABEL_NAMES)}"
            )
        if not 0 <= start <= end:
            raise RecordingError(f"{path}:{i}: bad sample range {start}..{end}")
        segments.setdefault((exp, user), []).append((i, activity, start, end))
    for rows in segments.values():
        _check_no_overlap(path, rows)
    return segments


def _check_no_overlap(path: Path, rows: list[tuple[int, int, int, int]]) -> None:
    """Refuse two segments of one experiment sharing a sample (one would overwrite the other)."""
    ordered = sorted(rows, key=lambda r: (r[2], r[0]))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b[2] <= a[3]:
            first, later = sorted((a, b))  # name the row written later in the file
            raise RecordingError(
                f"{path}:{later[0]}: segment {later[2]}..{later[3]} overlaps line {first[0]}'s "
                f"{first[2]}..{first[3]}; each sample may carry one label"
            )
