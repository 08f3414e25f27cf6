"""Distillation on hapt-quick, every registered method, run by the experiment engine.

What it measures: how much each distillation method lifts the acc-only `tiny` student over the
same student trained alone (`none`) when an acc+gyro cnn1d teaches it, and whether the lift
beats the two controls every lift must beat: label smoothing (`ls`, configs/distill/ls.yaml: a
softened target and no teacher) and KD from an acc-only cnn1d (`kd-acc`: what the teacher's
gyroscope adds).

How: one grid (`build_spec`). Training nodes, each trained once (seed 0) and shared by every
cell that needs it (`NODES`): `teacher`, configs/train/teacher_cnn1d.yaml (acc+gyro);
`teacher_acc`, the same on acc only; teacher assistants taught by kd along a chain (`assistant`,
`assistant_small`, `assistant2`); three teachers on overlapping subsets of the training subjects
(RoS-KD); the per-modality `branches` teacher. One cell per method × seed: the methods are
those of the registry (`harkd.distill.base.distiller_classes()`) that have
configs/distill/<method>.yaml on hapt-quick, each teacher key of the config taught by its node
(`NODE_OF_KEY`; a node must train the network the config names), plus the `VARIANTS` (kd-acc,
takd-chain, amal-carved, takd-uniform, takd-acc); each cell is the method's config with `--epochs` /
`--patience` / `--set` over it. Teachers in `LEFT_OUT` (the transformer and tinyhar, too slow
on 2 cores) are dropped from a multi-teacher method that keeps enough others; a method whose
teacher has no node, or that trains on other data or on unlabelled pool windows, is skipped
with a printed reason. Model selection is on validation macro-F1 only (inside `fit`); test
subjects never train.

Reported, from the grid's run store: test macro-F1 mean ± std over seeds (and the validation
macro-F1 that selected each model); the per-seed paired difference against `none`, `ls` and
`kd-acc` with its 95 % bootstrap interval (`harkd.report.stats.paired_test`); the share of the
none -> teacher gap closed; test ECE; each test subject's macro-F1 (TASKED against `none`); the
share of the teacher's and of `none`'s macro-F1 reached without training windows (CuDFKD,
single-recording KD); seconds per epoch per stage (IE-KD's auto-encoder stage apart). Every
run trains all its epochs by default (no early stopping: with patience 10 on the noisy
3-subject validation split, runs stopped while the cosine learning rate was still high).

Reproduce (from the repository root; a rerun reuses every finished run of the grid folder):

    python benchmarks/bench_distill.py --workers 2                # 3 seeds, 60 epochs
    python benchmarks/bench_distill.py --epochs 30 --seeds 0 1 2 3 4 5 6 7 8 9 --workers 2 \
        --methods none ls kd kd-acc takd-chain selfkd roskd amal amal-carved mixkd takd camkd \
        takd-uniform takd-acc cskd crd tasked bdkd mrkd iekd sk iedml srkd cgankd cudfkd
    python benchmarks/bench_distill.py --epochs 8 --seeds 0 1 --methods none ls kd kd-acc sk
    python benchmarks/bench_distill.py --methods kd --set kd:distill.params.alpha=0.9 \
        --grid-dir runs/bench/tune --out runs/bench/tune      # a validation sweep point
    python benchmarks/bench_distill.py --dry-run                 # the graph, nothing trained
    python benchmarks/bench_distill.py --analyse-only --seeds 0 1 2   # tables of what finished

Writes <out>/distill.json and distill.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
    fixed_budget_f1,
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

TRAIN = CONFIGS / "train"
TEACHER_CONFIG = TRAIN / "teacher_cnn1d.yaml"
DISTILL = CONFIGS / "distill"
GRID_DIR = REPO / "runs" / "bench" / "distill"
#: what was tried and why, appended to the recorded table (benchmarks/results/distill.md)
NOTES = RESULTS / "distill.notes.md"
BASELINE = "none"
KD_ACC = "kd-acc"
#: arms that are a registered method with other teachers or settings: label -> (method, the
#: node of each teacher key (None: the method's own), overrides of its cells)
VARIANTS: dict[str, tuple[str, dict[str, str] | None, dict[str, Any]]] = {
    # the control: the same KD from a teacher that sees only the student's sensors
    KD_ACC: ("kd", {"cnn1d": "teacher_acc"}, {}),
    # teacher -> assistant -> student (Mirzadeh et al.'s chain): kd from the `assistant` node
    "takd-chain": ("kd", {"cnn1d": "assistant"}, {}),
    # AMAL's meta-objective on carved training subjects instead of the validation split, whose
    # labels then steer no training and select the model cleanly
    "amal-carved": ("amal", None, {"distill.params.meta_split": "carved"}),
    # the TAKD assistant ensemble with uniform weights: no weight fitted on validation labels
    "takd-uniform": ("takd", None, {"distill.params.weights": "uniform"}),
    # the TAKD assistant ensemble from the acc-only chain: what the gyroscope adds to it
    "takd-acc": ("takd", {"assistant": "assistant_acc", "assistant2": "assistant2_acc"}, {}),
}
#: the controls every lift must beat, besides the student alone
CONTROLS = ("ls", KD_ACC)
#: the acc+gyro teacher node, and the acc-only one of the `kd-acc` control
TEACHER, TEACHER_ACC = "teacher", "teacher_acc"
#: table order: the baseline and the controls first, then the methods alphabetically
FIRST = (BASELINE, "ls", "kd", KD_ACC)
#: a kd step, as in configs/grids/takd_chain.yaml (configs/distill/kd.yaml's settings)
_KD_STEP = {"method": "kd", "params": {"alpha": 0.9, "temperature": 1.0}}
#: the training nodes: name -> grid node (config, and `set` over it)
NODES: dict[str, dict[str, Any]] = {
    TEACHER: {"config": TEACHER_CONFIG},
    TEACHER_ACC: {"config": TEACHER_CONFIG, "set": {"model.view": ["acc"]}},
    # the teacher assistants, each taught by kd from the step above it (TAKD's chain, and the
    # ladder of CES-KD)
    "assistant": {"config": TEACHER_CONFIG,
                  "set": {"model.params": {"widths": [16, 32, 64]}, "distill": _KD_STEP,
                          "teachers": {"teacher": {"from": TEACHER}}}},
    "assistant_small": {"config": TEACHER_CONFIG,
                        "set": {"model.params": {"widths": [8, 16, 32]}, "distill": _KD_STEP,
                                "teachers": {"teacher": {"from": TEACHER}}}},
    "assistant2": {"config": TRAIN / "student_tiny.yaml",
                   "set": {"model.name": "tiny_l", "distill": _KD_STEP,
                           "teachers": {"assistant": {"from": "assistant"}}}},
    # the same chain on the student's sensors only (the acc-only control of the ensemble)
    "assistant_acc": {"config": TEACHER_CONFIG,
                      "set": {"model.view": ["acc"], "model.params": {"widths": [16, 32, 64]},
                              "distill": _KD_STEP,
                              "teachers": {"teacher": {"from": TEACHER_ACC}}}},
    "assistant2_acc": {"config": TRAIN / "student_tiny.yaml",
                       "set": {"model.name": "tiny_l", "distill": _KD_STEP,
                               "teachers": {"assistant": {"from": "assistant_acc"}}}},
    "branches": {"config": TRAIN / "teacher_cnn1d_branches.yaml"},
    **{f"subset{k}": {"config": TEACHER_CONFIG,
                      "set": {"data_overrides.split.subset":
                              {"count": 3, "index": k, "overlap": 0.5, "seed": 0}}}
       for k in range(3)},
}
#: the node that stands for each teacher key of the method configs
NODE_OF_KEY = {
    "cnn1d": TEACHER, "cnn1d_acc": TEACHER_ACC, "large": TEACHER,
    "medium": "assistant", "small": "assistant_small", "assistant": "assistant",
    "assistant2": "assistant2", "branches": "branches",
    **{f"subset{k}": f"subset{k}" for k in range(3)},
}
#: teachers left out of a multi-teacher method here (it keeps its other teachers), and why
LEFT_OUT = {
    "transformer": "the transformer and tinyhar teachers cost 10-25 s per epoch on 2 cores, in "
                   "every step of every seed",
    "tinyhar": "as transformer",
}


@dataclass(frozen=True)
class Method:
    """One arm of the benchmark: its config and the training node behind each of its teacher
    keys."""

    label: str
    config: Path
    teachers: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


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
    p.add_argument("--analyse-only", action="store_true",
                   help="train nothing: tabulate the runs of this spec already finished in "
                        "--grid-dir (a method with fewer seeds than asked shows its count)")
    add_engine_arguments(p, GRID_DIR)
    return p.parse_args(argv)


def node_model(name: str) -> tuple[str, list[str], dict[str, Any]]:
    """(model name, view, params) of training node `name`, as its config and `set` make it."""
    node = NODES[name]
    cfg = load_run_config(node["config"]).model.model_dump(mode="json")
    for key, value in node.get("set", {}).items():
        if key.startswith("model."):
            cfg[key.removeprefix("model.")] = value
    return cfg["name"], list(cfg["view"]), dict(cfg.get("params") or {})


def describe_node(name: str) -> str:
    """Node `name`'s network and view, and the node that taught it, e.g. `cnn1d
    (widths [16, 32, 64]) acc+gyro, kd from teacher`."""
    model, view, params = node_model(name)
    text = model + "".join(f" ({k} {v})" for k, v in params.items()) + " " + "+".join(view)
    taught = [t["from"] for t in NODES[name].get("set", {}).get("teachers", {}).values()]
    subset = NODES[name].get("set", {}).get("data_overrides.split.subset")
    if subset:
        text += f", training subjects subset {subset['index']} of {subset['count']}"
    return text + (f", kd from {', '.join(taught)}" if taught else "")


def teacher_nodes(name: str, cfg: RunConfig) -> tuple[dict[str, str] | None, str]:
    """The node of each teacher of method config `cfg` (keys in `LEFT_OUT` dropped), or None
    and why it cannot run here; the second item notes what was left out. A node whose network
    differs from the config's teacher is a mistake in `NODE_OF_KEY` and raises."""
    out: dict[str, str] = {}
    left = [key for key in cfg.teachers if key in LEFT_OUT]
    for key, t in cfg.teachers.items():
        if key in LEFT_OUT:
            continue
        node = NODE_OF_KEY.get(key)
        if node is None:
            return None, f"no training node here for its teacher {key!r}"
        want = (t.name, list(t.view), dict(t.params))
        if node_model(node) != want:
            raise ConfigError(f"{name}: teacher {key!r} is {want}, but node {node!r} trains "
                              f"{node_model(node)}")
        out[key] = node
    note = f"without its {', '.join(left)} teachers ({LEFT_OUT[left[0]]})" if left else ""
    return out, note


def skip_reason(name: str, cls: type[Distiller], base: RunConfig) -> str | None:
    """Why method `name` is not benchmarked here, or None when it is."""
    path = DISTILL / f"{name}.yaml"
    if not path.is_file():
        return f"no {path.relative_to(REPO)}"
    cfg = load_run_config(path)
    if (cfg.data, cfg.data_overrides) != (base.data, base.data_overrides):
        return f"trains on other data ({Path(cfg.data).name})"
    if cfg.distill.params.get("pool"):
        return "distils on unlabelled pool windows (a label-budget protocol)"
    nodes, why = teacher_nodes(name, cfg)
    if nodes is None:
        return why
    if len(nodes) < cls.teacher_count[0]:
        return f"needs at least {cls.teacher_count[0]} teachers, {len(nodes)} left here"
    return None


def benchmarked_methods() -> tuple[list[Method], dict[str, str], dict[str, str]]:
    """The arms in table order (the registry's methods that fit, and the `VARIANTS` of them),
    the registered methods left out with the reason, and what was left out of a method that
    runs."""
    base = load_run_config(DISTILL / f"{BASELINE}.yaml")
    arms: dict[str, Method] = {}
    skipped: dict[str, str] = {}
    notes: dict[str, str] = {}
    for name, cls in distiller_classes().items():
        reason = skip_reason(name, cls, base)
        if reason is not None:
            skipped[name] = reason
            continue
        path = DISTILL / f"{name}.yaml"
        nodes, note = teacher_nodes(name, load_run_config(path))
        arms[name] = Method(name, path, nodes or {})
        if note:
            notes[name] = note
    for label, (method, teachers, overrides) in VARIANTS.items():
        if method in arms:
            own = arms[method]
            arms[label] = Method(label, own.config, teachers or own.teachers, overrides)
    order = [m for m in FIRST if m in arms] + sorted(m for m in arms if m not in FIRST)
    return [arms[m] for m in order], skipped, notes


def needed_nodes(methods: list[Method]) -> list[str]:
    """The training nodes `methods` need, with the nodes those nodes learn from, in `NODES`
    order."""
    need = {node for m in methods for node in m.teachers.values()}
    grew = True
    while grew:
        more = {t["from"] for n in need
                for t in NODES[n].get("set", {}).get("teachers", {}).values()}
        grew = not more <= need
        need |= more
    return [n for n in NODES if n in need]


def chosen(methods: list[Method], wanted: list[str] | None,
           skipped: dict[str, str]) -> list[Method]:
    """The arms `--methods` names, in the order named (the grid trains them in that order;
    all, in table order, by default); an unknown name raises, saying why."""
    if wanted is None:
        return methods
    by_label = {m.label: m for m in methods}
    for name in wanted:
        if name not in by_label:
            why = f" ({skipped[name]})" if name in skipped else ""
            raise ConfigError(f"--methods: {name!r} is not benchmarked{why}; benchmarked: "
                              f"{list(by_label)}")
    return [by_label[name] for name in dict.fromkeys(wanted)]


def build_spec(args: argparse.Namespace, methods: list[Method]) -> dict[str, Any]:
    """The grid: the training nodes `methods` need, and `methods` × `args.seeds` cells."""
    overrides = split_overrides(args.set, [m.label for m in methods])
    common = {"train.epochs": args.epochs, "train.patience": args.patience}
    node_set = {} if args.teacher_epochs is None else {"train.epochs": args.teacher_epochs}
    axis = [
        config_bundle(m.label, load_run_config(m.config),
                      {key: {"from": node} for key, node in m.teachers.items()},
                      {**common, **m.overrides, **overrides_for(overrides, m.label)})
        for m in methods
    ]
    nodes = {name: {"config": str(NODES[name]["config"]),
                    "set": {**NODES[name].get("set", {}), **node_set}}
             for name in needed_nodes(methods)}
    return {
        "name": "bench_distill",
        "description": "every registered method that runs on hapt-quick, and the controls ls "
                       "and kd-acc",
        "output_dir": str(args.grid_dir),
        "nodes": nodes,
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
    per_run = {label: {seed: {**run_summary(row, runs.run_dir(row)),
                              "test_macro_f1_last": fixed_budget_f1(row, runs.run_dir(row))}
                       for seed, row in sorted(runs.cells[label].items())} for label in labels}
    teachers = {name: {**run_summary(row, runs.run_dir(row)), "model": describe_node(name)}
                for name, row in runs.nodes.items()}
    base = per_run.get(BASELINE)
    table: dict[str, Any] = {}
    for label, by_seed in per_run.items():
        f1 = [r["test_macro_f1"] for r in by_seed.values()]
        row: dict[str, Any] = {
            "test_macro_f1": mean_std(f1).to_dict(),
            "val_macro_f1": mean_std([r["val_macro_f1"] for r in by_seed.values()]).to_dict(),
            "test_ece": mean_std([r["test_ece"] for r in by_seed.values()]).to_dict(),
            "per_seed": f1,
            "per_subject_macro_f1": per_subject_means(by_seed.values()),
        }
        for stage in next(iter(by_seed.values()))["s_per_epoch"]:
            row[f"s_per_epoch_{stage}"] = statistics.fmean(
                r["s_per_epoch"][stage] for r in by_seed.values())
        if base and label != BASELINE:
            test, diffs = paired(by_seed, base)
            row |= {"paired_diff_vs_none": diffs, "paired_diff": mean_std(diffs).to_dict()}
            base_f1 = mean_std([r["test_macro_f1"] for r in base.values()]).mean
            row["fraction_of_none"] = row["test_macro_f1"]["mean"] / base_f1
            if TEACHER in teachers:
                teacher_f1 = teachers[TEACHER]["test_macro_f1"]
                gap = teacher_f1 - base_f1
                row["gap_closed"] = test.diff_mean / gap if gap > 0 else None
                row["fraction_of_teacher"] = row["test_macro_f1"]["mean"] / teacher_f1
            row["paired_ece_vs_none"] = paired(by_seed, base, "test_ece")[0].to_dict()
        others = [o for o in (BASELINE, *CONTROLS)
                  if o != label and o in per_run and label != BASELINE]
        row["paired"] = {o: paired(by_seed, per_run[o])[0].to_dict() for o in others}
        last = [r["test_macro_f1_last"] for r in by_seed.values()]
        if None not in last:  # the fixed-budget rule: the last epoch's weights, no selection
            row["last_epoch"] = {
                "test_macro_f1": mean_std(last).to_dict(),
                "paired": {o: paired(by_seed, per_run[o], "test_macro_f1_last")[0].to_dict()
                           for o in others
                           if None not in (r["test_macro_f1_last"]
                                           for r in per_run[o].values())}}
        table[label] = row
    return {"teacher": teachers.get(TEACHER), "teacher_acc": teachers.get(TEACHER_ACC),
            "nodes": teachers, "methods": table, "runs": per_run}


def per_subject_means(runs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Each test subject's macro-F1, averaged over `runs` (those that recorded it)."""
    found: dict[str, list[float]] = {}
    for r in runs:
        for subject, f1 in (r.get("test_per_subject_macro_f1") or {}).items():
            found.setdefault(subject, []).append(f1)
    return {s: statistics.fmean(v) for s, v in sorted(found.items(), key=lambda kv: kv[0])}


#: methods that never train on a labelled training window: their share of `none` and of the
#: teacher is reported on its own (issue text: how far a user gets without sharing recordings)
WITHOUT_TRAINING_WINDOWS = ("cudfkd", "srkd")
#: the method whose per-test-subject F1 is set beside `none`'s (it targets unseen subjects)
PER_SUBJECT = "tasked"


def write_markdown(path: Path, result: dict[str, Any], notes: Path | None) -> None:
    meta, nodes = result["meta"], result["nodes"]
    lines = [
        "# Distillation on hapt-quick: acc+gyro cnn1d teacher -> acc-only tiny student",
        "",
        f"Command: `{meta['command']}`  ",
        f"Seeds {meta['seeds']}, {meta['epochs']} epochs per method (IE-KD adds its "
        "auto-encoder epochs), "
        + ("no early stopping" if meta["patience"] is None
           else f"early stopping after {meta['patience']} epochs without improvement")
        + f", augmentation {meta['augment']}, {meta['threads']} torch thread(s) per run, "
        f"{meta['workers']} run(s) at a time; test macro-F1 on the UCI-HAR test subjects; the "
        "model is the epoch of best validation macro-F1 (3 validation subjects); grid "
        f"`{meta['grid_dir']}`"
        + (f", data overrides `{meta['data_overrides']}`" if meta["data_overrides"] else "")
        + ".",
        "",
        "Training nodes (seed 0, each trained once and shared by every cell that needs it):",
        "",
    ]
    lines.append(markdown_table(
        ("node", "model", "parameters", "test macro-F1", "val macro-F1", "s/epoch"),
        [(name, n.get("model", ""), f"{n['n_params']:,}", f"{n['test_macro_f1']:.4f}",
          f"{n['val_macro_f1']:.4f}", f"{n['s_per_epoch']['main']:.1f}")
         for name, n in nodes.items()]).rstrip("\n"))
    lines += ["", "Differences in macro-F1 points, paired by seed: mean ± std [95 % bootstrap "
              "interval of the mean]; a lift is read as real only where the interval excludes "
              "0, against `none` and against the controls `ls` and `kd-acc`. ECE: expected "
              "calibration error on test (15 bins), mean over seeds.", ""]
    cells = []
    for method, r in result["methods"].items():
        vs = r["paired"]
        gap = f"{100 * r['gap_closed']:.0f}%" if r.get("gap_closed") is not None else ""
        secs = f"{r['s_per_epoch_main']:.1f}"
        extra = [f"{stage} {v:.1f}" for stage, v in
                 ((k.removeprefix("s_per_epoch_"), v) for k, v in r.items()
                  if k.startswith("s_per_epoch_") and k != "s_per_epoch_main")]
        if extra:
            secs += f" ({', '.join(extra)})"
        cells.append((method, len(r["per_seed"]), format_mean_std(MeanStd(**r["test_macro_f1"]), 4),
                      format_mean_std(MeanStd(**r["val_macro_f1"]), 4),
                      *(format_paired(vs[o]) if o in vs else "" for o in (BASELINE, *CONTROLS)),
                      gap, f"{r['test_ece']['mean']:.3f}", secs))
    lines.append(markdown_table(
        ("method", "seeds", "test macro-F1 (mean ± std)", "val macro-F1", "paired diff vs none",
         "vs ls", "vs kd-acc", "gap closed", "ECE", "s/epoch"), cells).rstrip("\n"))
    methods = result["methods"]
    fixed = [(m, r["last_epoch"]) for m, r in methods.items() if "last_epoch" in r]
    if fixed:
        lines += ["", f"The same runs under a fixed epoch budget: the weights after the last of "
                  f"the {meta['epochs']} epochs, no selection on validation (a check of the "
                  "selection rule above).", ""]
        lines.append(markdown_table(
            ("method", "test macro-F1, last epoch", "paired diff vs none", "vs ls", "vs kd-acc"),
            [(m, format_mean_std(MeanStd(**last["test_macro_f1"]), 4),
              *(format_paired(last["paired"][o]) if o in last["paired"] else ""
                for o in (BASELINE, *CONTROLS))) for m, last in fixed]).rstrip("\n"))
    free = [m for m in WITHOUT_TRAINING_WINDOWS if m in methods]
    if free and "fraction_of_teacher" in methods[free[0]]:
        lines += ["", "Without the training windows (the student never sees a labelled "
                  "training window): macro-F1 as a share of the teacher's and of `none`'s.", ""]
        lines.append(markdown_table(
            ("method", "test macro-F1", "of the teacher", "of none"),
            [(m, format_mean_std(MeanStd(**methods[m]["test_macro_f1"]), 4),
              f"{100 * methods[m]['fraction_of_teacher']:.0f}%",
              f"{100 * methods[m]['fraction_of_none']:.0f}%") for m in free]).rstrip("\n"))
    if PER_SUBJECT in methods and BASELINE in methods:
        mine = methods[PER_SUBJECT]["per_subject_macro_f1"]
        base = methods[BASELINE]["per_subject_macro_f1"]
        both = [s for s in mine if s in base]
        if both:
            lines += ["", f"Per test subject (macro-F1, mean over seeds): `{PER_SUBJECT}` "
                      f"against `{BASELINE}`.", ""]
            lines.append(markdown_table(
                ("subject", BASELINE, PER_SUBJECT, "difference (points)"),
                [(s, f"{base[s]:.4f}", f"{mine[s]:.4f}", f"{100 * (mine[s] - base[s]):+.2f}")
                 for s in both]).rstrip("\n"))
    if meta["skipped"]:
        lines += ["", "Not benchmarked here: " + "; ".join(
            f"`{m}` ({why})" for m, why in meta["skipped"].items()) + "."]
    if meta["left_out"]:
        lines += ["", "Run with fewer teachers: " + "; ".join(
            f"`{m}` {why}" for m, why in meta["left_out"].items()) + "."]
    if meta["overrides"]:
        lines += ["", f"Overrides: `{' '.join(meta['overrides'])}`"]
    if notes is not None and notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        methods, skipped, left_out = benchmarked_methods()
        for name, why in skipped.items():
            print(f"skipped {name}: {why}")
        table_order = [m.label for m in methods]
        methods = chosen(methods, args.methods, skipped)
        spec = make_spec(build_spec(args, methods), source="benchmarks/bench_distill.py")
        if args.dry_run:
            print(dry_run(spec, None, args.grid_dir))
            return 0
        expansion = spec.expand()
        if not args.analyse_only:
            why = unfinished(run_spec(spec, args, args.threads))
            if why is not None:
                print(f"bench_distill: {why}", file=sys.stderr)
                return 1
        runs = read_runs(args.grid_dir, expansion, "method")
        labels = [m for m in table_order if m in runs.cells and m in
                  {x.label for x in methods}]
        if BASELINE not in labels:
            raise ConfigError(f"{args.grid_dir}: no finished `{BASELINE}` run to compare with")
        result = tabulate(runs, labels)
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
        "complete": all(len(runs.cells[m]) == len(args.seeds) for m in labels)
        and len(labels) == len(methods),
        "teacher_epochs": args.teacher_epochs,
        "threads": args.threads,
        "workers": args.workers,
        "augment": effective_augmentation(expansion),
        "overrides": args.set,
        "data_overrides": args.data_overrides,
        "grid_dir": str(args.grid_dir),
        "controls": list(CONTROLS),
        "skipped": skipped,
        "left_out": {m: why for m, why in left_out.items() if m in result["methods"]},
        "teachers": {m.label: m.teachers for m in methods},
    }
    result = {k: result[k] for k in ("meta", "nodes", "methods", "runs")}
    write_json(args.out / "distill.json", result)
    notes = args.notes
    if notes is None and args.out.resolve() == RESULTS:
        notes = NOTES
    write_markdown(args.out / "distill.md", result, notes)
    print((args.out / "distill.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
