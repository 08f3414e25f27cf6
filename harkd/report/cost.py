"""Accuracy against on-device cost across models: a table (markdown + CSV).

One row per benchmarked model (teachers, tiny students, the peers DeepConvLSTM and TinyHAR):
test macro-F1 from its finished run (blank where there is none), parameters, MACs, file size,
batch-1 p50 latency and that latency as a multiple of the runtime floor. The matching plot is
`harkd.report.plots.f1_latency`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harkd.report.tables import markdown_table
from harkd.train.runcard import read_card
from harkd.train.rundir import RunDir, atomic_write_bytes

COLUMNS = (
    "name", "model", "role", "macro_f1", "params", "macs", "file_bytes", "p50_us", "p99_us",
    "x_floor_p50", "per_window_us_batch", "torch_p50_us",
)


def run_macro_f1(run_dir: str | Path) -> float | None:
    """Test macro-F1 of a finished run from its run card, None when the run has no card
    (an unreadable card is an error naming the file)."""
    if not RunDir(Path(run_dir)).card.is_file():
        return None
    return read_card(run_dir).metrics["test"].macro_f1


def row(name: str, bench: dict[str, Any], model: str = "", role: str = "",
        macro_f1: float | None = None, params: int | None = None) -> dict[str, Any]:
    """One table row from a `harkd.deploy.latency.benchmark` result (MACs counted on the
    benchmarked graph by `harkd.deploy.flops.graph_macs`)."""
    eager = bench.get("torch_eager")
    return {
        "name": name,
        "model": model,
        "role": role,
        "macro_f1": macro_f1,
        "params": params if params is not None else bench["initializer_elements"],
        "macs": bench["macs"]["total"],
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
    table = markdown_table(COLUMNS, ([_cell(r.get(c)) for c in COLUMNS] for r in rows))
    atomic_write_bytes(Path(md_path), table.encode())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(Path(csv_path), text.getvalue().encode())
