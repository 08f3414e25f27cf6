"""The augmentation-in-distillation study, run through the engine and summarised from its store.

Runs (or resumes: done runs are kept, interrupted ones continue from their checkpoints) the grid
`configs/grids/hapt_aug_ablation.yaml` under a profile (`full`: the study as measured, the
spec's cross cut by its header's rule; `quick`: the smaller real study; `methods`: every method
at 3 seeds; `smoke`: the 2-epoch plumbing check), writes the grid's report from its run store
alone (`harkd report`: report.md and the augmentation analysis, `harkd.report.aug_study`), then
`<out>/<stem>.json`, `<stem>.md`, `<stem>.png` (mean difference against the same method without
augmentation, `*` where Holm-significant) and `<stem>_alone.png` (against the student alone
without augmentation), with the grid's wall time and the machine; the stem is `aug_study` for
the full profile and `aug_study_<profile>` for the others.

Both selection rules, from the same runs (the study trains 30 epochs without early stopping):
the epoch of best validation macro-F1 (`test.macro_f1`, the primary figures) and the fixed
budget, the weights after the last epoch (`test_last.macro_f1`, its analysis in
`<grid dir>/report-fixed-budget`, `<stem>_fixed.png`). `rules` in the JSON says, per
reference, in how many cells the two rules agree on the sign of the mean difference and which
cells are Holm-significant under one rule only.

Wall time, three ways: the elapsed time of each invocation of this script on the grid (kept in
`<grid dir>/bench_invocations.json`), the span of the store from the first run's start to the
last run's end (gaps between invocations included), and the sum of the runs' own wall times
(the work, whatever the parallelism).

The tsaug screen (`configs/grids/hapt_aug_tsaug_screen.yaml`): where its store exists, the two
tsaug policies of highest mean validation macro-F1 are compared with the two the study's spec
lists (`tsaug_screen` in the JSON); where it is gone, `--screen-from` takes the ranking an
earlier aug_study JSON recorded (said as carried); else the JSON says the spec's two are
provisional.

Run:  python benchmarks/bench_aug_study.py --profile full [--workers 2] [--threads 1]
      [--grid-dir DIR] [--screen-dir DIR] [--screen-from JSON] [--out DIR] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from harkd.commands.report import report_grid
from harkd.config import ConfigError
from harkd.grid.runner import run_grid, store_path
from harkd.grid.spec import GridSpec, load_spec
from harkd.grid.store import RunStore
from harkd.grid.table import grid_table
from harkd.report import ReportFiles
from harkd.train.rundir import atomic_write_bytes, atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "grids" / "hapt_aug_ablation.yaml"
SCREEN = ROOT / "configs" / "grids" / "hapt_aug_tsaug_screen.yaml"
RESULTS = ROOT / "benchmarks" / "results"
PROFILES = ("full", "quick", "methods", "smoke")
TSAUG_PREFIX = "tsaug_"
INVOCATIONS = "bench_invocations.json"
#: the metric of each selection rule: best validation epoch (primary), fixed epoch budget
PRIMARY, FIXED = "test.macro_f1", "test_last.macro_f1"
#: the columns of an effect record that are statistics, not the cell's axes
STAT_COLUMNS = {"family", "n", "diff_mean", "diff_std", "test", "statistic", "p", "ci_low",
                "ci_high", "p_holm", "m", "significant"}


def machine() -> dict[str, Any]:
    """The machine the grid ran on: CPU model, cores, OS, Python and torch."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                 if ln.startswith("model name")]
        model = names[0] if names else model
    return {"cpu": model, "cores": os.cpu_count(), "os": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}


def run_and_time(spec: GridSpec, profile: str | None, grid_dir: Path, workers: int,
                 threads: int | None) -> dict[str, Any]:
    """Run (or resume) the grid and append this invocation to the grid's invocation log."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    summary = run_grid(spec, profile, grid_dir=grid_dir, workers=workers, threads=threads)
    entry = {"started": started, "elapsed_s": round(time.perf_counter() - t0, 1),
             "workers": workers, "threads": threads, "ran": summary.ran, "done": summary.done,
             "failed": summary.failed, "blocked": summary.blocked, "total": summary.total}
    log = grid_dir / INVOCATIONS
    history = json.loads(log.read_text()) if log.is_file() else []
    atomic_write_json(log, [*history, entry])
    return entry


def wall_times(grid_dir: Path) -> dict[str, Any]:
    """The three wall times of the module docstring, from the store and the invocation log."""
    with RunStore(store_path(grid_dir)) as store:
        rows = store.rows()
    started = [r.started for r in rows if r.started is not None]
    finished = [r.finished for r in rows if r.finished is not None and r.status == "done"]
    log = grid_dir / INVOCATIONS
    invocations = json.loads(log.read_text()) if log.is_file() else []
    return {
        "invocations": invocations,
        "invocations_elapsed_s": round(sum(i["elapsed_s"] for i in invocations), 1),
        "store_span_s": round(max(finished) - min(started), 1) if started and finished else None,
        "runs_wall_s_sum": round(sum(r.wall_s or 0.0 for r in rows if r.status == "done"), 1),
        "runs": {s: sum(r.status == s for r in rows)
                 for s in ("done", "failed", "blocked", "pending", "running")},
        "training_nodes": sum(r.kind == "node" for r in rows),
    }


def tsaug_screen(spec: GridSpec, screen_dir: Path, earlier: Path | None = None) -> dict[str, Any]:
    """The screen's ranking of the tsaug policies by mean validation macro-F1, and whether the
    study's spec lists its top two. Without the screen's store, the ranking an earlier
    aug_study JSON recorded (`earlier`, said as carried), else the spec's two are provisional."""
    listed = [v.label for v in spec.axis("augment").values if v.label.startswith(TSAUG_PREFIX)]
    if store_path(screen_dir).is_file():
        runs = grid_table(screen_dir).runs
        done = runs[runs["status"] == "done"]
        table = (done.groupby("augment")["val.macro_f1"].agg(["mean", "count"])
                 .sort_values("mean", ascending=False))
        ranking = [{"augment": a, "val_macro_f1_mean": float(r["mean"]), "n": int(r["count"])}
                   for a, r in table.iterrows()]
        carried = {}
    elif earlier is not None:
        try:
            ranking = json.loads(earlier.read_text())["tsaug_screen"]["ranking"]
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{earlier}: expected an aug_study JSON with tsaug_screen.ranking "
                             f"({type(err).__name__}: {err})") from None
        carried = {"carried_from": str(earlier)}
    else:
        return {"spec_lists": listed, "status": f"not run ({SCREEN.name} has no store at "
                f"{screen_dir}): the spec's two are provisional"}
    best = [r["augment"] for r in ranking[:2]]
    return {"spec_lists": listed, "screen_best_two": best,
            "agrees": sorted(best) == sorted(listed), "ranking": ranking, **carried}


def fixed_budget_report(grid_dir: Path) -> ReportFiles | None:
    """The analysis under the fixed budget, or None (said on stderr) when the runs predate
    `test_last`."""
    try:
        return report_grid(grid_dir, grid_dir / "report-fixed-budget", metric=FIXED)
    except KeyError as err:
        print(f"bench_aug_study: no fixed-budget analysis: {err.args[0]}", file=sys.stderr)
        return None


def rule_agreement(primary: dict[str, Any], fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """Per reference: the cells both rules tested, how many share the sign of the mean
    difference, and the cells Holm-significant under one rule only."""
    def cells(ref: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {" ".join(f"{k}={v}" for k, v in sorted(e.items()) if k not in STAT_COLUMNS): e
                for e in ref["effects"] if e["n"]}
    fixed_refs = {r["name"]: cells(r) for r in fixed["references"]}
    out = []
    for ref in primary["references"]:
        a, b = cells(ref), fixed_refs.get(ref["name"], {})
        both = sorted(set(a) & set(b))
        out.append({
            "reference": ref["name"], "cells": len(both),
            "same_sign": sum((a[c]["diff_mean"] > 0) == (b[c]["diff_mean"] > 0) for c in both),
            "significant_both": [c for c in both if a[c]["significant"] and b[c]["significant"]],
            "significant_best_only": [c for c in both
                                      if a[c]["significant"] and not b[c]["significant"]],
            "significant_fixed_only": [c for c in both
                                       if b[c]["significant"] and not a[c]["significant"]],
        })
    return out


def results_stem(profile: str) -> str:
    """The file stem of a profile's results: `aug_study` for the full study, else suffixed."""
    return "aug_study" if profile == "full" else f"aug_study_{profile}"


def write_results(out: Path, record: dict[str, Any], report_dir: Path) -> Path:
    """<stem>.json, .md (the analysis under a header) and the heat maps, atomically; the stem
    names the profile (`results_stem`). Returns the JSON's path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = results_stem(record["profile"])
    fixed_dir = report_dir.with_name(f"{report_dir.name}-fixed-budget")
    for folder, src, name in (
            (report_dir, "augmentation_vs_no_augmentation.png", f"{stem}.png"),
            (report_dir, "augmentation_vs_alone.png", f"{stem}_alone.png"),
            (fixed_dir, "augmentation_vs_no_augmentation.png", f"{stem}_fixed.png")):
        if (folder / src).is_file():  # absent while no cell has a paired run
            atomic_write_bytes(out / name, (folder / src).read_bytes())
    atomic_write_json(out / f"{stem}.json", record)
    wall = record["wall"]
    screen = record["tsaug_screen"]
    header = [
        f"# The augmentation-in-distillation study: profile `{record['profile']}`\n",
        f"- spec: `{record['spec']}`; grid dir: `{record['grid_dir']}`",
        f"- machine: {record['machine']['cpu']}, {record['machine']['cores']} cores, "
        f"{record['machine']['os']}, torch {record['machine']['torch']}",
        f"- runs by status: {wall['runs']} ({wall['training_nodes']} of them training nodes)",
        f"- wall time: {wall['invocations_elapsed_s']} s over {len(wall['invocations'])} "
        f"invocation(s); store span {wall['store_span_s']} s; runs' own wall time summed "
        f"{wall['runs_wall_s_sum']} s",
        f"- tsaug policies in the spec: {screen['spec_lists']}; screen: "
        + (f"best two {screen['screen_best_two']} (agrees: {screen['agrees']})"
           + (f", carried from `{screen['carried_from']}`" if "carried_from" in screen else "")
           if "screen_best_two" in screen else screen["status"]),
        f"- numbers: `{out.name}/{stem}.json`; every table below is written by `harkd report "
        f"{record['grid_dir']}` from the run store alone\n",
    ]
    analysis = (report_dir / "augmentation.md").read_text()
    analysis = (analysis.replace("](augmentation_vs_no_augmentation.png)", f"]({stem}.png)")
                .replace("](augmentation_vs_alone.png)", f"]({stem}_alone.png)"))
    body = analysis.split("\n", 1)[1]  # the analysis without its title
    rules = ["", "## The same runs under a fixed epoch budget", "",
             f"The weights after epoch 30 (`{FIXED}`) instead of the best validation epoch; the "
             f"full analysis is in `{fixed_dir}`. Agreement with the primary rule:", ""]
    for r in record.get("rules", []):
        rules.append(f"- against `{r['reference']}`: {r['same_sign']} of {r['cells']} cells "
                     "share the sign of the mean difference; Holm-significant under both "
                     f"rules: {r['significant_both'] or 'none'}; best-validation only: "
                     f"{r['significant_best_only'] or 'none'}; fixed budget only: "
                     f"{r['significant_fixed_only'] or 'none'}")
    if (out / f"{stem}_fixed.png").is_file():
        rules += ["", "![Fixed budget: Δ against the same method without augmentation]"
                  f"({stem}_fixed.png)"]
    text = "\n".join(header) + body + ("\n".join(rules) + "\n" if "rules" in record else "")
    atomic_write_bytes(out / f"{stem}.md", text.encode())
    return out / f"{stem}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="full")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--grid-dir", type=Path, default=None,
                        help="default: the spec's output_dir (-<profile> for a profile)")
    parser.add_argument("--screen-dir", type=Path, default=None,
                        help="the tsaug screen's grid folder (default: its spec's output_dir)")
    parser.add_argument("--screen-from", type=Path, default=None,
                        help="an earlier aug_study JSON whose screen ranking stands in where the "
                             "screen's store is gone")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report the store as it is")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(SPEC)
        grid_dir = (args.grid_dir or spec.grid_dir(args.profile)).resolve()
        screen_dir = args.screen_dir or load_spec(SCREEN).grid_dir()
        if not args.report_only:
            entry = run_and_time(spec, args.profile, grid_dir, args.workers, args.threads)
            print(f"grid: {entry}")
        files = report_grid(grid_dir)
        fixed = fixed_budget_report(grid_dir) if files.analyses else None
        screen = tsaug_screen(spec, screen_dir, args.screen_from)
    except (ConfigError, OSError, ValueError, KeyError) as err:
        print(f"bench_aug_study: {err}", file=sys.stderr)
        return 1
    if not files.analyses:
        print(f"bench_aug_study: {grid_dir} has no finished augment=none and method=none runs "
              "to compare with yet", file=sys.stderr)
        return 1
    report_dir = files.report_md.parent
    record = {
        "command": "python benchmarks/bench_aug_study.py " + " ".join(sys.argv[1:] if argv is None
                                                                     else argv),
        "profile": args.profile,
        "spec": str(SPEC.relative_to(ROOT)),
        "grid_dir": str(grid_dir),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "wall": wall_times(grid_dir),
        "tsaug_screen": screen,
        "analysis": json.loads((report_dir / "augmentation.json").read_text()),
    }
    if fixed is not None and fixed.analyses:
        record["analysis_fixed_budget"] = json.loads(
            (fixed.report_md.parent / "augmentation.json").read_text())
        record["rules"] = rule_agreement(record["analysis"], record["analysis_fixed_budget"])
    written = write_results(args.out, record, report_dir)
    print(f"wrote {written}, .md and heat maps (report: {report_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
