"""The report of a set of runs: `write_report(runs, axes, out_dir, ...)` writes report.md,
runs.csv, summary.csv, comparisons.csv and PNG plots (each atomically) from a plain table of
runs (see `harkd.report.stats` for the statistics and the choice of paired test).

The table has one row per run: `run_id`, optionally `status` (only `done` runs are summarised;
missing means every run is done), one column per axis holding the run's label on that axis
(the seed axis included), and numeric metric columns with dotted names (`test.macro_f1`,
`val.accuracy`, `latency.p50_us`, ...). Optional columns: `code_version` (listed in the
header), `attempts` and `error` (listed for failed runs). Whoever ran the runs builds the table
(`harkd.grid.table` for a grid); the report knows nothing of where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harkd.report import plots
from harkd.report.stats import (
    TEST_RULE,
    MeanStd,
    baseline_comparisons,
    cell_summary,
    format_mean_std,
    seed_means,
)
from harkd.report.tables import fmt, frame_table
from harkd.train.rundir import atomic_write_bytes

#: metric columns summarised per cell, when present (`method.`: what a distiller measured, such
#: as MIX-KD's teacher smoothness)
SUMMARY_PREFIXES = ("test.", "val.", "latency.", "method.")
LATENCY_COLUMNS = ("latency.p50_us", "latency.p50_ms", "latency.batch1_p50_us")
STATUSES = ("done", "failed", "running", "pending")


@dataclass
class ReportFiles:
    report_md: Path
    runs_csv: Path
    summary_csv: Path
    comparisons_csv: Path
    pngs: list[Path] = field(default_factory=list)
    analyses: list[Path] = field(default_factory=list)  # further tables (augmentation.md, ...)


@dataclass(frozen=True)
class _Layout:
    axes: list[str]
    seed: str | None
    baselines: dict[str, str]
    heatmap: tuple[str, str] | None

    @property
    def cells(self) -> list[str]:
        """The axes that define a cell (all but the seed)."""
        return [a for a in self.axes if a != self.seed]


def write_report(
    runs: pd.DataFrame,
    axes: Sequence[str],
    out_dir: str | Path,
    *,
    seed: str | None = None,
    baselines: Mapping[str, str] | None = None,
    heatmap: tuple[str, str] | None = None,
    metric: str = "test.macro_f1",
    title: str = "Report",
    about: Sequence[str] = (),
) -> ReportFiles:
    """Write the report of `runs` (the table described in the module docstring) into `out_dir`.

    Args:
        axes: the axis columns, in order; `seed` names the one holding seeds (statistics are
            over seeds, comparisons paired on seed).
        baselines: axis -> the label every other label of that axis is compared with, cell by
            cell (e.g. {"augment": "none"}).
        heatmap: (row axis, column axis) of a heat map of `metric`.
        title, about: the report's title and the lines under it (where the runs came from).
    """
    layout = _Layout(list(axes), seed, dict(baselines or {}), heatmap)
    runs = _checked(runs, layout)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = runs[runs["status"] == "done"].copy()
    if not done.empty and metric not in done:
        raise KeyError(f"metric {metric!r} not in the runs' metrics; have "
                       f"{sorted(c for c in done if c.startswith(SUMMARY_PREFIXES))}")
    files = ReportFiles(out / "report.md", out / "runs.csv", out / "summary.csv",
                        out / "comparisons.csv")
    _write_csv(runs, files.runs_csv)
    metrics = [metric] + sorted(c for c in done if c.startswith(SUMMARY_PREFIXES) and c != metric)
    summary = cell_summary(done, layout.cells, metrics) if not done.empty else pd.DataFrame()
    _write_csv(summary, files.summary_csv)
    md = _header(title, about, runs)
    comparisons = pd.DataFrame()
    if done.empty:
        md.append("No finished runs yet.\n")
    else:
        md += _summary_section(summary, layout, metric)
        md += _heatmap_section(done, layout, metric, out, files)
        md += _axis_section(done, layout, metric, out, files)
        section, comparisons = _comparison_section(done, layout, metric, out, files)
        md += section
        md += _latency_section(done, layout, out, files)
    _write_csv(comparisons, files.comparisons_csv)
    md += _failures(runs, layout)
    atomic_write_bytes(files.report_md, "\n".join(md).encode())
    return files


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(path, df.to_csv(index=False).encode())


def _checked(runs: pd.DataFrame, layout: _Layout) -> pd.DataFrame:
    """`runs` with a `status` column, or ValueError naming what the table lacks."""
    missing = [c for c in ("run_id", *layout.axes) if c not in runs]
    if missing:
        raise ValueError(f"the runs table lacks column(s) {missing} (expected run_id and one "
                         f"column per axis {layout.axes}); it has {list(runs.columns)}")
    named = [a for a in (layout.seed, *layout.baselines, *(layout.heatmap or ())) if a]
    unknown = [a for a in named if a not in layout.axes]
    if unknown:
        raise ValueError(f"axis {unknown[0]!r} (seed, baseline or heat map) is not one of the "
                         f"axes {layout.axes}")
    if "status" in runs:
        return runs
    return runs.assign(status="done")


def _ms(mean: float, std: float, n: int) -> str:
    return format_mean_std(MeanStd(mean, std, int(n)))


def _header(title: str, about: Sequence[str], runs: pd.DataFrame) -> list[str]:
    counts = runs["status"].value_counts().to_dict()
    others = sorted(set(counts) - set(STATUSES))
    versions = sorted({v for v in runs.get("code_version", []) if isinstance(v, str)})
    return [
        f"# {title}\n",
        *[f"- {line}" for line in about],
        "- runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in (*STATUSES, *others)),
        f"- code versions: {', '.join(versions) or 'n/a'}\n",
        "Figures are mean ± std (sample std, ddof=1) over seeds; n is the number of seeds "
        "(runs) in a cell; a cell of one run shows its value and (n = 1).\n",
    ]


def _summary_section(summary: pd.DataFrame, layout: _Layout, metric: str) -> list[str]:
    shown = [m for m in (metric, "test.accuracy", "val.macro_f1") if f"{m}_mean" in summary]
    table = summary[[*layout.cells, "n"]].copy()
    for m in shown:
        table[m] = [_ms(*v) for v in zip(summary[f"{m}_mean"], summary[f"{m}_std"],
                                          summary[f"{m}_n"], strict=True)]
    md = ["## Cells\n", frame_table(table)]
    measured = sorted(c.removesuffix("_mean") for c in summary
                      if c.startswith("method.") and c.endswith("_mean"))
    if measured:
        rows = summary[[f"{m}_mean" for m in measured]].notna().any(axis=1)
        found = summary.loc[rows, [*layout.cells]].copy()
        for m in measured:
            found[m] = [_ms(*v) if v[2] else "" for v in zip(
                summary.loc[rows, f"{m}_mean"], summary.loc[rows, f"{m}_std"],
                summary.loc[rows, f"{m}_n"], strict=True)]
        md += ["### What the methods measured\n",
               "Values a distiller records beside its scores (`method.*` in the store), "
               "mean ± std over seeds.\n", frame_table(found)]
    return md


def _heatmap_section(done: pd.DataFrame, layout: _Layout, metric: str, out: Path,
                     files: ReportFiles) -> list[str]:
    if layout.heatmap is None:
        return []
    rows, cols = layout.heatmap
    cells = seed_means(done, [rows, cols], layout.seed, metric)
    order = (list(dict.fromkeys(cells[rows])), list(dict.fromkeys(cells[cols])))
    pivot = {s: cells.pivot(index=rows, columns=cols, values=s)
             .reindex(index=order[0], columns=order[1]) for s in ("mean", "std", "n")}
    pivot["n"] = pivot["n"].fillna(0)
    png = plots.heatmap(pivot["mean"], pivot["std"], pivot["n"], out / f"heatmap_{rows}_{cols}.png",
                        f"{metric}: {rows} × {cols}")
    files.pngs.append(png)
    table = pivot["mean"].copy().astype(object)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            table.iat[i, j] = _ms(*(pivot[s].iat[i, j] for s in ("mean", "std", "n")))
    table = table.reset_index().rename(columns={rows: f"{rows} \\ {cols}"})
    others = [c for c in layout.cells if c not in (rows, cols)]
    note = f"Averaged over {others} within each seed.\n" if others else ""
    return [f"## {rows} × {cols}\n", note, f"![heatmap]({png.name})\n", frame_table(table)]


def _axis_section(done: pd.DataFrame, layout: _Layout, metric: str, out: Path,
                  files: ReportFiles) -> list[str]:
    per_axis = {a: seed_means(done, [a], layout.seed, metric) for a in layout.cells}
    if not per_axis:
        return []
    png = plots.axis_means(per_axis, out / "axis_means.png", metric)
    files.pngs.append(png)
    md = ["## Per-axis means\n",
          f"Each value's {metric}: the mean over the other axes per seed, then mean ± std over "
          "seeds.\n", f"![axis means]({png.name})\n"]
    for a, df in per_axis.items():
        table = pd.DataFrame({a: df[a], metric: [_ms(*v) for v in zip(
            df["mean"], df["std"], df["n"], strict=True)], "n": df["n"]})
        md += [f"### {a}\n", frame_table(table)]
    return md


def _comparison_section(done: pd.DataFrame, layout: _Layout, metric: str, out: Path,
                        files: ReportFiles) -> tuple[list[str], pd.DataFrame]:
    md = ["## Against the baseline\n", TEST_RULE]
    frames = []
    for axis, baseline in layout.baselines.items():
        comp = baseline_comparisons(done, layout.cells, layout.seed, axis, baseline, metric)
        if comp.empty:
            md.append(f"_No `{axis}={baseline}` baseline among the finished runs._\n")
            continue
        comp.insert(0, "compared_axis", axis)
        frames.append(comp)
        label_cols = [axis, *[c for c in layout.cells if c != axis]]
        png = plots.deltas(comp, label_cols, out / f"delta_{axis}.png",
                           f"{metric}: each {axis} vs {axis}={baseline}")
        files.pngs.append(png)
        table = comp[label_cols].copy()
        table[f"Δ {metric}"] = [format_mean_std(MeanStd(*v), signed=True) for v in zip(
            comp["diff_mean"], comp["diff_std"], comp["n"], strict=True)]
        table["n"] = comp["n"]
        table["95% bootstrap CI"] = [f"[{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else ""
                                     for lo, hi in zip(comp["ci_low"], comp["ci_high"],
                                                       strict=True)]
        table["test"] = comp["test"]
        table["p"] = [fmt(p) for p in comp["p"]]
        md += [f"### {axis} vs {axis}={baseline}\n", f"![delta]({png.name})\n",
               frame_table(table)]
    if not frames:
        return [], pd.DataFrame()
    return md, pd.concat(frames, ignore_index=True)


def _latency_section(done: pd.DataFrame, layout: _Layout, out: Path,
                     files: ReportFiles) -> list[str]:
    col = next((c for c in LATENCY_COLUMNS if c in done and done[c].notna().any()), None)
    acc = "test.accuracy" if "test.accuracy" in done else None
    if col is None or acc is None:
        return []
    have = done[done[col].notna() & done[acc].notna()]
    png = plots.accuracy_latency(have, col, acc, layout.cells, out / "accuracy_latency.png")
    files.pngs.append(png)
    return ["## Accuracy against latency\n", f"![accuracy vs latency]({png.name})\n"]


def _failures(runs: pd.DataFrame, layout: _Layout) -> list[str]:
    failed = runs[runs["status"] == "failed"]
    if failed.empty:
        return []
    columns = ["run_id", *layout.axes, *(c for c in ("attempts", "error") if c in runs)]
    return ["## Failed runs\n", frame_table(failed[columns])]
