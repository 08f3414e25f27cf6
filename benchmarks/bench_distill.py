"""Distillation on hapt-quick, every registered method, run by the experiment engine.

What it measures: how much each distillation method lifts the acc-only `tiny` student over the
same student trained alone (`none`) when an acc+gyro cnn1d teaches it, and whether the lift
beats the two controls every lift must beat: label smoothing (`ls`, configs/distill/ls.yaml: a
softened target and no teacher) and KD from an acc-only cnn1d (`kd-acc`: what the teacher's
gyroscope adds).

How: one grid (`build_spec`). Two training nodes, each trained once and shared by every cell
that needs it: `teacher`, configs/train/teacher_cnn1d.yaml (acc+gyro), and `teacher_acc`, the
same config with `model.view: [acc]`. One cell per method × seed: the methods are those of the
registry (`harkd.distill.base.distiller_classes()`) that have configs/distill/<method>.yaml and
take one teacher or none on hapt-quick; each cell is the method's config with its teacher
replaced by the `teacher` node, and `--epochs` / `--patience` / `--set` over it. Methods that
need several teachers, other data (the synthetic paired set), another teacher network or
unlabelled pool windows are skipped with a printed reason. Model selection is on validation
macro-F1 only (inside `fit`); test subjects never train.

Reported, from the grid's run store: test macro-F1 mean ± std over seeds (and the validation
macro-F1 that selected each model); the per-seed paired difference against `none`, `ls` and
`kd-acc` with its 95 % bootstrap interval (`harkd.report.stats.paired_test`); the share of the
none -> teacher gap closed; seconds per epoch per stage (IE-KD's auto-encoder stage apart). Every
run trains all its epochs by default (no early stopping: with patience 10 on the noisy
3-subject validation split, runs stopped while the cosine learning rate was still high).

Reproduce (from the repository root; a rerun reuses every finished run of the grid folder):

    python benchmarks/bench_distill.py --workers 2                # 3 seeds, 60 epochs
    python benchmarks/bench_distill.py --seeds 0 1 2 3 4 --workers 2   # the recorded table
    python benchmarks/bench_distill.py --epochs 8 --seeds 0 1 --methods none ls kd kd-acc sk
    python benchmarks/bench_distill.py --methods kd --set kd:distill.params.alpha=0.9 \
        --grid-dir runs/bench/tune --out runs/bench/tune      # a validation sweep point
    python benchmarks/bench_distill.py --dry-run                 # the graph, nothing trained

Writes <out>/distill.json and distill.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
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
from harkd.distill.base import Distiller, distiller_classes
from harkd.grid.spec import Expansion
from harkd.report.stats import MeanStd, format_mean_std, mean_std
from harkd.report.tables import markdown_table

TEACHER_CONFIG = CONFIGS / "train" / "teacher_cnn1d.yaml"
DISTILL = CONFIGS / "distill"
GRID_DIR = REPO / "runs" / "bench" / "distill"
#: what was tried and why, appended to the recorded table (benchmarks/results/distill.md)
NOTES = RESULTS / "distill.notes.md"
BASELINE = "none"
KD_ACC = "kd-acc"
#: the controls every lift must beat, besides the student alone
CONTROLS = ("ls", KD_ACC)
#: the training nodes: the acc+gyro teacher, and the acc-only one of the `kd-acc` control
TEACHER, TEACHER_ACC = "teacher", "teacher_acc"
#: table order: the baseline and the controls first, then the methods alphabetically
FIRST = (BASELINE, "ls", "kd", KD_ACC)


@dataclass(frozen=True)
class Method:
    """One arm of the benchmark: its config and the training node that teaches it (if any),
    under the teacher key its config uses."""

    label: str
    config: Path
    teacher: str | None = None
    teacher_key: str | None = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60, help="training epochs of every method")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience of every method (default: none, train all "
                        "epochs; the best validation epoch is still the model)")
    p.add_argument("--teacher-epochs", type=int, default=None,
                   help="epochs of both teacher nodes (default: the teacher config's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                   help="benchmark only these (default: every benchmarked method and control)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--set", nargs="*", default=[], metavar="[METHOD:]KEY=VALUE",
                   help="overrides of every method's cells, or of one with a METHOD: prefix")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of distill.json and .md")
    p.add_argument("--notes", type=Path, default=None,
                   help="markdown appended to distill.md when the file exists (default: "
                        f"{NOTES.relative_to(REPO)} when --out is the results folder)")
    add_engine_arguments(p, GRID_DIR)
    return p.parse_args(argv)


def skip_reason(name: str, cls: type[Distiller], base: RunConfig,
                teacher: RunConfig) -> str | None:
    """Why method `name` is not benchmarked here, or None when it is."""
    path = DISTILL / f"{name}.yaml"
    if not path.is_file():
        return f"no {path.relative_to(REPO)}"
    low = cls.teacher_count[0]
    if low > 1:
        return f"multi-teacher: needs at least {low} teachers"
    cfg = load_run_config(path)
    if len(cfg.teachers) > 1:
        return f"its config names {len(cfg.teachers)} teachers ({', '.join(cfg.teachers)})"
    if (cfg.data, cfg.data_overrides) != (base.data, base.data_overrides):
        return f"trains on other data ({Path(cfg.data).name})"
    if cfg.distill.params.get("pool"):
        return "distils on unlabelled pool windows (a label-budget protocol)"
    for t in cfg.teachers.values():
        if (t.name, list(t.view)) != (teacher.model.name, list(teacher.model.view)):
            return (f"its teacher is {t.name} on {'+'.join(t.view)}, not the "
                    f"{'+'.join(teacher.model.view)} {teacher.model.name} node")
    return None


def benchmarked_methods() -> tuple[list[Method], dict[str, str]]:
    """The arms, in table order (the registry's methods that fit, and the `kd-acc` control),
    and the registered methods left out with the reason."""
    base = load_run_config(DISTILL / f"{BASELINE}.yaml")
    teacher = load_run_config(TEACHER_CONFIG)
    arms: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    for name, cls in distiller_classes().items():
        reason = skip_reason(name, cls, base, teacher)
        if reason is not None:
            skipped[name] = reason
            continue
        path = DISTILL / f"{name}.yaml"
        key = next(iter(load_run_config(path).teachers), None)
        arms[name] = Method(name, path, TEACHER if key else None, key)
    if "kd" in arms:
        arms[KD_ACC] = Method(KD_ACC, arms["kd"].config, TEACHER_ACC, arms["kd"].teacher_key)
    order = [m for m in FIRST if m in arms] + sorted(m for m in arms if m not in FIRST)
    return [arms[m] for m in order], skipped


def chosen(methods: list[Method], wanted: list[str] | None,
           skipped: dict[str, str]) -> list[Method]:
    """The arms `--methods` names (all by default); an unknown name raises, saying why."""
    if wanted is None:
        return methods
    labels = [m.label for m in methods]
    for name in wanted:
        if name not in labels:
            why = f" ({skipped[name]})" if name in skipped else ""
            raise ConfigError(f"--methods: {name!r} is not benchmarked{why}; benchmarked: "
                              f"{labels}")
    return [m for m in methods if m.label in wanted]


def build_spec(args: argparse.Namespace, methods: list[Method]) -> dict[str, Any]:
    """The grid: the two teacher nodes, and `methods` × `args.seeds` cells."""
    overrides = split_overrides(args.set, [m.label for m in methods])
    common = {"train.epochs": args.epochs, "train.patience": args.patience}
    node_set = {} if args.teacher_epochs is None else {"train.epochs": args.teacher_epochs}
    axis = [
        config_bundle(m.label, load_run_config(m.config),
                      {m.teacher_key: {"from": m.teacher}} if m.teacher else {},
                      {**common, **overrides_for(overrides, m.label)})
        for m in methods
    ]
    return {
        "name": "bench_distill",
        "description": "every registered single-teacher method and the controls ls and kd-acc",
        "output_dir": str(args.grid_dir),
        "nodes": {
            TEACHER: {"config": str(TEACHER_CONFIG), "set": node_set},
            TEACHER_ACC: {"config": str(TEACHER_CONFIG),
                          "set": {**node_set, "model.view": ["acc"]}},
        },
        "base": base_of(load_run_config(DISTILL / f"{BASELINE}.yaml"), args.data_overrides),
        "axes": {"method": axis, "seed": args.seeds},
    }


def effective_augmentation(expansion: Expansion) -> str:
    """The policy and teacher input the cells ran with ("; "-joined per method where they
    differ)."""
    seen: dict[str, list[str]] = {}
    for cell in expansion.cells:
        aug = cell.config.augment
        methods = seen.setdefault(f"{aug.policy}, teacher input {aug.teacher_input}", [])
        if cell.axes["method"] not in methods:
            methods.append(cell.axes["method"])
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"{', '.join(methods)}: {desc}" for desc, methods in seen.items())


def tabulate(runs: GridRuns, labels: list[str]) -> dict[str, Any]:
    """Teachers, the per-method table and every run's summary, from the stored runs."""
    per_run = {label: {seed: run_summary(row, runs.run_dir(row))
                       for seed, row in sorted(runs.cells[label].items())} for label in labels}
    teachers = {name: run_summary(row, runs.run_dir(row)) for name, row in runs.nodes.items()}
    base = per_run.get(BASELINE)
    table: dict[str, Any] = {}
    for label, by_seed in per_run.items():
        f1 = [r["test_macro_f1"] for r in by_seed.values()]
        row: dict[str, Any] = {
            "test_macro_f1": mean_std(f1).to_dict(),
            "val_macro_f1": mean_std([r["val_macro_f1"] for r in by_seed.values()]).to_dict(),
            "per_seed": f1,
        }
        for stage in next(iter(by_seed.values()))["s_per_epoch"]:
            row[f"s_per_epoch_{stage}"] = statistics.fmean(
                r["s_per_epoch"][stage] for r in by_seed.values())
        if base and label != BASELINE:
            test, diffs = paired(by_seed, base)
            row |= {"paired_diff_vs_none": diffs, "paired_diff": mean_std(diffs).to_dict()}
            if TEACHER in teachers:
                gap = teachers[TEACHER]["test_macro_f1"] - mean_std(
                    [r["test_macro_f1"] for r in base.values()]).mean
                row["gap_closed"] = test.diff_mean / gap if gap > 0 else None
        row["paired"] = {other: paired(by_seed, per_run[other])[0].to_dict()
                         for other in (BASELINE, *CONTROLS)
                         if other != label and other in per_run and label != BASELINE}
        table[label] = row
    return {"teacher": teachers.get(TEACHER), "teacher_acc": teachers.get(TEACHER_ACC),
            "methods": table, "runs": per_run}


def write_markdown(path: Path, result: dict[str, Any], notes: Path | None) -> None:
    meta, t, ta = result["meta"], result["teacher"], result["teacher_acc"]
    lines = [
        "# Distillation on hapt-quick: acc+gyro cnn1d teacher -> acc-only tiny student",
        "",
        f"Command: `{meta['command']}`  ",
        f"Seeds {meta['seeds']}, {meta['epochs']} epochs per method (IE-KD adds its "
        "auto-encoder epochs), "
        + ("no early stopping" if meta["patience"] is None
           else f"early stopping after {meta['patience']} epochs without improvement")
        + f", augmentation {meta['augment']}, {meta['threads']} torch thread(s) per run, "
        f"{meta['workers']} run(s) at a time; test macro-F1 on the UCI-HAR test subjects, model "
        f"selection on validation macro-F1; grid `{meta['grid_dir']}`"
        + (f", data overrides `{meta['data_overrides']}`" if meta["data_overrides"] else "")
        + ".",
    ]
    if t is not None:
        lines[-1] += "  "
        lines.append(f"Teacher (training node `{TEACHER}`: acc+gyro cnn1d, {t['n_params']:,} "
                     f"parameters, {TEACHER_CONFIG.relative_to(REPO)}, seed 0): test macro-F1 "
                     f"{t['test_macro_f1']:.4f}, val {t['val_macro_f1']:.4f}, "
                     f"{t['s_per_epoch']['main']:.1f} s/epoch.")
    if ta is not None:
        lines[-1] += "  "
        lines.append(f"Control teacher (training node `{TEACHER_ACC}`: the same cnn1d on acc "
                     f"only, {ta['n_params']:,} parameters): test macro-F1 "
                     f"{ta['test_macro_f1']:.4f}, val {ta['val_macro_f1']:.4f}.")
    lines += ["", "Differences in macro-F1 points, paired by seed: mean ± std [95 % bootstrap "
              "interval of the mean]; a lift is read as real only where the interval excludes "
              "0, against `none` and against the controls `ls` and `kd-acc`.", ""]
    cells = []
    for method, r in result["methods"].items():
        vs = r["paired"]
        gap = f"{100 * r['gap_closed']:.0f}%" if r.get("gap_closed") is not None else ""
        secs = f"{r['s_per_epoch_main']:.1f}"
        if "s_per_epoch_ae" in r:
            secs += f" (ae stage {r['s_per_epoch_ae']:.1f})"
        cells.append((method, format_mean_std(MeanStd(**r["test_macro_f1"]), 4),
                      format_mean_std(MeanStd(**r["val_macro_f1"]), 4),
                      *(format_paired(vs[o]) if o in vs else "" for o in (BASELINE, *CONTROLS)),
                      gap, secs))
    lines.append(markdown_table(
        ("method", "test macro-F1 (mean ± std)", "val macro-F1", "paired diff vs none",
         "vs ls", "vs kd-acc", "gap closed", "s/epoch"), cells).rstrip("\n"))
    if meta["skipped"]:
        lines += ["", "Not benchmarked here: " + "; ".join(
            f"`{m}` ({why})" for m, why in meta["skipped"].items()) + "."]
    if meta["overrides"]:
        lines += ["", f"Overrides: `{' '.join(meta['overrides'])}`"]
    if notes is not None and notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        methods, skipped = benchmarked_methods()
        for name, why in skipped.items():
            print(f"skipped {name}: {why}")
        methods = chosen(methods, args.methods, skipped)
        spec = make_spec(build_spec(args, methods), source="benchmarks/bench_distill.py")
        if args.dry_run:
            print(dry_run(spec, None, args.grid_dir))
            return 0
        expansion = spec.expand()
        summary = run_spec(spec, args, args.threads)
        why = unfinished(summary)
        if why is not None:
            print(f"bench_distill: {why}", file=sys.stderr)
            return 1
        result = tabulate(read_runs(args.grid_dir, expansion, "method"),
                          [m.label for m in methods])
    except (ConfigError, OSError, ValueError) as err:
        print(f"bench_distill: {err}", file=sys.stderr)
        return 2
    for label, by_seed in result["runs"].items():
        for seed, r in by_seed.items():
            print(f"{label} seed {seed}: test macro-F1 {r['test_macro_f1']:.4f} val "
                  f"{r['val_macro_f1']:.4f}" + (" (reused)" if r["reused"] else ""))
    result["meta"] = {
        "command": command_line("bench_distill.py", argv),
        "protocol": "hapt-quick",
        "seeds": args.seeds,
        "epochs": args.epochs,
        "patience": args.patience,
        "teacher_epochs": args.teacher_epochs,
        "threads": args.threads,
        "workers": args.workers,
        "augment": effective_augmentation(expansion),
        "overrides": args.set,
        "data_overrides": args.data_overrides,
        "grid_dir": str(args.grid_dir),
        "controls": list(CONTROLS),
        "skipped": skipped,
    }
    result = {k: result[k] for k in ("meta", "teacher", "teacher_acc", "methods", "runs")}
    write_json(args.out / "distill.json", result)
    notes = args.notes
    if notes is None and args.out.resolve() == RESULTS:
        notes = NOTES
    write_markdown(args.out / "distill.md", result, notes)
    print((args.out / "distill.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
