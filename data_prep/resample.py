"""Resampling a `Recording` to a target rate.

Regular recordings are resampled with a polyphase FIR filter (`scipy.signal.resample_poly`,
the anti-aliasing approach of Crochiere & Rabiner, "Multirate Digital Signal Processing", 1983).
Recordings whose time stamps are irregular (jitter, dropped samples) are first interpolated
linearly onto a regular grid at their declared rate, then resampled the same way. A declared
rate that the time stamps contradict is an error, never a guess. Labels follow the nearest
source sample in time.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from data_prep.recording import Recording, RecordingError

#: relative disagreement between declared rate and median time-stamp step that is an error
RATE_TOLERANCE = 0.05
#: a step deviating from 1/rate by more than this share of a period makes a recording irregular
JITTER_TOLERANCE = 0.25


def resample(rec: Recording, rate_hz: float) -> Recording:
    """Return `rec` at `rate_hz` (the same object when nothing needs doing)."""
    if rec.timestamps is not None and is_irregular(rec):
        rec = regularise(rec)
    if rec.rate_hz == rate_hz:
        return rec
    ratio = Fraction(rate_hz / rec.rate_hz).limit_denominator(1000)
    if abs(float(ratio) * rec.rate_hz - rate_hz) > 1e-6 * rate_hz:
        raise RecordingError(
            f"{rec.source}: cannot resample {rec.rate_hz} Hz to {rate_hz} Hz with a rational "
            "factor of denominator <= 1000"
        )
    from scipy.signal import resample_poly  # deferred: a cache hit never needs scipy.signal

    up, down = ratio.numerator, ratio.denominator
    signals = resample_poly(rec.signals, up, down, axis=0, padtype="line").astype(np.float32)
    src = np.minimum(
        np.round(np.arange(len(signals)) * down / up).astype(np.int64), rec.n_samples - 1
    )
    return dataclasses.replace(
        rec, signals=signals, labels=rec.labels[src], rate_hz=float(rate_hz), timestamps=None
    )


def is_irregular(rec: Recording) -> bool:
    """Whether the time stamps deviate from the declared rate by more than jitter.

    Raises `RecordingError` when the median step contradicts the declared rate.
    """
    steps = np.diff(rec.timestamps)
    if steps.size == 0:
        return False
    period = 1.0 / rec.rate_hz
    median = float(np.median(steps))
    if abs(median - period) > RATE_TOLERANCE * period:
        raise RecordingError(
            f"{rec.source} (subject {rec.subject}, session {rec.session}): declared rate "
            f"{rec.rate_hz} Hz but the median time-stamp step is {median:.6g} s "
            f"({1 / median:.4g} Hz)"
        )
    return bool(np.abs(steps - period).max() > JITTER_TOLERANCE * period)


def regularise(rec: Recording) -> Recording:
    """Interpolate an irregularly time-stamped recording onto a grid at its declared rate."""
    t = rec.timestamps
    grid = t[0] + np.arange(int(np.floor((t[-1] - t[0]) * rec.rate_hz)) + 1) / rec.rate_hz
    signals = np.empty((len(grid), rec.signals.shape[1]), dtype=np.float32)
    for c in range(signals.shape[1]):
        signals[:, c] = np.interp(grid, t, rec.signals[:, c])
    nearest = np.clip(np.searchsorted(t, grid), 1, len(t) - 1)
    nearest -= (grid - t[nearest - 1]) < (t[nearest] - grid)
    return dataclasses.replace(rec, signals=signals, labels=rec.labels[nearest], timestamps=grid)
