"""PSKD on SYNTHETIC paired skeleton + wrist-accelerometer data, run by the experiment engine.

What it measures: whether progressive skeleton-to-sensor distillation (PSKD, hard and soft
ACS loss) lifts the acc-only tiny student over the same student alone and over plain KD from
one teacher. Data: configs/data/synth-paired.yaml (data_prep/synth_skeleton.py; no person
recorded any of it).

How: one grid (`build_spec`). Three training nodes, each trained once (seed 0) and shared by
every cell that needs it: the teachers of configs/train/synth_teacher_{skeleton,fusion,acc}.yaml.
Cells over `--seeds`: the student alone (configs/train/synth_student_tiny.yaml), KD from each
single teacher (configs/distill/kd_synth.yaml; the table marks the teacher with the best
validation macro-F1, ties broken in the order skeleton, fusion, acc, as the single-teacher KD
PSKD must beat), and PSKD with the hard and the soft ACS loss from all three
(configs/distill/pskd_synth.yaml). Reported, from the grid's run store: test macro-F1 mean ± std
over seeds, and each arm's per-seed paired difference against the student alone and against KD
from the best teacher, with its 95 % bootstrap interval. Model selection is on validation
macro-F1 only (inside `fit`).

Reproduce (from the repository root; a rerun reuses every finished run of the grid folder):

    python benchmarks/bench_pskd.py                       # 3 seeds, the configs' epochs
    python benchmarks/bench_pskd.py --trials 2 --duration 8 --teacher-epochs 6 --epochs 15 \
        --boundaries 5 10                                 # the recorded table
    python benchmarks/bench_pskd.py --seeds 0 --epochs 4 --teacher-epochs 2 --subjects 12 \
        --trials 2 --duration 8 --grid-dir runs/bench/pskd-smoke --out runs/bench/pskd-smoke

Writes <out>/pskd.json and pskd.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine_bench import (
    CONFIGS,
    REPO,
    RESULTS,
    GridRuns,
    add_engine_arguments,
    base_of,
    command_line,
    config_bundle,
    format_paired,
    make_spec,
    overrides_for,
    paired,
    read_runs,
    run_spec,
    run_summary,
    split_overrides,
    unfinished,
    write_json,
    write_text,
)

from data_prep.configio import ConfigError
from harkd.commands.grid import dry_run
from harkd.config import RunConfig, load_run_config
from harkd.report.stats import MeanStd, format_mean_std, mean_std
from harkd.report.tables import markdown_table

DATA = CONFIGS / "data" / "synth-paired.yaml"
TRAIN = CONFIGS / "train"
DISTILL = CONFIGS / "distill"
GRID_DIR = REPO / "runs" / "bench" / "pskd"
#: teacher name in pskd_synth.yaml -> its training config; the tie order of the best teacher
TEACHERS = {
    "skeleton": TRAIN / "synth_teacher_skeleton.yaml",
    "fusion": TRAIN / "synth_teacher_fusion.yaml",
    "acc": TRAIN / "synth_teacher_acc.yaml",
}
STUDENT = "student"
PSKD_VARIANTS = ("hard", "soft")
LABEL = "SYNTHETIC data (data_prep/synth_skeleton.py): no person recorded any of it"


def node_name(teacher: str) -> str:
    """The training node of a teacher."""
    return f"teacher_{teacher}"


def kd_label(teacher: str) -> str:
    return f"kd_{teacher}"


def arm_labels() -> list[str]:
    """The cells' labels on the `method` axis, in table order."""
    return [STUDENT, *map(kd_label, TEACHERS), *(f"pskd_{v}" for v in PSKD_VARIANTS)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="student epochs (default: configs)")
    p.add_argument("--teacher-epochs", type=int, default=None, help="default: the configs'")
    p.add_argument("--boundaries", type=int, nargs="+", default=None, help="PSKD stage epochs")
    p.add_argument("--subjects", type=int, default=None, help="synthetic subjects (default 12)")
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--duration", type=float, default=None, help="seconds per trial")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--set", nargs="*", default=[], metavar="[ARM:]KEY=VALUE",
                   help="overrides of every student cell, or of one arm "
                        f"({', '.join(arm_labels())}) with an ARM: prefix")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of pskd.json and .md")
    add_engine_arguments(p, GRID_DIR)
    return p.parse_args(argv)


def reader_options(args: argparse.Namespace) -> dict[str, Any]:
    """The synthetic generator's options the command line changes."""
    given = {"n_subjects": args.subjects, "trials": args.trials, "duration_s": args.duration}
    return {k: v for k, v in given.items() if v is not None}


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The grid: a node per teacher, and the student, KD-from-each-teacher and PSKD cells."""
    overrides = split_overrides(args.set, arm_labels())
    data_overrides = dict(args.data_overrides)
    if reader_options(args):
        data_overrides["reader_options"] = {**data_overrides.get("reader_options", {}),
                                            **reader_options(args)}
    student_set = {} if args.epochs is None else {"train.epochs": args.epochs}
    node_set = {} if args.teacher_epochs is None else {"train.epochs": args.teacher_epochs}
    pskd = load_run_config(DISTILL / "pskd_synth.yaml")
    kd = load_run_config(DISTILL / "kd_synth.yaml")

    def bundle(label: str, config: RunConfig, teachers: dict[str, Any],
               extra: dict[str, Any]) -> dict[str, Any]:
        return config_bundle(label, config, teachers,
                             {**student_set, **extra, **overrides_for(overrides, label)})

    axis = [bundle(STUDENT, load_run_config(TRAIN / "synth_student_tiny.yaml"), {}, {})]
    axis += [bundle(kd_label(t), kd, {t: {"from": node_name(t)}}, {}) for t in TEACHERS]
    boundaries = {} if args.boundaries is None else {"distill.params.boundaries": args.boundaries}
    axis += [bundle(f"pskd_{v}", pskd, {t: {"from": node_name(t)} for t in pskd.teachers},
                    {"distill.params.variant": v, **boundaries}) for v in PSKD_VARIANTS]
    return {
        "name": "bench_pskd",
        "description": "PSKD against the student alone and KD from each teacher, synthetic data",
        "output_dir": str(args.grid_dir),
        "nodes": {node_name(t): {"config": str(path), "set": node_set}
                  for t, path in TEACHERS.items()},
        "base": base_of(load_run_config(TRAIN / "synth_student_tiny.yaml"), data_overrides),
        "axes": {"method": axis, "seed": args.seeds},
    }


def tabulate(runs: GridRuns) -> dict[str, Any]:
    """Teachers, the best one, each arm's summary and every run's, from the stored runs."""
    teachers = {t: run_summary(runs.nodes[node_name(t)], runs.run_dir(runs.nodes[node_name(t)]))
                for t in TEACHERS}
    best = max(TEACHERS, key=lambda t: teachers[t]["val_macro_f1"])  # the first wins ties
    per_seed = {label: {seed: run_summary(row, runs.run_dir(row))
                        for seed, row in sorted(runs.cells[label].items())}
                for label in arm_labels()}
    summary = {}
    for label, by_seed in per_seed.items():
        test, diffs = paired(by_seed, per_seed[STUDENT])
        summary[label] = {
            "test_macro_f1": mean_std([r["test_macro_f1"] for r in by_seed.values()]).to_dict(),
            "val_macro_f1": mean_std([r["val_macro_f1"] for r in by_seed.values()]).to_dict(),
            "diff_vs_student": {**mean_std(diffs).to_dict(), "per_seed": diffs},
            "paired": {STUDENT: test.to_dict(),
                       kd_label(best): paired(by_seed, per_seed[kd_label(best)])[0].to_dict()},
        }
    return {"teachers": teachers, "best_teacher": best, "summary": summary,
            "per_seed": per_seed}


def markdown(r: dict[str, Any]) -> str:
    best = kd_label(r["best_teacher"])
    lines = [
        f"# PSKD on {r['data']}",
        "",
        f"{r['protocol']}. Seeds {r['seeds']}. `{r['command']}`",
        "",
        markdown_table(
            ("teacher (training node)", "val macro-F1", "test macro-F1"),
            [(f"{name}{' (best on val)' if name == r['best_teacher'] else ''}",
              f"{t['val_macro_f1']:.4f}", f"{t['test_macro_f1']:.4f}")
             for name, t in r["teachers"].items()],
        ),
        "Differences in macro-F1 points, paired by seed: mean ± std [95 % bootstrap interval of "
        "the mean].",
        "",
        markdown_table(
            ("acc-only tiny student", "test macro-F1 (mean ± std)", "paired diff vs alone",
             f"vs {best}", "per seed vs alone"),
            [(m, format_mean_std(MeanStd(**s["test_macro_f1"]), 4),
              format_paired(s["paired"][STUDENT]) if m != STUDENT else "",
              format_paired(s["paired"][best]) if m != best else "",
              ", ".join(f"{100 * x:+.2f}" for x in s["diff_vs_student"]["per_seed"])
              if m != STUDENT else "")
             for m, s in r["summary"].items()],
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec = make_spec(build_spec(args), source="benchmarks/bench_pskd.py")
        if args.dry_run:
            print(dry_run(spec, None, args.grid_dir))
            return 0
        expansion = spec.expand()
        summary = run_spec(spec, args, args.threads)
        why = unfinished(summary)
        if why is not None:
            print(f"bench_pskd: {why}", file=sys.stderr)
            return 1
        tables = tabulate(read_runs(args.grid_dir, expansion, "method"))
    except (ConfigError, OSError, ValueError) as err:
        print(f"bench_pskd: {err}", file=sys.stderr)
        return 2
    changed = reader_options(args)
    result = {
        "data": LABEL,
        "protocol": f"{DATA.relative_to(REPO)}"
        + (f" with reader_options {changed}" if changed else "")
        + (f" and data overrides {args.data_overrides}" if args.data_overrides else "")
        + "; teachers are training nodes trained once (seed 0) and frozen; student seeds vary",
        "command": command_line("bench_pskd.py", argv),
        "seeds": args.seeds,
        "grid_dir": str(args.grid_dir),
        **tables,
    }
    write_json(args.out / "pskd.json", result)
    write_text(args.out / "pskd.md", markdown(result) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
