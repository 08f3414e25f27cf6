"""The `WindowSet`: labelled, subject-split windows ready for training (docs/architecture.md 4).

Stored as two files side by side: `<stem>.npz` (arrays, no pickle) and `<stem>.json`
(metadata). Loading uses `allow_pickle=False`, so a cache file can never run code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: the labelled splits, which a trainer evaluates
SPLITS = ("train", "val", "test")
#: the unlabelled pool of training windows (y = -1); split index 3, outside `SPLITS`
POOL = "pool"
#: split name -> its index in `WindowSet.split`
SPLIT_INDEX = {name: i for i, name in enumerate((*SPLITS, POOL))}
_ARRAYS = ("X", "y", "subject", "recording", "start", "split")


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
        m = self.mask(split)
        return WindowSet(*(getattr(self, a)[m] for a in _ARRAYS), meta=self.meta)

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
        """Write `<stem>.npz` and `<stem>.json` atomically (temporary file, then rename)."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        tmp_npz = stem.with_name(stem.name + ".tmp.npz")
        np.savez(tmp_npz, **{a: getattr(self, a) for a in _ARRAYS})
        tmp_json = stem.with_name(stem.name + ".tmp.json")
        tmp_json.write_text(json.dumps(self.meta, indent=1, sort_keys=True))
        tmp_npz.replace(stem.with_suffix(".npz"))
        tmp_json.replace(stem.with_suffix(".json"))

    @classmethod
    def load(cls, stem: Path) -> WindowSet:
        """Read a WindowSet written by `save` (no pickle is ever loaded)."""
        stem = Path(stem)
        meta = json.loads(stem.with_suffix(".json").read_text())
        with np.load(stem.with_suffix(".npz"), allow_pickle=False) as z:
            arrays = {a: z[a] for a in _ARRAYS}
        return cls(**arrays, meta=meta)
