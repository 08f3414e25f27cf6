"""`harkd report GRID_DIR [--out DIR] [--metric test.macro_f1]`: report.md, runs.csv,
summary.csv, comparisons.csv and PNG plots from a grid's run store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid_dir", type=Path, help="a grid folder (holding runs.sqlite)")
    parser.add_argument("--out", type=Path, default=None, help="default GRID_DIR/report")
    parser.add_argument("--metric", default="test.macro_f1",
                        help="the metric compared (a dotted key of the stored metrics)")


def run(args: argparse.Namespace) -> int:
    from harkd.report import write_report

    try:
        files = write_report(args.grid_dir, args.out, args.metric)
    except (OSError, KeyError) as err:
        print(f"harkd report: {err}", file=sys.stderr)
        return 1
    print(f"wrote {files.report_md}, {files.runs_csv.name}, {files.summary_csv.name}, "
          f"{files.comparisons_csv.name} and {len(files.pngs)} plots")
    return 0
