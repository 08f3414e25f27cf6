"""`harkd demo [--config configs/quickstart.yaml] [key=value ...]`: the quickstart."""

from __future__ import annotations

import argparse
import sys

from harkd.config import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/quickstart.yaml", help="quickstart YAML")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="e.g. seeds=[0] student_overrides.train.epochs=5",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from harkd.quickstart import load_quickstart_config, run_quickstart

    try:
        qs = load_quickstart_config(args.config, args.overrides)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    run_quickstart(qs, progress=not args.no_progress)
    return 0
