"""What the benchmarks that run through the experiment engine share.

`bench_distill.py`, `bench_pskd.py` and `bench_train.py` each build a grid spec (a mapping for
`harkd.grid.spec.spec_from_dict`) whose teachers are training nodes, run it with
`harkd.grid.runner.run_grid` (resumable: finished runs in the grid folder are reused), and read
what they tabulate from the grid's run store. This module holds the pieces they have in common:
the command-line options of the engine, run configs as axis bundles, running a spec, reading its
runs back by label and seed, paired comparisons and writing the result files atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from data_prep.configio import ConfigError, parse_override
from data_prep.windowset import WindowSet
from harkd.config import RunConfig, load_run_config
from harkd.data import Normalizer, data_config, load_windowset
from harkd.grid.runner import GridSummary, run_dir_of, run_grid, store_path
from harkd.grid.spec import Expansion, GridSpec, spec_from_dict
from harkd.grid.store import RunRow, RunStore
from harkd.report.stats import PairedTest, paired_test
from harkd.train.checkpoint import load_checkpoint, load_run_model
from harkd.train.compat import check_compatible
from harkd.train.metrics import evaluate
from harkd.train.rundir import RunDir, atomic_write_bytes, read_json

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
RESULTS = REPO / "benchmarks" / "results"
#: run config sections a bundle leaves out: the grid names every run, and teachers are set apart
NOT_BUNDLED = ("name", "teachers")
#: the student's weights inside a run's last.safetensors (the distiller's state)
LAST_STUDENT = "distiller.student.model."
#: WindowSets already loaded by `last_epoch_f1`, by data config
_WINDOWSETS: dict[str, WindowSet] = {}


def add_engine_arguments(parser: argparse.ArgumentParser, grid_dir: Path) -> None:
    """The options every engine benchmark takes: where the grid lives and how it runs."""
    parser.add_argument("--grid-dir", type=Path, default=grid_dir,
                        help="grid folder: its run store and run directories; a rerun reuses "
                             f"every finished run (default {grid_dir.relative_to(REPO)})")
    parser.add_argument("--workers", type=int, default=1, help="runs trained in parallel")
    parser.add_argument("--data-overrides", type=mapping_arg, default={}, metavar="YAML",
                        help="a mapping merged into every run's data protocol (and so its "
                             "teachers'), e.g. '{subjects: [1, 2, 3, 4, 5, 6, 7, 8], split: "
                             "{test_subjects: [2, 4], val_subjects: [3, 5]}}'")
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the graph of runs (nodes, cells, what is done) and stop")


def mapping_arg(text: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping given on the command line."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise argparse.ArgumentTypeError(f"expected a YAML mapping, got {text!r}: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a YAML mapping, got {text!r}")
    return value


def split_overrides(items: list[str], labels: list[str]) -> dict[str | None, dict[str, Any]]:
    """`[LABEL:]KEY=VALUE` items as dotted keys per label (None: every label); a prefix that
    names no label, or an item without `=`, raises a ConfigError naming it."""
    out: dict[str | None, dict[str, Any]] = {}
    for item in items:
        head, sep, rest = item.partition(":")
        label: str | None = None
        if sep and "=" not in head:
            if head not in labels:
                raise ConfigError(f"--set {item!r}: {head!r} is none of {labels}")
            label, item = head, rest
        key, value = parse_override(item)
        out.setdefault(label, {})[".".join(key)] = value
    return out


def overrides_for(overrides: dict[str | None, dict[str, Any]], label: str) -> dict[str, Any]:
    """The dotted keys `split_overrides` gave every label, then those given to `label`."""
    return {**overrides.get(None, {}), **overrides.get(label, {})}


def config_bundle(label: str, config: RunConfig, teachers: Mapping[str, Any],
                  overrides: Mapping[str, Any]) -> dict[str, Any]:
    """An axis value that makes a cell exactly `config` (its name aside), with `teachers` (e.g.
    `{cnn1d: {from: teacher}}`, a training node) and `overrides` (dotted keys) over it.

    Every section is set key by key from the validated config, so what the spec's base holds
    besides is overwritten and nothing of another config leaks into the cell.
    """
    items: dict[str, Any] = {}
    for section, value in config.model_dump(mode="json").items():
        if section in NOT_BUNDLED:
            continue
        if isinstance(value, dict):  # key by key: an empty mapping (no data_overrides) keeps
            items.update({f"{section}.{k}": v for k, v in value.items()})  # the base's
        else:
            items[section] = value
    return {"label": label, "set": {**items, "teachers": dict(teachers), **overrides}}


def base_of(config: RunConfig, data_overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The smallest valid base: the keys every bundle sets anyway, and the data overrides of
    every cell (its training nodes inherit them)."""
    base: dict[str, Any] = {"data": config.data, "model": {"name": config.model.name}}
    if data_overrides:
        base["data_overrides"] = dict(data_overrides)
    return base


@dataclass
class GridRuns:
    """A spec's runs as stored: the cells by label of one axis and seed, the nodes by name."""

    grid_dir: Path
    cells: dict[str, dict[int, RunRow]]
    nodes: dict[str, RunRow]

    def run_dir(self, row: RunRow) -> Path:
        return run_dir_of(self.grid_dir, row.hash)


def make_spec(raw: dict[str, Any], source: str) -> GridSpec:
    """The spec of a benchmark (its relative paths taken from the repository root)."""
    return spec_from_dict(raw, source=source, spec_dir=REPO)


def run_spec(spec: GridSpec, args: argparse.Namespace, threads: int | None) -> GridSummary:
    """Run (or resume) `spec` in `args.grid_dir` and print what happened."""
    summary = run_grid(spec, grid_dir=args.grid_dir, workers=args.workers, threads=threads,
                       retry_failed=args.retry_failed)
    print(f"grid {spec.name}: {summary.done}/{summary.total} done ({summary.ran} ran now), "
          f"{summary.failed} failed, {summary.blocked} blocked; store {store_path(args.grid_dir)}",
          flush=True)
    for failure in summary.failures:
        print(f"  FAILED {failure}", file=sys.stderr)
    return summary


def read_runs(grid_dir: Path, expansion: Expansion, axis: str) -> GridRuns:
    """The finished runs of `expansion` from the store: cells by their `axis` label and seed,
    nodes by name. Runs of other specs kept in the same store are left out; rows stored under an
    earlier key of a run of `expansion` are re-keyed first (`RunStore.adopt`)."""
    with RunStore(store_path(grid_dir)) as store:
        store.adopt(expansion.runs, grid_dir / "runs")
        rows = {r.hash: r for r in store.rows("done")}
    cells: dict[str, dict[int, RunRow]] = {}
    nodes: dict[str, RunRow] = {}
    for run in expansion.runs:
        row = rows.get(run.hash)
        if row is None:
            continue
        if run.kind == "node":
            nodes[run.axes["node"]] = row
        else:
            cells.setdefault(run.axes[axis], {})[run.config.train.seed] = row
    return GridRuns(grid_dir.resolve(), cells, nodes)


def unfinished(summary: GridSummary) -> str | None:
    """Why the tables cannot be written yet, or None when every run is done."""
    if summary.done == summary.total:
        return None
    return (f"{summary.total - summary.done} of {summary.total} runs are not done "
            f"({summary.failed} failed, {summary.blocked} blocked, {summary.pending} "
            "unfinished); rerun to resume (finished runs are reused), with --retry-failed to "
            "rerun the failed ones")


def run_summary(row: RunRow, run_dir: Path) -> dict[str, Any]:
    """One run's scores and timings, as the tables use them (seconds per epoch by stage from
    the history in its metrics.json)."""
    metrics, timings = row.metrics or {}, row.timings or {}
    return {
        "test_macro_f1": float(metrics["test"]["macro_f1"]),
        "val_macro_f1": float(metrics["val"]["macro_f1"]),
        "test_accuracy": float(metrics["test"]["accuracy"]),
        "test_ece": float(metrics["test"]["ece"]),
        "test_per_subject_macro_f1": metrics["test"].get("per_subject_macro_f1"),
        "best_epoch": timings.get("best_epoch"),
        "epochs_run": timings.get("epochs_run"),
        "n_params": row.n_params,
        "s_per_epoch": stage_seconds(run_dir, timings),
        "wall_s": row.wall_s,
        "reused": bool(timings.get("reused")),
        "hash": row.hash,
        "run_dir": str(run_dir),
    }


def stage_seconds(run_dir: Path, timings: Mapping[str, Any]) -> dict[str, float]:
    """Seconds per epoch (training and validation) of each stage of a finished run; the
    store's overall figure as `main` when the run directory has no history."""
    found = read_json(RunDir(run_dir).metrics) or {}
    per_stage: dict[str, list[float]] = {}
    for h in found.get("history", []):
        per_stage.setdefault(h["stage"], []).append(h["train_s"] + (h.get("val_s") or 0.0))
    if not per_stage:
        return {"main": float(timings.get("s_per_epoch", math.nan))}
    return {stage: sum(v) / len(v) for stage, v in per_stage.items()}


def paired(runs: Mapping[int, Mapping[str, Any]], other: Mapping[int, Mapping[str, Any]],
           key: str = "test_macro_f1") -> tuple[PairedTest, list[float]]:
    """`runs - other` seed by seed over the seeds both have: the test with its bootstrap
    interval, and the differences in seed order."""
    seeds = sorted(set(runs) & set(other))
    diffs = [runs[s][key] - other[s][key] for s in seeds]
    return paired_test(diffs), diffs


def format_paired(test: PairedTest | Mapping[str, Any], scale: float = 100.0, digits: int = 2,
                  spread: bool = True) -> str:
    """`+0.64 ± 1.23 [-0.20, +1.50]`: the mean difference (× `scale`), its std with `spread`,
    and its 95 % bootstrap interval; `(n = 1)` in place of both for one pair; empty for none."""
    t = test.to_dict() if isinstance(test, PairedTest) else test
    if not t["n"]:
        return ""
    mean = f"{scale * t['diff_mean']:+.{digits}f}"
    if t["n"] < 2:
        return f"{mean} (n = 1)"
    std = f" ± {scale * t['diff_std']:.{digits}f}" if spread else ""
    return (f"{mean}{std} [{scale * t['ci_low']:+.{digits}f}, "
            f"{scale * t['ci_high']:+.{digits}f}]")


def jsonable(value: Any) -> Any:
    """`value` with NaN (an undefined std, test or interval) as None, for strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def write_text(path: Path, text: str) -> None:
    """Write a result file atomically (its folder made first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, value: Any) -> None:
    write_text(path, json.dumps(jsonable(value), indent=1, default=str) + "\n")


def command_line(script: str, argv: list[str] | None) -> str:
    """How this benchmark was invoked, for the result files."""
    return f"python benchmarks/{script} " + " ".join(sys.argv[1:] if argv is None else argv)


def last_epoch_f1(run_dir: Path) -> float | None:
    """Test macro-F1 of a finished run's student as its last epoch left it (last.safetensors:
    a fixed epoch budget, no model selection on validation), or None when the run kept no
    checkpoint or its student is not a plain model of its run card."""
    model, card = load_run_model(run_dir)
    found = load_checkpoint(RunDir(run_dir))
    if found is None:
        return None
    state = {k.removeprefix(LAST_STUDENT): v for k, v in found[0].items()
             if k.startswith(LAST_STUDENT)}
    if set(state) != set(model.state_dict()):
        return None
    model.load_state_dict(state)
    cfg = load_run_config(Path(run_dir) / "config.yaml")
    key = json.dumps(data_config(cfg).model_dump(mode="json"), sort_keys=True)
    if key not in _WINDOWSETS:
        _WINDOWSETS[key] = load_windowset(cfg)
    ws = _WINDOWSETS[key]
    channels = check_compatible(card, ws, "evaluate", where=str(run_dir))
    norm = Normalizer(card.norm.mean, card.norm.std)
    return float(evaluate(model.eval(), ws, "test", norm, channels=channels)["macro_f1"])


def fixed_budget_f1(row: RunRow, run_dir: Path) -> float | None:
    """Test macro-F1 of a finished run's weights after its last epoch: the `test_last` its run
    recorded, else `last_epoch_f1` of its checkpoint (runs from before `test_last` existed)."""
    stored = ((row.metrics or {}).get("test_last") or {}).get("macro_f1")
    return float(stored) if stored is not None else last_epoch_f1(run_dir)
