"""PNG plots of the reports (matplotlib, Agg backend), each written atomically."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harkd.report.stats import MeanStd, format_mean_std  # noqa: E402
from harkd.train.plots import save_figure  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    return save_figure(fig, path, dpi=120)


def heatmap(means: pd.DataFrame, stds: pd.DataFrame, counts: pd.DataFrame, path: Path,
            title: str) -> Path:
    """Rows × columns of means, each cell annotated `mean ± std` (`format_mean_std` over its
    count of seeds)."""
    fig, ax = plt.subplots(figsize=(1.5 + 1.3 * means.shape[1], 1.0 + 0.55 * means.shape[0]))
    values = means.to_numpy(dtype=float)
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(means.shape[1]), [str(c) for c in means.columns], rotation=30, ha="right")
    ax.set_yticks(range(means.shape[0]), [str(i) for i in means.index])
    ax.set_xlabel(str(means.columns.name))
    ax.set_ylabel(str(means.index.name))
    finite = values[np.isfinite(values)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(means.shape[0]):
        for j in range(means.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                text = format_mean_std(MeanStd(v, float(stds.iloc[i, j]), int(counts.iloc[i, j])))
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if v < mid else "black")
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return _save(fig, path)


def axis_means(per_axis: dict[str, pd.DataFrame], path: Path, metric: str) -> Path:
    """One panel per axis: mean of `metric` per value with std-over-seeds error bars."""
    fig, axes = plt.subplots(1, len(per_axis), figsize=(3.2 * len(per_axis), 3.2), squeeze=False)
    for ax, (name, df) in zip(axes[0], per_axis.items(), strict=True):
        x = np.arange(len(df))
        ax.errorbar(x, df["mean"], yerr=df["std"].fillna(0.0), fmt="o", capsize=4)
        ax.set_xticks(x, [str(v) for v in df[name]], rotation=30, ha="right")
        ax.set_title(name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def deltas(comp: pd.DataFrame, label_cols: list[str], path: Path, title: str) -> Path:
    """Horizontal bars: mean paired difference to the baseline, std error bars."""
    labels = [" / ".join(str(r[c]) for c in label_cols) for _, r in comp.iterrows()]
    fig, ax = plt.subplots(figsize=(6.0, 0.8 + 0.28 * len(comp)))
    y = np.arange(len(comp))
    colors = ["tab:green" if d > 0 else "tab:red" for d in comp["diff_mean"]]
    ax.barh(y, comp["diff_mean"], xerr=comp["diff_std"].fillna(0.0), color=colors, capsize=3)
    ax.set_yticks(y, labels, fontsize=7)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference to baseline (mean ± std over seeds)")
    ax.set_title(title)
    return _save(fig, path)


def accuracy_latency(df: pd.DataFrame, latency: str, metric: str, label_cols: list[str],
                     path: Path) -> Path:
    """`metric` against latency (log x), one point per run, labelled by its cell."""
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.scatter(df[latency], df[metric], s=18)
    for _, r in df.iterrows():
        ax.annotate(" / ".join(str(r[c]) for c in label_cols), (r[latency], r[metric]),
                    fontsize=6, alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel(latency)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def f1_latency(rows: Sequence[dict[str, Any]], path: str | Path) -> int:
    """Macro-F1 against batch-1 p50 latency (log x), one labelled point per row with an F1
    (rows of `harkd.report.cost.row`, or any dicts with name, p50_us, macro_f1 and role).

    Returns the number of points drawn (rows without an F1 are left out of the plot only).
    """
    colours = {"teacher": "tab:red", "student": "tab:blue", "peer": "tab:green"}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawn = 0
    for r in rows:
        if r.get("macro_f1") is None:
            continue
        ax.scatter(r["p50_us"], r["macro_f1"], color=colours.get(r.get("role"), "tab:gray"))
        ax.annotate(r["name"], (r["p50_us"], r["macro_f1"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
        drawn += 1
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 p50 latency, onnxruntime CPU, 1 thread (µs, log scale)")
    ax.set_ylabel("test macro-F1")
    for role in dict.fromkeys(r.get("role") for r in rows if r.get("macro_f1") is not None):
        ax.scatter([], [], color=colours.get(role, "tab:gray"), label=role or "other")
    ax.legend(loc="lower right", fontsize=8)  # only the roles drawn: no empty entries
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, Path(path))
    return drawn


def diff_heatmap(diffs: pd.DataFrame, marks: pd.DataFrame, path: Path, title: str,
                 scale: float = 100.0) -> Path:
    """Rows × columns of mean paired differences on a diverging scale centred on 0, each cell
    labelled with its value × `scale` (points for F1) and `*` where `marks` is True; a missing
    difference (no comparison) stays blank."""
    values = diffs.to_numpy(dtype=float) * scale
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
    width = max(5.0, 2.0 + 0.75 * diffs.shape[1])
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.42 * diffs.shape[0]))
    im = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-bound, vmax=bound,
                   aspect="auto")
    ax.set_xticks(range(diffs.shape[1]), [str(c) for c in diffs.columns], rotation=35,
                  ha="right", fontsize=8)
    ax.set_yticks(range(diffs.shape[0]), [str(i) for i in diffs.index], fontsize=8)
    ax.set_xlabel(str(diffs.columns.name or ""))
    ax.set_ylabel(str(diffs.index.name or ""))
    for i in range(diffs.shape[0]):
        for j in range(diffs.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                star = "*" if bool(marks.iat[i, j]) else ""
                ax.text(j, i, f"{v:+.1f}{star}", ha="center", va="center", fontsize=7,
                        color="white" if abs(v) > 0.6 * bound else "black")
    fig.colorbar(im, ax=ax, label=f"mean Δ × {scale:g}")
    ax.set_title(textwrap.fill(title, int(width * 11)), fontsize=9)
    return _save(fig, path)
