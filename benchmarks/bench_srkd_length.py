"""Single-recording KD: how the student's macro-F1 grows with the recording's length and the
augmentation policy, from the grid `configs/grids/srkd_length.yaml` (run or resumed here).

Per policy and length: the test macro-F1 (mean ± std over the seeds), the distinct windows of
the recording the student learnt from (`training_windows.kept` in each run's metrics), the
activities those windows show (their true labels, which the student never sees: what the
teacher's outputs on them can at best convey), and the
macro-F1 as a fraction of the student alone on every labelled window (`none`) and of the
acc+gyro teacher (the grid's training node); the paired difference against `none` of the same
seed with its 95 % bootstrap interval. The plot: macro-F1 against the recording's windows (log
axis, one point per seed, the mean joined per policy), with `none` and the teacher as lines.
Every cell keeps its last epoch (no validation selection), as the spec says.

Run:  python benchmarks/bench_srkd_length.py [--workers 2] [--grid-dir DIR] [--report-only]
Writes <out>/srkd_length.json, .md and .png (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harkd.config import ConfigError, validate_run_config  # noqa: E402
from harkd.data import load_windowset  # noqa: E402
from harkd.grid.runner import run_grid, store_path  # noqa: E402
from harkd.grid.spec import load_spec  # noqa: E402
from harkd.grid.store import RunRow, RunStore  # noqa: E402
from harkd.report.stats import format_mean_std, mean_std, paired_test  # noqa: E402
from harkd.report.tables import markdown_table  # noqa: E402
from harkd.train.assemble import training_set  # noqa: E402
from harkd.train.plots import save_figure  # noqa: E402
from harkd.train.rundir import atomic_write_bytes, atomic_write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "configs" / "grids" / "srkd_length.yaml"
RESULTS = ROOT / "benchmarks" / "results"
LENGTH, POLICY, SEED, BASELINE = "distill.params.seconds", "augment.policy", "seed", "none"


def summarise(rows: list[RunRow]) -> dict[str, Any]:
    """The figures of the module docstring from a store's finished rows."""
    cells = [r for r in rows if r.kind == "cell" and r.status == "done"]
    teachers = [r.metrics["test"]["macro_f1"] for r in rows
                if r.kind == "node" and r.status == "done"]
    f1 = {(r.axes[LENGTH], r.axes[POLICY], r.axes[SEED]): r.metrics["test"]["macro_f1"]
          for r in cells}
    kept = {(r.axes[LENGTH], r.axes[POLICY]): r.metrics.get("training_windows", {}).get("kept")
            for r in cells}
    none = {s: v for (length, _, s), v in f1.items() if length == BASELINE}
    none_mean = float(np.mean(list(none.values()))) if none else None
    teacher = float(np.mean(teachers)) if teachers else None
    out = []
    for length, policy in sorted({(a, p) for a, p, _ in f1 if a != BASELINE},
                                 key=lambda c: (c[1], kept.get(c) or np.inf)):
        seeds = sorted(s for a, p, s in f1 if (a, p) == (length, policy))
        values = [f1[length, policy, s] for s in seeds]
        stat = mean_std(values)
        paired = [s for s in seeds if s in none]
        test = paired_test([100 * (f1[length, policy, s] - none[s]) for s in paired])
        out.append({
            "policy": policy, "seconds": length, "windows": kept[length, policy],
            "n": stat.n, "mean": stat.mean, "std": stat.std,
            "per_seed": dict(zip(seeds, values, strict=True)),
            "of_none": stat.mean / none_mean if none_mean else None,
            "of_teacher": stat.mean / teacher if teacher else None,
            "vs_none_points": {"n": test.n, "diff_mean": test.diff_mean, "ci_low": test.ci_low,
                               "ci_high": test.ci_high, "p": test.p},
        })
    return {"none": {"mean": none_mean, "per_seed": none}, "teacher": teacher, "cells": out}


def activities(rows: list[RunRow]) -> dict[str, list[str]]:
    """Per length label, the activities (true labels) of the recording's windows it keeps."""
    out: dict[str, list[str]] = {}
    windowsets: dict[str, Any] = {}
    for r in rows:
        length = r.axes.get(LENGTH)
        if r.kind != "cell" or length in (None, BASELINE) or length in out:
            continue
        cfg = validate_run_config(r.config, source=f"run {r.hash}")
        key = cfg.model_dump_json(include={"data", "data_overrides"})
        ws = windowsets.setdefault(key, load_windowset(cfg))
        mine = training_set(cfg, ws)
        labels = np.unique(mine.y[mine.mask("train")])
        out[length] = [ws.label_names[i] for i in labels]
    return out


def markdown(summary: dict[str, Any]) -> str:
    none, teacher = summary["none"]["mean"], summary["teacher"]
    rows = [[c["policy"], c["seconds"], c["windows"], ", ".join(c.get("activities", [])),
             format_mean_std(mean_std(list(c["per_seed"].values()))),
             f"{100 * c['of_none']:.0f} %" if c["of_none"] else "",
             f"{100 * c['of_teacher']:.0f} %" if c["of_teacher"] else "",
             f"{c['vs_none_points']['diff_mean']:+.2f} [{c['vs_none_points']['ci_low']:+.2f}, "
             f"{c['vs_none_points']['ci_high']:+.2f}]"] for c in summary["cells"]]
    head = (f"Single-recording KD by the recording's length (`{SPEC.relative_to(ROOT)}`): "
            f"`none` on every labelled window {none:.4f}, teacher {teacher:.4f} "
            "(test macro-F1; last epoch kept).\n\n") if none and teacher else ""
    return head + markdown_table(
        ["policy", "seconds", "windows", "activities shown", "test macro-F1", "of none",
         "of teacher", "Δ vs none (points, paired)"], rows) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for k, policy in enumerate(sorted({c["policy"] for c in summary["cells"]})):
        cells = [c for c in summary["cells"] if c["policy"] == policy and c["windows"]]
        colour = f"C{k}"
        for c in cells:
            ax.scatter([c["windows"]] * c["n"], list(c["per_seed"].values()), s=12,
                       color=colour, alpha=0.5)
        ax.plot([c["windows"] for c in cells], [c["mean"] for c in cells], "-o", color=colour,
                label=f"srkd, {policy} augmentation (mean; points: seeds)")
    if summary["none"]["mean"]:
        ax.axhline(summary["none"]["mean"], color="k", ls="--",
                   label="none: every labelled window")
    if summary["teacher"]:
        ax.axhline(summary["teacher"], color="grey", ls=":", label="acc+gyro teacher")
    ax.set_xscale("log")
    ticks = sorted({(c["windows"], c["seconds"]) for c in summary["cells"] if c["windows"]})
    ax.set_xticks([w for w, _ in ticks],
                  [f"{w}\n{s} s" if s != "all" else f"{w}\nall" for w, s in ticks])
    ax.minorticks_off()
    ax.set_xlabel("distinct windows of the one recording (log)")
    ax.set_ylabel("test macro-F1")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--grid-dir", type=Path, default=None,
                        help="default: the spec's output_dir")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: summarise the store as it is")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(SPEC)
        grid_dir = (args.grid_dir or spec.grid_dir()).resolve()
        if not args.report_only:
            run_grid(spec, None, grid_dir=grid_dir, workers=args.workers, threads=args.threads)
        if not store_path(grid_dir).is_file():
            raise ConfigError(f"{grid_dir}: no run store; run the grid first")
        with RunStore(store_path(grid_dir)) as store:
            rows = store.rows()
        summary = summarise(rows)
        shown = activities(rows)
        for cell in summary["cells"]:
            cell["activities"] = shown.get(cell["seconds"], [])
        if not summary["cells"]:
            raise ConfigError(f"{grid_dir}: no finished srkd cell yet")
        record = {"command": "python benchmarks/bench_srkd_length.py "
                  + " ".join(sys.argv[1:] if argv is None else argv),
                  "spec": str(SPEC.relative_to(ROOT)), "grid_dir": str(grid_dir),
                  "selection": "last epoch (30), no validation selection", **summary}
        atomic_write_json(args.out / "srkd_length.json", record)
        text = markdown(summary)
        atomic_write_bytes(args.out / "srkd_length.md", text.encode())
        plot(summary, args.out / "srkd_length.png")
    except (ConfigError, OSError, ValueError, KeyError) as err:
        print(f"bench_srkd_length: {err.args[0] if err.args else err}", file=sys.stderr)
        return 1
    print(text)
    print(f"wrote {args.out / 'srkd_length.json'}, .md, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
