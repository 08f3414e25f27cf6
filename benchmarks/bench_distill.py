"""Distillation benchmark on hapt-quick (issue 5): acc+gyro cnn1d teacher -> acc-only tiny student.

The teacher is trained once from configs/train/teacher_cnn1d.yaml (its default settings) and
reused by every method. Each method in configs/distill/<m>.yaml then runs with the same epochs,
augmentation and seeds; reported: test macro-F1 mean ± std over seeds (and the validation
macro-F1 that selected each model), the per-seed paired difference against `none`, the share of
the none -> teacher gap closed, and training seconds per epoch (IE-KD's auto-encoder stage is
timed separately). Model selection is on validation macro-F1 only (inside `fit`); test subjects
never train. Every run trains all its epochs (no early stopping by default: with patience 10 on
the noisy 3-subject validation split, runs stopped while the cosine learning rate was still
high and kept an early checkpoint; see benchmarks/results/distill.md). Run from the repository
root:

    python benchmarks/bench_distill.py                           # full: 3 seeds, 60 epochs
    python benchmarks/bench_distill.py --epochs 8 --seeds 0 1 --methods none kd sk
    python benchmarks/bench_distill.py --work runs/tune --teacher-dir runs/bench_distill/teacher \
        --methods kd --set kd:distill.params.alpha=0.9 --out runs/tune   # a validation sweep point

Writes <out>/distill.json and distill.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harkd.config import load_run_config  # noqa: E402
from harkd.report.stats import MeanStd, format_mean_std, mean_std  # noqa: E402
from harkd.report.tables import markdown_table  # noqa: E402

METHODS = ["none", "kd", "iekd", "iedml", "sk"]
TEACHER = "cnn1d"
TEACHER_CONFIG = REPO / "configs" / "train" / "teacher_cnn1d.yaml"
DISTILL_CONFIGS = REPO / "configs" / "distill"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60, help="training epochs of every method")
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help="early-stopping patience of every method (default: none, train all epochs; the "
        "best validation epoch is still the model)",
    )
    p.add_argument("--teacher-epochs", type=int, default=None, help="default: the teacher config's")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--work", type=Path, default=Path("runs/bench_distill"), help="run folder")
    p.add_argument("--teacher-dir", type=Path, default=None, help="a finished teacher run to reuse")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads per run")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="[METHOD:]KEY=VALUE",
        help="overrides for every method, or for one with a METHOD: prefix",
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument(
        "--notes",
        type=Path,
        default=REPO / "benchmarks" / "results" / "distill.notes.md",
        help="markdown appended to distill.md when the file exists (what was tried, and why)",
    )
    return p.parse_args(argv)


def overrides_for(args: argparse.Namespace, method: str) -> list[str]:
    """The --set overrides that apply to `method` (unprefixed ones apply to every method)."""
    out = []
    for item in args.set:
        head, _, rest = item.partition(":")
        if rest and "=" not in head:
            if head not in METHODS:
                raise SystemExit(f"--set {item!r}: unknown method {head!r}; known: {METHODS}")
            if head == method:
                out.append(rest)
        else:
            out.append(item)
    return out


def summarize(result: Any, seconds: float) -> dict[str, Any]:
    """Scores and timings of one `RunResult`; seconds per epoch of each stage from its history."""
    per_stage: dict[str, list[float]] = {}
    for h in result.history:
        per_stage.setdefault(h["stage"], []).append(h["train_s"] + (h.get("val_s") or 0.0))
    return {
        "test_macro_f1": float(result.metrics["test"]["macro_f1"]),
        "val_macro_f1": float(result.metrics["val"]["macro_f1"]),
        "test_accuracy": float(result.metrics["test"]["accuracy"]),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "n_params": result.n_params,
        "s_per_epoch": {k: statistics.fmean(v) for k, v in per_stage.items()},
        "wall_s": seconds,
        "from_cache": result.from_cache,
        "run_dir": str(result.run_dir),
    }


def fit_config(config: Path, overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """Load, train (or reuse a finished identical run) and summarise; runs in a worker process."""
    from harkd.train.loop import fit

    cfg = load_run_config(config, overrides)
    t0 = time.perf_counter()
    result = fit(cfg, run_dir=run_dir, progress=False)
    return summarize(result, time.perf_counter() - t0)


def teacher_job(args: argparse.Namespace) -> tuple[Path, list[str], Path]:
    run_dir = args.work / "teacher"
    overrides = [f"name={run_dir.name}", f"output_dir={run_dir.parent}"]
    overrides.append(f"train.threads={args.threads}")
    if args.teacher_epochs:
        overrides.append(f"train.epochs={args.teacher_epochs}")
    return TEACHER_CONFIG, overrides, run_dir


def method_job(
    args: argparse.Namespace, method: str, seed: int, teacher_dir: Path
) -> tuple[Path, list[str], Path]:
    config = DISTILL_CONFIGS / f"{method}.yaml"
    name = f"{method}-seed{seed}"
    overrides = [
        f"name={name}",
        f"output_dir={args.work}",
        f"train.epochs={args.epochs}",
        f"train.seed={seed}",
        f"train.threads={args.threads}",
        f"train.patience={'null' if args.patience is None else args.patience}",
        *overrides_for(args, method),
    ]
    if TEACHER in load_run_config(config).teachers:
        overrides.append(f"teachers.{TEACHER}.run_dir={teacher_dir}")
    return config, overrides, args.work / name


def effective_augmentation(args: argparse.Namespace) -> str:
    """The policy and teacher input every method ran with, after --set ("; "-joined per method
    where they differ)."""
    seen: dict[str, list[str]] = {}
    for method in args.methods:
        aug = load_run_config(
            DISTILL_CONFIGS / f"{method}.yaml", overrides_for(args, method)
        ).augment
        seen.setdefault(f"{aug.policy}, teacher input {aug.teacher_input}", []).append(method)
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"{', '.join(methods)}: {desc}" for desc, methods in seen.items())


def report(seeds: list[int], teacher: dict, runs: dict[str, dict[int, dict]]) -> dict:
    table: dict[str, Any] = {}
    base = runs.get("none", {})
    t_f1 = teacher["test_macro_f1"]
    for method, per_seed in runs.items():
        f1 = [per_seed[s]["test_macro_f1"] for s in seeds]
        row: dict[str, Any] = {
            "test_macro_f1": mean_std(f1).to_dict(),
            "val_macro_f1": mean_std([per_seed[s]["val_macro_f1"] for s in seeds]).to_dict(),
            "per_seed": f1,
        }
        for stage in per_seed[seeds[0]]["s_per_epoch"]:
            row[f"s_per_epoch_{stage}"] = statistics.fmean(
                per_seed[s]["s_per_epoch"][stage] for s in seeds
            )
        if base and method != "none":
            diffs = [per_seed[s]["test_macro_f1"] - base[s]["test_macro_f1"] for s in seeds]
            diff = mean_std(diffs)
            gap = t_f1 - mean_std([base[s]["test_macro_f1"] for s in seeds]).mean
            row |= {"paired_diff_vs_none": diffs, "paired_diff": diff.to_dict()}
            row["gap_closed"] = diff.mean / gap if gap > 0 else None
        table[method] = row
    return table


def write_markdown(path: Path, meta: dict, teacher: dict, table: dict, notes: Path) -> None:
    lines = [
        "# Distillation on hapt-quick: acc+gyro cnn1d teacher -> acc-only tiny student",
        "",
        f"Command: `{meta['command']}`  ",
        f"Seeds {meta['seeds']}, {meta['epochs']} epochs per method (IE-KD adds its "
        f"auto-encoder epochs), "
        + (
            "no early stopping"
            if meta["patience"] is None
            else f"early stopping after {meta['patience']} epochs without improvement"
        )
        + f", augmentation {meta['augment']}, {meta['threads']} torch "
        f"thread(s) per run, {meta['jobs']} run(s) at a time; test macro-F1 on the UCI-HAR test "
        f"subjects, model selection on validation macro-F1.  ",
        f"Teacher (acc+gyro cnn1d, {teacher['n_params']:,} parameters, "
        f"{TEACHER_CONFIG.relative_to(REPO)}, seed 0): test macro-F1 "
        f"{teacher['test_macro_f1']:.4f}, val {teacher['val_macro_f1']:.4f}, "
        f"{teacher['s_per_epoch']['main']:.1f} s/epoch.",
        "",
    ]
    cells = []
    for method, r in table.items():
        diff = (
            format_mean_std(mean_std([100 * d for d in r["paired_diff_vs_none"]]), 2, signed=True)
            + " pts"
            if "paired_diff_vs_none" in r
            else "-"
        )
        gap = f"{100 * r['gap_closed']:.0f}%" if r.get("gap_closed") is not None else "-"
        secs = f"{r['s_per_epoch_main']:.1f}"
        if "s_per_epoch_ae" in r:
            secs += f" (ae stage {r['s_per_epoch_ae']:.1f})"
        cells.append((method, format_mean_std(MeanStd(**r["test_macro_f1"]), 4),
                      format_mean_std(MeanStd(**r["val_macro_f1"]), 4), diff, gap, secs))
    lines.append(markdown_table(("method", "test macro-F1 (mean ± std)", "val macro-F1",
                                 "paired diff vs none", "gap closed", "s/epoch"),
                                cells).rstrip("\n"))
    if meta["overrides"]:
        lines += ["", f"Overrides: `{' '.join(meta['overrides'])}`"]
    if notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.teacher_dir is None:
        teacher = fit_config(*teacher_job(args))
        teacher_dir = Path(teacher["run_dir"])
    else:
        teacher_dir = args.teacher_dir
        teacher = json.loads((teacher_dir / "metrics.json").read_text())
        teacher = {
            "test_macro_f1": teacher["metrics"]["test"]["macro_f1"],
            "val_macro_f1": teacher["metrics"]["val"]["macro_f1"],
            "n_params": teacher["n_params"],
            "s_per_epoch": {"main": teacher["timings"]["s_per_epoch"]},
            "run_dir": str(teacher_dir),
        }
    print(f"teacher: test macro-F1 {teacher['test_macro_f1']:.4f} ({teacher_dir})")
    keys = [(m, s) for m in args.methods for s in args.seeds]
    runs: dict[str, dict[int, dict]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {k: pool.submit(fit_config, *method_job(args, *k, teacher_dir)) for k in keys}
        for (method, seed), fut in futures.items():
            r = runs.setdefault(method, {})[seed] = fut.result()
            print(
                f"{method} seed {seed}: test macro-F1 {r['test_macro_f1']:.4f} "
                f"val {r['val_macro_f1']:.4f} ({r['wall_s']:.0f} s)",
                flush=True,
            )
    table = report(args.seeds, teacher, runs)
    meta = {
        "command": "python benchmarks/bench_distill.py " + " ".join(argv or sys.argv[1:]),
        "protocol": "hapt-quick",
        "seeds": args.seeds,
        "epochs": args.epochs,
        "patience": args.patience,
        "threads": args.threads,
        "jobs": args.jobs,
        "augment": effective_augmentation(args),
        "overrides": args.set,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"meta": meta, "teacher": teacher, "methods": table, "runs": runs}
    (args.out / "distill.json").write_text(json.dumps(result, indent=2, default=str))
    write_markdown(args.out / "distill.md", meta, teacher, table, args.notes)
    print((args.out / "distill.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
