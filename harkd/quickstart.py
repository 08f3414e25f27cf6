"""The quickstart: a grid spec (configs/quickstart.yaml) run by the experiment engine, then a
deployment report of what it trained.

`run_quickstart` runs (or resumes) the grid: the training nodes (the teacher) and the cells
(students × seeds), each exported to ONNX (and int8) and timed on onnxruntime's CPU provider
beside the runtime floor by the grid's `latency` option; finished runs, exports and timings
are reused from the run store. `write_quickstart_report` then reads the store: one row per
training node name and per cell group (the cells' axis labels other than the seed), test
macro-F1 as mean ± std over seeds (over the node's instances for a node), deployed parameters
and MACs, batch-1 p50 latency (median over the group's runs) and its ratio to the floor, and
the int8 figures; `report.md`, `summary.json`, the confusion matrix of the best group on
validation macro-F1 (its best seed, chosen on validation), and macro-F1 against latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_prep.configio import apply_overrides, load_config
from harkd.grid.runner import GridSummary, run_dir_of, run_grid, store_path
from harkd.grid.spec import GridSpec, spec_from_dict
from harkd.grid.store import RunRow, RunStore
from harkd.report.plots import f1_latency
from harkd.report.stats import MeanStd, format_mean_std, mean_std, paired_test
from harkd.report.tables import markdown_table
from harkd.train.rundir import atomic_write_bytes, atomic_write_json

HEADER = ["model", "runs", "test macro-F1", "params", "MACs", "p50 µs", "× floor", "int8 p50 µs",
          "int8 size", "int8 ΔF1"]


def load_quickstart(path: str | Path, overrides: list[str] | None = None) -> GridSpec:
    """The quickstart's grid spec with `key=value` overrides of the spec file applied."""
    path = Path(path)
    raw = apply_overrides(load_config(path), overrides or [])
    return spec_from_dict(raw, source=str(path), spec_dir=path.parent)


def _say(text: str) -> None:
    print(f"[harkd demo] {text}", flush=True)


def run_quickstart(spec: GridSpec, profile: str | None = None, workers: int = 1,
                   progress: bool = True) -> dict[str, Any]:
    """Run the grid, write the report; returns the summary written to summary.json."""
    exp = spec.expand(profile)
    out = spec.grid_dir(profile).resolve()
    _say(f"1/2 {len(exp.nodes)} training node(s) {sorted({n.axes['node'] for n in exp.nodes})}"
         f" and {len(exp.cells)} cells ({', '.join(a.name for a in spec.axes)}), each exported "
         "and timed")
    summary = run_grid(spec, profile, grid_dir=out, workers=workers, progress=progress)
    _say(f"    {summary.ran} trained now, {summary.done - summary.ran} reused from {out}")
    if summary.failed or summary.blocked or summary.pending:
        raise RuntimeError(f"{summary.failed} runs failed, {summary.blocked} blocked, "
                           f"{summary.pending} unfinished: {'; '.join(summary.failures)}")
    _say("2/2 report")
    result = write_quickstart_report(out, spec, summary)
    print(result["table"])
    _say(f"report: {out / 'report.md'}")
    return result


def pairing_axis(spec: GridSpec) -> str | None:
    """The axis that replicates a cell (its values set `train.seed`): the seed, or a draw."""
    for a in spec.axes:
        if a.key == "train.seed" or all(any(k == "train.seed" for k, _ in v.assignments)
                                        for v in a.values):
            return a.name
    return None


def paired_vs(runs: list[RunRow], base: list[RunRow], axis: str | None) -> dict[str, Any]:
    """Test macro-F1 differences to `base` over the replicates both have (same `axis` label:
    same seed, subject draw, data order and augmentation), with a bootstrap interval."""
    key = (lambda r: r.axes.get(axis)) if axis else (lambda r: r.config["train"]["seed"])
    ref = {key(r): r.metrics["test"]["macro_f1"] for r in base}
    diffs = [r.metrics["test"]["macro_f1"] - ref[key(r)] for r in runs if key(r) in ref]
    return paired_test(diffs).to_dict()


def _diff(d: dict[str, Any] | None) -> str:
    if not d or d["n"] == 0:
        return ""
    text = format_mean_std(MeanStd(100 * d["diff_mean"], 100 * d["diff_std"], d["n"]), 2,
                           signed=True)
    if d["n"] >= 2 and np.isfinite(d["ci_low"]):
        text += f" [{100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}]"
    return text


def group_runs(rows: list[RunRow], seed_axis: str | None) -> dict[str, list[RunRow]]:
    """Finished runs by row label: a training node's name, or a cell's axis labels other than
    the replicate axis (`method=kd`, or `kd` when it is the only one)."""
    groups: dict[str, list[RunRow]] = {}
    for r in rows:
        if r.kind == "node":
            label = r.axes["node"]
        else:
            rest = {k: v for k, v in r.axes.items() if k != seed_axis}
            label = "/".join(rest.values()) if len(rest) <= 1 else " ".join(
                f"{k}={v}" for k, v in rest.items())
        groups.setdefault(label, []).append(r)
    return groups


def _row(label: str, runs: list[RunRow]) -> dict[str, Any]:
    lat = [r.metrics["latency"] for r in runs if r.metrics and "latency" in r.metrics]
    test = [r.metrics["test"]["macro_f1"] for r in runs]
    row: dict[str, Any] = {
        "name": label,
        "role": "teacher" if runs[0].kind == "node" else "student",
        "runs": [r.hash for r in runs],
        "seeds": [r.config["train"]["seed"] for r in runs],
        "test_macro_f1": mean_std(test).to_dict(),
        "test_macro_f1_per_run": test,
        "val_macro_f1": mean_std([r.metrics["val"]["macro_f1"] for r in runs]).to_dict(),
    }
    if lat:
        row.update(params=lat[0]["params"], macs=lat[0]["macs"],
                   p50_us=float(np.median([x["p50_us"] for x in lat])),
                   x_floor=float(np.median([x["x_floor_p50"] for x in lat])),
                   floor_p50_us=float(np.median([x["floor_p50_us"] for x in lat])))
        int8 = [x["int8"] for x in lat if "int8" in x]
        if int8:
            row["int8"] = {"p50_us": float(np.median([q["p50_us"] for q in int8])),
                           "size_ratio": float(np.median([q["size_ratio"] for q in int8])),
                           "macro_f1_change": mean_std([q["macro_f1_change"] for q in int8])
                           .to_dict()}
    return row


def _stat(d: dict[str, Any]) -> MeanStd:
    """A `MeanStd` from its JSON form (null std: one value)."""
    return MeanStd(d["mean"], float("nan") if d["std"] is None else d["std"], d["n"])


def _cells(row: dict[str, Any]) -> list[str]:
    i8 = row.get("int8")
    return [
        row["name"], str(len(row["runs"])), format_mean_std(_stat(row["test_macro_f1"]), 4),
        f"{row['params']:,}" if "params" in row else "",
        f"{row['macs']:,}" if "macs" in row else "",
        f"{row['p50_us']:.1f}" if "p50_us" in row else "",
        f"{row['x_floor']:.2f}" if "x_floor" in row else "",
        f"{i8['p50_us']:.1f}" if i8 else "",
        f"{i8['size_ratio']:.2f}×" if i8 else "",
        format_mean_std(_stat(i8["macro_f1_change"]), 4, signed=True) if i8 else "",
    ]


def write_quickstart_report(out: Path, spec: GridSpec, summary: GridSummary) -> dict[str, Any]:
    """report.md, summary.json, confusion_best_student.png and f1_vs_latency.png in `out`."""
    with RunStore(store_path(out)) as store:
        rows = store.rows("done")
    seed_axis = pairing_axis(spec)
    groups = group_runs(rows, seed_axis)
    table_rows = [_row(label, runs) for label, runs in groups.items()]
    if "none" in groups:
        for r in table_rows:
            if r["role"] == "student" and r["name"] != "none":
                r["vs_none"] = paired_vs(groups[r["name"]], groups["none"], seed_axis)
    table = markdown_table([*HEADER, "Δ vs none (points, paired)"],
                           [[*_cells(r), _diff(r.get("vs_none"))] for r in table_rows])
    students = [r for r in table_rows if r["role"] == "student"]
    best = max(students, key=lambda r: r["val_macro_f1"]["mean"])  # on validation only
    best_run = max(groups[best["name"]], key=lambda r: r.metrics["val"]["macro_f1"])
    atomic_write_bytes(out / "confusion_best_student.png",
                       (run_dir_of(out, best_run.hash) / "confusion_test.png").read_bytes())
    f1_latency([{"name": r["name"], "p50_us": r["p50_us"], "role": r["role"],
                 "macro_f1": r["test_macro_f1"]["mean"]} for r in table_rows if "p50_us" in r],
               out / "f1_vs_latency.png")
    floors = [r["floor_p50_us"] for r in table_rows if "floor_p50_us" in r]
    floor = float(np.median(floors)) if floors else float("nan")
    text = [
        f"# harkd quickstart: {spec.name}",
        "",
        f"Spec: `{spec.source}`; grid folder `{out}` ({summary.done} runs: "
        f"{sum(r.kind == 'node' for r in rows)} training nodes, "
        f"{sum(r.kind == 'cell' for r in rows)} cells).",
        "Test subjects are never seen in training, validation or normalisation; every model is "
        "selected on validation macro-F1 (the best epoch, early stopping as its config says).",
        "Test macro-F1: mean ± sample std over the runs of a row (seeds; a training node's "
        "instances); one run shows `(n = 1)`.",
        f"Latency: onnxruntime CPU provider, {spec.latency['threads'] if spec.latency else 1} "
        "thread(s), batch 1, p50 (median over the row's runs); the runtime floor (a one-node "
        f"graph with the same input) p50 {floor:.1f} µs, measured interleaved in the same run. "
        "int8 ΔF1: test macro-F1 change from float to int8, mean ± std over the row's runs. "
        "Δ vs none: each arm minus `none` replicate by replicate (same seed and subject draw), "
        "mean ± std in macro-F1 points and its 95 % bootstrap interval.",
        "",
        table,
        "",
        f"Best student on validation: **{best['name']}** (confusion matrix of its best run on "
        "the test split: `confusion_best_student.png`). Macro-F1 against latency: "
        "`f1_vs_latency.png`.",
        "",
    ]
    atomic_write_bytes(out / "report.md", "\n".join(text).encode())
    result = {"rows": table_rows, "best_student": best["name"], "table": table}
    atomic_write_json(out / "summary.json", result)
    return result
