"""Training baselines on hapt-quick: throughput of every model of the table, and the results
table, whose runs go through the experiment engine.

1. Throughput: training windows per second (forward, backward, AdamW step; batch 128, real
   hapt-quick training windows) of every model of the table on its intended view (teachers and
   peers acc+gyro, students acc), measured side by side in this process with the same threads.
2. Table: acc+gyro teachers, acc-only students without distillation, and the peers on acc+gyro
   and on acc only. One grid (`build_spec`): one cell per table row × seed, each the row's
   configs/train/*.yaml (method `none`) with its model and view, trained by the engine (no
   training nodes: no row has a teacher). Reported, from the grid's run store: test macro-F1
   mean ± std over `--seeds` (model selection on validation macro-F1 only), accuracy,
   parameters and MACs as deployed (`harkd.deploy.flops.deployed_cost` of the first seed's
   model), epochs and seconds per epoch. These are the baselines every distillation result is
   compared with.

Reproduce (from the repository root; a rerun reuses every finished run of the grid folder):

    python benchmarks/bench_train.py                          # 30 epochs, seeds 0 1 2
    python benchmarks/bench_train.py --threads 1 --epochs-for deepconvlstm=15   # the record
    python benchmarks/bench_train.py --epochs 3 --seeds 0 --rows tiny --skip-throughput

DeepConvLSTM trains at ~120-300 windows/s on 2 cores (its two 128-unit LSTMs run over 112
steps), about 20-50 s per hapt-quick epoch: the recorded table gives it 15 epochs (patience 7),
and says so.

Writes benchmarks/results/train.json and train.md (`--out`).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from engine_bench import (
    CONFIGS,
    REPO,
    RESULTS,
    GridRuns,
    add_engine_arguments,
    base_of,
    command_line,
    config_bundle,
    make_spec,
    overrides_for,
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
from harkd.config import load_run_config
from harkd.data import load_windowset
from harkd.deploy.flops import deployed_cost
from harkd.report.stats import MeanStd, format_mean_std, mean_std
from harkd.report.tables import markdown_table
from harkd.train.checkpoint import load_run_model

TRAIN = CONFIGS / "train"
GRID_DIR = REPO / "runs" / "bench" / "train"
#: (row label, config file, model, view)
TABLE = [
    ("cnn1d teacher (acc+gyro)", "teacher_cnn1d", "cnn1d", ["acc", "gyro"]),
    ("transformer teacher (acc+gyro)", "teacher_transformer", "transformer", ["acc", "gyro"]),
    ("tiny_xs student (acc)", "student_tiny", "tiny_xs", ["acc"]),
    ("tiny_s student (acc)", "student_tiny", "tiny_s", ["acc"]),
    ("tiny student (acc)", "student_tiny", "tiny", ["acc"]),
    ("tiny_m student (acc)", "student_tiny", "tiny_m", ["acc"]),
    ("tiny_l student (acc)", "student_tiny", "tiny_l", ["acc"]),
    ("deepconvlstm peer (acc+gyro)", "deepconvlstm", "deepconvlstm", ["acc", "gyro"]),
    ("deepconvlstm peer (acc)", "deepconvlstm", "deepconvlstm", ["acc"]),
    ("tinyhar peer (acc+gyro)", "tinyhar", "tinyhar", ["acc", "gyro"]),
    ("tinyhar peer (acc)", "tinyhar", "tinyhar", ["acc"]),
]


def row_id(row: tuple) -> str:
    """A row's label on the grid's `row` axis: `model-view` (e.g. `tinyhar-acc+gyro`)."""
    _, _, model, view = row
    return f"{model}-{'+'.join(view)}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--epochs-for", nargs="*", default=[], metavar="MODEL=N",
                   help="epochs (and patience, capped at N // 2) of one model's rows instead of "
                        "--epochs")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2, help="torch threads (throughput, each run)")
    p.add_argument("--rows", nargs="*", default=None, help="only table rows containing these")
    p.add_argument("--set", nargs="*", default=[], metavar="[ROW:]KEY=VALUE",
                   help="overrides of every row's cells, or of one row (e.g. tinyhar-acc:) with "
                        "a ROW: prefix")
    p.add_argument("--throughput-steps", type=int, default=20)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-table", action="store_true")
    p.add_argument("--out", type=Path, default=RESULTS / "train.json",
                   help="train.json; train.md is written beside it")
    add_engine_arguments(p, GRID_DIR)
    return p.parse_args(argv)


def throughput(ws: Any, steps: int) -> dict[str, dict[str, Any]]:
    """Training windows/s of every model of the table on its intended view."""
    from harkd.data import Normalizer, view_channels
    from harkd.distill.base import Batch, DistillContext, ViewModel, build_distiller
    from harkd.models import build_model, list_models

    x_all = Normalizer.from_windowset(ws)(ws.X[ws.mask("train")][:128])
    y = torch.as_tensor(ws.y[ws.mask("train")][:128], dtype=torch.long)
    batch = Batch(x_all, y, torch.nn.functional.one_hot(y, ws.num_classes).float())
    ctx = DistillContext(ws.num_classes, ws.X.shape[-1], ws.groups, ws.label_names)
    out = {}
    roles = list_models()
    for name in sorted({row[2] for row in TABLE}):  # the models of hapt-quick's table
        role = roles[name]
        view = ["acc"] if role == "student" else ["acc", "gyro"]
        ch = view_channels(ws, view)
        torch.manual_seed(0)
        model = build_model(name, len(ch), ws.num_classes, ws.X.shape[-1])
        d = build_distiller("none", ViewModel(model, ch), {}, ctx, {})
        opt = torch.optim.AdamW(d.trainable_parameters(), lr=1e-3)
        d.train()

        def step(d: Any = d, opt: Any = opt) -> None:
            loss = sum(d.forward_train(batch, 0)[1].values())
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sec = time.perf_counter() - t0
        out[name] = {"role": role, "view": view, "windows_per_s": steps * len(y) / sec}
        print(f"throughput {name:14s} {out[name]['windows_per_s']:9.0f} windows/s", flush=True)
    return out


def epochs_for(items: list[str]) -> dict[str, int]:
    """`MODEL=N` items as {model: N}; a malformed item raises naming it."""
    out = {}
    for item in items:
        model, sep, n = item.partition("=")
        if not sep or not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--epochs-for: expected MODEL=N with N >= 1, got {item!r}")
        out[model] = int(n)
    return out


def selected_rows(args: argparse.Namespace) -> list[tuple]:
    """The table rows `--rows` keeps (all by default); none kept raises."""
    rows = [r for r in TABLE if not args.rows or any(k in r[0] for k in args.rows)]
    if not rows:
        raise ConfigError(f"--rows {args.rows}: no table row contains any of these; rows: "
                          f"{[r[0] for r in TABLE]}")
    return rows


def schedule(args: argparse.Namespace, model: str) -> tuple[int, int]:
    """Epochs and patience of a model's rows: `--epochs-for` (patience capped at half) or
    `--epochs` / `--patience`."""
    epochs = epochs_for(args.epochs_for).get(model, args.epochs)
    patience = min(args.patience, epochs // 2) if epochs != args.epochs else args.patience
    return epochs, max(patience, 1)


def build_spec(args: argparse.Namespace, rows: list[tuple]) -> dict[str, Any]:
    """The grid: one cell per row × seed, each its config with the row's model, view and
    schedule."""
    overrides = split_overrides(args.set, [row_id(r) for r in rows])
    axis = []
    for row in rows:
        _, config, model, view = row
        epochs, patience = schedule(args, model)
        axis.append(config_bundle(
            row_id(row), load_run_config(TRAIN / f"{config}.yaml"), {},
            {"model.name": model, "model.view": view, "train.epochs": epochs,
             "train.patience": patience, **overrides_for(overrides, row_id(row))}))
    return {
        "name": "bench_train",
        "description": "teachers, students and peers trained alone (method none) on hapt-quick",
        "output_dir": str(args.grid_dir),
        "base": base_of(load_run_config(TRAIN / f"{rows[0][1]}.yaml"), args.data_overrides),
        "axes": {"row": axis, "seed": args.seeds},
    }


def tabulate(runs: GridRuns, rows: list[tuple]) -> list[dict[str, Any]]:
    """One entry per row from its stored runs: scores per seed, means, deployed cost."""
    table = []
    for row in rows:
        label, config, model, view = row
        by_seed = runs.cells[row_id(row)]
        per_seed = [run_summary(r, runs.run_dir(r)) for _, r in sorted(by_seed.items())]
        first = next(iter(sorted(by_seed.items())))[1]
        m, card = load_run_model(runs.run_dir(first))
        f1 = [r["test_macro_f1"] for r in per_seed]
        cfg = first.config["train"]
        table.append({
            "label": label,
            "config": f"configs/train/{config}.yaml",
            "model": model,
            "view": view,
            "epochs": cfg["epochs"],
            "patience": cfg["patience"],
            **deployed_cost(m, (1, *card.input_shape)),
            "test_macro_f1": f1,
            "test_macro_f1_mean_std": mean_std(f1).to_dict(),
            "test_accuracy_mean": statistics.fmean(r["test_accuracy"] for r in per_seed),
            "val_macro_f1": [r["val_macro_f1"] for r in per_seed],
            "test_ece_mean": statistics.fmean(r["test_ece"] for r in per_seed),
            "best_epoch": [r["best_epoch"] for r in per_seed],
            "s_per_epoch": statistics.fmean(r.timings["s_per_epoch"] for r in by_seed.values()),
            "run_dirs": [r["run_dir"] for r in per_seed],
        })
    return table


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    m = result["meta"]
    lines = [
        "# Training baselines on hapt-quick (method `none`)",
        "",
        f"Command: `{m['command']}`  ",
        f"{m['epochs']} epochs (patience {m['patience']}), seeds {m['seeds']}, augmentation as "
        "in configs/train/*.yaml; test = the UCI-HAR test subjects; model selection on "
        f"validation macro-F1. torch {m['torch']}, {m['threads']} threads, {m['workers']} "
        f"run(s) at a time, {m['machine']}; grid `{m['grid_dir']}`"
        + (f", data overrides `{m['data_overrides']}`" if m["data_overrides"] else "") + ".",
        "",
    ]
    if result.get("table"):
        lines.append(markdown_table(
            ("model", "test macro-F1 (mean ± std)", "test acc", "params", "MACs", "epochs",
             "s/epoch"),
            [(r["label"], format_mean_std(MeanStd(**r["test_macro_f1_mean_std"]), 4),
              f"{r['test_accuracy_mean']:.4f}", f"{r['params']:,}", f"{r['macs']:,}",
              r["epochs"], f"{r['s_per_epoch']:.1f}") for r in result["table"]]))
    if result.get("throughput"):
        lines.append(markdown_table(
            ("model", "role", "view", "training windows/s"),
            [(name, t["role"], "+".join(t["view"]), f"{t['windows_per_s']:,.0f}")
             for name, t in result["throughput"].items()]))
    write_text(path, "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rows = selected_rows(args)
        spec = make_spec(build_spec(args, rows), source="benchmarks/bench_train.py")
        if args.dry_run:
            print(dry_run(spec, None, args.grid_dir))
            return 0
        torch.set_num_threads(args.threads)
        cfg = load_run_config(TRAIN / "student_tiny.yaml")
        ws = load_windowset(cfg.model_copy(update={"data_overrides": args.data_overrides}))
        result: dict[str, Any] = {"meta": {
            "command": command_line("bench_train.py", argv),
            "protocol": "hapt-quick",
            "epochs": args.epochs,
            "patience": args.patience,
            "epochs_for": epochs_for(args.epochs_for),
            "seeds": args.seeds,
            "threads": args.threads,
            "workers": args.workers,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "windows": {s: int(ws.mask(s).sum()) for s in ("train", "val", "test")},
            "grid_dir": str(args.grid_dir),
            "data_overrides": args.data_overrides,
        }}
        if not args.skip_throughput:
            result["throughput"] = throughput(ws, args.throughput_steps)
        if not args.skip_table:
            expansion = spec.expand()
            summary = run_spec(spec, args, args.threads)
            why = unfinished(summary)
            if why is not None:
                print(f"bench_train: {why}", file=sys.stderr)
                return 1
            result["table"] = tabulate(read_runs(args.grid_dir, expansion, "row"), rows)
    except (ConfigError, OSError, ValueError) as err:
        print(f"bench_train: {err}", file=sys.stderr)
        return 2
    write_json(args.out, result)
    write_markdown(args.out.with_suffix(".md"), result)
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
