"""Tables of a grid: the runs from its store as a DataFrame, cell summaries, markdown.

Each run's metrics JSON is flattened to dotted scalar columns (`test.macro_f1`,
`val.accuracy`, `latency.p50_us`, ...); lists (per-class F1, confusion matrices) stay in the
store. Axis columns hold the axis labels as stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harkd.grid.store import RunRow, RunStore

SEED_KEY = "train.seed"
AUGMENT_KEY = "augment.policy"
METHOD_KEY = "distill.method"


@dataclass(frozen=True)
class GridAxes:
    """The grid's axes (name -> dotted key), in spec order, and the seed axis if any."""

    keys: dict[str, str]

    @property
    def seed(self) -> str | None:
        return self.by_key(SEED_KEY)

    @property
    def cells(self) -> list[str]:
        """The axes that define a cell (all but the seed)."""
        return [a for a in self.keys if a != self.seed]

    def by_key(self, key: str) -> str | None:
        return next((name for name, k in self.keys.items() if k == key), None)


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Dotted scalar leaves of a nested metrics mapping (bools and lists left out)."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, name + "."))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[name] = float(v)
    return out


def grid_axes(store: RunStore) -> GridAxes:
    """The axes recorded by the runner (from the rows' axis labels for an older store)."""
    meta = store.get_meta("grid")
    if meta:
        return GridAxes({a["name"]: a["key"] for a in meta["axes"]})
    names = {n: n for r in store.rows() for n in r.axes}
    return GridAxes(names)


def runs_frame(rows: list[RunRow], axes: GridAxes) -> pd.DataFrame:
    """One row per run: hash, status, axis labels, flattened metrics, parameters, times."""
    records = []
    for r in rows:
        rec: dict[str, Any] = {"hash": r.hash, "status": r.status}
        rec.update({a: r.axes.get(a) for a in axes.keys})
        rec.update(flatten(r.metrics or {}))
        rec.update({"n_params": r.n_params, "wall_s": r.wall_s, "attempts": r.attempts,
                    "host": r.host, "code_version": r.code_version,
                    "error": (r.error or "").strip().splitlines()[-1] if r.error else ""})
        rec.update(flatten(r.timings or {}, "timings."))
        records.append(rec)
    return pd.DataFrame(records)


def fmt(value: float, digits: int = 3) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def fmt_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """`0.912 ± 0.004` (the std left out when it is undefined, e.g. one seed)."""
    if mean is None or math.isnan(mean):
        return ""
    return fmt(mean, digits) if std is None or math.isnan(std) \
        else f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table of a frame's values as strings."""
    if df.empty:
        return "_(none)_\n"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"
