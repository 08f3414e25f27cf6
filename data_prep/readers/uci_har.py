"""Reader `uci_har`: UCI-HAR's pre-windowed `Inertial Signals` layout.

UCI "Human Activity Recognition Using Smartphones" (Anguita, Ghio, Oneto, Parra & Reyes-Ortiz,
ESANN 2013): 30 subjects, a waist-worn phone at 50 Hz, cut into 2.56 s windows (128 samples)
with 50% overlap. `<root>/{train,test}/Inertial Signals/{total_acc,body_gyro,body_acc}_{x,y,z}_
<split>.txt` hold one window per line (128 values); `subject_<split>.txt` and `y_<split>.txt`
one subject and one activity per window; `activity_labels.txt` the activity names.

Windows are de-overlapped back into continuous recordings: consecutive windows of one subject
and one activity whose overlapping halves agree are joined (the second half of each window is
the first half of the next). A run therefore holds one activity, and windowing it again at
128 samples, step 64, gives back exactly the original windows. Channels: `acc_*` (total_acc,
g, group `acc`), `gyro_*` (body_gyro, rad/s, group `gyro`), `body_acc_*` (total_acc minus the
authors' gravity estimate, g, group `body_acc`). Sessions are `<split>-row<first window line>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from data_prep.readers import ReaderOptions, register_reader
from data_prep.readers._text import line_of, read_numeric
from data_prep.recording import Recording, RecordingError

RATE_HZ = 50.0
WINDOW = 128
HALF = WINDOW // 2
SIGNALS = (("total_acc", "acc", "g"), ("body_gyro", "gyro", "rad/s"), ("body_acc", "body_acc", "g"))
CHANNELS = [f"{name}_{axis}" for _, name, _ in SIGNALS for axis in "xyz"]
UNITS = [unit for _, _, unit in SIGNALS for _ in "xyz"]
GROUPS = {name: [3 * i, 3 * i + 1, 3 * i + 2] for i, (_, name, _) in enumerate(SIGNALS)}


class UciHarOptions(ReaderOptions):
    splits: list[Literal["train", "test"]] = Field(
        ["train", "test"], min_length=1, description="release folders read (train, test or both)"
    )


@register_reader("uci_har", UciHarOptions)
def read(path: str | Path, options: UciHarOptions) -> list[Recording]:
    """UCI-HAR pre-windowed Inertial Signals, de-overlapped into runs (acc + gyro, 50 Hz)."""
    root = Path(path)
    label_names = _activity_labels(root / "activity_labels.txt")
    recordings = []
    for split in options.splits:
        recordings += _read_split(root / split, split, label_names)
    return recordings


def _read_split(folder: Path, split: str, label_names: dict[int, str]) -> list[Recording]:
    subject_file, y_file = folder / f"subject_{split}.txt", folder / f"y_{split}.txt"
    subjects = _integers(subject_file)
    y = _integers(y_file)
    outside = np.flatnonzero(~np.isin(y, list(label_names)))
    if outside.size:
        raise RecordingError(
            f"{y_file}:{line_of(y_file, int(outside[0]))}: activity {y[outside[0]]} outside "
            f"activity_labels.txt {sorted(label_names)}"
        )
    if len(y) != len(subjects):
        raise RecordingError(f"{y_file}: {len(y)} rows but {subject_file.name} has {len(subjects)}")
    signals = folder / "Inertial Signals"
    x = np.empty((len(y), WINDOW, len(CHANNELS)), dtype=np.float32)
    for c, (stem, axis) in enumerate((stem, axis) for stem, _, _ in SIGNALS for axis in "xyz"):
        file = signals / f"{stem}_{axis}_{split}.txt"
        values = read_numeric(file, WINDOW)
        if len(values) != len(y):
            raise RecordingError(f"{file}: {len(values)} windows but {y_file.name} has {len(y)}")
        x[:, :, c] = values
    joined = (
        (subjects[1:] == subjects[:-1])
        & (y[1:] == y[:-1])
        & np.isclose(x[:-1, HALF:], x[1:, :HALF], rtol=1e-5, atol=1e-7).all(axis=(1, 2))
    )
    bounds = [0, *(np.flatnonzero(~joined) + 1).tolist(), len(y)]
    return [
        Recording(
            signals=np.concatenate([x[a], x[a + 1 : b, HALF:].reshape(-1, len(CHANNELS))]),
            channels=list(CHANNELS),
            units=list(UNITS),
            rate_hz=RATE_HZ,
            labels=np.full(WINDOW + HALF * (b - a - 1), y[a], dtype=np.int64),
            subject=str(subjects[a]),
            session=f"{split}-row{a + 1}",
            groups={k: list(v) for k, v in GROUPS.items()},
            source=f"{signals} (windows {a + 1}-{b})",
            label_names=dict(label_names),
        )
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _integers(path: Path) -> np.ndarray:
    """A one-column file of integers (subject or activity per window)."""
    values = read_numeric(path, 1)[:, 0]
    bad = np.flatnonzero(values != np.round(values))
    if bad.size:
        raise RecordingError(
            f"{path}:{line_of(path, int(bad[0]))}: expected an integer, got {values[bad[0]]}"
        )
    return values.astype(np.int64)


def _activity_labels(path: Path) -> dict[int, str]:
    """activity_labels.txt: lines `<id> <NAME>`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (expected the UCI HAR Dataset root folder)")
    names = {}
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2 or not cells[0].isdigit():
            raise RecordingError(f"{path}:{line_no}: expected `<id> <NAME>`, got {line.strip()!r}")
        names[int(cells[0])] = cells[1]
    if not names:
        raise RecordingError(f"{path}: empty file")
    return names
