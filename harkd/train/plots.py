"""Plots of a run (matplotlib, Agg, PNG): the training curve and the test confusion matrix,
each written atomically (`save_figure`)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harkd.train.rundir import atomic_write_bytes  # noqa: E402


def save_figure(fig: plt.Figure, path: Path, dpi: int = 110) -> Path:
    """Lay out `fig`, write it to `path` as PNG atomically (a reader never sees half a file)
    and close it."""
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(Path(path), png.getvalue())
    return Path(path)


def plot_curve(history: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Training loss (every stage) and validation macro-F1 (selecting stages) per epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    x = np.arange(1, len(history) + 1)
    ax.plot(x, [h["loss"] for h in history], color="tab:blue", marker=".", label="train loss")
    ax.set_xlabel("epoch (all stages)")
    ax.set_ylabel("train loss", color="tab:blue")
    f1 = [h.get("val_macro_f1") for h in history]
    if any(v is not None for v in f1):
        ax2 = ax.twinx()
        ax2.plot(x, [np.nan if v is None else v for v in f1], color="tab:orange", marker=".")
        ax2.set_ylabel("validation macro-F1", color="tab:orange")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str
) -> None:
    """Row-normalised confusion matrix (colour) with the counts written in each cell."""
    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.6 + 0.6 * k, 1.3 + 0.55 * k))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    for i in range(k):
        for j in range(k):
            color = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def confusion_csv(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> str:
    """The confusion matrix as CSV: one row per true class, one column per predicted class."""
    rows = ["true\\predicted," + ",".join(labels)]
    rows += [
        f"{n}," + ",".join(str(int(v)) for v in r) for n, r in zip(labels, confusion, strict=True)
    ]
    return "\n".join(rows) + "\n"
