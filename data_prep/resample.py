"""Resampling a `Recording` to a target rate.

Regular recordings are resampled with a polyphase FIR filter (`scipy.signal.resample_poly`,
the anti-aliasing approach of Crochiere & Rabiner, "Multirate Digital Signal Processing", 1983).
Recordings whose time stamps are irregular (jitter, dropped samples) are first interpolated
linearly onto a regular grid at their declared rate, then resampled the same way. A declared
rate that the time stamps contradict is an error, never a guess. Labels follow the nearest
source sample in time. A multi-day recording is resampled a channel at a time and interpolated
and labelled a chunk at a time, so no float64 or index copy of the whole recording is made.
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
    n_out = -(-rec.n_samples * up // down)
    signals = np.empty((n_out, rec.signals.shape[1]), dtype=np.float32)
    for c in range(signals.shape[1]):  # a channel at a time: float32 throughout, one at a time
        signals[:, c] = resample_poly(rec.signals[:, c], up, down, padtype="line")
    labels = np.empty(n_out, dtype=rec.labels.dtype)
    for a, b in _chunks(n_out):
        src = np.round(np.arange(a, b) * down / up).astype(np.int64)
        labels[a:b] = rec.labels[np.minimum(src, rec.n_samples - 1)]
    return dataclasses.replace(
        rec, signals=signals, labels=labels, rate_hz=float(rate_hz), timestamps=None
    )


def is_irregular(rec: Recording) -> bool:
    """Whether the time stamps deviate from the declared rate by more than jitter.

    Raises `RecordingError` when the median step contradicts the declared rate.
    """
    steps = np.diff(rec.timestamps)
    if steps.size == 0:
        return False
    period = 1.0 / rec.rate_hz
    # the largest |step - period| is at the smallest or the largest step
    jitter = max(float(steps.max()) - period, period - float(steps.min()))
    median = float(np.median(steps, overwrite_input=True))  # partitions `steps`, no copy
    if abs(median - period) > RATE_TOLERANCE * period:
        raise RecordingError(
            f"{rec.source} (subject {rec.subject}, session {rec.session}): declared rate "
            f"{rec.rate_hz} Hz but the median time-stamp step is {median:.6g} s "
            f"({1 / median:.4g} Hz)"
        )
    return bool(jitter > JITTER_TOLERANCE * period)


def regularise(rec: Recording) -> Recording:
    """Interpolate an irregularly time-stamped recording onto a grid at its declared rate.

    Chunk by chunk of the grid: each chunk interpolates from the source samples around it only.
    """
    t = rec.timestamps
    n = int(np.floor((t[-1] - t[0]) * rec.rate_hz)) + 1
    grid = np.empty(n, dtype=np.float64)
    signals = np.empty((n, rec.signals.shape[1]), dtype=np.float32)
    labels = np.empty(n, dtype=rec.labels.dtype)
    for a, b in _chunks(n):
        g = t[0] + np.arange(a, b) / rec.rate_hz
        grid[a:b] = g
        # the source samples bracketing this chunk (one more each side: np.interp's neighbours)
        lo = max(int(np.searchsorted(t, g[0], side="right")) - 1, 0)
        hi = min(int(np.searchsorted(t, g[-1], side="left")) + 1, len(t) - 1)
        for c in range(signals.shape[1]):
            signals[a:b, c] = np.interp(g, t[lo : hi + 1], rec.signals[lo : hi + 1, c])
        nearest = np.clip(np.searchsorted(t, g), 1, len(t) - 1)
        nearest -= (g - t[nearest - 1]) < (t[nearest] - g)
        labels[a:b] = rec.labels[nearest]
    return dataclasses.replace(rec, signals=signals, labels=labels, timestamps=grid)


def _chunks(n: int, size: int = 1 << 20) -> list[tuple[int, int]]:
    """[a, b) ranges of at most `size` covering 0..n."""
    return [(a, min(a + size, n)) for a in range(0, n, size)]
