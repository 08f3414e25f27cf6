"""The report of a grid: `write_report(grid_dir)` reads its run store and writes report.md,
runs.csv, summary.csv, comparisons.csv and PNG plots (see `harkd.report.stats` for the
statistics and the choice of paired test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harkd.grid.runner import store_path
from harkd.grid.store import RunStore
from harkd.report import plots
from harkd.report.stats import TEST_RULE, baseline_comparisons, cell_summary, seed_means
from harkd.report.tables import (
    AUGMENT_KEY,
    METHOD_KEY,
    GridAxes,
    fmt,
    fmt_mean_std,
    grid_axes,
    markdown_table,
    runs_frame,
)

#: metric columns summarised per cell, when present
SUMMARY_PREFIXES = ("test.", "val.", "latency.")
LATENCY_COLUMNS = ("latency.p50_us", "latency.p50_ms", "latency.batch1_p50_us")


@dataclass
class ReportFiles:
    report_md: Path
    runs_csv: Path
    summary_csv: Path
    comparisons_csv: Path
    pngs: list[Path] = field(default_factory=list)


def write_report(grid_dir: str | Path, out_dir: str | Path | None = None,
                 metric: str = "test.macro_f1") -> ReportFiles:
    """Write the report of the grid in `grid_dir` (into `out_dir`, default `grid_dir/report`)."""
    grid_dir = Path(grid_dir)
    path = store_path(grid_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run store here; run `harkd grid SPEC` first")
    with RunStore(path) as store:
        axes = grid_axes(store)
        meta = store.get_meta("grid", {})
        runs = runs_frame(store.rows(), axes)
    out = Path(out_dir) if out_dir is not None else grid_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    done = runs[runs["status"] == "done"].copy() if not runs.empty else runs
    if not done.empty and metric not in done:
        raise KeyError(f"metric {metric!r} not in the stored metrics; have "
                       f"{sorted(c for c in done if c.startswith(SUMMARY_PREFIXES))}")
    files = ReportFiles(out / "report.md", out / "runs.csv", out / "summary.csv",
                        out / "comparisons.csv")
    runs.to_csv(files.runs_csv, index=False)
    metrics = [metric] + sorted(c for c in done if c.startswith(SUMMARY_PREFIXES) and c != metric)
    summary = cell_summary(done, axes.cells, metrics) if not done.empty else pd.DataFrame()
    summary.to_csv(files.summary_csv, index=False)
    md = _header(meta, grid_dir, runs)
    if done.empty:
        md.append("No finished runs yet.\n")
    else:
        md += _summary_section(summary, axes, metric)
        md += _heatmap_section(done, axes, metric, out, files)
        md += _axis_section(done, axes, metric, out, files)
        md += _comparison_section(done, axes, metric, out, files)
        md += _latency_section(done, axes, out, files)
    md += _failures(runs, axes)
    files.report_md.write_text("\n".join(md))
    return files


def _header(meta: dict, grid_dir: Path, runs: pd.DataFrame) -> list[str]:
    counts = runs["status"].value_counts().to_dict() if not runs.empty else {}
    versions = sorted({v for v in runs.get("code_version", []) if isinstance(v, str)})
    return [
        f"# Grid report: {meta.get('name', grid_dir.name)}\n",
        f"- spec: `{meta.get('source', '?')}`, profile: `{meta.get('profile') or 'none'}`",
        f"- grid dir: `{grid_dir}`",
        "- runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in
                               ("done", "failed", "running", "pending")),
        f"- code versions: {', '.join(versions) or 'n/a'}\n",
        "Figures are mean ± std (sample std, ddof=1) over seeds; n is the number of seeds "
        "(runs) in a cell.\n",
    ]


def _summary_section(summary: pd.DataFrame, axes: GridAxes, metric: str) -> list[str]:
    shown = [m for m in (metric, "test.accuracy", "val.macro_f1") if f"{m}_mean" in summary]
    table = summary[[*axes.cells, "n"]].copy()
    for m in shown:
        table[m] = [fmt_mean_std(a, b) for a, b in zip(summary[f"{m}_mean"],
                                                        summary[f"{m}_std"], strict=True)]
    return ["## Cells\n", markdown_table(table)]


def _heatmap_section(done: pd.DataFrame, axes: GridAxes, metric: str, out: Path,
                     files: ReportFiles) -> list[str]:
    aug, method = axes.by_key(AUGMENT_KEY), axes.by_key(METHOD_KEY)
    if aug is None or method is None:
        return []
    cells = seed_means(done, [aug, method], axes.seed, metric)
    order = (list(dict.fromkeys(cells[aug])), list(dict.fromkeys(cells[method])))
    pivot = {s: cells.pivot(index=aug, columns=method, values=s)
             .reindex(index=order[0], columns=order[1]) for s in ("mean", "std")}
    png = plots.heatmap(pivot["mean"], pivot["std"], out / "heatmap_augment_method.png",
                        f"{metric}: {aug} × {method}")
    files.pngs.append(png)
    table = pivot["mean"].copy().astype(object)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            table.iat[i, j] = fmt_mean_std(pivot["mean"].iat[i, j], pivot["std"].iat[i, j])
    table = table.reset_index().rename(columns={aug: f"{aug} \\ {method}"})
    others = [c for c in axes.cells if c not in (aug, method)]
    note = f"Averaged over {others} within each seed.\n" if others else ""
    return ["## Augmentation × method\n", note, f"![heatmap]({png.name})\n",
            markdown_table(table)]


def _axis_section(done: pd.DataFrame, axes: GridAxes, metric: str, out: Path,
                  files: ReportFiles) -> list[str]:
    per_axis = {a: seed_means(done, [a], axes.seed, metric) for a in axes.cells}
    if not per_axis:
        return []
    png = plots.axis_means(per_axis, out / "axis_means.png", metric)
    files.pngs.append(png)
    md = ["## Per-axis means\n",
          f"Each value's {metric}: the mean over the other axes per seed, then mean ± std over "
          "seeds.\n", f"![axis means]({png.name})\n"]
    for a, df in per_axis.items():
        table = pd.DataFrame({a: df[a], metric: [fmt_mean_std(m, s) for m, s in
                                                 zip(df["mean"], df["std"], strict=True)],
                              "n": df["n"]})
        md += [f"### {a}\n", markdown_table(table)]
    return md


def _comparison_section(done: pd.DataFrame, axes: GridAxes, metric: str, out: Path,
                        files: ReportFiles) -> list[str]:
    md = ["## Against the baseline\n", TEST_RULE]
    frames = []
    for key in (AUGMENT_KEY, METHOD_KEY):
        axis = axes.by_key(key)
        if axis is None:
            continue
        comp = baseline_comparisons(done, axes.cells, axes.seed, axis, "none", metric)
        if comp.empty:
            md.append(f"_No `{axis}=none` baseline in this grid._\n")
            continue
        comp.insert(0, "compared_axis", axis)
        frames.append(comp)
        label_cols = [axis, *[c for c in axes.cells if c != axis]]
        png = plots.deltas(comp, label_cols, out / f"delta_{axis}.png",
                           f"{metric}: each {axis} vs {axis}=none")
        files.pngs.append(png)
        table = comp[label_cols].copy()
        table[f"Δ {metric}"] = [fmt_mean_std(m, s) for m, s in
                                zip(comp["diff_mean"], comp["diff_std"], strict=True)]
        table["n"] = comp["n"]
        table["test"] = comp["test"]
        table["p"] = [fmt(p) for p in comp["p"]]
        md += [f"### {axis} vs {axis}=none\n", f"![delta]({png.name})\n", markdown_table(table)]
    all_comp = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    all_comp.to_csv(files.comparisons_csv, index=False)
    return md if frames else []


def _latency_section(done: pd.DataFrame, axes: GridAxes, out: Path,
                     files: ReportFiles) -> list[str]:
    col = next((c for c in LATENCY_COLUMNS if c in done and done[c].notna().any()), None)
    acc = "test.accuracy" if "test.accuracy" in done else None
    if col is None or acc is None:
        return []
    have = done[done[col].notna() & done[acc].notna()]
    png = plots.accuracy_latency(have, col, acc, axes.cells, out / "accuracy_latency.png")
    files.pngs.append(png)
    return ["## Accuracy against latency\n", f"![accuracy vs latency]({png.name})\n"]


def _failures(runs: pd.DataFrame, axes: GridAxes) -> list[str]:
    if runs.empty or not (runs["status"] == "failed").any():
        return []
    failed = runs[runs["status"] == "failed"]
    return ["## Failed runs\n", markdown_table(failed[["hash", *axes.keys, "attempts", "error"]])]
