"""Sliding windows over one recording, labelled by majority with a purity threshold.

A recording of T samples gives `floor((T - L) / S) + 1` windows of length L at step S (none
when T < L); windows never cross a recording boundary because each recording is windowed on
its own. A window takes the label most of its samples carry (ties: the smallest id); it is
rejected, by reason, when that label covers less than `purity` of the window (`impure`), is the
unlabelled -1 and the null class is dropped (`null`), or is not in the configured label map
(`unselected_label`); rejected windows are returned by reason, for the pipeline to drop or to
put into an unlabelled pool. This is the sliding-window segmentation of
Banos et al., "Window Size Impact in Human Activity Recognition", Sensors 2014.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from data_prep.recording import ROW_CHUNK, label_values

NULL = -1
#: windows copied at a time by `extract`
EXTRACT_BLOCK = 4096


def count_windows(n_samples: int, length: int, step: int) -> int:
    """`floor((T - L) / S) + 1`, or 0 when the recording is shorter than one window."""
    return 0 if n_samples < length else (n_samples - length) // step + 1


def window_starts(n_samples: int, length: int, step: int) -> np.ndarray:
    """First sample of every window."""
    return np.arange(count_windows(n_samples, length, step), dtype=np.int64) * step


def majority_labels(
    labels: np.ndarray, starts: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """(majority label, share of the window it covers) for each window start.

    Each label's samples are counted between consecutive window edges (starts and ends), a
    stretch of about `ROW_CHUNK` samples at a time, and a window's count is the difference of
    their running sums at its edges: memory of the segments and of the windows, never of
    [T, labels] nor of a boolean track of T.
    """
    values = label_values(labels)
    ends = starts + length
    edges = _distinct(np.concatenate([starts, ends]))
    at_start, at_end = np.searchsorted(edges, starts), np.searchsorted(edges, ends)
    # segment k is [edges[k], edges[k + 1]); the one from the last edge to T is not used
    bounds = edges if edges[-1] < len(labels) else edges[:-1]
    per_segment = np.empty((len(values), len(bounds)), dtype=np.int64)
    cuts = np.searchsorted(bounds, np.arange(bounds[0], len(labels), ROW_CHUNK))
    cuts = _distinct(np.append(cuts, len(bounds)))
    for i0, i1 in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
        a, b = bounds[i0], bounds[i1] if i1 < len(bounds) else len(labels)
        stretch, local = labels[a:b], bounds[i0:i1] - a
        for j, value in enumerate(values):
            np.add.reduceat(stretch == value, local, dtype=np.int64, out=per_segment[j, i0:i1])
    in_window = np.empty((len(starts), len(values)), dtype=np.int64)
    running = np.zeros(len(edges), dtype=np.int64)
    for j in range(len(values)):
        np.cumsum(per_segment[j, : len(edges) - 1], out=running[1:])
        in_window[:, j] = running[at_end] - running[at_start]
    best = in_window.argmax(axis=1)
    return values[best], in_window[np.arange(len(starts)), best] / length


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (as `np.unique`), by a stable sort: a merge when `values` is
    a few sorted runs (window starts, then ends), with no hashing of the whole array."""
    ordered = np.sort(values, kind="stable")
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])]


@dataclass
class LabelledWindows:
    """Windows of one recording: those kept (start samples and class indices) and those
    rejected (reason -> start samples), so a caller may still use the rejected ones."""

    starts: np.ndarray
    y: np.ndarray
    rejected: dict[str, np.ndarray]

    @property
    def dropped(self) -> Counter:
        """Reason -> number of windows rejected for it (reasons with none left out)."""
        return Counter({k: len(v) for k, v in self.rejected.items() if len(v)})


def label_windows(
    labels: np.ndarray,
    length: int,
    step: int,
    purity: float,
    class_of: dict[int, int],
    null_index: int | None,
) -> LabelledWindows:
    """Window one recording's label track and keep the windows that pass.

    Args:
        labels: source label ids [T], -1 unlabelled.
        class_of: source label id -> class index (the configured label map).
        null_index: class index of the null class, or None to drop unlabelled windows.
    """
    starts = window_starts(len(labels), length, step)
    if starts.size == 0:
        return LabelledWindows(starts, np.zeros(0, np.int64), {})
    major, share = majority_labels(labels, starts, length)
    lookup = dict(class_of)
    if null_index is not None:
        lookup[NULL] = null_index
    ids = label_values(major)
    y = np.array([lookup.get(int(m), -1) for m in ids], dtype=np.int64)[np.searchsorted(ids, major)]
    impure = share < purity - 1e-9
    reasons = {
        "windows_impure": impure,
        "windows_null": ~impure & (major == NULL) & (y < 0),
        "windows_unselected_label": ~impure & (major != NULL) & (y < 0),
    }
    keep = ~impure & (y >= 0)
    return LabelledWindows(starts[keep], y[keep], {k: starts[m] for k, m in reasons.items()})


def extract(
    signals: np.ndarray, starts: np.ndarray, length: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Windows [N, C, L] (float32, contiguous) cut from signals [T, C] at `starts`.

    Written into `out` when given (an [N, C, L] float32 array, e.g. rows of a larger one), a
    block of windows at a time: no second copy of a multi-day recording's windows.
    """
    view = np.lib.stride_tricks.sliding_window_view(signals, length, axis=0)  # [T-L+1, C, L]
    if out is None:
        out = np.empty((len(starts), signals.shape[1], length), dtype=np.float32)
    for a in range(0, len(starts), EXTRACT_BLOCK):
        out[a : a + EXTRACT_BLOCK] = view[starts[a : a + EXTRACT_BLOCK]]
    return out


def window_mean_std(
    pieces: list[tuple[np.ndarray, np.ndarray]], length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (float64) of the windows [N, C, L] that
    `extract` would cut from each (signals [T, C], starts) piece, without cutting them.

    A sample counts once for every window that covers it, so the figures are those of the
    stacked windows (`x.mean(axis=(0, 2))` and `x.std(axis=(0, 2))` in float64), equal to them
    up to the order of the float64 sums. One pass over the signals, a block of samples at a
    time: each block's weighted mean and sum of squared deviations, merged into the running
    ones by the pairwise update of Chan, Golub & LeVeque, "Updating formulae and a pairwise
    algorithm for computing sample variances", 1979 (no cancellation of large sums). The
    pieces must hold some window.
    """
    weight, mean, squares = 0.0, 0.0, 0.0
    for block, cover in _covered_blocks(pieces, length):
        block_weight = float(cover.sum())
        block_mean = (cover @ block) / block_weight
        block -= block_mean
        np.square(block, out=block)
        delta = block_mean - mean
        total = weight + block_weight
        mean = mean + delta * (block_weight / total)
        squares = squares + cover @ block + delta**2 * (weight * block_weight / total)
        weight = total
    return np.asarray(mean), np.sqrt(squares / weight)


def _covered_blocks(
    pieces: list[tuple[np.ndarray, np.ndarray]], length: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(samples a..b-1 of a piece's signals in float64, how many of its windows cover each)
    for every block of `ROW_CHUNK` samples that a window covers.

    The cover of sample t is #(starts <= t) - #(ends <= t), ends = starts + length: counted
    before the block by binary search, inside it by a running sum.
    """
    for signals, starts in pieces:
        starts = np.sort(starts)
        ends = starts + length
        for a in range(0, len(signals), ROW_CHUNK):
            b = min(a + ROW_CHUNK, len(signals))
            (s0, s1), (e0, e1) = (np.searchsorted(v, [a, b]) for v in (starts, ends))
            if s1 == s0 and s0 == e0:  # no window starts here, none runs on into it
                continue
            delta = np.bincount(starts[s0:s1] - a, minlength=b - a)
            delta -= np.bincount(ends[e0:e1] - a, minlength=b - a)
            cover = np.cumsum(delta) + (s0 - e0)
            yield signals[a:b].astype(np.float64), cover.astype(np.float64)
