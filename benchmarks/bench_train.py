"""Training baselines on hapt-quick: throughput of every registered model, and the results table.

1. Throughput: training windows per second (forward, backward, AdamW step; batch 128, real
   hapt-quick training windows) of every registered model on its intended view (teachers and
   peers acc+gyro, students acc), measured side by side in one process with the same threads.
2. Table: acc+gyro teachers, acc-only students without distillation, and the peers on acc+gyro
   and on acc only, each trained by `fit` from configs/train/*.yaml (method `none`) for
   `--seeds`: test macro-F1 mean ± std (model selection on validation macro-F1 only), accuracy,
   parameters, MACs (`harkd.deploy.flops.graph_macs`). These are the baselines every
   distillation result is compared with.

    python benchmarks/bench_train.py                       # 30 epochs, seeds 0 1 2
    python benchmarks/bench_train.py --epochs 3 --seeds 0  # quick look
    python benchmarks/bench_train.py --epochs-for deepconvlstm=15  # the recorded results

DeepConvLSTM trains at ~300 windows/s on 2 cores (its two 128-unit LSTMs run over 112 steps),
about 20 s per hapt-quick epoch: the recorded table gives it 15 epochs (patience 7), and says so.

Writes benchmarks/results/train.json and train.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "train"
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument(
        "--epochs-for",
        nargs="*",
        default=[],
        metavar="MODEL=N",
        help="epochs (and patience, capped at N // 2) of one model's rows instead of --epochs",
    )
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rows", nargs="*", default=None, help="only table rows containing these")
    p.add_argument("--throughput-steps", type=int, default=20)
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-table", action="store_true")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "bench_train")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "train.json")
    return p.parse_args(argv)


def throughput(ws: Any, steps: int) -> dict[str, dict[str, Any]]:
    """Training windows/s of every registered model on its intended view."""
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


def epochs_for(items: list[str]) -> list[tuple[str, int]]:
    """`MODEL=N` items as (model, N); a malformed item raises naming it."""
    out = []
    for item in items:
        model, sep, n = item.partition("=")
        if not sep or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--epochs-for: expected MODEL=N with N >= 1, got {item!r}")
        out.append((model, int(n)))
    return out


def train_row(args: argparse.Namespace, ws: Any, row: tuple) -> dict[str, Any]:
    from harkd.config import load_run_config
    from harkd.deploy.flops import deployed_cost
    from harkd.report.stats import mean_std
    from harkd.train.checkpoint import load_run_model
    from harkd.train.loop import fit

    label, config, model, view = row
    epochs = dict(epochs_for(args.epochs_for)).get(model, args.epochs)
    patience = min(args.patience, epochs // 2) if epochs != args.epochs else args.patience
    per_seed = []
    for seed in args.seeds:
        slug = f"{model}-{'+'.join(view)}-seed{seed}"
        overrides = [f"model.name={model}", f"model.view=[{','.join(view)}]",
                     f"train.seed={seed}", f"train.epochs={epochs}",
                     f"train.patience={patience}", f"train.threads={args.threads}",
                     f"name={slug}", f"output_dir={args.work}"]  # fmt: skip
        cfg = load_run_config(CONFIGS / f"{config}.yaml", overrides)
        r = fit(cfg, ws=ws, progress=False)
        per_seed.append(r)
        print(f"  {label} seed {seed}: {r.summary()}", flush=True)
    m, card = load_run_model(per_seed[0].run_dir)
    f1 = [r.metrics["test"]["macro_f1"] for r in per_seed]
    acc = [r.metrics["test"]["accuracy"] for r in per_seed]
    return {
        "label": label,
        "config": f"configs/train/{config}.yaml",
        "model": model,
        "view": view,
        "epochs": epochs,
        "patience": patience,
        **deployed_cost(m, (1, *card.input_shape)),
        "test_macro_f1": f1,
        "test_macro_f1_mean_std": mean_std(f1).to_dict(),
        "test_accuracy_mean": statistics.fmean(acc),
        "val_macro_f1": [r.metrics["val"]["macro_f1"] for r in per_seed],
        "test_ece_mean": statistics.fmean(r.metrics["test"]["ece"] for r in per_seed),
        "best_epoch": [r.best_epoch for r in per_seed],
        "s_per_epoch": statistics.fmean(r.timings["s_per_epoch"] for r in per_seed),
        "run_dirs": [str(r.run_dir) for r in per_seed],
    }


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    from harkd.report.stats import MeanStd, format_mean_std

    m = result["meta"]
    lines = [
        "# Training baselines on hapt-quick (method `none`)",
        "",
        f"Command: `{m['command']}`  ",
        f"{m['epochs']} epochs (patience {m['patience']}), seeds {m['seeds']}, augmentation as "
        "in configs/train/*.yaml; test = the UCI-HAR test subjects; model selection on "
        f"validation macro-F1. torch {m['torch']}, {m['threads']} threads, {m['machine']}.",
        "",
    ]
    if result.get("table"):
        lines += [
            "| model | test macro-F1 (mean ± std) | test acc | params | MACs | epochs | s/epoch |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for r in result["table"]:
            lines.append(
                f"| {r['label']} | {format_mean_std(MeanStd(**r['test_macro_f1_mean_std']), 4)} "
                f"| {r['test_accuracy_mean']:.4f} | {r['params']:,} | {r['macs']:,} "
                f"| {r['epochs']} | {r['s_per_epoch']:.1f} |"
            )
        lines.append("")
    if result.get("throughput"):
        lines += ["| model | role | view | training windows/s |", "| --- | --- | --- | ---: |"]
        for name, t in result["throughput"].items():
            lines.append(
                f"| {name} | {t['role']} | {'+'.join(t['view'])} | {t['windows_per_s']:,.0f} |"
            )
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from harkd.config import load_run_config
    from harkd.data import load_windowset

    torch.set_num_threads(args.threads)
    ws = load_windowset(load_run_config(CONFIGS / "student_tiny.yaml"))
    result: dict[str, Any] = {
        "meta": {
            "command": "python benchmarks/bench_train.py " + " ".join(argv or sys.argv[1:]),
            "protocol": "hapt-quick",
            "epochs": args.epochs,
            "patience": args.patience,
            "seeds": args.seeds,
            "threads": args.threads,
            "torch": torch.__version__,
            "machine": platform.machine(),
            "windows": {s: int(ws.mask(s).sum()) for s in ("train", "val", "test")},
        }
    }
    if not args.skip_throughput:
        result["throughput"] = throughput(ws, args.throughput_steps)
    if not args.skip_table:
        rows = [r for r in TABLE if not args.rows or any(k in r[0] for k in args.rows)]
        result["table"] = [train_row(args, ws, row) for row in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    write_markdown(args.out.with_suffix(".md"), result)
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
