"""Resampling a `Recording` to a target rate.

Regular recordings are resampled with a polyphase FIR filter: the method of
`scipy.signal.resample_poly(x, up, down, padtype="line")` (the anti-aliasing approach of
Crochiere & Rabiner, "Multirate Digital Signal Processing", 1983: a Kaiser-windowed (beta 5)
sinc low-pass of 20 * max(up, down) + 1 taps, cut-off at the lower Nyquist rate, the signal
extended past its ends along the line through its first and last samples). `polyphase`
computes exactly what scipy computes, bit for bit (tested against it), but for every channel
at once and a block of output samples at a time with vectorised float32 operations, summing
each output's products tap by tap in scipy's order. Recordings whose time stamps are irregular
(jitter, dropped samples) are first interpolated linearly onto a regular grid at their declared
rate, then resampled the same way. A declared rate that the time stamps contradict is an
error, never a guess. Labels follow the nearest source sample in time. A multi-day recording is
filtered, interpolated and labelled a block at a time, so no float64 or index copy of the whole
recording is made.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np

from data_prep.recording import Recording, RecordingError, time_steps

#: relative disagreement between declared rate and median time-stamp step that is an error
RATE_TOLERANCE = 0.05
#: a step deviating from 1/rate by more than this share of a period makes a recording irregular
JITTER_TOLERANCE = 0.25
#: output samples (of one phase) x channels `polyphase` computes at a time: its buffers stay in
#: cache
POLYPHASE_BLOCK = 1 << 16


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
    up, down = ratio.numerator, ratio.denominator
    signals = polyphase(rec.signals, up, down)
    n_out = len(signals)
    if up == 1:  # every output sample lies on an input sample
        labels = rec.labels[::down].copy()
    else:
        labels = np.empty(n_out, dtype=rec.labels.dtype)
        for a, b in _chunks(n_out):
            src = np.round(np.arange(a, b) * down / up).astype(np.int64)
            labels[a:b] = rec.labels[np.minimum(src, rec.n_samples - 1)]
    return dataclasses.replace(
        rec, signals=signals, labels=labels, rate_hz=float(rate_hz), timestamps=None
    )


def polyphase(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """x [n, C] float32 at `up / down` times its rate: [ceil(n * up / down), C] float32.

    Column c equals `scipy.signal.resample_poly(x[:, c], up, down, padtype="line")` bit for bit
    (module docstring). Output sample i of scipy's `upfirdn` is the float32 sum, tap after tap
    from a zero, of the products `xext[i * down // up - P + 1 + m] * phase_taps[i * down % up, m]`
    (m = 0..P-1, P taps per phase), where `xext` is x extended along its end line; the samples
    kept are i = first .. first + n_out - 1. Here the outputs are grouped by phase r = i mod up
    and computed for a block of K of them at once: one multiply and one add per tap on [K, C].
    """
    from scipy.signal import firwin  # deferred: a cache hit never needs scipy.signal

    n, channels = x.shape
    half_len = 10 * max(up, down)
    taps = firwin(2 * half_len + 1, 1.0 / max(up, down), window=("kaiser", 5.0))
    taps = taps.astype(np.float32) * np.float32(up)
    n_out = -(-n * up // down)
    pre_pad = down - half_len % down
    first = (half_len + pre_pad) // down  # outputs upfirdn makes before the kept ones
    post_pad = 0
    while _upfirdn_len(len(taps) + pre_pad + post_pad, n, up, down) < n_out + first:
        post_pad += 1
    post_pad += -(len(taps) + pre_pad + post_pad) % up  # whole phases, as upfirdn pads
    padded = np.concatenate([np.zeros(pre_pad, np.float32), taps, np.zeros(post_pad, np.float32)])
    phase_taps = padded.reshape(-1, up).T[:, ::-1]  # [up, P]: phase t is padded[t::up] reversed
    per_phase = phase_taps.shape[1]
    coefficients = [list(phase_taps[r * down % up]) for r in range(up)]  # float32 scalars
    with np.errstate(divide="ignore", invalid="ignore"):  # n == 1: NaN, as scipy gives
        slope = (x[-1] - x[0]) / np.float32(n - 1)
    out = np.empty((n_out, channels), dtype=np.float32)
    # output i = r + up * k reads xext from k * down + offset[r] - P + 1 on, with
    # coefficients[r], the taps of phase r * down % up
    offset = [r * down // up for r in range(up)]
    block = max(1, POLYPHASE_BLOCK // channels)
    extra_rows = (offset[-1] + per_phase - 1) // down + 1
    acc = np.empty((block, channels), dtype=np.float32)
    product = np.empty_like(acc)
    for k0 in range(first // up, -(-(first + n_out) // up), block):
        k = min(block, -(-(first + n_out) // up) - k0)
        start = k0 * down - per_phase + 1
        rows = k + extra_rows
        segment = _extended(x, slope, start, start + rows * down)
        # xext[start + j] for j = q * down + p is phases[p, q]: each tap reads a contiguous slice
        phases = segment.reshape(rows, down, channels).transpose(1, 0, 2).copy()
        for r in range(up):
            total, prod = acc[:k], product[:k]
            total.fill(0)
            for m, coefficient in enumerate(coefficients[r]):
                q, p = divmod(offset[r] + m, down)
                np.multiply(phases[p, q : q + k], coefficient, out=prod)
                np.add(total, prod, out=total)
            lo = max(k0, -(-(first - r) // up))  # the kept outputs of this phase and block
            hi = min(k0 + k, -(-(first + n_out - r) // up))
            if hi > lo:
                i = r + up * lo - first
                out[i : i + up * (hi - lo) : up] = total[lo - k0 : hi - k0]
    return out


def _upfirdn_len(len_h: int, n_in: int, up: int, down: int) -> int:
    """Length of `scipy.signal.upfirdn`'s output for a filter of `len_h` taps."""
    return ((n_in - 1) * up + len_h - 1) // down + 1


def _extended(x: np.ndarray, slope: np.ndarray, a: int, b: int) -> np.ndarray:
    """Rows a..b-1 of x extended past both ends along the line through its first and last rows
    (upfirdn's `line` mode, in float32: x[0] + i * slope before, x[-1] + i * slope after)."""
    n = len(x)
    if a >= 0 and b <= n:
        return x[a:b]
    segment = np.empty((b - a, x.shape[1]), dtype=np.float32)
    lo, hi = max(a, 0), min(b, n)
    if lo < hi:
        segment[lo - a : hi - a] = x[lo:hi]
    if a < 0:
        before = np.arange(a, min(b, 0)).astype(np.float32)[:, None]
        segment[: len(before)] = x[0] + before * slope
    if b > n:
        after = np.arange(max(a, n), b)
        segment[max(a, n) - a :] = x[-1] + (after - n + 1).astype(np.float32)[:, None] * slope
    return segment


def is_irregular(rec: Recording) -> bool:
    """Whether the time stamps deviate from the declared rate by more than jitter.

    Raises `RecordingError` when the median step contradicts the declared rate.
    """
    if len(rec.timestamps) < 2:
        return False
    period = 1.0 / rec.rate_hz
    # the largest |step - period| is at the smallest or the largest step
    low, high = np.inf, -np.inf
    for _, steps in time_steps(rec.timestamps):
        low, high = min(low, float(steps.min())), max(high, float(steps.max()))
    jitter = max(high - period, period - low)
    if max(abs(low - period), abs(high - period)) <= RATE_TOLERANCE * period:
        return bool(jitter > JITTER_TOLERANCE * period)  # the median lies within the tolerance
    steps = np.diff(rec.timestamps)
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
