"""Markdown tables: harkd's one writer (`markdown_table`), and number cells for it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd


def fmt(value: float | None, digits: int = 3) -> str:
    """`value` with `digits` decimals; an empty string for a missing value (None or NaN)."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _cell(value: Any) -> str:
    """A cell's text on one line: None and NaN empty, `|` escaped so it stays in its cell."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return ""
    return " ".join(str(value).split()).replace("|", "\\|")


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table of `rows` (each a sequence of cells, as many as `header`) under
    `header`, ending with a newline. Cells are written with `str`; None and NaN are empty."""
    head = [_cell(h) for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for i, row in enumerate(rows):
        cells = [_cell(v) for v in row]
        if len(cells) != len(head):
            raise ValueError(f"markdown_table: row {i} has {len(cells)} cells, the header "
                             f"{len(head)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def frame_table(df: pd.DataFrame) -> str:
    """`markdown_table` of a frame: its column names, then its rows (the index left out)."""
    return markdown_table(list(df.columns), df.itertuples(index=False))
