"""Repair of a `Recording` before validation: time-stamp duplicates and NaN/inf gaps.

Sensor logs drop samples (PAMAP2 marks them NaN), repeat time stamps (WISDM) or hold
inf from broken conversions. `repair` fixes what can be fixed without inventing data and
counts every change; what cannot be fixed is cut out or raised, never dropped silently.

Rules, in order:
1. Time stamps (when present) must not decrease: a sample whose time stamp equals the
   previous one is dropped (the first is kept, counted `duplicate_timestamps_dropped`); a
   decreasing or non-finite time stamp raises `RecordingError` naming the source and sample.
2. Per channel, a run of non-finite values of at most `max_gap_s * rate_hz` samples with
   finite neighbours on both sides is linearly interpolated (over the time stamps where
   present, else over the sample index); `samples_interpolated` counts the samples (rows)
   with at least one interpolated value.
3. Rows inside a longer run (in any channel) are cut and the recording is split around them;
   non-finite rows at either end of a part have no neighbour to interpolate from and are
   trimmed. Both count as `samples_cut_nan`; `recording_splits` counts the extra parts made and
   `recordings_all_nan` the recordings with nothing finite left. Parts keep the subject and get
   the session `<session>/part<k>`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from data_prep.recording import Recording, RecordingError, first_nonfinite, time_steps


def repair(rec: Recording, max_gap_s: float) -> tuple[list[Recording], dict[str, int]]:
    """Repair `rec` (rules in the module docstring); return its parts and the counts."""
    counts: Counter = Counter()
    rec = _drop_duplicate_timestamps(rec, counts)
    if first_nonfinite(rec.signals) is None:
        return [rec], _nonzero(counts)
    finite = np.isfinite(rec.signals)
    max_gap = int(np.floor(max_gap_s * rec.rate_hz + 1e-9))
    keep = np.ones(rec.n_samples, dtype=bool)
    for c in range(finite.shape[1]):
        for start, stop in _runs(~finite[:, c]):
            if stop - start > max_gap:
                keep[start:stop] = False
    parts = []
    for start, stop in _runs(keep):
        ok = finite[start:stop].all(axis=1)
        if not ok.any():
            continue
        first, last = np.flatnonzero(ok)[[0, -1]]
        parts.append((start + first, start + last + 1))
    counts["samples_cut_nan"] = rec.n_samples - sum(stop - start for start, stop in parts)
    if not parts:
        counts["recordings_all_nan"] = 1
        return [], _nonzero(counts)
    counts["recording_splits"] = len(parts) - 1
    out = []
    for k, (start, stop) in enumerate(parts):
        piece = _slice(rec, start, stop, None if len(parts) == 1 else f"{rec.session}/part{k}")
        counts["samples_interpolated"] += _interpolate(piece)
        out.append(piece)
    return out, _nonzero(counts)


def _nonzero(counts: Counter) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counts.items()) if v}


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open [start, stop) index ranges of the True runs of a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _drop_duplicate_timestamps(rec: Recording, counts: Counter) -> Recording:
    t = rec.timestamps
    if t is None:
        return rec
    where = f"{rec.source} (subject {rec.subject}, session {rec.session})"
    bad = first_nonfinite(t)
    if bad is not None:
        raise RecordingError(f"{where}: sample {bad} has time stamp {float(t[bad])}")
    repeated = False
    for offset, steps in time_steps(t):
        low = steps.min()
        if low < 0:
            i = offset + int(np.flatnonzero(steps < 0)[0]) + 1
            raise RecordingError(
                f"{where}: time stamps go backwards at sample {i}: {float(t[i])} s after "
                f"{float(t[i - 1])} s"
            )
        repeated |= bool(low == 0)
    if not repeated:
        return rec
    dup = np.diff(t) == 0
    counts["duplicate_timestamps_dropped"] = int(dup.sum())
    keep = np.concatenate([[True], ~dup])
    return dataclasses.replace(
        rec, signals=rec.signals[keep], labels=rec.labels[keep], timestamps=t[keep]
    )


def _slice(rec: Recording, start: int, stop: int, session: str | None) -> Recording:
    return dataclasses.replace(
        rec,
        signals=rec.signals[start:stop].copy(),
        labels=rec.labels[start:stop],
        timestamps=None if rec.timestamps is None else rec.timestamps[start:stop],
        session=rec.session if session is None else session,
    )


def _interpolate(rec: Recording) -> int:
    """Interpolate every non-finite value of `rec.signals` in place (both ends are finite)."""
    finite = np.isfinite(rec.signals)
    rows = ~finite.all(axis=1)
    if not rows.any():
        return 0
    x = rec.timestamps if rec.timestamps is not None else np.arange(rec.n_samples, dtype=float)
    for c in np.flatnonzero(~finite.all(axis=0)):
        good = finite[:, c]
        rec.signals[~good, c] = np.interp(x[~good], x[good], rec.signals[good, c])
    return int(rows.sum())
