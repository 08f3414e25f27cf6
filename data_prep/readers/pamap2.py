"""Reader `pamap2`: PAMAP2 Physical Activity Monitoring, Protocol `subjectXXX.dat` files.

Reiss & Stricker, "Introducing a New Benchmarked Dataset for Activity Monitoring", ISWC 2012:
9 subjects, three Colibri IMUs (hand, chest, ankle) at 100 Hz and a heart-rate monitor at
about 9 Hz. Each line holds 54 space-separated values: time stamp (s), activity id, heart rate
(bpm, NaN between its readings), then per IMU 17 columns: temperature (degC), acceleration
±16 g (m/s^2), acceleration ±6 g (m/s^2), gyroscope (rad/s), magnetometer (uT), orientation
(4 values, documented as invalid, never read). Dropped IMU samples are NaN and left to the
repair stage.

Options: `imus` (default hand), `sensors` from `temperature`, `acc16`, `acc6`, `gyro`, `mag`
(default acc16 + gyro), `heart_rate` (interpolated linearly between its readings; NaN before
the first and after the last, which repair trims). Groups are `<imu>_<kind>` (`hand_acc`,
`hand_acc6g`, `hand_gyro`, `hand_mag`, `hand_temp`, plus `heart_rate`); the first IMU's groups
are also available by kind alone (`acc`, `gyro`, ...), so protocols written for `[acc, gyro]`
work unchanged. Activity 0 (transient) is unlabelled (-1). A time-stamp step above `max_gap_s`
or backwards starts a new recording (counted in `ReadResult.counts`).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from data_prep.readers import ReaderOptions, ReadResult, register_reader
from data_prep.readers._text import line_of, read_numeric, time_runs
from data_prep.recording import Recording, RecordingError

RATE_HZ = 100.0
N_COLS = 54
IMU_FIRST_COLUMN = {"hand": 3, "chest": 20, "ankle": 37}
#: sensor -> (offset in the IMU block, group kind, axes, unit)
SENSORS = {
    "temperature": (0, "temp", [""], "degC"),
    "acc16": (1, "acc", ["_x", "_y", "_z"], "m/s^2"),
    "acc6": (4, "acc6g", ["_x", "_y", "_z"], "m/s^2"),
    "gyro": (7, "gyro", ["_x", "_y", "_z"], "rad/s"),
    "mag": (10, "mag", ["_x", "_y", "_z"], "uT"),
}
LABEL_NAMES = {
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "Nordic walking",
    9: "watching TV",
    10: "computer work",
    11: "car driving",
    12: "ascending stairs",
    13: "descending stairs",
    16: "vacuum cleaning",
    17: "ironing",
    18: "folding laundry",
    19: "house cleaning",
    20: "playing soccer",
    24: "rope jumping",
}
_SUBJECT_FILE = re.compile(r"^subject(\d+)\.dat$")


class Pamap2Options(ReaderOptions):
    imus: list[str] = Field(
        ["hand"],
        description=f"IMUs read, from {', '.join(IMU_FIRST_COLUMN)}; the first one's groups are "
        "also named by kind alone (acc, gyro, ...)",
    )
    sensors: list[str] = Field(
        ["acc16", "gyro"], description=f"sensors read on each IMU, from {', '.join(SENSORS)}"
    )
    heart_rate: bool = Field(
        False, description="add the heart rate (bpm), interpolated between its readings"
    )
    max_gap_s: float = Field(
        1.0, gt=0, description="a time-stamp step longer than this (s) starts a new recording"
    )

    @field_validator("imus", "sensors", mode="before")
    @classmethod
    def _one_name(cls, value: object) -> object:
        """A single name stands for a list of one."""
        return [value] if isinstance(value, str) else value


@register_reader("pamap2", Pamap2Options)
def read(path: str | Path, options: Pamap2Options) -> ReadResult:
    """PAMAP2 Protocol subjectXXX.dat (3 IMUs at 100 Hz; default hand acc16 + gyro)."""
    heart_rate = options.heart_rate
    columns, channels, units, groups = _layout(options.imus, options.sensors, heart_rate)
    counts: Counter = Counter()
    recordings = []
    for file in _subject_files(Path(path)):
        table = read_numeric(file, N_COLS)
        activity = table[:, 1]
        outside = np.flatnonzero(~np.isin(activity, [0, *LABEL_NAMES]))
        if outside.size:
            raise RecordingError(
                f"{file}:{line_of(file, int(outside[0]))}: column 2: activity "
                f"{activity[outside[0]]} outside the PAMAP2 ids {[0, *LABEL_NAMES]}"
            )
        labels = np.where(activity == 0, -1, activity).astype(np.int64)
        signals = table[:, columns]
        runs = time_runs(table[:, 0], options.max_gap_s, counts)
        for k, run in enumerate(runs):
            if heart_rate:
                signals[run, -1] = _interpolate_readings(table[run, 0], table[run, 2])
            recordings.append(
                Recording(
                    signals=signals[run].astype(np.float32),
                    channels=list(channels),
                    units=list(units),
                    rate_hz=RATE_HZ,
                    labels=labels[run],
                    subject=_SUBJECT_FILE.match(file.name)[1],
                    session="protocol" if len(runs) == 1 else f"protocol-run{k}",
                    groups={g: list(i) for g, i in groups.items()},
                    source=f"{file} (rows {run.start + 1}-{run.stop})",
                    timestamps=table[run, 0].copy(),  # not a view of the whole table
                    label_names=dict(LABEL_NAMES),
                )
            )
    return ReadResult(recordings, {k: v for k, v in sorted(counts.items()) if v})


def _layout(
    imus: list[str], sensors: list[str], heart_rate: bool
) -> tuple[list[int], list[str], list[str], dict[str, list[int]]]:
    """File columns, channel names, units and groups of the chosen IMUs and sensors."""
    for name, value, known in (("imus", imus, IMU_FIRST_COLUMN), ("sensors", sensors, SENSORS)):
        unknown = [v for v in value if v not in known]
        if unknown or not value:
            raise ValueError(f"pamap2 option {name}={value}: choose from {list(known)}")
    columns, channels, units, groups = [], [], [], {}
    for imu in imus:
        for sensor in sensors:
            offset, kind, axes, unit = SENSORS[sensor]
            idx = list(range(len(channels), len(channels) + len(axes)))
            groups[f"{imu}_{kind}"] = idx
            if imu == imus[0]:
                groups[kind] = idx
            columns += [IMU_FIRST_COLUMN[imu] + offset + i for i in range(len(axes))]
            channels += [f"{imu}_{kind}{axis}" for axis in axes]
            units += [unit] * len(axes)
    if heart_rate:
        groups["heart_rate"] = [len(channels)]
        columns, channels, units = [*columns, 2], [*channels, "heart_rate"], [*units, "bpm"]
    return columns, channels, units, groups


def _subject_files(path: Path) -> list[Path]:
    """A subjectXXX.dat file, or those of a Protocol folder (or of its parent)."""
    if path.is_file():
        if not _SUBJECT_FILE.match(path.name):
            raise ValueError(f"{path}: expected a PAMAP2 file named subjectXXX.dat")
        return [path]
    folder = path / "Protocol" if (path / "Protocol").is_dir() else path
    files = sorted(p for p in folder.glob("subject*.dat") if _SUBJECT_FILE.match(p.name))
    if not files:
        raise FileNotFoundError(f"{folder}: no subjectXXX.dat files (expected PAMAP2 Protocol/)")
    return files


def _interpolate_readings(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation between the finite readings; NaN outside the first and last."""
    ok = np.isfinite(values)
    if not ok.any():
        return values
    out = np.interp(t, t[ok], values[ok])
    out[(t < t[ok][0]) | (t > t[ok][-1])] = np.nan
    return out
