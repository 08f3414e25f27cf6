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
from dataclasses import dataclass

import numpy as np

from data_prep.recording import label_values

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

    Each label's samples are counted between consecutive window edges (starts and ends) in one
    pass per label, and a window's count is the difference of their running sums at its edges:
    memory of one boolean track and of the windows, never of [T, labels].
    """
    values = label_values(labels)
    ends = starts + length
    edges = np.unique(np.concatenate([starts, ends]))
    at_start, at_end = np.searchsorted(edges, starts), np.searchsorted(edges, ends)
    # segment k is [edges[k], edges[k + 1]); the one from the last edge to T is not used
    bounds = edges if edges[-1] < len(labels) else edges[:-1]
    in_window = np.empty((len(starts), len(values)), dtype=np.int64)
    running = np.zeros(len(edges), dtype=np.int64)
    for j, value in enumerate(values):
        per_segment = np.add.reduceat(labels == value, bounds, dtype=np.int64)
        np.cumsum(per_segment[: len(edges) - 1], out=running[1:])
        in_window[:, j] = running[at_end] - running[at_start]
    best = in_window.argmax(axis=1)
    return values[best], in_window[np.arange(len(starts)), best] / length


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
    ids, index = np.unique(major, return_inverse=True)
    y = np.array([lookup.get(int(m), -1) for m in ids], dtype=np.int64)[index]
    impure = share < purity - 1e-9
    reasons = {
        "windows_impure": impure,
        "windows_null": ~impure & (major == NULL) & (y < 0),
        "windows_unselected_label": ~impure & (major != NULL) & (y < 0),
    }
    keep = ~impure & (y >= 0)
    return LabelledWindows(starts[keep], y[keep], {k: starts[m] for k, m in reasons.items()})


def extract(signals: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Windows [N, C, L] (float32, contiguous) cut from signals [T, C] at `starts`.

    Filled a block of windows at a time: no second copy of a multi-day recording's windows.
    """
    view = np.lib.stride_tricks.sliding_window_view(signals, length, axis=0)  # [T-L+1, C, L]
    out = np.empty((len(starts), signals.shape[1], length), dtype=np.float32)
    for a in range(0, len(starts), EXTRACT_BLOCK):
        out[a : a + EXTRACT_BLOCK] = view[starts[a : a + EXTRACT_BLOCK]]
    return out
