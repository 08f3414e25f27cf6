"""Helpers shared by the text-format readers: strict numeric tables and time-gap runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep.recording import RecordingError, time_steps

_NAN = ["NaN", "nan"]


def read_numeric(path: Path, n_cols: int) -> np.ndarray:
    """A float64 [rows, n_cols] array from a whitespace-separated text file.

    Blank lines are skipped (`line_of` maps a row back to its line); cells `NaN`/`nan` are
    NaN. An empty file, a row of another length or a non-numeric cell raises `RecordingError`
    naming the file, the line and the column.
    """
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            dtype=np.float64,
            keep_default_na=False,
            na_values=_NAN,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise RecordingError(f"{path}: empty file") from None
    except (ValueError, pd.errors.ParserError) as err:
        _find_bad_line(path, n_cols)
        raise RecordingError(f"{path}: {err}") from err
    if frame.shape[1] != n_cols:  # the first row already has another length
        _find_bad_line(path, n_cols)
    return frame.to_numpy()


def _find_bad_line(path: Path, n_cols: int) -> None:
    """Raise for the first line that is not `n_cols` numbers (slow path, errors only)."""
    with open(path) as lines:
        for line_no, line in enumerate(lines, 1):
            cells = line.split()
            if not cells:
                continue
            if len(cells) != n_cols:
                raise RecordingError(
                    f"{path}:{line_no}: expected {n_cols} space-separated values, got {len(cells)}"
                )
            for c, cell in enumerate(cells, 1):
                try:
                    float(cell)
                except ValueError:
                    raise RecordingError(
                        f"{path}:{line_no}: column {c}: non-numeric value {cell!r}"
                    ) from None


def time_runs(t: np.ndarray, max_gap_s: float, counts: Counter) -> list[slice]:
    """Slices of `t` (seconds) split where a step exceeds `max_gap_s` or goes backwards.

    `counts` gains `runs_split_at_time_gap` and `runs_split_at_backward_time`.
    """
    cuts = []
    for offset, steps in time_steps(t):  # a chunk at a time: no step array of a long recording
        gap, back = steps > max_gap_s, steps < 0
        counts["runs_split_at_time_gap"] += int(np.count_nonzero(gap))
        counts["runs_split_at_backward_time"] += int(np.count_nonzero(back))
        cuts += (np.flatnonzero(gap | back) + offset + 1).tolist()
    bounds = [0, *cuts, len(t)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def line_of(path: Path, row: int) -> int:
    """The 1-based line of data row `row` (0-based) of a text file whose blank lines are skipped."""
    with open(path) as lines:
        seen = -1
        for line_no, line in enumerate(lines, 1):
            seen += bool(line.strip())
            if seen == row:
                return line_no
    raise IndexError(f"{path} has no data row {row}")
