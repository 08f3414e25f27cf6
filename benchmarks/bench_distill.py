"""Distillation benchmark on hapt-quick (issue 5): acc+gyro cnn1d teacher -> acc-only tiny student.

One teacher is trained once (configs/distill/kd.yaml turned into a teacher run, as the
`harkd distill` hint does) and reused by every method. Each method in configs/distill/<m>.yaml
then runs with the same epochs, augmentation and seeds; reported: test macro-F1 mean ± std over
seeds, the per-seed paired difference against `none`, the share of the none -> teacher gap
closed, and training seconds per epoch (IE-KD's auto-encoder stage is timed separately).
Model selection is on validation macro-F1 only (inside `fit`); test subjects never train.

    python benchmarks/bench_distill.py                       # full: 3 seeds, 30 epochs
    python benchmarks/bench_distill.py --epochs 8 --seeds 0 1 --methods none kd sk

Writes benchmarks/results/distill.json and distill.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harkd.commands.distill import teacher_overrides  # noqa: E402
from harkd.config import load_run_config  # noqa: E402

METHODS = ["none", "kd", "iekd", "iedml", "sk"]
TEACHER = "cnn1d"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30, help="training epochs of every method")
    p.add_argument("--teacher-epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--work", type=Path, default=REPO / "runs" / "bench_distill")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every method"
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    return p.parse_args(argv)


def common_overrides(args: argparse.Namespace, seed: int, epochs: int) -> list[str]:
    out = [f"train.epochs={epochs}", f"train.seed={seed}", *args.set]
    if args.threads:
        out.append(f"train.threads={args.threads}")
    return out


def summarize(result: Any, seconds: float, epochs_run: int) -> dict[str, Any]:
    return {
        "test_macro_f1": float(result.metrics["test"]["macro_f1"]),
        "val_macro_f1": float(result.metrics["val"]["macro_f1"]),
        "test_accuracy": float(result.metrics["test"]["accuracy"]),
        "epochs_run": epochs_run,
        "seconds": seconds,
        "run_dir": str(result.run_dir),
        "timings": result.timings,
    }


def train_teacher(args: argparse.Namespace, fit: Any) -> dict[str, Any]:
    run_dir = args.work / "teacher"
    cfg_path = REPO / "configs" / "distill" / "kd.yaml"
    base = load_run_config(cfg_path)
    overrides = teacher_overrides(base.teachers[TEACHER], run_dir)
    cfg = load_run_config(cfg_path, overrides + common_overrides(args, 0, args.teacher_epochs))
    t0 = time.perf_counter()
    result = fit(cfg, run_dir=run_dir, progress=True)
    return summarize(result, time.perf_counter() - t0, args.teacher_epochs) | {
        "run_dir": str(run_dir)
    }


def run_method(
    args: argparse.Namespace, fit: Any, method: str, seed: int, teacher_dir: Path
) -> dict:
    overrides = common_overrides(args, seed, args.epochs)
    cfg_path = REPO / "configs" / "distill" / f"{method}.yaml"
    if TEACHER in load_run_config(cfg_path).teachers:
        overrides.append(f"teachers.{TEACHER}.run_dir={teacher_dir}")
    cfg = load_run_config(cfg_path, overrides)
    t0 = time.perf_counter()
    result = fit(cfg, run_dir=args.work / f"{method}-seed{seed}", progress=True)
    return summarize(result, time.perf_counter() - t0, args.epochs)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def report(args: argparse.Namespace, teacher: dict, runs: dict[str, dict[int, dict]]) -> dict:
    table: dict[str, Any] = {}
    base = runs.get("none", {})
    t_f1 = teacher["test_macro_f1"]
    for method, per_seed in runs.items():
        f1 = [per_seed[s]["test_macro_f1"] for s in args.seeds]
        m, sd = mean_std(f1)
        row: dict[str, Any] = {"test_macro_f1_mean": m, "test_macro_f1_std": sd, "per_seed": f1}
        row["seconds_per_epoch"] = statistics.fmean(
            r["seconds"] / max(1, r["epochs_run"]) for r in per_seed.values()
        )
        if base and method != "none":
            diffs = [per_seed[s]["test_macro_f1"] - base[s]["test_macro_f1"] for s in args.seeds]
            dm, dsd = mean_std(diffs)
            gap = t_f1 - mean_std([base[s]["test_macro_f1"] for s in args.seeds])[0]
            row |= {"paired_diff_vs_none": diffs, "paired_diff_mean": dm, "paired_diff_std": dsd}
            row["gap_closed"] = dm / gap if gap > 0 else None
        table[method] = row
    return table


def write_markdown(path: Path, meta: dict, teacher: dict, table: dict) -> None:
    lines = [
        "# Distillation on hapt-quick: acc+gyro cnn1d teacher -> acc-only tiny student",
        "",
        f"Command: `{meta['command']}`  ",
        f"Seeds {meta['seeds']}, {meta['epochs']} epochs per method (IE-KD adds "
        f"its auto-encoder epochs), augmentation `{meta['augment']}`; test macro-F1 on the "
        f"UCI-HAR test subjects, model selection on validation macro-F1.  ",
        f"Teacher (acc+gyro cnn1d, {meta['teacher_epochs']} epochs, seed 0): test macro-F1 "
        f"{teacher['test_macro_f1']:.4f}.",
        "",
        "| method | test macro-F1 (mean ± std) | paired diff vs none | gap closed | s/epoch |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method, r in table.items():
        diff = (
            f"{100 * r['paired_diff_mean']:+.2f} ± {100 * r['paired_diff_std']:.2f} pts"
            if "paired_diff_mean" in r
            else "-"
        )
        gap = f"{100 * r['gap_closed']:.0f}%" if r.get("gap_closed") is not None else "-"
        lines.append(
            f"| {method} | {r['test_macro_f1_mean']:.4f} ± {r['test_macro_f1_std']:.4f} | {diff} "
            f"| {gap} | {r['seconds_per_epoch']:.1f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from harkd.train.loop import fit

    args.work.mkdir(parents=True, exist_ok=True)
    teacher = train_teacher(args, fit)
    teacher_dir = Path(teacher["run_dir"])
    print(f"teacher: test macro-F1 {teacher['test_macro_f1']:.4f}")
    runs: dict[str, dict[int, dict]] = {}
    for method in args.methods:
        for seed in args.seeds:
            r = run_method(args, fit, method, seed, teacher_dir)
            runs.setdefault(method, {})[seed] = r
            f1, sec = r["test_macro_f1"], r["seconds"]
            print(f"{method} seed {seed}: test macro-F1 {f1:.4f} ({sec:.0f} s)")
    table = report(args, teacher, runs)
    meta = {
        "command": "python benchmarks/bench_distill.py " + " ".join(argv or sys.argv[1:]),
        "protocol": "hapt-quick",
        "seeds": args.seeds,
        "epochs": args.epochs,
        "teacher_epochs": args.teacher_epochs,
        "augment": load_run_config(REPO / "configs" / "distill" / "kd.yaml").augment.policy,
        "overrides": args.set,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"meta": meta, "teacher": teacher, "methods": table, "runs": runs}
    (args.out / "distill.json").write_text(json.dumps(result, indent=2, default=str))
    write_markdown(args.out / "distill.md", meta, teacher, table)
    print((args.out / "distill.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
