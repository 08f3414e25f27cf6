"""The augmentation-in-distillation analysis (docs/augmentation-in-distillation.md).

From a runs table with an augmentation axis, a method axis and a seed axis (the `harkd.report`
table), every cell is compared, paired on seed (`harkd.report.paired_effects`), with two
references: the student alone without augmentation (method none, augment none), and the same
method without augmentation (the augmentation's own effect). Holm's adjustment runs within one
family per method (and per value of every other axis that is not augmentation: the student),
so each family answers "which policies help this method". Written, each atomically:
`augmentation.md` (tables), `augmentation.json` (every number), `augmentation_effects.csv` and
one heat map per reference (`augmentation_vs_<reference>.png`: mean difference, `*` where the
Holm-adjusted p is below 0.05), with the per-class F1 effects of the top cells.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harkd.report import plots
from harkd.report.paired_effects import (
    ALPHA,
    Reference,
    paired_effects,
    per_class_effects,
)
from harkd.report.stats import BOOTSTRAP_RESAMPLES, WILCOXON_MIN_N, MeanStd, format_mean_std
from harkd.report.tables import fmt, frame_table
from harkd.train.rundir import atomic_write_bytes

#: cells per reference whose per-class effects are tabulated
TOP_CELLS = 5


@dataclass(frozen=True)
class StudyAxes:
    """Which axes of the runs table play which part.

    `cells` are every axis but the seed; `loose` are settings that mean nothing without
    augmentation (`augment.teacher_input`), not matched against a reference without it.
    """

    augment: str
    method: str
    seed: str
    cells: tuple[str, ...]
    loose: tuple[str, ...] = ()
    baseline: str = "none"

    @property
    def family(self) -> list[str]:
        """The axes whose labels define a Holm family: all but augmentation and its settings."""
        return [a for a in self.cells if a != self.augment and a not in self.loose]

    def references(self) -> list[Reference]:
        b = self.baseline
        return [
            Reference("alone", f"the student alone without augmentation ({self.method} {b}, "
                               f"{self.augment} {b})", {self.augment: b, self.method: b}),
            Reference("no_augmentation", f"the same {self.method} without augmentation "
                                         f"({self.augment} {b})", {self.augment: b}),
        ]


@dataclass
class StudyFiles:
    markdown: Path
    json: Path
    csv: Path
    pngs: list[Path] = field(default_factory=list)


def write_augmentation_study(runs: pd.DataFrame, axes: StudyAxes, out_dir: str | Path, *,
                             metric: str = "test.macro_f1", about: Sequence[str] = ()
                             ) -> StudyFiles:
    """Write the analysis of the finished runs of `runs` into `out_dir` (see the module
    docstring); ValueError when the table lacks an axis or the metric, or has no finished run
    of the baseline."""
    done = runs[runs["status"] == "done"] if "status" in runs else runs
    if metric not in done:
        raise ValueError(f"metric {metric!r} not in the runs table")
    for axis in (axes.augment, axes.method):
        if axes.baseline not in set(done[axis].astype(str)):
            raise ValueError(f"no finished run with {axis}={axes.baseline}: the analysis needs "
                             "the unaugmented and the undistilled baselines")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = StudyFiles(out / "augmentation.md", out / "augmentation.json",
                       out / "augmentation_effects.csv")
    cells = list(axes.cells)
    md = [f"# Augmentation in distillation: {metric}\n", *[f"- {line}" for line in about], "",
          _method_text(axes, metric)]
    record: dict[str, Any] = {"metric": metric, "alpha": ALPHA, "family_axes": axes.family,
                              "loose_axes": list(axes.loose), "references": []}
    frames = []
    for ref in axes.references():
        effects = paired_effects(done, cells, axes.seed, ref, metric, loose=axes.loose,
                                 family=axes.family)  # cells in the order of the runs
        png = _heatmap(effects, axes, ref, metric, out / f"augmentation_vs_{ref.name}.png")
        if png is not None:
            files.pngs.append(png)
        effects = effects.sort_values(["family", "diff_mean"], ascending=[True, False],
                                      kind="stable").reset_index(drop=True)
        per_class = per_class_effects(done, cells, axes.seed, ref, effects, top=TOP_CELLS,
                                      loose=axes.loose, split=metric.split(".", 1)[0])
        md += _reference_section(effects, per_class, axes, ref, metric, png)
        frames.append(effects.assign(reference=ref.name))
        record["references"].append({
            "name": ref.name, "title": ref.title, "fixed": dict(ref.fixed),
            "families": _families(effects), "effects": _records(effects),
            "per_class_top": _records(per_class)})
    atomic_write_bytes(files.csv, pd.concat(frames, ignore_index=True).to_csv(index=False)
                       .encode())
    atomic_write_bytes(files.json, (json.dumps(record, indent=1) + "\n").encode())
    atomic_write_bytes(files.markdown, "\n".join(md).encode())
    return files


def _method_text(axes: StudyAxes, metric: str) -> str:
    return (
        f"Each cell is compared with a reference cell run by run on the seed: Δ is the mean ± "
        f"std of the paired differences of {metric} (n pairs), with a 95 % percentile "
        f"bootstrap interval ({BOOTSTRAP_RESAMPLES:,} resamples, seeded) and a two-sided "
        f"paired test (Wilcoxon signed-rank for n >= {WILCOXON_MIN_N}, else the paired "
        f"t-test). Holm's step-down adjustment runs within each family of cells sharing "
        f"{axes.family}: `*` marks a Holm-adjusted p < {ALPHA}. The exact Wilcoxon test cannot "
        f"give p below 2/2^n, so a family of m tests can only reject where m·2/2^n < {ALPHA} "
        f"(the table of families says where). {list(axes.loose)} are matched only where "
        f"augmentation makes them mean something.\n")


def _cell_label(row: pd.Series, columns: Sequence[str]) -> str:
    return " / ".join(str(row[c]) for c in columns)


def _heatmap(effects: pd.DataFrame, axes: StudyAxes, ref: Reference, metric: str,
             path: Path) -> Path | None:
    """The heat map of the cells with pairs (None when no cell has any yet)."""
    columns = [a for a in axes.cells if a != axes.augment]
    if not (effects["n"] > 0).any():
        return None
    shown = effects[effects["n"] > 0].assign(
        column=lambda d: [_cell_label(r, columns) for _, r in d.iterrows()])
    rows = list(dict.fromkeys(shown[axes.augment]))
    cols = list(dict.fromkeys(shown["column"]))
    diffs = shown.pivot(index=axes.augment, columns="column", values="diff_mean")
    marks = shown.pivot(index=axes.augment, columns="column", values="significant")
    diffs = diffs.reindex(index=rows, columns=cols)
    marks = marks.reindex(index=rows, columns=cols).fillna(False).astype(bool)
    diffs.columns.name = " / ".join(columns)
    return plots.diff_heatmap(diffs, marks, path,
                              f"{metric}: each cell − {ref.title}\n(× 100; * Holm p < {ALPHA})")


def _reference_section(effects: pd.DataFrame, per_class: pd.DataFrame, axes: StudyAxes,
                       ref: Reference, metric: str, png: Path | None) -> list[str]:
    table = effects[list(axes.cells)].copy()
    table["n"] = effects["n"]
    table[f"Δ {metric}"] = [format_mean_std(MeanStd(m, s, int(n)), signed=True) for m, s, n in
                            zip(effects["diff_mean"], effects["diff_std"], effects["n"],
                                strict=True)]
    table["95% bootstrap CI"] = [f"[{lo:+.3f}, {hi:+.3f}]" if pd.notna(lo) else "" for lo, hi in
                                 zip(effects["ci_low"], effects["ci_high"], strict=True)]
    table["test"] = effects["test"]
    table["p"] = [fmt(p, 4) for p in effects["p"]]
    table["Holm p"] = [fmt(p, 4) for p in effects["p_holm"]]
    table["m"] = effects["m"]
    table["sig"] = ["*" if s else "" for s in effects["significant"]]
    fams = pd.DataFrame(_families(effects))
    picture = f"![heat map]({png.name})\n" if png else "_No cell has a paired run yet._\n"
    md = [f"## Against {ref.title}\n", picture,
          "### Holm families\n", frame_table(fams) if not fams.empty else "_none_\n",
          "### Cells\n", frame_table(table)]
    md += [f"### Per-class F1 of the top {TOP_CELLS} cells (Δ against the reference)\n"]
    if per_class.empty:
        md.append("_The runs carry no per-class F1._\n")
        return md
    per_class = per_class.assign(
        cell=[_cell_label(r, axes.cells) for _, r in per_class.iterrows()],
        value=[format_mean_std(MeanStd(m, s, int(n)), signed=True) for m, s, n in
               zip(per_class["diff_mean"], per_class["diff_std"], per_class["n"], strict=True)])
    wide = per_class.pivot(index="cell", columns="class", values="value")
    wide = wide.reindex(index=list(dict.fromkeys(per_class["cell"])),
                        columns=list(dict.fromkeys(per_class["class"])))
    md.append(frame_table(wide.reset_index().rename(columns={"cell": " / ".join(axes.cells)})))
    return md


def _families(effects: pd.DataFrame) -> list[dict[str, Any]]:
    """Per Holm family: m tests, the fewest pairs in it, and the smallest Holm-adjusted p its
    Wilcoxon tests could reach (m · 2/2^n at the largest n; null where no test is Wilcoxon)."""
    out = []
    for name, part in effects.groupby("family", sort=False):
        tested = part[part["p"].notna()]
        n_max = int(tested["n"].max()) if not tested.empty else 0
        floor = None
        if (tested["test"] == "wilcoxon").any():
            floor = min(1.0, len(tested) * 2.0 / 2.0 ** n_max)
        out.append({"family": name, "m": len(tested),
                    "n_min": int(tested["n"].min()) if not tested.empty else 0,
                    "smallest_attainable_holm_p": floor,
                    "significant": int(part["significant"].sum())})
    return out


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON records of a frame; NaN becomes null."""
    return json.loads(df.to_json(orient="records", double_precision=10))
