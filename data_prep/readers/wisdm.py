"""Reader `wisdm`: WISDM Activity Prediction v1.1 raw text (`WISDM_ar_v1.1_raw.txt`).

Kwapisz, Weiss & Moore, "Activity Recognition using Cell Phone Accelerometers", SensorKDD 2010:
36 users, a phone in the front trouser pocket, accelerometer at 20 Hz (m/s^2), six activities.
Records read `user,activity,timestamp,x,y,z;` with the timestamp in nanoseconds.

The file has known defects; each is repaired or skipped and counted in the returned
`ReadResult.counts` (with a few line numbers in `ReadResult.examples`):

- `missing_semicolon`: a line without the final `;` (the record is still read);
- `records_sharing_a_line`: extra records on one line, separated by `;`;
- `trailing_comma`: empty fields after the sixth (dropped);
- `empty_value_as_nan`: an empty x, y or z (NaN, left to the repair stage);
- `records_joined_across_lines`: a line ending mid-record whose next line completes it;
- `timestamp_zero`: records with time stamp 0 cannot be placed in time and are skipped;
- `blank_lines`, `empty_records` (`;;`): nothing to read;
- `bad_records_skipped`: anything else malformed (wrong field count, non-numeric value,
  unknown activity). These raise `RecordingError` naming file and line unless
  `on_bad_line="skip"`.

Recordings are split per user and wherever the time stamps jump by more than `max_gap_s`
(`runs_split_at_time_gap`) or go backwards (`runs_split_at_backward_time`); sessions are
`run<k>` per user and the source names the file and its line range.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from data_prep.readers import ReaderOptions, ReadResult, register_reader
from data_prep.readers._text import time_runs
from data_prep.recording import Recording, RecordingError

RATE_HZ = 20.0
ACTIVITIES = {
    "Walking": 1,
    "Jogging": 2,
    "Upstairs": 3,
    "Downstairs": 4,
    "Sitting": 5,
    "Standing": 6,
}
LABEL_NAMES = {i: name for name, i in ACTIVITIES.items()}
MAX_EXAMPLES = 10
_NUMBER = r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
_NUMBER_RE = re.compile(_NUMBER)
#: a well-formed line, read without the per-field checks of `_Parser.record`
_CLEAN = re.compile(rf"(\d+),({'|'.join(ACTIVITIES)}),([1-9]\d*),{_NUMBER},{_NUMBER},{_NUMBER};")


class _Parser:
    """Line-by-line state: parsed columns, counts, examples and a pending partial record."""

    def __init__(self, path: Path, on_bad_line: str) -> None:
        self.path, self.skip = path, on_bad_line == "skip"
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.rows: list[tuple[str, str, str, str, str, str, int]] = []
        self.pending: tuple[int, str] | None = None

    def note(self, reason: str, line_no: int, n: int = 1) -> None:
        self.counts[reason] += n
        seen = self.examples.setdefault(reason, [])
        if len(seen) < MAX_EXAMPLES:
            seen.append(f"{self.path}:{line_no}")

    def bad(self, line_no: int, record: str, why: str) -> None:
        if not self.skip:
            raise RecordingError(
                f"{self.path}:{line_no}: {why} in {record!r}; expected "
                "`user,activity,timestamp,x,y,z;` (on_bad_line='skip' skips and counts it)"
            )
        self.note("bad_records_skipped", line_no)

    def line(self, line_no: int, text: str) -> None:
        text = text.strip()
        if self.pending is None and (clean := _CLEAN.fullmatch(text)):
            self.rows.append((*clean.groups(), line_no))
            return
        if not text:
            self.note("blank_lines", line_no)
            return
        complete = text.endswith(";")
        parts = text.split(";")
        if complete:
            parts.pop()
        if self.pending is not None:
            first_line, head = self.pending
            self.pending = None
            if len((head + parts[0]).split(",")) == 6:
                self.note("records_joined_across_lines", first_line)
                parts[0] = head + parts[0]
            else:
                self.bad(first_line, head, "line ends mid-record")
        if not complete:
            if len(parts[-1].split(",")) < 6:
                self.pending = (line_no, parts.pop())
            else:
                self.note("missing_semicolon", line_no)
        records = [p for p in parts if p.strip()]
        if len(parts) > len(records):
            self.note("empty_records", line_no, len(parts) - len(records))
        if len(records) > 1:
            self.note("records_sharing_a_line", line_no, len(records) - 1)
        for record in records:
            self.record(line_no, record)

    def record(self, line_no: int, record: str) -> None:
        fields = [f.strip() for f in record.split(",")]
        if len(fields) > 6 and not any(fields[6:]):
            self.note("trailing_comma", line_no)
            fields = fields[:6]
        if len(fields) != 6:
            return self.bad(line_no, record, f"{len(fields)} fields")
        user, activity, stamp, *xyz = fields
        if activity not in ACTIVITIES:
            return self.bad(line_no, record, f"unknown activity {activity!r}")
        if not (user.isdigit() and stamp.isdigit()):
            return self.bad(line_no, record, "user and timestamp must be integers")
        if int(stamp) == 0:
            return self.note("timestamp_zero", line_no)
        bad = [v for v in xyz if v and not _NUMBER_RE.fullmatch(v)]
        if bad:
            return self.bad(line_no, record, f"non-numeric value {bad[0]!r}")
        for i, v in enumerate(xyz):
            if not v:
                self.note("empty_value_as_nan", line_no)
                xyz[i] = "nan"
        self.rows.append((user, activity, stamp, *xyz, line_no))

    def finish(self) -> None:
        if self.pending is not None:
            line_no, head = self.pending
            self.bad(line_no, head, "file ends mid-record")


class WisdmOptions(ReaderOptions):
    on_bad_line: Literal["error", "skip"] = Field(
        "error",
        description="a malformed record: stop naming file and line, or skip it and count it",
    )
    max_gap_s: float = Field(
        1.0, gt=0, description="a time-stamp step longer than this (s) starts a new recording"
    )


@register_reader("wisdm", WisdmOptions)
def read(path: str | Path, options: WisdmOptions) -> ReadResult:
    """WISDM v1.1 raw accelerometer text (20 Hz, m/s^2), known defects repaired and counted."""
    path = Path(path)
    if path.is_dir():
        path = path / "WISDM_ar_v1.1_raw.txt"
    parser = _Parser(path, options.on_bad_line)
    with open(path) as lines:
        for line_no, text in enumerate(lines, 1):
            parser.line(line_no, text)
    parser.finish()
    if not parser.rows:
        raise RecordingError(f"{path}: no records (empty file?)")
    user, activity, stamp, x, y, z, line = zip(*parser.rows, strict=True)
    user, line = np.array(user, dtype=np.int64), np.array(line)
    t = np.array(stamp, dtype=np.int64) * 1e-9
    signals = np.ascontiguousarray(np.array([x, y, z], dtype=np.float64).T.astype(np.float32))
    labels = np.array([ACTIVITIES[a] for a in activity], dtype=np.int64)
    recordings: list[Recording] = []
    runs_of: Counter = Counter()
    bounds = [0, *(np.flatnonzero(np.diff(user)) + 1).tolist(), len(user)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        for run in time_runs(t[a:b], options.max_gap_s, parser.counts):
            i, j = a + run.start, a + run.stop
            subject = str(user[a])
            session = f"run{runs_of[subject]}"
            runs_of[subject] += 1
            recordings.append(
                Recording(
                    signals=signals[i:j],
                    channels=["acc_x", "acc_y", "acc_z"],
                    units=["m/s^2"] * 3,
                    rate_hz=RATE_HZ,
                    labels=labels[i:j],
                    subject=subject,
                    session=session,
                    groups={"acc": [0, 1, 2]},
                    source=f"{path}:{line[i]}-{line[j - 1]}",
                    timestamps=t[i:j],
                    label_names=dict(LABEL_NAMES),
                )
            )
    counts = {k: v for k, v in sorted(parser.counts.items()) if v}
    return ReadResult(recordings, counts, parser.examples)
