"""Reader `table`: any CSV or Parquet table of sensor samples, through a column map.

One row per sample. `columns` maps the file's columns to a `Recording`:

    columns:
      subject: user_id            # required; one recording per (subject, session)
      session: trial              # optional
      timestamp: t                # optional; seconds unless `timestamp_unit` says otherwise
      label: activity             # optional; empty cells are unlabelled (-1)
      channels: {acc_x: ax, acc_y: ay, acc_z: az}   # channel name -> column (numeric)
      units: {acc_x: g, acc_y: g, acc_z: g}          # a unit for every channel
      groups: {acc: [acc_x, acc_y, acc_z]}          # default: {all: every channel}

Columns the map does not name are ignored; a named column missing from the file is an error
that lists the file's columns. Rows keep their file order within a recording. Empty channel
cells (and CSV NA markers) become NaN for the repair stage; any other non-numeric cell is an
error naming file, line (CSV, the header being line 1) or row (Parquet), and column.

Labels: integer cells are used as they are, or every label value goes through `label_map`
(file value -> activity id, e.g. `{walking: 1, running: 2}`; names become the label names); a
value outside the map is an error. Without time stamps `rate_hz` is required; with them it
defaults to 1 / the median time-stamp step of the file (the nearest whole Hz when within 1%),
and the pipeline resamples irregular recordings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from data_prep.readers import ReaderOptions, register_reader
from data_prep.recording import Recording, RecordingError

PARQUET_SUFFIXES = (".parquet", ".pq")
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_KEYS = ("subject", "session", "timestamp", "label", "channels", "units", "groups")


class TableOptions(ReaderOptions):
    columns: dict[str, Any] = Field(
        description="the column map: subject (required), session, timestamp, label: a file "
        "column each; channels {name: column} and units {name: unit} (required); groups "
        "{group: [channel, ...]} (default {all: every channel})"
    )
    rate_hz: float | None = Field(
        None,
        gt=0,
        description="sampling rate (Hz); required without a timestamp column, else 1 / the "
        "median time-stamp step",
    )
    label_map: dict[Any, int] | None = Field(
        None,
        description="label cell -> activity id (the cells become the label names); None: "
        "integer cells are the ids",
    )
    timestamp_unit: str = Field(
        "s", description=f"unit of the timestamp column: {list(TIME_UNITS)}"
    )


@register_reader("table", TableOptions)
def read(path: str | Path, options: TableOptions) -> list[Recording]:
    """CSV or Parquet samples with a column map (subject, time stamp, channels, label)."""
    path = Path(path)
    spec = _check_spec(options.columns, options.timestamp_unit, options.rate_hz)
    frame, where = _load(path, spec)
    keys = [_text(frame[spec[k]]).fillna("") for k in ("subject", "session") if k in spec]
    empty = np.flatnonzero((keys[0] == "").to_numpy())
    if empty.size:
        raise RecordingError(f"{where(int(empty[0]))}: column {spec['subject']!r}: empty subject")
    channels = list(spec["channels"])
    signals = np.column_stack(
        [_numeric(frame[spec["channels"][c]], where, spec["channels"][c]) for c in channels]
    ).astype(np.float32)
    labels, label_names = _labels(frame, spec.get("label"), options.label_map, where)
    t = None
    if "timestamp" in spec:
        t = _numeric(frame[spec["timestamp"]], where, spec["timestamp"], time=True)
        t = t * TIME_UNITS[options.timestamp_unit]
    groups = {g: [channels.index(n) for n in names] for g, names in spec["groups"].items()}
    rows_of = sorted(frame.groupby(keys, sort=False).indices.items(), key=lambda kv: kv[1][0])
    rate_hz = options.rate_hz
    if rate_hz is None:
        rate_hz = _rate_from_steps(t, [rows for _, rows in rows_of], path)
    recordings = []
    for key, rows in rows_of:
        subject, session = (*key, "")[:2] if isinstance(key, tuple) else (key, "")
        recordings.append(
            Recording(
                signals=signals[rows],
                channels=list(channels),
                units=[spec["units"][c] for c in channels],
                rate_hz=float(rate_hz),
                labels=labels[rows],
                subject=str(subject),
                session=str(session),
                groups={g: list(i) for g, i in groups.items()},
                source=str(path),
                timestamps=None if t is None else t[rows],
                label_names=dict(label_names),
            )
        )
    return recordings


def _check_spec(columns: dict[str, Any], timestamp_unit: str, rate_hz: float | None) -> dict:
    """Validate the column map; returns it with default groups."""
    unknown = sorted(set(columns) - set(_KEYS))
    if unknown:
        raise ValueError(f"table columns: unknown key(s) {unknown}; allowed {list(_KEYS)}")
    for key in ("subject", "channels", "units"):
        if not columns.get(key):
            raise ValueError(f"table columns: `{key}` is required")
    no_unit = [c for c in columns["channels"] if c not in columns["units"]]
    if no_unit:
        raise ValueError(f"table columns.units: no unit for channel(s) {no_unit}")
    spec = {"groups": {"all": list(columns["channels"])}, **columns}
    for group, names in spec["groups"].items():
        missing = [n for n in names if n not in columns["channels"]]
        if missing:
            raise ValueError(f"table columns.groups.{group}: {missing} are not channels")
    if timestamp_unit not in TIME_UNITS:
        raise ValueError(f"timestamp_unit {timestamp_unit!r}: expected one of {list(TIME_UNITS)}")
    if rate_hz is None and "timestamp" not in columns:
        raise ValueError("table: rate_hz is required when columns has no timestamp")
    return spec


def _load(path: Path, spec: dict) -> tuple[pd.DataFrame, Callable[[int], str]]:
    """The mapped columns, and where a 0-based row is: `path:line` for CSV (the header is
    line 1), `path row N` (1-based) for Parquet."""
    needed = [spec[k] for k in ("subject", "session", "timestamp", "label") if k in spec]
    needed += [c for c in spec["channels"].values() if c not in needed]
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    if parquet:
        import pyarrow.parquet as pq

        present = pq.read_schema(path).names
    else:
        try:
            present = list(pd.read_csv(path, nrows=0).columns)
        except pd.errors.EmptyDataError:
            raise RecordingError(f"{path}: empty file") from None
    missing = [c for c in needed if c not in present]
    if missing:
        raise RecordingError(f"{path}: column(s) {missing} not found; the file has {present}")
    if parquet:
        frame = pd.read_parquet(path, columns=needed, engine="pyarrow")
    else:
        text = [spec[k] for k in ("subject", "session", "label") if k in spec]
        frame = pd.read_csv(
            path, usecols=needed, dtype={c: str for c in text}, skip_blank_lines=False
        )
    if frame.empty:
        raise RecordingError(f"{path}: no data rows")
    if parquet:
        return frame.reset_index(drop=True), lambda row: f"{path} row {row + 1}"
    return frame.reset_index(drop=True), lambda row: f"{path}:{row + 2}"


def _text(col: pd.Series) -> pd.Series:
    """Cells as stripped strings (NA kept); integer-valued floats lose their `.0`."""
    if pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all():
        col = col.astype("Int64")
    return col.astype("string").str.strip()


def _numeric(
    col: pd.Series, where: Callable[[int], str], name: str, time: bool = False
) -> np.ndarray:
    """A float64 column; non-numeric cells raise naming file, line/row and column."""
    if time and pd.api.types.is_datetime64_any_dtype(col):
        return col.astype("int64").to_numpy() * 1e-9
    boolean = np.flatnonzero(
        col.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy()
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_object_dtype(col)
        else []
    )
    if boolean.size:  # True/False would silently become 1.0/0.0
        raise RecordingError(
            f"{where(int(boolean[0]))}: column {name!r}: boolean value {col.iloc[boolean[0]]!r}; "
            "expected a number"
        )
    values = pd.to_numeric(col, errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() & col.notna().to_numpy())
    if bad.size:
        raise RecordingError(
            f"{where(int(bad[0]))}: column {name!r}: non-numeric value {col.iloc[bad[0]]!r}"
        )
    return values.to_numpy(dtype=np.float64)


def _labels(
    frame: pd.DataFrame,
    column: str | None,
    label_map: dict[Any, int] | None,
    where: Callable[[int], str],
) -> tuple[np.ndarray, dict[int, str]]:
    """Per-row activity ids (-1 where empty) and label names from `label_map`."""
    if column is None:
        return np.full(len(frame), -1, dtype=np.int64), {}
    codes, uniques = pd.factorize(_text(frame[column]))  # NA -> code -1
    if label_map is not None:
        mapping = {str(k): int(v) for k, v in label_map.items()}
        names = {int(v): str(k) for k, v in label_map.items() if int(v) != -1}
    else:
        mapping, names = {}, {}
        for u in uniques:
            if u.lstrip("-").isdigit():
                mapping[u] = int(u)
    ids = np.empty(len(uniques), dtype=np.int64)
    for i, u in enumerate(uniques):
        if u not in mapping:
            row = int(np.flatnonzero(codes == i)[0])
            expected = (
                f"one of the label_map keys {sorted(mapping)}"
                if label_map is not None
                else "an integer (or give label_map)"
            )
            raise RecordingError(
                f"{where(row)}: column {column!r}: label {u!r}; expected {expected}"
            )
        ids[i] = mapping[u]
    return np.append(ids, -1)[codes], names


def _rate_from_steps(t: np.ndarray, groups: list[np.ndarray], path: Path) -> float:
    """1 / the median positive time-stamp step within recordings: the nearest whole Hz when
    within 1% of it (sensor rates are nominally whole), else 3 significant digits."""
    steps = np.concatenate([np.diff(t[rows]) for rows in groups])
    steps = steps[np.isfinite(steps) & (steps > 0)]
    if steps.size == 0:
        raise RecordingError(f"{path}: too few time stamps to infer the rate; give rate_hz")
    rate = 1.0 / float(np.median(steps))
    return float(round(rate)) if abs(rate - round(rate)) < 0.01 * rate else float(f"{rate:.3g}")
