"""A grid's runs as the plain table `harkd.report.write_report` reads (`grid_table`).

One row per cell run of the store: `run_id` (the run's hash), `status`, one column per axis
(the labels as stored), the run's metrics flattened to dotted scalar columns (`test.macro_f1`,
`val.accuracy`, `latency.p50_us`, `test.per_class_f1.<class>`, ...; lists such as confusion
matrices stay in the store), `n_params`, `wall_s`, `attempts`, `host`, `code_version`, the last
line of its error, and `timings.*`. Training nodes (teachers the cells need) are not cells;
the table's `about` lines count them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harkd.grid.runner import store_path
from harkd.grid.store import RunStore

SEED_KEY = "train.seed"
AUGMENT_KEY = "augment.policy"
METHOD_KEY = "distill.method"
#: the label of the augmentation and method axes every other label is compared with
BASELINE_LABEL = "none"


@dataclass(frozen=True)
class GridTable:
    """The runs table and how the report should read it (see `harkd.report.write_report`)."""

    runs: pd.DataFrame
    axes: list[str]
    seed: str | None
    baselines: dict[str, str]
    heatmap: tuple[str, str] | None
    title: str
    about: list[str]
    keys: dict[str, str] = field(default_factory=dict)  # axis name -> its dotted config key


def grid_table(grid_dir: str | Path) -> GridTable:
    """The table of the grid in `grid_dir`; FileNotFoundError when it has no run store."""
    path = store_path(grid_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run store here; run `harkd grid SPEC` first")
    with RunStore(path) as store:
        meta = store.get_meta("grid", {})
        rows = store.rows()
    cells = [r for r in rows if r.kind == "cell"]
    # axis name -> config key, in spec order (a store without grid metadata: names only)
    keys = {a["name"]: a["key"] for a in meta["axes"]} if meta else {
        n: n for r in cells for n in r.axes}
    by_key = {k: name for name, k in keys.items()}
    records = []
    for r in cells:
        rec: dict[str, Any] = {"run_id": r.hash, "status": r.status}
        rec.update({a: r.axes.get(a) for a in keys})
        rec.update(_flatten(r.metrics or {}))
        rec.update({"n_params": r.n_params, "wall_s": r.wall_s, "attempts": r.attempts,
                    "host": r.host, "code_version": r.code_version,
                    "error": r.error.strip().splitlines()[-1] if r.error else ""})
        rec.update(_flatten(r.timings or {}, "timings."))
        records.append(rec)
    augment, method = by_key.get(AUGMENT_KEY), by_key.get(METHOD_KEY)
    return GridTable(
        runs=pd.DataFrame(records, columns=None if records else ["run_id", "status", *keys]),
        axes=list(keys),
        seed=by_key.get(SEED_KEY),
        baselines={a: BASELINE_LABEL for a in (augment, method) if a is not None},
        heatmap=(augment, method) if augment and method else None,
        title=f"Grid report: {meta.get('name', Path(grid_dir).name)}",
        about=[f"spec: `{meta.get('source', '?')}`, profile: `{meta.get('profile') or 'none'}`",
               f"grid dir: `{grid_dir}`",
               f"training nodes (not cells, not in the tables): {len(rows) - len(cells)}"],
        keys=keys,
    )


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Dotted scalar leaves of a nested metrics mapping (bools and lists left out)."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, name + "."))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[name] = float(v)
    return out
