"""Training on a GPU beside the CPU: throughput, repeatability, macro-F1 and ONNX export.

Runs as it is on a machine where torch sees a CUDA device; without one it says so, measures
nothing, writes nothing and exits 0 (its GPU figures are then "not measured").

1. Throughput: training windows/s of the cnn1d and transformer teachers, DeepConvLSTM and the
   tiny student, each trained by `fit` from its configs/train/*.yaml on 8 hapt-quick subjects
   for `--throughput-epochs` epochs; the last epoch's windows/s is kept (the first pays for
   CUDA start-up and kernel selection). Variants: the CPU (`--threads` torch threads), the GPU
   (deterministic, float32: the defaults), the GPU with `train.amp` (bfloat16 autocast) and
   the GPU with `train.deterministic: false` (`det_x_nondet` below 1 is determinism's cost).
   A variant that fails is recorded with its error and the others go on.
2. Repeatability and accuracy: `--repeat-model` on the full hapt-quick protocol for `--epochs`
   epochs (patience off, last epoch kept, so every run trains as long), `--seeds` on the CPU
   and on the GPU, and the first seed again on the GPU: whether the repeat's weights are
   bit-identical, and the GPU's test macro-F1 against the CPU's. Equal within seed noise means
   |mean_gpu - mean_cpu| <= 2 x the larger of the two seed standard deviations.
3. Export: the first seed's GPU-trained model exported to ONNX by `export_run` (the same code
   as a CPU-trained one: weights are saved from the CPU) with its PyTorch/onnxruntime parity
   check, and its test macro-F1 scored on the CPU against the GPU's score at the end of `fit`.

    python benchmarks/bench_device.py                       # everything (about 5 min on a GPU)
    python benchmarks/bench_device.py --epochs 5 --seeds 0 1 --skip-throughput

Writes benchmarks/results/device.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from data_prep.windowset import WindowSet
from harkd.config import load_run_config
from harkd.deploy.export import export_run
from harkd.train.checkpoint import load_run_model
from harkd.train.compat import check_compatible
from harkd.train.device import cuda_device_count, no_cuda_reason
from harkd.train.loop import fit
from harkd.train.metrics import evaluate
from harkd.train.result import RunResult
from harkd.train.runcard import read_card
from harkd.train.rundir import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "train"
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
OUT = REPO / "benchmarks" / "results" / "device.json"
#: model -> its training config (the view is the config's)
MODELS = {
    "cnn1d": "teacher_cnn1d.yaml",
    "transformer": "teacher_transformer.yaml",
    "deepconvlstm": "deepconvlstm.yaml",
    "tiny": "student_tiny.yaml",
}
#: 8 subjects (train 1, 6, 7, 8; val 3, 5; test 2, 4): the throughput runs' data
SMALL = ["subjects=[1, 2, 3, 4, 5, 6, 7, 8]", "split.test_subjects=[2, 4]",
         "split.val_subjects=[3, 5]"]
#: variant -> train.* overrides
VARIANTS = {
    "cpu": ["train.device=cpu"],
    "gpu": ["train.device=cuda"],
    "gpu_amp": ["train.device=cuda", "train.amp=true"],
    "gpu_nondeterministic": ["train.device=cuda", "train.deterministic=false"],
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="torch threads of the CPU runs (default: every usable core)")
    p.add_argument("--throughput-epochs", type=int, default=2)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--repeat-model", choices=list(MODELS), default="cnn1d")
    p.add_argument("--epochs", type=int, default=10, help="epochs of the repeatability runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-repeat", action="store_true")
    p.add_argument("--cache-dir", type=Path, default=None, help="WindowSet cache")
    p.add_argument("--out", type=Path, default=OUT)
    return p.parse_args(argv)


def train(model: str, ws: WindowSet, work: Path, name: str, overrides: list[str]) -> RunResult:
    """`fit` of `model`'s shipped config on `ws` with `overrides`, in `work/name`."""
    cfg = load_run_config(CONFIGS / MODELS[model], [f"name={name}", f"output_dir={work}",
                                                    *overrides])
    return fit(cfg, ws=ws, run_dir=work / name, progress=False)


def throughput(args: argparse.Namespace, ws: WindowSet, work: Path) -> dict[str, Any]:
    """Last-epoch training windows/s of each model in each variant (module docstring, 1)."""
    data = [f"data_overrides.{o}" for o in SMALL]
    epochs = [f"train.epochs={args.throughput_epochs}", "train.patience=null",
              f"train.threads={args.threads}", *data]
    out: dict[str, Any] = {}
    for model in args.models:
        row: dict[str, Any] = {}
        for variant, overrides in VARIANTS.items():
            try:
                r = train(model, ws, work / "throughput", f"{model}-{variant}",
                          epochs + overrides)
            except Exception as err:  # e.g. an op without a bfloat16 kernel: recorded, go on
                row[variant] = None
                row.setdefault("errors", {})[variant] = f"{type(err).__name__}: {err}"
                print(f"{model} {variant}: FAILED {row['errors'][variant]}", flush=True)
                continue
            row[variant] = r.history[-1]["windows_per_s"]
        for name, num, den in (("gpu_x_cpu", "gpu", "cpu"), ("amp_x_fp32", "gpu_amp", "gpu"),
                               ("det_x_nondet", "gpu", "gpu_nondeterministic")):
            row[name] = row[num] / row[den] if row[num] and row[den] else None
        out[model] = row
        rates = (f"{k} {'-' if row[k] is None else f'{row[k]:,.0f}'} win/s" for k in VARIANTS)
        print(f"{model:13s} " + " | ".join(rates), flush=True)
    return out


def weights_sha(result: RunResult) -> str:
    return hashlib.sha256((result.run_dir / "model.safetensors").read_bytes()).hexdigest()


def repeatability(args: argparse.Namespace, ws: WindowSet, work: Path) -> dict[str, Any]:
    """CPU and GPU seeds, a repeated GPU seed, and the export of a GPU-trained model
    (module docstring, 2 and 3)."""
    model = args.repeat_model
    fixed = [f"train.epochs={args.epochs}", "train.patience=null", "train.selection=last",
             f"train.threads={args.threads}"]
    f1: dict[str, list[float]] = {"cpu": [], "gpu": []}
    first: dict[str, RunResult] = {}
    for where in ("cpu", "gpu"):
        for seed in args.seeds:
            r = train(model, ws, work / "repeat", f"{where}-{seed}",
                      fixed + VARIANTS[where] + [f"train.seed={seed}"])
            f1[where].append(r.metrics["test"]["macro_f1"])
            first.setdefault(where, r)
            print(f"{model} {where} seed {seed}: test macro-F1 {f1[where][-1]:.4f}", flush=True)
    again = train(model, ws, work / "repeat", f"gpu-{args.seeds[0]}-again",
                  fixed + VARIANTS["gpu"] + [f"train.seed={args.seeds[0]}"])
    gpu = first["gpu"]
    stats = {where: {"mean": statistics.fmean(v),
                     "std": statistics.stdev(v) if len(v) > 1 else 0.0} for where, v in f1.items()}
    delta = stats["gpu"]["mean"] - stats["cpu"]["mean"]
    noise = 2 * max(stats["cpu"]["std"], stats["gpu"]["std"])

    exported = export_run(gpu.run_dir, data_cfg=load_data_config(HAPT_QUICK))
    cpu_model, card = load_run_model(gpu.run_dir)
    channels = check_compatible(card, ws, "evaluate", where=str(gpu.run_dir))
    on_cpu = evaluate(cpu_model, ws, "test", channels=channels)["macro_f1"]
    out = {
        "model": model, "epochs": args.epochs, "seeds": args.seeds,
        "test_macro_f1": f1, "stats": stats, "gpu_minus_cpu": delta,
        "within_seed_noise": abs(delta) <= noise,
        "noise_rule": "|mean_gpu - mean_cpu| <= 2 x max(std_cpu, std_gpu)",
        "gpu_repeat_bit_identical": weights_sha(again) == weights_sha(gpu),
        "gpu_repeat_same_metrics": again.metrics["test"] == gpu.metrics["test"],
        "gpu_card": read_card(gpu.run_dir).model_dump(
            include={"device", "device_name", "cuda_version", "torch_version", "deterministic",
                     "amp"}),
        "export": {
            "parity": exported.check.to_dict(),
            "test_macro_f1_gpu_in_fit": gpu.metrics["test"]["macro_f1"],
            "test_macro_f1_on_cpu": on_cpu,
        },
    }
    print(f"{model}: GPU - CPU test macro-F1 {delta:+.4f} (noise bound {noise:.4f}); repeat "
          f"bit-identical {out['gpu_repeat_bit_identical']}; ONNX parity "
          f"{exported.check.max_abs_diff:.2e} ({'passed' if exported.check.passed else 'FAILED'})",
          flush=True)
    return out


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "gpu": torch.cuda.get_device_name(0),
        "gpus_seen": cuda_device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "cpu_threads": args.threads,
        "usable_cores": len(os.sched_getaffinity(0)),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if cuda_device_count() == 0:
        print(f"bench_device: torch sees no CUDA device ({no_cuda_reason()}); the GPU figures "
              f"are not measured and {args.out} is left as it is. Run it where torch sees a GPU.")
        return 0
    results: dict[str, Any] = {"environment": environment(args)}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_device-") as tmp:
        work = Path(tmp)
        if not args.skip_throughput:
            small = prepare(load_data_config(HAPT_QUICK, SMALL), args.cache_dir, progress=False)
            results["throughput"] = throughput(args, small, work)
        if not args.skip_repeat:
            full = prepare(load_data_config(HAPT_QUICK), args.cache_dir, progress=False)
            results["repeatability"] = repeatability(args, full, work)
    results["wall_s"] = time.perf_counter() - t0
    atomic_write_json(args.out, results)
    print(f"wrote {args.out} ({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
