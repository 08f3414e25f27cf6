"""The `WindowSet`: labelled, subject-split windows ready for training (docs/architecture.md 4).

Stored as two files side by side: `<stem>.npz` (arrays, no pickle) and `<stem>.json`
(metadata). Loading uses `allow_pickle=False`, so a cache file can never run code.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

#: the labelled splits, which a trainer evaluates
SPLITS = ("train", "val", "test")
#: the unlabelled pool of training windows (y = -1); split index 3, outside `SPLITS`
POOL = "pool"
#: split name -> its index in `WindowSet.split`
SPLIT_INDEX = {name: i for i, name in enumerate((*SPLITS, POOL))}
_ARRAYS = ("X", "y", "subject", "recording", "start", "split")


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write `path` through a temporary file unique to this writer (pid and a random name),
    flushed to disk and renamed over `path`; a failed write removes its temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class WindowSet:
    """Windows and their provenance.

    Attributes:
        X: float32 [N, C, T] raw (un-normalised) windows.
        y: int64 [N] class index into `meta["label_names"]` (-1 in the pool).
        subject: str [N] subject of each window.
        recording: int64 [N] index of the source recording (into `meta["recordings"]`).
        start: int64 [N] first sample of the window in its (resampled) recording.
        split: uint8 [N] 0 train, 1 val, 2 test (the order of `SPLITS`), 3 the unlabelled pool.
        meta: channels, groups, rate_hz, window, step, label_names, source, config_hash,
            dropped (reason -> count), norm ({"mean": [C], "std": [C]} from the training split),
            split_subjects ({split: [subjects]}), recordings ([{subject, session, source}]);
            with `split.pool`, pool (reason -> count of the pool's windows) and
            split_subjects["pool"] (the subjects whose labels are hidden); with
            `split.label_budget`, hidden_subjects (the training subjects outside the budget).
    """

    X: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    recording: np.ndarray
    start: np.ndarray
    split: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def channels(self) -> list[str]:
        return list(self.meta["channels"])

    @property
    def groups(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self.meta["groups"].items()}

    @property
    def label_names(self) -> list[str]:
        return list(self.meta["label_names"])

    @property
    def num_classes(self) -> int:
        return len(self.meta["label_names"])

    def mask(self, split: str) -> np.ndarray:
        """Boolean mask of the windows in `split` ("train", "val", "test" or "pool")."""
        if split not in SPLIT_INDEX:
            raise ValueError(f"unknown split {split!r}; splits are {list(SPLIT_INDEX)}")
        return self.split == SPLIT_INDEX[split]

    def subset(self, split: str) -> WindowSet:
        """The windows of one split (metadata shared)."""
        return self.take(self.mask(split))

    def take(self, index: np.ndarray) -> WindowSet:
        """The windows a boolean mask or an index array picks, repeats allowed (metadata
        shared)."""
        return WindowSet(*(getattr(self, a)[index] for a in _ARRAYS), meta=self.meta)

    def channel_indices(self, groups: list[str]) -> list[int]:
        """Channel indices of the named groups, in the order given (e.g. ["acc", "gyro"])."""
        missing = [g for g in groups if g not in self.meta["groups"]]
        if missing:
            raise KeyError(
                f"channel group(s) {missing} not in this WindowSet; "
                f"it has {sorted(self.meta['groups'])}"
            )
        return [i for g in groups for i in self.meta["groups"][g]]

    def save(self, stem: Path) -> None:
        """Write `<stem>.npz`, then `<stem>.json`, each atomically (`_write_atomic`), so a
        reader that finds both finds whole files, and concurrent writers never collide."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        arrays = {a: getattr(self, a) for a in _ARRAYS}
        _write_atomic(stem.with_suffix(".npz"), lambda f: np.savez(f, **arrays))
        text = json.dumps(self.meta, indent=1, sort_keys=True)
        _write_atomic(stem.with_suffix(".json"), lambda f: f.write(text.encode()))

    @classmethod
    def load(cls, stem: Path) -> WindowSet:
        """Read a WindowSet written by `save` (no pickle is ever loaded)."""
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
            arrays = {a: z[a] for a in _ARRAYS}
        return cls(**arrays, meta=meta)
