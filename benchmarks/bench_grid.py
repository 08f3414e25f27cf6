"""Grid machinery benchmark: per-run overhead beyond training, throughput, quick-profile sizing.

1. Overhead and throughput: a grid of `--runs` trivially short runs (tiny student, 1 epoch,
   8 HAPT subjects) with the local executor at 1 and 2 workers. Per run, the overhead of the
   grid machinery is the driver's wall time for the run (claim -> submit -> result written)
   minus fit's own wall time in the worker; throughput is runs per minute over the whole grid
   call (pool start-up and torch import in the workers included). Target: overhead <= 2 s.
2. Graph: one teacher node, two assistant nodes it teaches, 8 students (2 assistants × 4
   seeds) distilled from the assistants, 2 workers of 1 thread, on the same 8 subjects. Per
   node (and per cell), the same overhead as above (the pool's workers start together before
   the first claim, and their start-up is reported apart); every run must have trained exactly once
   (one attempt, one finished run directory each), and running the grid again trains nothing.
   Target: overhead <= 2 s per node.
3. `--size-quick`: one epoch of every augmentation × method cell of
   configs/grids/hapt_aug_ablation.yaml on the full hapt-quick protocol, 2 workers of 1 thread
   (how `--profile quick` runs here), against the spec's teacher node at 1 epoch. From the
   measured per-epoch and fixed (set-up + evaluation) times it derives the largest epoch count
   that keeps the mean run within 40 s (84 runs on 2 workers then take about 28 min, half the
   hour the profile promises), and projects the 84-run grid's wall time.

The machine is shared: the 1-minute load average after each section is recorded beside it.

Run: python benchmarks/bench_grid.py [--runs 6] [--size-quick] [--skip-overhead]
Results: benchmarks/results/grid.json (the sections run are merged into the file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from data_prep.config import load_data_config
from data_prep.configio import load_config
from data_prep.pipeline import prepare
from harkd.grid.executors import available_cores
from harkd.grid.runner import run_grid, store_path
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore

REPO = Path(__file__).resolve().parents[1]
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
ABLATION = REPO / "configs" / "grids" / "hapt_aug_ablation.yaml"
OUT = REPO / "benchmarks" / "results" / "grid.json"
SMALL = {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
         "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}}
RUN_BUDGET_S = 40.0


def overhead(n_runs: int, tmp: Path) -> dict[str, Any]:
    """Per-run overhead and runs/min of trivially short runs at 1 and 2 local workers."""
    overrides = [f"subjects={SMALL['subjects']}", "split.test_subjects=[2, 4]",
                 "split.val_subjects=[3, 5]"]
    ws = prepare(load_data_config(HAPT_QUICK, overrides), cache_dir=tmp / "cache", progress=False)
    out: dict[str, Any] = {"runs": n_runs, "windows": len(ws), "cores": available_cores()}
    for workers in (1, 2):
        spec = spec_from_dict({
            "name": f"overhead{workers}", "output_dir": str(tmp / f"w{workers}"),
            "base": {"data": str(HAPT_QUICK), "data_overrides": SMALL,
                     "model": {"name": "tiny", "view": ["acc"]},
                     "train": {"epochs": 1, "batch_size": 256, "patience": None}},
            "axes": {"seed": list(range(n_runs))},
        }, source="bench")
        t0 = time.perf_counter()
        summary = run_grid(spec, workers=workers, windowset=ws, progress=False)
        total = time.perf_counter() - t0
        with RunStore(store_path(summary.grid_dir)) as store:
            rows = store.rows("done")
        over = [r.wall_s - r.timings["fit_s"] for r in rows]
        res = {
            "grid_wall_s": total,
            "runs_per_min": 60.0 * len(rows) / total,
            "fit_s_mean": statistics.mean(r.timings["fit_s"] for r in rows),
            "train_s_mean": statistics.mean(r.timings["train_s"] for r in rows),
            "overhead_s_mean": statistics.mean(over),
            "overhead_s_max": max(over),
            "overhead_s_per_run": over,
            "overhead_s_median": statistics.median(over),
            # the pool's start-up (spawn, torch import, the WindowSet sent to the initializer,
            # every worker side by side) before the first claim: paid once per grid, spread
            # over 84 runs here
            "startup_s": summary.startup_s,
            "startup_s_per_run_of_84": summary.startup_s / 84,
        }
        out[f"workers_{workers}"] = res
        print(f"{workers} worker(s): {len(rows)} runs in {total:.1f} s = "
              f"{res['runs_per_min']:.1f} runs/min; fit {res['fit_s_mean']:.2f} s/run; "
              f"overhead median {res['overhead_s_median']:.3f} s, mean {res['overhead_s_mean']:.3f}"
              f" s; pool start-up {res['startup_s']:.1f} s (before the first run)")
    out["target_overhead_s"] = 2.0
    out["meets_target"] = all(
        out[f"workers_{w}"]["overhead_s_median"] + out[f"workers_{w}"]["startup_s_per_run_of_84"]
        <= 2.0 for w in (1, 2))
    return out


def graph(tmp: Path, workers: int = 2) -> dict[str, Any]:
    """A teacher -> 2 assistants -> 8 students graph: overhead per node, each node run once."""
    overrides = [f"subjects={SMALL['subjects']}", "split.test_subjects=[2, 4]",
                 "split.val_subjects=[3, 5]"]
    ws = prepare(load_data_config(HAPT_QUICK, overrides), cache_dir=tmp / "cache", progress=False)
    train = {"epochs": 1, "batch_size": 256, "patience": None}
    kd = {"method": "kd", "params": {"alpha": 0.5, "temperature": 4.0}}
    raw = {
        "name": "graph", "output_dir": str(tmp / "graph"),
        "nodes": {
            "teacher": {"config": {"data": str(HAPT_QUICK), "train": train, "model": {
                "name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16]}}}},
            **{f"assistant{i}": {"config": {
                "data": str(HAPT_QUICK), "train": {**train, "seed": i}, "distill": kd,
                "model": {"name": "tiny_s", "view": ["acc", "gyro"]},
                "teachers": {"t": {"from": "teacher"}}}} for i in (1, 2)},
        },
        "base": {"data": str(HAPT_QUICK), "data_overrides": SMALL, "train": train,
                 "model": {"name": "tiny", "view": ["acc"]}, "distill": kd},
        "axes": {"teachers": [{"label": f"assistant{i}",
                               "set": {"teachers": {"t": {"from": f"assistant{i}"}}}}
                              for i in (1, 2)],
                 "seed": [0, 1, 2, 3]},
    }
    spec = spec_from_dict(raw, source="bench-graph")
    t0 = time.perf_counter()
    summary = run_grid(spec, workers=workers, threads=1, windowset=ws, progress=False)
    total = time.perf_counter() - t0
    with RunStore(store_path(summary.grid_dir)) as store:
        rows = store.rows()
    finished = sorted(p.parent.name for p in summary.grid_dir.glob("runs/*/metrics.json"))
    again = run_grid(spec, workers=workers, threads=1, windowset=ws, progress=False)
    nodes = [r for r in rows if r.kind == "node"]
    over = {r.hash: r.wall_s - r.timings["fit_s"] for r in rows}
    res = {
        "workers": workers, "runs": len(rows), "nodes": len(nodes), "cells": len(rows) - len(nodes),
        "done": summary.done, "failed": summary.failed, "grid_wall_s": total,
        "node_overhead_s": {r.axes["node"]: over[r.hash] for r in nodes},
        "node_overhead_s_max": max(over[r.hash] for r in nodes),
        "run_overhead_s_median": statistics.median(over.values()),
        "pool_startup_s": summary.startup_s,
        "attempts": sorted({r.attempts for r in rows}),
        "each_run_trained_once": all(r.attempts == 1 for r in rows)
        and finished == sorted(r.hash for r in rows),
        "rerun_trained": again.ran,
    }
    res["target_overhead_s"] = 2.0
    res["meets_target"] = (res["each_run_trained_once"] and res["rerun_trained"] == 0
                           and res["node_overhead_s_max"] <= 2.0)
    print(f"graph: {res['nodes']} nodes + {res['cells']} cells on {workers} workers in "
          f"{total:.1f} s; node overhead at most {res['node_overhead_s_max']:.3f} s, of any run "
          f"median {res['run_overhead_s_median']:.3f} s; pool start-up "
          f"{res['pool_startup_s']:.1f} s (once, before the first claim); every run trained "
          f"once: {res['each_run_trained_once']}; "
          f"rerun trained {again.ran}")
    return res


def size_quick(tmp: Path) -> dict[str, Any]:
    """Epoch and fixed costs of every ablation cell at 1 epoch; the quick profile's epochs."""
    raw = load_config(ABLATION)
    raw["axes"].pop("seed")
    raw.update(name="size", output_dir=str(tmp / "size"), profiles={"one": {
        "train.epochs": 1, "train.patience": None, "method=iekd": {"distill.params.ae_epochs": 1},
        "nodes": {"train.epochs": 1, "train.patience": None}}})
    spec = spec_from_dict(raw, source=str(ABLATION), spec_dir=ABLATION.parent)
    summary = run_grid(spec, "one", workers=2, threads=1, progress=True)
    with RunStore(store_path(summary.grid_dir)) as store:
        rows = [r for r in store.rows("done") if r.kind == "cell"]
    cells = [{**r.axes, "epochs": r.timings["epochs_run"],
              "s_per_epoch": r.timings["train_s"] / r.timings["epochs_run"],
              "fixed_s": r.timings["fit_s"] - r.timings["train_s"],
              "grid_s": r.wall_s - r.timings["fit_s"]} for r in rows]
    return {"cells": cells, **derive_quick(cells), "failed": summary.failed}


def derive_quick(cells: list[dict[str, Any]], seeds: int = 3, workers: int = 2) -> dict[str, Any]:
    """The largest epoch count whose mean run time stays within RUN_BUDGET_S.

    A run costs fit's fixed part (set-up, evaluation, saving) plus epochs × its epoch time
    (iekd adds its one auto-encoder epoch); the pool's start-up (the largest grid overhead,
    paid once per worker) is added once to the projected wall time of the whole grid.
    """
    def run_s(cell: dict[str, Any], epochs: int) -> float:
        return cell["fixed_s"] + (epochs + (cell["method"] == "iekd")) * cell["s_per_epoch"]

    def mean_s(epochs: int) -> float:
        return statistics.mean(run_s(c, epochs) for c in cells)

    best = 1
    while mean_s(best + 1) <= RUN_BUDGET_S:
        best += 1
    startup = max(c["grid_s"] for c in cells)
    projected = (seeds * sum(run_s(c, best) for c in cells) / workers + startup) / 60
    print(f"quick profile: {best} epochs; mean run {mean_s(best):.1f} s, slowest "
          f"{max(run_s(c, best) for c in cells):.1f} s; pool start-up {startup:.1f} s; projected "
          f"{seeds * len(cells)}-run grid {projected:.1f} min on {workers} workers")
    return {"run_budget_s": RUN_BUDGET_S, "quick_epochs": best, "mean_run_s": mean_s(best),
            "slowest_run_s": max(run_s(c, best) for c in cells), "pool_startup_s": startup,
            "projected_grid_min": projected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--size-quick", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true",
                        help="only the graph (and --size-quick) sections")
    args = parser.parse_args()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_overhead:
            results["overhead"] = overhead(args.runs, Path(tmp))
            results["overhead"]["load_average_after"] = os.getloadavg()
        results["graph"] = graph(Path(tmp))
        results["graph"]["load_average_after"] = os.getloadavg()
        if args.size_quick:
            results["quick_profile"] = size_quick(Path(tmp))
            results["quick_profile"]["load_average_after"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1, default=lambda o: None if isinstance(
        o, float) and math.isnan(o) else str(o)))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
