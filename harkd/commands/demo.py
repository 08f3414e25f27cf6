"""`harkd demo [--config configs/quickstart.yaml] [--profile P] [--select AXIS=L,...] [--workers N]
[key=value ...]`:
the quickstart, a grid spec run by the experiment engine, then its report."""

from __future__ import annotations

import argparse

from harkd.commands.grid import add_select_argument, parse_select
from harkd.commands.options import positive_int
from harkd.shipped import config_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="configs/quickstart.yaml",
                        help="the quickstart's grid spec (default: the shipped one)")
    parser.add_argument("--profile", default=None, help="a profile of the spec, e.g. short")
    add_select_argument(parser)
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="local worker processes (each gets cores // workers threads)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="keys of the spec, e.g. output_dir=/tmp/qs latency.runs=500",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from harkd.quickstart import load_quickstart, run_quickstart

    spec = load_quickstart(config_file(args.config), args.overrides)
    spec = spec.select(parse_select(args.select))
    run_quickstart(spec, args.profile, workers=args.workers, progress=not args.no_progress)
    return 0
