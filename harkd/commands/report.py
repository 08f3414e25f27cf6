"""`harkd report GRID_DIR [--out DIR] [--metric test.macro_f1] [--baseline AXIS=LABEL]`:
report.md, runs.csv, summary.csv, comparisons.csv and PNG plots from a grid's run store; for a
grid with augmentation, method and seed axes also the augmentation-in-distillation analysis
(`harkd.report.aug_study`: augmentation.md, .json, _effects.csv and heat maps)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harkd.config import ConfigError

if TYPE_CHECKING:
    from harkd.grid.table import GridTable
    from harkd.report import ReportFiles
    from harkd.report.aug_study import StudyAxes

#: the config keys of the axes the augmentation analysis needs
AUGMENT_KEY, METHOD_KEY = "augment.policy", "distill.method"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid_dir", type=Path, help="a grid folder (holding runs.sqlite)")
    parser.add_argument("--out", type=Path, default=None, help="default GRID_DIR/report")
    parser.add_argument("--metric", default="test.macro_f1",
                        help="the metric compared (a dotted key of the stored metrics)")
    parser.add_argument("--baseline", action="append", default=[], metavar="AXIS=LABEL",
                        help="compare every value of AXIS with LABEL, cell by cell and paired by "
                             "seed (repeatable, one per axis; default: the label `none` of the "
                             "augmentation and method axes), e.g. method=ls for a control")


def report_grid(grid_dir: Path, out_dir: Path | None = None, metric: str = "test.macro_f1",
                baselines: list[str] | None = None) -> ReportFiles:
    """The report of the grid in `grid_dir` (into `out_dir`, default `grid_dir/report`): its
    run store as a table (`harkd.grid.table`), written by `harkd.report.write_report`.
    `baselines`: `AXIS=LABEL` items that replace the table's baseline of AXIS."""
    from harkd.grid.table import grid_table
    from harkd.report import write_report

    table = grid_table(grid_dir)
    chosen = {**table.baselines, **parse_baselines(baselines or [], table)}
    out = out_dir or Path(grid_dir) / "report"
    files = write_report(table.runs, table.axes, out, seed=table.seed,
                         baselines=chosen, heatmap=table.heatmap, metric=metric,
                         title=table.title, about=table.about)
    axes = study_axes(table)
    if axes is not None and _has_baselines(table, axes):
        from harkd.report.aug_study import write_augmentation_study

        study = write_augmentation_study(table.runs, axes, out, metric=metric, about=table.about)
        files.pngs += study.pngs
        files.analyses += [study.markdown, study.json, study.csv]
    return files


def parse_baselines(items: list[str], table: GridTable) -> dict[str, str]:
    """`["method=ls"]` -> {"method": "ls"}, each axis and label checked against the grid."""
    out = {}
    for item in items:
        axis, sep, label = item.partition("=")
        if not sep or not axis or not label:
            raise ConfigError(f"--baseline {item!r}: expected AXIS=LABEL")
        if axis not in table.axes or axis == table.seed:
            raise ConfigError(f"--baseline {item!r}: {axis!r} is not a compared axis of the grid; "
                              f"axes: {[a for a in table.axes if a != table.seed]}")
        labels = sorted(set(table.runs[axis].dropna().astype(str)))
        if label not in labels:
            raise ConfigError(f"--baseline {item!r}: no run has {axis}={label}; labels: {labels}")
        out[axis] = label
    return out


def study_axes(table: GridTable) -> StudyAxes | None:
    """The parts the grid's axes play in the augmentation analysis (None without an
    augmentation, a method or a seed axis). Axes of other `augment.*` keys (the teacher's
    input) are settings of the augmentation: not matched against unaugmented references."""
    from harkd.report.aug_study import StudyAxes

    by_key = {key: name for name, key in table.keys.items()}
    augment, method = by_key.get(AUGMENT_KEY), by_key.get(METHOD_KEY)
    if augment is None or method is None or table.seed is None:
        return None
    loose = tuple(n for n, k in table.keys.items() if k.startswith("augment.") and n != augment)
    return StudyAxes(augment=augment, method=method, seed=table.seed,
                     cells=tuple(a for a in table.axes if a != table.seed), loose=loose)


def _has_baselines(table: GridTable, axes: StudyAxes) -> bool:
    done = table.runs[table.runs["status"] == "done"]
    return all((done[a].astype(str) == axes.baseline).any() for a in (axes.augment, axes.method))


def run(args: argparse.Namespace) -> int:
    files = report_grid(args.grid_dir, args.out, args.metric, args.baseline)
    print(f"wrote {files.report_md}, {files.runs_csv.name}, {files.summary_csv.name}, "
          f"{files.comparisons_csv.name}, {len(files.pngs)} plots"
          + "".join(f", {p.name}" for p in files.analyses))
    return 0
