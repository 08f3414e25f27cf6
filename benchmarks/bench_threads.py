"""Torch threads per training process on a small shared machine: which default to ship.

Training epochs per second of the acc-only tiny student and the acc+gyro cnn1d teacher (the
hapt-quick run configs `student_tiny.yaml` and `teacher_cnn1d.yaml`: their batch size, real
hapt-quick training windows, forward, backward and AdamW step, no distillation) at 1 and 2
torch threads, alone and beside a competing CPU job (one process spinning on one core, started
and stopped by this script), all measured side by side in one process. The conditions are
interleaved over `--rounds` rounds so that a drift in the machine's load affects each alike;
each figure is the median over rounds of (timed steps / seconds) / steps per epoch. A
measurement stops after `--steps` steps or `--max-seconds` seconds, whichever comes first
(at least 2 steps), so a pathologically slow condition cannot stall the run.

The recommended default is the thread count whose worst ratio to the faster count, over both
models and both loads, is the highest. The script also trains a few steps from one seed at
each thread count and records whether the weights come out bit-identical (they need not:
the reductions split differently).

"Alone" means no competitor started by this script: the 1-minute load average before and after
is recorded, since other jobs on the machine are not under its control.

Reproduce (from the repository root):

    python benchmarks/bench_threads.py                  # 3 rounds, 8 steps, 10 s cap
    python benchmarks/bench_threads.py --rounds 1 --steps 3

Writes benchmarks/results/threads.json and threads.md (`--out`).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from engine_bench import CONFIGS, RESULTS, command_line, write_json, write_text

from data_prep.configio import ConfigError
from harkd.commands.options import positive_float, positive_int
from harkd.config import RunConfig, load_run_config
from harkd.data import Normalizer, load_windowset, view_channels
from harkd.distill.base import Batch, DistillContext, Distiller, ViewModel, build_distiller
from harkd.models import build_model
from harkd.report.tables import markdown_table

#: model -> (run config under configs/train, its view)
MODELS = {"tiny": ("student_tiny", ["acc"]), "cnn1d": ("teacher_cnn1d", ["acc", "gyro"])}
THREADS = (1, 2)
LOADS = ("alone", "competing")
WARMUP_STEPS = 2
MIN_STEPS = 2
#: steps trained from one seed at each thread count for the bit-identity check
IDENTITY_STEPS = 3
SPIN = "while True: pass"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=positive_int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--steps", type=positive_int, default=8, help="timed steps per measurement")
    p.add_argument("--max-seconds", type=positive_float, default=10.0,
                   help="cap on one measurement's timed seconds (default 10)")
    p.add_argument("--out", type=Path, default=RESULTS / "threads.json",
                   help="threads.json; threads.md is written beside it")
    return p.parse_args(argv)


class Trainer:
    """One model's training step (method `none`) on a fixed batch of real training windows."""

    def __init__(self, cfg: RunConfig, ws: Any, view: list[str]) -> None:
        batch_size = cfg.train.batch_size
        train = ws.mask("train")
        self.n_train = int(train.sum())
        self.steps_per_epoch = math.ceil(self.n_train / batch_size)
        x = Normalizer.from_windowset(ws)(ws.X[train][:batch_size])
        y = torch.as_tensor(ws.y[train][:batch_size], dtype=torch.long)
        self.batch = Batch(x, y, torch.nn.functional.one_hot(y, ws.num_classes).float())
        self.ctx = DistillContext(ws.num_classes, ws.X.shape[-1], ws.groups, ws.label_names)
        self.channels = view_channels(ws, view)
        self.name = cfg.model.name
        self.params = dict(cfg.model.params or {})
        self.distiller, self.opt = self.build()

    def build(self) -> tuple[Distiller, torch.optim.Optimizer]:
        """A freshly initialised model (seed 0) with its optimiser."""
        torch.manual_seed(0)
        model = build_model(self.name, len(self.channels), self.ctx.num_classes,
                            self.ctx.window, **self.params)
        d = build_distiller("none", ViewModel(model, self.channels), {}, self.ctx, {})
        d.train()
        return d, torch.optim.AdamW(d.trainable_parameters(), lr=1e-3)

    def step(self, d: Distiller | None = None, opt: torch.optim.Optimizer | None = None) -> None:
        d, opt = d or self.distiller, opt or self.opt
        loss = sum(d.forward_train(self.batch, 0)[1].values())
        opt.zero_grad()
        loss.backward()
        opt.step()

    def epochs_per_s(self, threads: int, steps: int, max_s: float) -> dict[str, float]:
        """Timed steps at `threads` torch threads, as epochs/s of the protocol's training set."""
        torch.set_num_threads(threads)
        for _ in range(WARMUP_STEPS):
            self.step()
        done, t0 = 0, time.perf_counter()
        while done < steps and (done < MIN_STEPS or time.perf_counter() - t0 < max_s):
            self.step()
            done += 1
        sec = time.perf_counter() - t0
        return {"steps": done, "seconds": sec, "epochs_per_s": done / sec / self.steps_per_epoch}

    def weights_after(self, threads: int) -> list[torch.Tensor]:
        """The weights after IDENTITY_STEPS steps from seed 0 at `threads` threads."""
        torch.set_num_threads(threads)
        d, opt = self.build()
        for _ in range(IDENTITY_STEPS):
            self.step(d, opt)
        return [p.detach().clone() for p in d.trainable_parameters()]


def start_competitor() -> subprocess.Popen:
    """A process spinning on one core until stopped."""
    return subprocess.Popen([sys.executable, "-c", SPIN])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait()


def measure(trainers: dict[str, Trainer], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (round, load, model, threads) measurement, the loads interleaved by round."""
    rows = []
    for rnd in range(args.rounds):
        loads = LOADS if rnd % 2 == 0 else LOADS[::-1]
        for load in loads:
            competitor = start_competitor() if load == "competing" else None
            try:
                for model, trainer in trainers.items():
                    order = THREADS if rnd % 2 == 0 else THREADS[::-1]
                    for threads in order:
                        m = trainer.epochs_per_s(threads, args.steps, args.max_seconds)
                        rows.append({"round": rnd, "load": load, "model": model,
                                     "threads": threads, **m})
                        print(f"round {rnd} {load:9s} {model:6s} {threads} thread(s): "
                              f"{m['epochs_per_s']:.4f} epochs/s ({m['steps']} steps, "
                              f"{m['seconds']:.1f} s)", flush=True)
            finally:
                if competitor is not None:
                    stop(competitor)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """model -> load -> {threads: median epochs/s, ..., "1_over_2": ratio}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for model in MODELS:
        out[model] = {}
        for load in LOADS:
            med = {str(t): statistics.median(r["epochs_per_s"] for r in rows if
                                             (r["model"], r["load"], r["threads"])
                                             == (model, load, t)) for t in THREADS}
            out[model][load] = {**med, "1_over_2": med["1"] / med["2"]}
    return out


def recommend(summary: dict[str, dict[str, dict[str, Any]]]) -> int:
    """The thread count whose worst ratio to the faster count (over models and loads) is
    the highest."""
    def worst(threads: int) -> float:
        return min(cell[str(threads)] / max(cell[str(t)] for t in THREADS)
                   for loads in summary.values() for cell in loads.values())
    return max(THREADS, key=worst)


def write_markdown(path: Path, result: dict[str, Any]) -> None:
    meta = result["meta"]
    lines = [
        "# Torch threads per training process (bench_threads.py)",
        "",
        f"`{meta['command']}`: {meta['cores']} cores, torch {meta['torch']}, "
        f"{meta['rounds']} interleaved rounds, median epochs/s of hapt-quick's training set "
        f"({', '.join(f'{m}: {n} steps/epoch' for m, n in meta['steps_per_epoch'].items())}).",
        "",
        markdown_table(
            ("model", "load", "1 thread", "2 threads", "1 thread / 2 threads"),
            [(model, load, f"{cell['1']:.4f}", f"{cell['2']:.4f}", f"{cell['1_over_2']:.2f}x")
             for model, loads in result["summary"].items()
             for load, cell in loads.items()]).rstrip(),
        "",
        f"**Recommended default: {result['recommended_threads']} thread(s)** (the best worst "
        "case over both models and both loads).",
        "",
        f"1 and 2 threads bit-identical after {IDENTITY_STEPS} steps from one seed: "
        + ", ".join(f"{m} {'yes' if same else 'no'}"
                    for m, same in result["bit_identical"].items()) + ".",
        "",
        f"Noise: \"alone\" means no competitor started by this script; the machine's 1-minute "
        f"load average was {meta['loadavg_before']:.2f} before and {meta['loadavg_after']:.2f} "
        "after, so other jobs shared the cores during every measurement and the \"alone\" "
        "figures are noisy (a lower bound on an idle machine's speed).",
    ]
    write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        trainers = {}
        for model, (config, view) in MODELS.items():
            cfg = load_run_config(CONFIGS / "train" / f"{config}.yaml")
            trainers[model] = Trainer(cfg, load_windowset(cfg), view)
    except (ConfigError, OSError, ValueError) as err:
        print(f"bench_threads: {err}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    rows = measure(trainers, args)
    identical = {}
    for model, trainer in trainers.items():
        one, two = (trainer.weights_after(t) for t in THREADS)
        identical[model] = all(torch.equal(a, b) for a, b in zip(one, two, strict=True))
    summary = summarise(rows)
    result = {
        "meta": {
            "command": command_line("bench_threads.py", argv),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "rounds": args.rounds, "steps": args.steps, "max_seconds": args.max_seconds,
            "competitor": f"{Path(sys.executable).name} -c '{SPIN}' (one core)",
            "train_windows": {m: t.n_train for m, t in trainers.items()},
            "steps_per_epoch": {m: t.steps_per_epoch for m, t in trainers.items()},
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()[0],
        },
        "summary": summary,
        "recommended_threads": recommend(summary),
        "bit_identical": identical,
        "measurements": rows,
    }
    write_json(args.out, result)
    write_markdown(args.out.with_suffix(".md"), result)
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
