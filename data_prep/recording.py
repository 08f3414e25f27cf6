"""The `Recording`: one continuous, single-subject stream of sensor samples.

Every reader produces Recordings; every later stage (resampling, filtering, windowing)
consumes them. See docs/architecture.md 4.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

KNOWN_UNITS = frozenset({"g", "m/s^2", "rad/s", "deg/s", "m", "bpm", "degC", "uT", "a.u."})


class RecordingError(ValueError):
    """A recording that cannot be used as it is; the message names its source."""


@dataclass
class Recording:
    """A continuous recording of one subject.

    Attributes:
        signals: float32 array [T, C].
        channels: channel names, length C.
        units: unit of each channel, length C, from `KNOWN_UNITS`.
        rate_hz: sampling rate in Hz (after resampling, the exact rate).
        labels: int array [T], -1 where unlabelled, otherwise the source's activity id.
        subject: subject identifier (as a string, e.g. "1").
        session: session / experiment identifier within the subject.
        groups: modality name -> channel indices (e.g. {"acc": [0, 1, 2], "gyro": [3, 4, 5]}).
        source: where it came from (file path or package resource), used in every error.
        timestamps: optional float64 [T] seconds, present where the source has time stamps.
        label_names: optional mapping from source activity id to name.
    """

    signals: np.ndarray
    channels: list[str]
    units: list[str]
    rate_hz: float
    labels: np.ndarray
    subject: str
    session: str
    groups: dict[str, list[int]]
    source: str
    timestamps: np.ndarray | None = None
    label_names: dict[int, str] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.rate_hz

    def validate(self) -> Recording:
        """Check shapes, units, finiteness and time stamps; raise `RecordingError` naming it."""
        where = f"{self.source} (subject {self.subject}, session {self.session})"
        if self.signals.ndim != 2:
            raise RecordingError(
                f"{where}: signals must be 2-D [T, C], got shape {self.signals.shape}"
            )
        n, c = self.signals.shape
        if self.signals.dtype != np.float32:
            raise RecordingError(f"{where}: signals must be float32, got {self.signals.dtype}")
        if len(self.channels) != c:
            raise RecordingError(
                f"{where}: {c} signal columns but {len(self.channels)} channel names"
            )
        if len(self.units) != c:
            raise RecordingError(f"{where}: {c} signal columns but {len(self.units)} units")
        unknown = sorted(set(self.units) - KNOWN_UNITS)
        if unknown:
            raise RecordingError(
                f"{where}: unknown unit(s) {unknown}; expected one of {sorted(KNOWN_UNITS)}"
            )
        if not self.rate_hz > 0:
            raise RecordingError(f"{where}: rate_hz must be positive, got {self.rate_hz}")
        if self.labels.shape != (n,):
            raise RecordingError(f"{where}: labels must have shape ({n},), got {self.labels.shape}")
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise RecordingError(f"{where}: labels must be integers, got {self.labels.dtype}")
        for name, idx in self.groups.items():
            bad = [i for i in idx if not 0 <= i < c]
            if bad:
                raise RecordingError(
                    f"{where}: group {name!r} has channel indices {bad} outside 0..{c - 1}"
                )
        first = first_nonfinite(self.signals)
        if first is not None:
            rows = int((~np.isfinite(self.signals).all(axis=1)).sum())
            raise RecordingError(
                f"{where}: {rows} samples hold NaN/inf (first at sample {first}); "
                "repair them (data_prep.repair) before validation"
            )
        if self.timestamps is not None:
            if self.timestamps.shape != (n,):
                raise RecordingError(
                    f"{where}: timestamps must have shape ({n},), got {self.timestamps.shape}"
                )
            for offset, steps in time_steps(self.timestamps):
                if steps.min() <= 0:
                    i = offset + int(np.flatnonzero(steps <= 0)[0])
                    raise RecordingError(
                        f"{where}: time stamps must increase strictly; sample {i + 1} has "
                        f"{float(self.timestamps[i + 1])!r} after {float(self.timestamps[i])!r}"
                    )
        return self


#: rows a chunked pass over a long recording takes at a time: its temporaries stay in cache and
#: are reused, so a multi-day recording gets no mask or float64 copy of its own size
ROW_CHUNK = 1 << 16


def first_nonfinite(values: np.ndarray) -> int | None:
    """The first index along axis 0 of `values` holding NaN or inf (any column), or None."""
    for a in range(0, values.shape[0], ROW_CHUNK):
        finite = np.isfinite(values[a : a + ROW_CHUNK])
        if not finite.all():
            rows = finite.reshape(len(finite), -1).all(axis=1)
            return a + int(np.argmin(rows))
    return None


def time_steps(t: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """`np.diff(t)` a chunk at a time: (offset, steps) with steps[k] = t[offset + k + 1] -
    t[offset + k]. The steps live in one reused buffer, valid until the next chunk."""
    buffer = np.empty(min(ROW_CHUNK, max(len(t) - 1, 0)), dtype=t.dtype)
    for a in range(0, len(t) - 1, ROW_CHUNK):
        b = min(a + ROW_CHUNK, len(t) - 1)
        yield a, np.subtract(t[a + 1 : b + 1], t[a:b], out=buffer[: b - a])


#: labels spanning at most this many ids are counted (one pass) rather than sorted
_COUNTED_SPAN = 1 << 16
_CHUNK = 1 << 20


def label_values(labels: np.ndarray) -> np.ndarray:
    """The distinct values of an integer label track, sorted (as `np.unique`, in its dtype).

    Label ids span a few values, so they are counted chunk by chunk in one pass (no sorted copy
    of a multi-day track); a track whose ids span more than 65,536 values is sorted.
    """
    if labels.size == 0:
        return np.unique(labels)
    low, high = int(labels.min()), int(labels.max())
    if high - low >= _COUNTED_SPAN:
        return np.unique(labels)
    seen = np.zeros(high - low + 1, dtype=bool)
    for start in range(0, labels.size, _CHUNK):
        chunk = labels[start : start + _CHUNK].astype(np.int64) - low
        seen |= np.bincount(chunk, minlength=seen.size).astype(bool)
    return (np.flatnonzero(seen) + low).astype(labels.dtype)
