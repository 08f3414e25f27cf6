"""`harkd evaluate RUN_DIR --data CONFIG [key=value ...]`: score a finished run on a protocol.

The run's model is fed its own view of the protocol's windows, standardised with the
statistics stored in its model.json (those of its training split). Prints accuracy, macro-F1,
weighted F1, ECE and per-class F1 per split, and warns when a scored subject was among the
run's training or validation subjects.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.windowset import WindowSet
from harkd.config import ConfigError

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
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="WindowSet cache (default $HARKD_CACHE)"
    )


def run(args: argparse.Namespace) -> int:
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare
    from harkd.data import Normalizer
    from harkd.train.checkpoint import load_run_model
    from harkd.train.metrics import evaluate

    try:
        model, meta = load_run_model(args.run_dir)
        data, *overrides = args.data
        ws = prepare(load_data_config(data, overrides), args.cache_dir, progress=False)
        channels = check_compatible(meta, ws)
    except (ConfigError, FileNotFoundError, KeyError) as err:
        print(f"harkd evaluate: {err}", file=sys.stderr)
        return 2
    norm = Normalizer(meta["norm"]["mean"], meta["norm"]["std"])
    splits = ("train", "val", "test") if args.split == "all" else (args.split,)
    seen = set(meta.get("split_subjects", {}).get("train", [])) | set(
        meta.get("split_subjects", {}).get("val", [])
    )
    results = {}
    for split in splits:
        if not ws.mask(split).any():
            print(f"{split}: no windows", file=sys.stderr)
            continue
        overlap = seen & set(ws.meta["split_subjects"][split])
        if overlap and split == "test":
            print(
                f"warning: test subjects {sorted(overlap)} were in the run's training/validation "
                "subjects; these scores are not held-out",
                file=sys.stderr,
            )
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
        args.out.write_text(json.dumps({"run_dir": str(args.run_dir), **results}, indent=1))
    return 0


def check_compatible(meta: dict, ws: WindowSet) -> list[int]:
    """The run's channel indices, after checking the protocol gives the channels and classes
    the model was trained on."""
    channels = list(meta["channel_indices"])
    have = ws.channels
    if max(channels) >= len(have) or [have[i] for i in channels] != list(meta["channels"]):
        raise ConfigError(
            f"the data's channels {have} do not give the run's view {meta['view']} "
            f"(channels {meta['channels']} at {channels})"
        )
    if list(ws.label_names) != list(meta["label_names"]):
        raise ConfigError(
            f"the data's classes {ws.label_names} differ from the run's {meta['label_names']}"
        )
    if ws.X.shape[-1] != meta["window"]:
        raise ConfigError(
            f"the data's windows have {ws.X.shape[-1]} samples, the run's model {meta['window']}"
        )
    return channels
