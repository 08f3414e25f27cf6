"""The paired analysis shared by the three "where distillation pays" regimes.

A regime's grid has a *group* axis (what is compared separately: the label budget, the
student, the model), a *pair* axis (the replicate every arm shares: the subject draw, the seed,
the fold) and a `method` axis (the arms). Within each group, every arm is summarised over its
replicates and compared with `none` and with its controls replicate by replicate (the paired
difference, its 95 % bootstrap interval and test, `harkd.report.stats.paired_test`). A lift
counts only where its interval against `none` excludes 0 and it also beats every control the
regime names for that arm, each with an interval excluding 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harkd.grid.runner import store_path
from harkd.grid.store import RunRow, RunStore
from harkd.report.stats import MeanStd, format_mean_std, mean_std, paired_test
from harkd.report.tables import markdown_table

BASELINE = "none"
#: the 6 postural transitions of HAPT's 12-class label set
TRANSITIONS = ("STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE",
               "LIE_TO_STAND")


@dataclass(frozen=True)
class Regime:
    """What a regime compares: see the module docstring."""

    title: str
    spec: Path
    group: str
    pair: str
    groups: tuple[str, ...]
    arms: tuple[str, ...]
    #: arm -> the arms it must beat (besides `none`) for its lift to count
    controls: dict[str, tuple[str, ...]]
    #: arm -> further paired comparisons shown, not required
    shown: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metrics: tuple[str, ...] = ("macro_f1",)
    #: the group a training node belongs to (None: shared by every group)
    node_group: Callable[[dict[str, Any]], str | None] = lambda config: None
    selection: dict[str, str] = field(default_factory=dict)


def row_metrics(row: RunRow) -> dict[str, float]:
    """Test macro-F1 and, where the label set has HAPT's transitions, their macro-F1."""
    test = row.metrics["test"]
    out = {"macro_f1": test["macro_f1"]}
    per_class = test.get("per_class_f1", {})
    present = [per_class[c] for c in TRANSITIONS if c in per_class]
    if present:
        out["transitions_f1"] = sum(present) / len(present)
    return out


def selection_rule(row: RunRow) -> str:
    return row.config["train"].get("selection", "best_val")


def load_rows(grid_dir: Path) -> list[RunRow]:
    with RunStore(store_path(grid_dir)) as store:
        return store.rows("done")


def cell_table(rows: list[RunRow], selection: str) -> pd.DataFrame:
    """One row per finished cell trained under `selection`: its axes and metrics."""
    return pd.DataFrame([{**r.axes, **row_metrics(r), "n_params": r.n_params} for r in rows
                         if r.kind == "cell" and selection_rule(r) == selection])


def node_table(rows: list[RunRow], regime: Regime) -> pd.DataFrame:
    return pd.DataFrame([{"node": r.axes["node"], "group": regime.node_group(r.config),
                          **row_metrics(r)} for r in rows if r.kind == "node"])


def paired(part: pd.DataFrame, pair: str, arm: str, other: str, metric: str) -> dict[str, Any]:
    """`arm - other` over the replicates where both finished."""
    a = part[part["method"] == arm].set_index(pair)[metric]
    b = part[part["method"] == other].set_index(pair)[metric]
    both = a.index.intersection(b.index)
    return {"vs": other, **paired_test((a[both] - b[both]).to_numpy()).to_dict()}


def paired_replicates(arm: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """`arm - other` over the replicates both analysed arms have (`per_replicate` entries of
    `analyse_group`), for arms of different groups (e.g. two students sharing seeds)."""
    a, b = arm["per_replicate"], other["per_replicate"]
    shared = sorted(set(a) & set(b))
    return paired_test([a[k] - b[k] for k in shared]).to_dict()


def excludes_zero(comp: dict[str, Any]) -> bool:
    return comp["n"] >= 2 and math.isfinite(comp["ci_low"]) and comp["ci_low"] > 0


def analyse_group(part: pd.DataFrame, regime: Regime, metric: str) -> dict[str, Any]:
    """Each arm of one group: mean ± std, per-replicate values, and its paired comparisons."""
    arms: dict[str, Any] = {}
    present = [a for a in regime.arms if a in set(part["method"])]
    for arm in present:
        mine = part[part["method"] == arm]
        res: dict[str, Any] = {"test": mean_std(mine[metric]).to_dict(),
                               "per_replicate": dict(zip(mine[regime.pair].astype(str),
                                                         mine[metric], strict=True))}
        if arm != BASELINE and BASELINE in present:
            res["vs_none"] = paired(part, regime.pair, arm, BASELINE, metric)
        must = [c for c in regime.controls.get(arm, ()) if c in present]
        extra = [c for c in regime.shown.get(arm, ()) if c in present]
        if arm in regime.controls:
            res["vs_controls"] = [paired(part, regime.pair, arm, c, metric) for c in must]
            res["vs_shown"] = [paired(part, regime.pair, arm, c, metric) for c in extra]
            res["lift_counts"] = ("vs_none" in res and excludes_zero(res["vs_none"])
                                  and all(excludes_zero(c) for c in res["vs_controls"]))
        arms[arm] = res
    return arms


def earlier_cells(regime: Regime, earlier: dict[str, Any]) -> pd.DataFrame:
    """The cell table of an earlier analysis of the regime (its `per_replicate` entries): one
    row per group, replicate and arm, with every metric the analysis kept."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for g, entry in earlier.get("groups", {}).items():
        for metric in regime.metrics:
            for arm, res in entry.get(metric, {}).items():
                for rep, value in res["per_replicate"].items():
                    row = rows.setdefault((g, rep, arm), {
                        regime.group: g, regime.pair: rep, "method": arm,
                        "n_params": entry["n_params"]})
                    row[metric] = value
    return pd.DataFrame(list(rows.values()))


def carry_over(regime: Regime, cells: pd.DataFrame, earlier: dict[str, Any]
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`cells` with the earlier analysis's replicates that the store lacks added, and a record
    of what was carried and of how the replicates both have agree (the same run retrained on the
    same machine type and thread count gives the same score)."""
    key = [regime.group, regime.pair, "method"]
    columns = pd.DataFrame(columns=[*key, "macro_f1"])  # the columns of an empty table
    old = pd.concat([columns, earlier_cells(regime, earlier)], ignore_index=True)
    cells = pd.concat([columns, cells], ignore_index=True)
    both = cells.merge(old, on=key, suffixes=("", "_earlier"))
    gaps = (both["macro_f1"] - both["macro_f1_earlier"]).abs()
    fresh = old.merge(cells[key], on=key, how="left", indicator=True)
    fresh = fresh[fresh["_merge"] == "left_only"].drop(columns="_merge")
    record = {"carried": len(fresh), "from": earlier.get("grid_dir"),
              "rerun_and_compared": len(both),
              "max_abs_difference": float(gaps.max()) if len(both) else None}
    return pd.concat([cells, fresh], ignore_index=True), record


def analyse(regime: Regime, grid_dir: Path, profile: str,
            earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every group's arms, for every metric of the regime, and the training nodes' scores.

    With `earlier` (a previous analysis of the same regime and profile, e.g. of a store that was
    lost), its replicates that this store lacks are analysed with the store's own, and its
    training nodes' scores kept for the groups the store has none of."""
    rows = load_rows(grid_dir)
    wanted = "last" if profile == "fixed" else "best_val"
    cells = cell_table(rows, wanted)
    nodes = node_table(rows, regime)
    out: dict[str, Any] = {"grid_dir": str(grid_dir), "profile": profile,
                           "selection": regime.selection[profile], "group_axis": regime.group,
                           "pair_axis": regime.pair, "metrics": list(regime.metrics),
                           "groups": {}, "nodes": {}}
    if not nodes.empty:
        for (name, group), part in nodes.groupby(["node", nodes["group"].fillna("*")]):
            out["nodes"].setdefault(name, {})[group] = {
                m: mean_std(part[m]).to_dict() for m in regime.metrics if m in part}
    if not cells.empty:
        cells[regime.pair] = cells[regime.pair].astype(str)
    if earlier is not None:
        cells, out["earlier"] = carry_over(regime, cells, earlier)
        for name, groups in earlier.get("nodes", {}).items():
            for group, scores in groups.items():
                out["nodes"].setdefault(name, {}).setdefault(group, scores)
    if cells.empty:
        return out
    for g in regime.groups:
        part = cells[cells[regime.group] == g]
        if part.empty:
            continue
        out["groups"][g] = {"n_params": int(part["n_params"].iloc[0]),
                            **{m: analyse_group(part, regime, m) for m in regime.metrics
                               if m in part}}
    return out


def fmt_ms(d: dict[str, Any], digits: int = 4) -> str:
    if not d or d["n"] == 0:
        return ""
    return format_mean_std(MeanStd(d["mean"], math.nan if d["std"] is None else d["std"],
                                   d["n"]), digits)


def fmt_diff(c: dict[str, Any] | None) -> str:
    """A paired difference in points with its 95 % interval; `*` where it excludes 0."""
    if not c or c["n"] < 2:
        return ""
    lo, hi = 100 * c["ci_low"], 100 * c["ci_high"]
    star = " *" if lo > 0 or hi < 0 else ""
    return f"{100 * c['diff_mean']:+.2f} [{lo:+.2f}, {hi:+.2f}]{star}"


def markdown(regime: Regime, res: dict[str, Any], metric: str) -> str:
    """One table per metric: each group's arms with their paired differences."""
    comps = sorted({c for a in regime.arms for c in (*regime.controls.get(a, ()),
                                                     *regime.shown.get(a, ()))},
                   key=regime.arms.index)
    header = [regime.group, "arm", "n", f"test {metric}", "Δ vs none",
              *[f"Δ vs {c}" for c in comps], "lift counts"]
    rows = []
    for g, entry in res["groups"].items():
        for arm, r in entry.get(metric, {}).items():
            by = {c["vs"]: c for c in (*r.get("vs_controls", []), *r.get("vs_shown", []))}
            rows.append([g, arm, r["test"]["n"], fmt_ms(r["test"]), fmt_diff(r.get("vs_none")),
                         *[fmt_diff(by.get(c)) for c in comps],
                         ("yes" if r["lift_counts"] else "no") if "lift_counts" in r else ""])
    return markdown_table(header, rows)


def nodes_markdown(res: dict[str, Any], metric: str = "macro_f1") -> str:
    rows = [[name, group, fmt_ms(s.get(metric, {}))] for name, by in res["nodes"].items()
            for group, s in by.items()]
    return markdown_table(["training node", "group", f"test {metric}"], rows) if rows else ""


def preamble(regime: Regime, res: dict[str, Any]) -> str:
    must = "; ".join(f"`{a}` must beat {', '.join(f'`{c}`' for c in cs)}"
                     for a, cs in regime.controls.items() if cs)
    return (f"Grid `{res['grid_dir']}`; {res['selection']}. Mean ± std over the "
            f"{res['pair_axis']}s (n); Δ in points, paired over {res['pair_axis']}s (same "
            f"{res['pair_axis']}, data order and augmentation), with its 95 % bootstrap interval "
            "(`*`: excludes 0). A lift counts when its interval against `none` excludes 0 and "
            f"it beats its controls, each interval excluding 0: {must}.{carried_note(res)}")


def carried_note(res: dict[str, Any]) -> str:
    """Where an earlier analysis's replicates were carried over (`analyse(earlier=...)`)."""
    rec = res.get("earlier")
    if not rec or not rec["carried"]:
        return ""
    out = (f" {rec['carried']} replicates (group, {res['pair_axis']}, arm) come from an earlier "
           f"analysis of store `{rec['from']}`, the rest from this store")
    if rec.get("rerun_and_compared"):
        out += (f"; {rec['rerun_and_compared']} were in both, their largest difference "
                f"{rec['max_abs_difference']:.4f}")
    return out + "."
