"""Reader `device`: Axivity .cwa, ActiGraph .gt3x and GENEActiv .bin recordings through actipy.

actipy (Chan, Doherty et al., Oxford wearables group, github.com/OxWearables/actipy) reads the
three formats with its bundled Java parsers: it needs the `actipy` package (the `devices`
extra: `pip install 'harkd[devices]'`) and a Java runtime (8 or later) on PATH; `make setup`
installs both. Every file is one recording (`.gz` files are decompressed by actipy).

- Files: `path` is one file or a folder searched recursively for `*.cwa`, `*.gt3x`, `*.bin`
  (each optionally `.gz`). The subject is the file name's stem, or the `subject` group of
  `subject_pattern` (a regular expression searched in the file name; an optional `session`
  group names the session, else the stem does); or `manifest`, a CSV of `file, subject` and
  optionally `session` (files relative to the folder), which then lists the files read: files
  it leaves out are counted (`device_files_not_in_manifest`). A relative `manifest` or
  `annotations` path is taken in the recordings' folder (`path`, or a single file's folder).
- Channels: `acc_x/y/z` in g, and `gyro_x/y/z` in deg/s where an AX6 has a gyroscope (groups
  `acc`, `gyro`); temperature and light are not kept. The device's own rate and time stamps
  (device-clock seconds since 1970-01-01; the clock keeps local time without a zone) are kept;
  the pipeline's repair and resample stages handle irregular timing. A time-stamp gap above
  `max_gap_s` starts a new part (session `<session>/part<k>`, counted
  `runs_split_at_time_gap`).
- `calibrate_gravity` (default on): actipy's `calibrate_gravity`, the autocalibration of
  van Hees et al., J Appl Physiol 2014 (per-axis offset and gain, and temperature slopes, fitted
  so that still 10 s windows have a norm of 1 g). The calibration error before and after goes
  into the prep report; a recording with too few still windows or too few orientations is left
  as it is and counted (`device_recordings_not_calibrated`).
- `detect_nonwear` (default on): actipy's `find_nonwear_segments` (still for longer than
  `nonwear_patience`, every axis' standard deviation in `nonwear_window` windows below
  `nonwear_stdtol_g`); non-wear samples become unlabelled, counted
  (`device_samples_nonwear`, and `device_samples_annotated_in_nonwear` for annotations removed).
- `clip_to_wear` (default off, needs `detect_nonwear`): keep only the span from the first to the
  last worn sample, counted (`device_samples_clipped_to_wear`).
- `annotations`: a table of `subject, start, end, label` (see `data_prep.readers.annotations`)
  with `label_map` and, for absolute times, `timezone` (the device clock's zone). Time no row
  covers is unlabelled, counted (`device_samples_unannotated`).
- Damaged files: an empty file, wrong magic bytes, or anything actipy's parser reports (a
  truncated file, a block with a bad checksum) is an error naming the file and what was wrong;
  `allow_read_errors: true` keeps what the parser could read and counts the errors
  (`device_read_errors`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from data_prep.readers import ReaderOptions, ReadResult, register_reader
from data_prep.readers._text import time_runs
from data_prep.readers.annotations import (
    Timeline,
    assign,
    label_names,
    label_samples,
    load_annotations,
    parse_timezone,
)
from data_prep.recording import ROW_CHUNK, Recording, RecordingError

#: Axivity, ActiGraph and GENEActiv files (each may also be gzipped)
SUFFIXES = (".cwa", ".gt3x", ".bin")
ACC = ["acc_x", "acc_y", "acc_z"]
GYRO = ["gyro_x", "gyro_y", "gyro_z"]
#: actipy's column -> harkd channel
COLUMNS = dict(zip(["x", "y", "z", "gyro_x", "gyro_y", "gyro_z"], ACC + GYRO, strict=True))
_NS = 1_000_000_000
#: lines of the Java parser's output that say nothing about the file (stack frames, progress)
_JAVA_NOISE = ("at ", "ReaderSupport$", "Reading file", "java.")


class MissingDependencyError(OSError):
    """The device reader cannot run here: actipy or a Java runtime is missing."""


@dataclass(frozen=True)
class DeviceFile:
    """A device file and whose recording it is."""

    path: Path
    subject: str
    session: str


@dataclass
class DeviceData:
    """One file as read: signals [T, C] float32, time stamps [T] seconds, and the non-wear
    episodes as sorted, disjoint [start, stop) sample ranges."""

    file: DeviceFile
    signals: np.ndarray
    channels: list[str]
    t: np.ndarray
    rate_hz: float
    nonwear: list[tuple[int, int]]
    details: dict[str, Any]


class DeviceOptions(ReaderOptions):
    subject_pattern: str | None = Field(
        None,
        description="regular expression searched in each file name: its (?P<subject>...) group "
        "is the subject, an optional (?P<session>...) group the session (None: the file stem)",
    )
    manifest: str | None = Field(
        None, description="CSV of file, subject[, session] (files relative to the folder)"
    )
    annotations: str | None = Field(
        None, description="CSV/Parquet of subject, start, end, label[, session] intervals"
    )
    label_map: dict[str | int, int] | None = Field(
        None, description="annotation label -> activity id (needed with annotations)"
    )
    timezone: str | None = Field(
        None,
        description="the device clock's time zone (Europe/London, UTC, +01:00); needed for "
        "ISO 8601 annotation times",
    )
    calibrate_gravity: bool = Field(
        True, description="actipy's gravity autocalibration (van Hees et al. 2014)"
    )
    detect_nonwear: bool = Field(
        True, description="actipy's non-wear detection; non-wear samples become unlabelled"
    )
    nonwear_patience: str = Field("90m", description="shortest still stretch that is non-wear")
    nonwear_window: str = Field("10s", description="window of the non-wear stillness test")
    nonwear_stdtol_g: float = Field(
        0.015, gt=0, description="still: every axis' standard deviation in a window below this"
    )
    clip_to_wear: bool = Field(
        False, description="keep only the first to the last worn sample (needs detect_nonwear)"
    )
    max_gap_s: float = Field(
        1.0, gt=0, description="a time-stamp gap longer than this (s) starts a new part"
    )
    allow_read_errors: bool = Field(
        False,
        description="keep what actipy's parser could read of a damaged file, counting its "
        "errors (default: an error naming the file)",
    )

    @field_validator("nonwear_patience", "nonwear_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            ok = pd.Timedelta(value) > pd.Timedelta(0)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{value!r}: expected a positive duration such as 90m or 10s")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            parse_timezone(value)
        return value

    @field_validator("subject_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                pattern = re.compile(value)
            except re.error as err:
                raise ValueError(f"{value!r} is not a regular expression: {err}") from None
            if "subject" not in pattern.groupindex:
                raise ValueError(f"{value!r} needs a (?P<subject>...) group")
        return value

    @model_validator(mode="after")
    def _check(self) -> DeviceOptions:
        if self.clip_to_wear and not self.detect_nonwear:
            raise ValueError("clip_to_wear needs detect_nonwear: true")
        if self.annotations is not None and not self.label_map:
            raise ValueError("annotations need label_map (annotation label -> activity id)")
        return self


@register_reader("device", DeviceOptions)
def read(path: str | Path, options: DeviceOptions) -> ReadResult:
    """Axivity .cwa, ActiGraph .gt3x, GENEActiv .bin through actipy (extra `devices`, Java)."""
    o, root = options, Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{root}: not found")
    folder = root if root.is_dir() else root.parent
    zone = parse_timezone(o.timezone) if o.timezone is not None else None
    rows = []
    if o.annotations is not None:
        rows = load_annotations(folder / Path(o.annotations).expanduser(), o.label_map)
    manifest = folder / Path(o.manifest).expanduser() if o.manifest is not None else None
    counts: Counter = Counter()
    files = find_files(root, o.subject_pattern, manifest, counts)
    for f in files:
        check_magic(f.path)
    actipy = require_actipy()
    nonwear = (
        {"patience": o.nonwear_patience, "window": o.nonwear_window, "stdtol": o.nonwear_stdtol_g}
        if o.detect_nonwear
        else None
    )
    data = [
        read_file(f, actipy, o.calibrate_gravity, nonwear, o.allow_read_errors, counts)
        for f in files
    ]
    timelines = [
        Timeline(d.file.subject, d.file.session, str(d.file.path), d.t, d.rate_hz) for d in data
    ]
    assigned = assign(rows, timelines, zone) if rows else [[] for _ in data]
    names = label_names(o.label_map) if o.label_map else {}
    recordings, details = [], {}
    for d, annotated in zip(data, assigned, strict=True):
        labels = label_samples(annotated, d.t)
        if rows:
            counts["device_samples_unannotated"] += sum(
                int(np.count_nonzero(labels[a : a + ROW_CHUNK] == -1))
                for a in range(0, len(labels), ROW_CHUNK)
            )
        for a, b in d.nonwear:
            counts["device_samples_nonwear"] += b - a
            annotated_in_nonwear = np.count_nonzero(labels[a:b] != -1)
            counts["device_samples_annotated_in_nonwear"] += int(annotated_in_nonwear)
            labels[a:b] = -1
        keep = _wear_span(d.nonwear, len(d.t)) if o.clip_to_wear else slice(0, len(d.t))
        counts["device_samples_clipped_to_wear"] += len(d.t) - (keep.stop - keep.start)
        details[str(d.file.path)] = d.details
        recordings += _recordings(d, labels, keep, names, o.max_gap_s, counts)
    if not recordings:
        raise RecordingError(f"{path}: no samples left to read")
    return ReadResult(recordings, {k: v for k, v in counts.items() if v}, details=details)


def find_files(
    root: Path, subject_pattern: str | None, manifest: Path | None, counts: Counter
) -> list[DeviceFile]:
    """The device files under `root` with their subject and session (module docstring)."""
    found = [root] if root.is_file() else sorted(p for p in root.rglob("*") if _suffix(p))
    if root.is_file() and not _suffix(root):
        raise RecordingError(
            f"{root}: not a device file; expected one of {list(SUFFIXES)} (optionally .gz)"
        )
    if manifest is not None:
        return _from_manifest(manifest, root if root.is_dir() else root.parent, found, counts)
    if not found:
        raise RecordingError(f"{root}: no device files ({', '.join(SUFFIXES)}, or .gz)")
    pattern = re.compile(subject_pattern) if subject_pattern is not None else None
    out = []
    for p in found:
        stem = _stem(p)
        if pattern is None:
            out.append(DeviceFile(p, stem, stem))
            continue
        m = pattern.search(p.name)
        if m is None or not m["subject"]:
            raise RecordingError(
                f"{p}: subject_pattern {subject_pattern!r} does not match its name"
            )
        session = m["session"] if "session" in pattern.groupindex and m["session"] else stem
        out.append(DeviceFile(p, m["subject"], session))
    return out


def require_actipy() -> Any:
    """The actipy module, after checking that it and `java` are there."""
    try:
        import actipy
    except ImportError:
        raise MissingDependencyError(
            "reader 'device' needs the actipy package: pip install 'harkd[devices]' "
            "(make setup installs it)"
        ) from None
    if shutil.which("java") is None:
        raise MissingDependencyError(
            "reader 'device' needs a Java runtime (actipy's parsers are Java) and `java` is not "
            "on PATH: run `make setup` (it installs Debian's default-jre-headless) or install "
            "Java 8 or later"
        )
    return actipy


def read_file(
    file: DeviceFile,
    actipy: Any,
    calibrate: bool,
    nonwear: dict[str, Any] | None,
    allow_read_errors: bool,
    counts: Counter,
) -> DeviceData:
    """One device file through actipy: read, calibrate, find non-wear, to arrays."""
    messages: list[str] = []
    try:
        with _captured_output(messages):
            frame, info = actipy.read_device(
                str(file.path),
                lowpass_hz=None,
                calibrate_gravity=calibrate,
                detect_nonwear=False,
                resample_hz=None,
                verbose=False,
            )
    except (subprocess.CalledProcessError, EOFError, ValueError, OSError) as err:
        reason = _first_lines(messages) or str(err)
        raise RecordingError(f"{file.path}: actipy could not read it: {reason}") from None
    errors = int(info.get("ReadErrors", 0))
    if errors and not allow_read_errors:
        raise RecordingError(
            f"{file.path}: actipy's parser reported {errors} read error(s): "
            f"{_first_lines(messages) or 'non-increasing time stamps'}; the file is damaged or "
            "truncated (reader_options.allow_read_errors: true keeps what could be read, counted)"
        )
    counts["device_read_errors"] += errors
    if len(frame) == 0:
        raise RecordingError(f"{file.path}: no samples")
    details = _details(info, calibrate)
    if calibrate and not info.get("CalibOK"):
        counts["device_recordings_not_calibrated"] += 1
    spans: list[tuple[int, int]] = []  # non-wear sample ranges, sorted and disjoint
    if nonwear is not None:
        episodes = actipy.processing.find_nonwear_segments(frame, **nonwear)
        times = frame.index.asi8
        found = sorted(
            (
                int(np.searchsorted(times, start.value, side="left")),
                int(np.searchsorted(times, (start + length).value, side="right")),
            )
            for start, length in episodes.items()
        )
        for a, b in found:
            if spans and a <= spans[-1][1]:  # touching or overlapping the one before: joined
                spans[-1] = (spans[-1][0], max(b, spans[-1][1]))
            elif b > a:
                spans.append((a, b))
        details["nonwear_episodes"] = len(episodes)
        details["nonwear_s"] = round(float(episodes.sum().total_seconds()), 3)
    # column by column, each freed once copied: a multi-day file never exists twice
    columns = [c for c in COLUMNS if c in frame.columns]
    for other in set(frame.columns) - set(columns):  # temperature and light are not kept
        del frame[other]
    signals = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, column in enumerate(columns):
        signals[:, j] = frame.pop(column).to_numpy()
    times = frame.index.asi8
    del frame  # its time stamps (`times`) are now held here alone
    t = _seconds(times)
    channels = [COLUMNS[c] for c in columns]
    return DeviceData(file, signals, channels, t, float(info["SampleRate"]), spans, details)


def check_magic(path: Path) -> None:
    """Refuse an empty file or one whose first bytes are not its format's (before any JVM)."""
    if path.stat().st_size == 0:
        raise RecordingError(f"{path}: empty file")
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            head = stream.read(64)
    except (OSError, EOFError) as err:
        raise RecordingError(f"{path}: cannot decompress: {err}") from None
    kind = _suffix(path)
    if kind == ".cwa" and head[:2] != b"MD":
        raise RecordingError(
            f"{path}: not an Axivity .cwa file: it starts with {head[:2]!r}, expected the "
            "b'MD' header block"
        )
    if kind == ".bin" and not head.startswith(b"Device Identity"):
        first_line = head.splitlines()[0][:30] if head.strip() else head[:30]
        raise RecordingError(
            f"{path}: not a GENEActiv .bin file: its first line is {first_line!r}, expected "
            "'Device Identity'"
        )
    if kind == ".gt3x":
        if head[:4] != b"PK\x03\x04":
            raise RecordingError(
                f"{path}: not an ActiGraph .gt3x file: it starts with {head[:4]!r}, expected a "
                "zip archive (b'PK\\x03\\x04')"
            )
        if opener is gzip.open:  # the archive's members are checked by actipy once inflated
            return
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
        except zipfile.BadZipFile as err:
            raise RecordingError(f"{path}: a damaged .gt3x zip archive: {err}") from None
        if "info.txt" not in names or not ({"log.bin"} <= names or {"activity.bin"} <= names):
            raise RecordingError(
                f"{path}: a .gt3x archive must hold info.txt and log.bin (or activity.bin); "
                f"it holds {sorted(names)}"
            )


def _details(info: dict[str, Any], calibrate: bool) -> dict[str, Any]:
    """What the prep report shows of one file: device, span and the calibration's effect."""
    out = {
        "device": f"{info.get('Device')} {info.get('DeviceID')}",
        "rate_hz": float(info["SampleRate"]),
        "start": info.get("StartTime"),
        "end": info.get("EndTime"),
        "calibrate_gravity": calibrate,
    }
    if calibrate:
        out["calibrated"] = bool(info.get("CalibOK"))
        for key, name in (("CalibErrorBefore(mg)", "before"), ("CalibErrorAfter(mg)", "after")):
            value = info.get(key)
            if value is not None and np.isfinite(value):
                out[f"calibration_error_{name}_mg"] = round(float(value), 2)
        out["calibration_still_windows"] = int(info.get("CalibNumSamples", 0))
    return out


def _seconds(ns: np.ndarray) -> np.ndarray:
    """Nanoseconds int64 [T] as float64 seconds, written over `ns` itself (each chunk is
    divided into a temporary first) when it is writable: a multi-day recording's time stamps
    are not held twice."""
    t = ns.view(np.float64) if ns.flags.writeable else np.empty(len(ns))
    for a in range(0, len(ns), ROW_CHUNK):
        t[a : a + ROW_CHUNK] = ns[a : a + ROW_CHUNK] / _NS
    return t


def _wear_span(nonwear: list[tuple[int, int]], n: int) -> slice:
    """From the first to the last worn sample of `n`, given the non-wear episodes."""
    first = nonwear[0][1] if nonwear and nonwear[0][0] == 0 else 0
    stop = nonwear[-1][0] if nonwear and nonwear[-1][1] == n else n
    return slice(first, stop) if first < stop else slice(0, 0)


def _recordings(
    d: DeviceData,
    labels: np.ndarray,
    keep: slice,
    names: dict[int, str],
    max_gap_s: float,
    counts: Counter,
) -> list[Recording]:
    """The kept span of one file, split at time-stamp gaps above `max_gap_s`."""
    t = d.t[keep]
    if t.size == 0:
        return []
    runs = time_runs(t, max_gap_s, counts)
    groups = {"acc": [0, 1, 2]} | ({"gyro": [3, 4, 5]} if len(d.channels) == 6 else {})
    out = []
    for k, run in enumerate(runs):
        a, b = keep.start + run.start, keep.start + run.stop
        out.append(
            Recording(
                signals=d.signals[a:b],
                channels=list(d.channels),
                units=["g"] * 3 + ["deg/s"] * (len(d.channels) - 3),
                rate_hz=d.rate_hz,
                labels=labels[a:b],
                subject=d.file.subject,
                session=d.file.session if len(runs) == 1 else f"{d.file.session}/part{k}",
                groups={g: list(i) for g, i in groups.items()},
                source=str(d.file.path),
                timestamps=d.t[a:b],
                label_names=dict(names),
            )
        )
    return out


def _from_manifest(
    manifest: Path, folder: Path, found: list[Path], counts: Counter
) -> list[DeviceFile]:
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: manifest not found")
    try:
        table = pd.read_csv(manifest, dtype=str, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise RecordingError(f"{manifest}: empty file") from None
    missing = [c for c in ("file", "subject") if c not in table.columns]
    if missing:
        raise RecordingError(
            f"{manifest}: column(s) {missing} not found; expected file, subject (and optionally "
            f"session), the file has {list(table.columns)}"
        )
    out, listed = [], set()
    for i, row in enumerate(table.itertuples(index=False)):
        where = f"{manifest}:{i + 2}"
        cells = {c: getattr(row, c) for c in ("file", "subject", "session") if c in table.columns}
        empty = [c for c in ("file", "subject") if pd.isna(cells[c]) or not cells[c].strip()]
        if empty:
            raise RecordingError(f"{where}: empty {', '.join(empty)}")
        p = (folder / cells["file"].strip()).resolve()
        if not p.is_file():
            raise RecordingError(f"{where}: file {cells['file']!r} not found in {folder}")
        if not _suffix(p):
            raise RecordingError(f"{where}: {cells['file']!r} is not a device file")
        session = cells.get("session")
        session = session.strip() if isinstance(session, str) and session.strip() else _stem(p)
        out.append(DeviceFile(p, cells["subject"].strip(), session))
        listed.add(p)
    counts["device_files_not_in_manifest"] += sum(p.resolve() not in listed for p in found)
    if not out:
        raise RecordingError(f"{manifest}: no rows")
    return out


def _suffix(path: Path) -> str | None:
    """The device format suffix (`.cwa`, `.gt3x`, `.bin`), looking through `.gz`."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes and suffixes[-1] in SUFFIXES and path.is_file() else None


def _stem(path: Path) -> str:
    """The file name without its format suffix (and `.gz`): `P01.cwa.gz` -> `P01`."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return name.rsplit(".", 1)[0]


def _first_lines(lines: list[str], n: int = 3) -> str:
    more = f" (and {len(lines) - n} more)" if len(lines) > n else ""
    return " | ".join(lines[:n]) + more


@contextlib.contextmanager
def _captured_output(messages: list[str]) -> Iterator[None]:
    """Keep actipy's prints and its Java parser's messages (file descriptor 2) off the
    terminal; on exit `messages` holds the parser's lines that say something about the file."""
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if line.strip() and not line.strip().startswith(_JAVA_NOISE):
                    messages.append(line.strip())
