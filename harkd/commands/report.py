"""`harkd report GRID_DIR [--out DIR] [--metric test.macro_f1]`: report.md, runs.csv,
summary.csv, comparisons.csv and PNG plots from a grid's run store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harkd.report import ReportFiles


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid_dir", type=Path, help="a grid folder (holding runs.sqlite)")
    parser.add_argument("--out", type=Path, default=None, help="default GRID_DIR/report")
    parser.add_argument("--metric", default="test.macro_f1",
                        help="the metric compared (a dotted key of the stored metrics)")


def report_grid(grid_dir: Path, out_dir: Path | None = None,
                metric: str = "test.macro_f1") -> ReportFiles:
    """The report of the grid in `grid_dir` (into `out_dir`, default `grid_dir/report`): its
    run store as a table (`harkd.grid.table`), written by `harkd.report.write_report`."""
    from harkd.grid.table import grid_table
    from harkd.report import write_report

    table = grid_table(grid_dir)
    return write_report(table.runs, table.axes, out_dir or Path(grid_dir) / "report",
                        seed=table.seed, baselines=table.baselines, heatmap=table.heatmap,
                        metric=metric, title=table.title, about=table.about)


def run(args: argparse.Namespace) -> int:
    try:
        files = report_grid(args.grid_dir, args.out, args.metric)
    except (OSError, KeyError, ValueError) as err:
        print(f"harkd report: {err}", file=sys.stderr)
        return 1
    print(f"wrote {files.report_md}, {files.runs_csv.name}, {files.summary_csv.name}, "
          f"{files.comparisons_csv.name} and {len(files.pngs)} plots")
    return 0
