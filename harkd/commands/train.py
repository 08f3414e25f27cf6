"""`harkd train CONFIG [key=value ...]`: train one model (teacher, student or peer).

The config is a run config (`harkd.config.RunConfig`, e.g. configs/train/*.yaml); training is
`harkd.train.loop.fit` with whatever method the config names (`none` by default: the model
alone). Rerunning a finished run reuses it; an interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harkd.config import ConfigError, load_run_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML (e.g. configs/train/teacher_cnn1d.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. train.epochs=5"
    )
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="run directory (default: OUTPUT_DIR/NAME)"
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="WindowSet cache (default $HARKD_CACHE)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_run_config(args.config, args.overrides)
        from harkd.train.loop import fit  # torch is imported once the config is known good

        result = fit(
            cfg, run_dir=args.run_dir, progress=not args.no_progress, cache_dir=args.cache_dir
        )
    except ConfigError as err:
        print(f"harkd train: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0
