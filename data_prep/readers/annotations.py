"""Time-stamped activity annotations: `subject, start, end, label` rows mapped onto samples.

A CSV or Parquet table, one row per annotated interval, with the columns `subject`, `start`,
`end`, `label` and optionally `session` (which recording of the subject; without it a row
belongs to the subject's recording that contains it). Intervals are half-open: a sample at time
t is labelled when start <= t < end. Times are either

- ISO 8601 with a time zone (`2024-03-01T10:00:00+01:00`, `...Z`): converted to the device's
  clock, which keeps local time without a zone, through the device reader's `timezone`; or
- a number: seconds from the recording's first sample.

Labels go through `label_map` (annotation label -> activity id; -1 marks an interval as
deliberately unlabelled). Time that no row covers stays unlabelled (-1). Every error names the
file and line (CSV, the header being line 1) or row (Parquet): a missing column, an empty cell,
a time that is neither, an absolute time without a zone, end not after start, an unknown label,
a subject or session without a recording, an interval outside its recording (with a hint when
the interval's wall-clock time would fit, i.e. the time zone is likely wrong), and overlapping
intervals (naming both rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_prep.recording import RecordingError

COLUMNS = ("subject", "start", "end", "label")
PARQUET_SUFFIXES = (".parquet", ".pq")
_EPOCH = pd.Timestamp("1970-01-01")
#: the label types `label_samples` chooses from, smallest first
_LABEL_TYPES = (np.int8, np.int16, np.int32, np.int64)


@dataclass(frozen=True)
class Annotation:
    """One row: its location, whose recording, its interval and its activity id.

    `start`/`end` are floats (seconds from the recording's start) or time-zone-aware
    `pd.Timestamp`s (absolute times).
    """

    where: str
    subject: str
    session: str | None
    start: float | pd.Timestamp
    end: float | pd.Timestamp
    label: int

    @property
    def absolute(self) -> bool:
        return isinstance(self.start, pd.Timestamp)


@dataclass(frozen=True)
class Timeline:
    """A recording's sample times: device-clock seconds since 1970-01-01 (no zone)."""

    subject: str
    session: str
    source: str
    t: np.ndarray
    rate_hz: float

    @property
    def end(self) -> float:
        """The end of the last sample's period."""
        return float(self.t[-1]) + 1.0 / self.rate_hz


def parse_timezone(name: str) -> dt.tzinfo:
    """An IANA zone name (`Europe/London`), `UTC`, or a fixed offset `+01:00` / `-0530`."""
    text = str(name).strip()
    if text[:1] in "+-":
        digits = text[1:].replace(":", "")
        if len(digits) == 4 and digits.isdigit() and int(digits[2:]) < 60:
            sign = 1 if text[0] == "+" else -1
            hours, minutes = int(digits[:2]), int(digits[2:])
            return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    else:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(
        f"timezone {name!r}: expected an IANA zone name (Europe/London), UTC or an offset "
        "such as +01:00"
    )


def load_annotations(path: str | Path, label_map: Mapping[Any, int]) -> list[Annotation]:
    """The rows of an annotation table, parsed and checked (module docstring)."""
    path = Path(path)
    frame, where = _load(path)
    mapping = {str(k).strip(): int(v) for k, v in label_map.items()}
    has_session = "session" in frame.columns
    out = []
    for i, row in enumerate(frame.itertuples(index=False)):
        here = where(i)
        cells = {c: getattr(row, c) for c in (*COLUMNS, *(("session",) if has_session else ()))}
        empty = [c for c, v in cells.items() if pd.isna(v) or str(v).strip() == ""]
        if empty:
            raise RecordingError(f"{here}: empty {', '.join(empty)}")
        label = str(cells["label"]).strip()
        if label not in mapping:
            raise RecordingError(
                f"{here}: label {label!r} is not in label_map; known labels {sorted(mapping)}"
            )
        start, end = _time(cells["start"], here, "start"), _time(cells["end"], here, "end")
        if isinstance(start, pd.Timestamp) != isinstance(end, pd.Timestamp):
            raise RecordingError(
                f"{here}: start and end must both be ISO 8601 times or both seconds from start"
            )
        if not end > start:
            raise RecordingError(
                f"{here}: end {cells['end']!r} is not after start {cells['start']!r}"
            )
        session = str(cells["session"]).strip() if has_session else None
        out.append(
            Annotation(here, str(cells["subject"]).strip(), session, start, end, mapping[label])
        )
    return out


def label_names(label_map: Mapping[Any, int]) -> dict[int, str]:
    """Activity id -> annotation label (the unlabelled -1 left out)."""
    return {int(v): str(k) for k, v in label_map.items() if int(v) != -1}


def assign(
    annotations: Sequence[Annotation], timelines: Sequence[Timeline], zone: dt.tzinfo | None
) -> list[list[tuple[Annotation, float, float]]]:
    """For each timeline, its rows with their interval in device-clock seconds.

    Raises `RecordingError` naming the row for a subject/session without a recording, an
    absolute time without `zone`, seconds from start where the subject has several
    recordings and no session column says which, an interval outside its recording, and
    overlapping intervals.
    """
    by_key: dict[tuple[str, str | None], list[int]] = {}
    for k, tl in enumerate(timelines):
        by_key.setdefault((tl.subject, tl.session), []).append(k)
        by_key.setdefault((tl.subject, None), []).append(k)
    out: list[list[tuple[Annotation, float, float]]] = [[] for _ in timelines]
    for ann in annotations:
        candidates = by_key.get((ann.subject, ann.session), [])
        if not candidates:
            known = sorted({f"{tl.subject}/{tl.session}" for tl in timelines})
            what = f"subject {ann.subject!r}" + (
                f" session {ann.session!r}" if ann.session is not None else ""
            )
            raise RecordingError(f"{ann.where}: {what} has no recording; recordings: {known}")
        if ann.absolute:
            if zone is None:
                raise RecordingError(
                    f"{ann.where}: an absolute time needs the device clock's time zone: set "
                    "reader_options.timezone (e.g. Europe/London or +00:00)"
                )
            start, end = device_seconds(ann.start, zone), device_seconds(ann.end, zone)
            inside = [k for k in candidates if _within(timelines[k], start, end)]
        else:
            if len(candidates) > 1:
                raise RecordingError(
                    f"{ann.where}: subject {ann.subject!r} has {len(candidates)} recordings; "
                    "times in seconds from start need a session column saying which"
                )
            t0 = float(timelines[candidates[0]].t[0])
            start, end = t0 + float(ann.start), t0 + float(ann.end)
            inside = [k for k in candidates if _within(timelines[k], start, end)]
        if not inside:
            raise RecordingError(_outside(ann, [timelines[k] for k in candidates], zone))
        out[inside[0]].append((ann, start, end))
    for rows in out:
        _check_overlaps(rows)
    return out


def label_samples(rows: Sequence[tuple[Annotation, float, float]], t: np.ndarray) -> np.ndarray:
    """Activity ids [T] for sample times `t`: -1 where no row covers a sample.

    In the smallest integer type holding -1 and every id (int8 for a few activities: an eighth
    of the memory of an int64 track of a multi-day recording).
    """
    ids = [-1, *(ann.label for ann, _, _ in rows)]
    low, high = min(ids), max(ids)
    dtype = next(d for d in _LABEL_TYPES if np.iinfo(d).min <= low and high <= np.iinfo(d).max)
    labels = np.full(len(t), -1, dtype=dtype)
    for ann, start, end in rows:
        a, b = np.searchsorted(t, [start, end], side="left")
        labels[a:b] = ann.label
    return labels


def device_seconds(when: pd.Timestamp, zone: dt.tzinfo) -> float:
    """An aware time as seconds since 1970-01-01 on a clock that shows local time in `zone`."""
    local = when.tz_convert(zone).tz_localize(None)
    return (local - _EPOCH) / pd.Timedelta(seconds=1)


def _within(tl: Timeline, start: float, end: float) -> bool:
    slack = 1e-6
    return float(tl.t[0]) - slack <= start and end <= tl.end + slack


def _clock(seconds: float) -> str:
    return str(_EPOCH + pd.Timedelta(seconds=seconds))


def _outside(ann: Annotation, timelines: list[Timeline], zone: dt.tzinfo | None) -> str:
    spans = "; ".join(
        f"{tl.source} runs {_clock(tl.t[0])} to {_clock(tl.end)} on the device clock"
        + (f" ({zone})" if zone is not None else "")
        for tl in timelines
    )
    message = (
        f"{ann.where}: the interval {ann.start} to {ann.end} is outside its recording: {spans}"
    )
    if ann.absolute:
        wall = [
            (ts.tz_localize(None) - _EPOCH) / pd.Timedelta(seconds=1) for ts in (ann.start, ann.end)
        ]
        if any(_within(tl, *wall) for tl in timelines):
            message += (
                f"; its wall-clock time would fit, so its time zone ({ann.start.tzname()}) "
                f"differs from the device's ({zone}): check the annotation's offset or "
                "reader_options.timezone"
            )
    return message


def _check_overlaps(rows: list[tuple[Annotation, float, float]]) -> None:
    rows.sort(key=lambda r: r[1])
    for (prev, _, prev_end), (ann, start, _) in zip(rows, rows[1:], strict=False):
        if start < prev_end - 1e-9:
            raise RecordingError(
                f"{ann.where}: its interval overlaps the one at {prev.where} "
                f"({ann.start} < {prev.end})"
            )


def _time(value: Any, where: str, column: str) -> float | pd.Timestamp:
    """Seconds from start (a number) or an aware time (ISO 8601 with a zone)."""
    if isinstance(value, pd.Timestamp):
        stamp = value
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
        if seconds is not None:
            if not np.isfinite(seconds) or seconds < 0:
                raise RecordingError(f"{where}: {column} {text!r}: seconds must be >= 0")
            return seconds
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise RecordingError(
                f"{where}: {column} {text!r} is neither ISO 8601 time nor seconds from start"
            ) from None
    if stamp.tzinfo is None:
        raise RecordingError(
            f"{where}: {column} {str(value).strip()!r} has no time zone; write ISO 8601 with an "
            "offset (2024-03-01T10:00:00+01:00) or seconds from the recording's start"
        )
    return stamp


def _load(path: Path) -> tuple[pd.DataFrame, Any]:
    """The table as text cells, and where a 0-based row is (`path:line` or `path row N`)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    try:
        frame = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        raise RecordingError(f"{path}: empty file") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise RecordingError(f"{path}: cannot read the annotation table: {err}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise RecordingError(
            f"{path}: column(s) {missing} not found; expected {list(COLUMNS)} "
            f"(and optionally session), the file has {list(frame.columns)}"
        )
    if frame.empty:
        raise RecordingError(f"{path}: no annotation rows")
    if parquet:
        return frame, lambda row: f"{path} row {row + 1}"
    # pandas skips blank lines: row k is the k-th non-blank line after the header
    with open(path) as text:
        lines = [n for n, line in enumerate(text, 1) if line.strip()][1:]
    return frame, lambda row: f"{path}:{lines[row]}"
