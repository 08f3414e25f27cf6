"""Resampling a `Recording` to a target rate.

Regular recordings are resampled with a polyphase FIR filter: the method of
`scipy.signal.resample_poly(x, up, down, padtype="line")` (the anti-aliasing approach of
Crochiere & Rabiner, "Multirate Digital Signal Processing", 1983: a Kaiser-windowed (beta 5)
sinc low-pass of 20 * max(up, down) + 1 taps, cut-off at the lower Nyquist rate, the signal
extended past its ends along the line through its first and last samples). `polyphase`
computes what scipy computes (tested against it: equal up to float32 rounding, 2e-6 on signals
of a few g) as float32 matrix products with the filter's taps, a block of output samples at a
time, optionally over the input's own memory. Recordings whose time stamps are irregular
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
#: output samples x channels `polyphase` computes at a time: its buffers stay in cache
POLYPHASE_BLOCK = 1 << 16
#: the largest matrix product (rows x inner x columns) OpenBLAS computes on one thread: larger
#: ones wake its other threads, whose waiting costs more CPU time than they save on a busy machine
GEMM_ONE_THREAD = 1 << 18


def resample(rec: Recording, rate_hz: float, overwrite: bool = False) -> Recording:
    """Return `rec` at `rate_hz` (the same object when nothing needs doing).

    With `overwrite`, for a caller that owns `rec.signals` and needs them no more, a lower rate
    is written over their first rows where it can be (`polyphase`'s `overwrite_x`): a
    multi-day recording is not held twice.
    """
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
    signals = polyphase(rec.signals, up, down, overwrite_x=overwrite)
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


def polyphase(x: np.ndarray, up: int, down: int, overwrite_x: bool = False) -> np.ndarray:
    """x [n, C] float32 (finite) at `up / down` times its rate: [ceil(n * up / down), C] float32.

    Column c equals `scipy.signal.resample_poly(x[:, c], up, down, padtype="line")` up to the
    order of the float32 sums (module docstring; tested against it). Output sample i of scipy's
    `upfirdn` is the sum of the products `xext[i * down // up - P + 1 + m] * phase_taps[i * down
    % up, m]` (m = 0..P-1, P taps per phase), where `xext` is x extended along its end line; the
    samples kept are i = first .. first + n_out - 1. Here G periods of `up` outputs make a row
    whose inputs lie in two consecutive chunks of G * down samples, so a channel's rows are two
    matrix products of its chunks with fixed [G * down, G * up] tap matrices (`_tap_matrices`):
    float32 BLAS, a block of rows at a time, in products small enough for one thread
    (`GEMM_ONE_THREAD`).

    With `overwrite_x`, x writable and C-contiguous and the rate going down, the result is
    written over x's first rows and returned as a view of them (x's values are then lost) when
    that is safe: each block copies its input before writing, and the rows written before a
    block lie before the first row it reads (checked for the second block: the margin grows by
    down - up rows a period). Otherwise, and without `overwrite_x`, it is a new array.
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
    low, high = _tap_matrices(phase_taps, up, down)
    chunk, width = low.shape  # G * down inputs, G * up outputs a row
    periods = width // up
    with np.errstate(divide="ignore", invalid="ignore"):  # n == 1: NaN, as scipy gives
        slope = (x[-1] - x[0]) / np.float32(n - 1)
    ends = (x[0].copy(), x[-1].copy())  # the end line's anchors, kept before any overwrite
    # row b: outputs up * (k_first + b * G) on, from xext[start + b * chunk] on
    k_first, k_end = first // up, -(-(first + n_out) // up)
    start = k_first * down - per_phase + 1
    n_rows = -(-(k_end - k_first) // periods)
    block = max(1, POLYPHASE_BLOCK // (channels * width))  # rows at a time
    second = k_first + block * periods  # the second block's first period
    in_place = (
        overwrite_x
        and up < down
        and x.flags.writeable
        and x.flags.c_contiguous
        and (block >= n_rows or up * second - first <= second * down - per_phase + 1)
    )
    out = x[:n_out] if in_place else np.empty((n_out, channels), dtype=np.float32)
    step = max(1, GEMM_ONE_THREAD // (chunk * width))  # rows of one product
    results = np.empty((channels * (block + 1), width), dtype=np.float32)
    spill = np.empty((step, width), dtype=np.float32)
    for b0 in range(0, n_rows, block):
        rows = min(block, n_rows - b0)
        a = start + b0 * chunk
        segment = _extended(x, ends, slope, a, a + (rows + 1) * chunk)
        # channel c's chunks are rows c * (rows + 1) .. of `chunks`; row (c, rows) is unused
        chunks = np.ascontiguousarray(segment.T).reshape(-1, chunk)
        result = results[: len(chunks)]
        for r0 in range(0, len(chunks) - 1, step):
            r1 = min(r0 + step, len(chunks) - 1)
            np.matmul(chunks[r0:r1], low, out=result[r0:r1])
            np.matmul(chunks[r0 + 1 : r1 + 1], high, out=spill[: r1 - r0])
            np.add(result[r0:r1], spill[: r1 - r0], out=result[r0:r1])
        i0 = up * (k_first + b0 * periods)  # the block's first output
        lo, hi = max(i0, first), min(i0 + rows * width, first + n_out)
        values = result.reshape(channels, rows + 1, width)[:, :rows].reshape(channels, -1)
        out[lo - first : hi - first] = values[:, lo - i0 : hi - i0].T
    return out


def _tap_matrices(phase_taps: np.ndarray, up: int, down: int) -> tuple[np.ndarray, np.ndarray]:
    """The polyphase filter as two [G * down, G * up] float32 matrices (low, high).

    A row of G periods, whose first period starts at input s (output o = g * up + r of it is
    the sum over m of phase_taps[r * down % up, m] * xext[s + g * down + r * down // up + m]),
    is `chunk @ low + next_chunk @ high` for the chunks xext[s : s + G * down] and the next G *
    down samples; G is the smallest number of periods whose inputs fit in the two chunks.
    """
    per_phase = phase_taps.shape[1]
    offset = [r * down // up for r in range(up)]
    periods = max(1, -(-(offset[-1] + per_phase - down) // down))
    matrix = np.zeros((2 * periods * down, periods * up), dtype=np.float32)
    for g in range(periods):
        for r in range(up):
            at = g * down + offset[r]
            matrix[at : at + per_phase, g * up + r] = phase_taps[r * down % up]
    return matrix[: periods * down], matrix[periods * down :]


def _upfirdn_len(len_h: int, n_in: int, up: int, down: int) -> int:
    """Length of `scipy.signal.upfirdn`'s output for a filter of `len_h` taps."""
    return ((n_in - 1) * up + len_h - 1) // down + 1


def _extended(
    x: np.ndarray, ends: tuple[np.ndarray, np.ndarray], slope: np.ndarray, a: int, b: int
) -> np.ndarray:
    """Rows a..b-1 of x extended past both ends along the line through its first and last rows
    (upfirdn's `line` mode, in float32: x[0] + i * slope before, x[-1] + i * slope after), those
    two rows given as `ends` (copies taken before x is overwritten)."""
    n = len(x)
    if a >= 0 and b <= n:
        return x[a:b]
    segment = np.empty((b - a, x.shape[1]), dtype=np.float32)
    lo, hi = max(a, 0), min(b, n)
    if lo < hi:
        segment[lo - a : hi - a] = x[lo:hi]
    if a < 0:
        before = np.arange(a, min(b, 0)).astype(np.float32)[:, None]
        segment[: len(before)] = ends[0] + before * slope
    if b > n:
        after = np.arange(max(a, n), b)
        segment[max(a, n) - a :] = ends[1] + (after - n + 1).astype(np.float32)[:, None] * slope
    return segment


def is_irregular(rec: Recording) -> bool:
    """Whether the time stamps deviate from the declared rate by more than jitter.

    Raises `RecordingError` when the median step contradicts the declared rate. One chunked pass
    finds the extreme steps and counts the steps within the rate tolerance: when they are most
    of the steps the median is among them (no step array of a multi-day recording is made);
    only otherwise is the median computed from every step.
    """
    if len(rec.timestamps) < 2:
        return False
    period = 1.0 / rec.rate_hz
    # the largest |step - period| is at the smallest or the largest step
    low, high, near = np.inf, -np.inf, 0
    for _, steps in time_steps(rec.timestamps):
        low, high = min(low, float(steps.min())), max(high, float(steps.max()))
        np.abs(np.subtract(steps, period, out=steps), out=steps)  # the buffer is ours to reuse
        near += int(np.count_nonzero(steps <= RATE_TOLERANCE * period))
    jitter = max(high - period, period - low)
    if 2 * near <= len(rec.timestamps) - 1:  # the median may lie outside the tolerance
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
