"""`harkd evaluate RUN_DIR --data CONFIG [key=value ...]`: score a finished run on a protocol.

The run's card (`harkd.train.runcard`) must fit the protocol (`check_compatible`: view,
classes, window, rate, and no test subject among the run's training or validation subjects).
The model is fed its own view of the protocol's windows, standardised with the statistics in its
card (those of its training split), on `--device` (as `train.device`: auto, cpu, cuda, cuda:N).
Prints accuracy, macro-F1, weighted F1, ECE and per-class F1 per split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harkd.commands.options import DEFAULT_THREADS, add_threads_option
from harkd.shipped import config_file

SPLIT_CHOICES = ("train", "val", "test", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run directory of `harkd train`/`distill`")
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar=("CONFIG", "KEY=VALUE"),
        help="data protocol YAML (configs/data/*.yaml) and its overrides, e.g. split.fold=3",
    )
    parser.add_argument("--split", choices=SPLIT_CHOICES, default="test", help="default: test")
    parser.add_argument("--out", type=Path, default=None, help="also write the metrics as JSON")
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when seen, else the CPU), cpu, cuda or cuda:N")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="WindowSet cache (default $HARKD_CACHE)"
    )
    add_threads_option(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare
    from harkd.data import Normalizer
    from harkd.train.checkpoint import load_run_model
    from harkd.train.compat import check_compatible
    from harkd.train.device import resolve_device
    from harkd.train.metrics import evaluate

    torch.set_num_threads(args.threads or DEFAULT_THREADS)
    model, card = load_run_model(args.run_dir)
    device, note = resolve_device(args.device, what="--device")
    data, *overrides = args.data
    ws = prepare(load_data_config(config_file(data), overrides), args.cache_dir, progress=False)
    channels = check_compatible(card, ws, "evaluate", where=str(args.run_dir))
    if note:
        print(note, file=sys.stderr)
    model.to(device)
    norm = Normalizer(card.norm.mean, card.norm.std)
    splits = ("train", "val", "test") if args.split == "all" else (args.split,)
    results = {}
    for split in splits:
        if not ws.mask(split).any():
            print(f"{split}: no windows", file=sys.stderr)
            continue
        results[split] = m = evaluate(model, ws, split, norm, channels=channels)
        per_class = ", ".join(
            f"{k} {'-' if v is None else f'{v:.3f}'}" for k, v in m["per_class_f1"].items()
        )
        print(
            f"{split}: {m['n']} windows | accuracy {m['accuracy']:.4f} | macro-F1 "
            f"{m['macro_f1']:.4f} | weighted F1 {m['weighted_f1']:.4f} | ECE {m['ece']:.4f}\n"
            f"  per-class F1: {per_class}"
        )
    if args.out is not None:
        from harkd.train.rundir import atomic_write_json

        atomic_write_json(args.out, {"run_dir": str(args.run_dir), **results})
    return 0
