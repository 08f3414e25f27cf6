"""Accuracy against on-device cost across models: a table (markdown + CSV) and a PNG.

One row per benchmarked model (teachers, tiny students, the peers DeepConvLSTM and TinyHAR):
test macro-F1 from its finished run (blank where there is none), parameters, MACs, file size,
batch-1 p50 latency and that latency as a multiple of the runtime floor. The plot puts macro-F1
against p50 latency on a log axis, one labelled point per model with a known F1.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLUMNS = (
    "name", "model", "role", "macro_f1", "params", "macs", "file_bytes", "p50_us", "p99_us",
    "x_floor_p50", "per_window_us_batch", "torch_p50_us",
)


def run_macro_f1(run_dir: str | Path) -> float | None:
    """Test macro-F1 of a finished run (`metrics.test.macro_f1` of the `RunResult` in
    <run_dir>/metrics.json), None when the run has no test metrics."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get("metrics", {}).get("test", {}).get("macro_f1")
    return None if value is None else float(value)


def row(name: str, bench: dict[str, Any], model: str = "", role: str = "",
        macro_f1: float | None = None, params: int | None = None) -> dict[str, Any]:
    """One table row from a `harkd.deploy.latency.benchmark` result."""
    eager = bench.get("torch_eager")
    return {
        "name": name,
        "model": model,
        "role": role,
        "macro_f1": macro_f1,
        "params": params if params is not None else bench["initializer_elements"],
        "macs": bench.get("macs_module", bench["macs"]["total"]),
        "file_bytes": bench["file_bytes"],
        "p50_us": bench["batch1"]["model"]["p50_us"],
        "p99_us": bench["batch1"]["model"]["p99_us"],
        "x_floor_p50": bench["batch1"]["x_floor"]["p50"],
        "per_window_us_batch": bench["batchN"]["model"]["p50_us"],
        "torch_p50_us": eager["stats"]["p50_us"] if eager else None,
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def write_table(rows: Sequence[dict[str, Any]], md_path: str | Path, csv_path: str | Path) -> None:
    """The rows as a markdown table and a CSV file (same columns, `COLUMNS` order)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    Path(md_path).write_text("\n".join(lines) + "\n")
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: Sequence[dict[str, Any]], png_path: str | Path) -> int:
    """Macro-F1 against batch-1 p50 latency (log x), one labelled point per row with an F1.

    Returns the number of points drawn (rows without an F1 are left out of the plot only).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    for role, colour in colours.items():
        ax.scatter([], [], color=colour, label=role)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return drawn
