"""Helpers shared by the grid tests: the tiny grid's spec and store look-ups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harkd.grid.store import RunStore

HAPT_QUICK = Path(__file__).resolve().parents[2] / "configs" / "data" / "hapt-quick.yaml"
#: the session fixture hapt_quick_small's subjects and split, as run-config data_overrides
SMALL_DATA = {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
              "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}}
TRAIN = {"epochs": 2, "batch_size": 64, "patience": None}


def tiny_spec_raw(teacher_dir: Path, grid_dir: Path, **extra: Any) -> dict[str, Any]:
    raw = {
        "name": "tiny",
        "output_dir": str(grid_dir),
        "base": {
            "data": str(HAPT_QUICK),
            "data_overrides": SMALL_DATA,
            "model": {"name": "tiny", "view": ["acc"]},
            "teachers": {"t": {"name": "cnn1d", "view": ["acc", "gyro"],
                               "params": {"widths": [8, 16]}, "run_dir": str(teacher_dir)}},
            "train": TRAIN,
        },
        "axes": {
            "augment": ["none", "jitter"],
            "method": [{"label": "none", "set": {"teachers": {}}},
                       {"label": "kd", "set": {"distill.params": {"alpha": 0.5,
                                                                  "temperature": 4.0}}}],
            "seed": [0, 1],
        },
    }
    raw.update(extra)
    return raw


def stored_metrics(grid_dir: Path) -> dict[str, dict[str, Any]]:
    """hash -> metrics of every done run in a grid's store."""
    with RunStore(grid_dir / "runs.sqlite") as store:
        return {r.hash: r.metrics for r in store.rows("done")}


def write_spec(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(json.dumps(raw))  # JSON is YAML
    return path


def students_spec_raw(grid_dir: Path, seeds: int = 3) -> dict[str, Any]:
    """`seeds` tiny acc-only students (seeds 0, 1, ...), one epoch each, no teacher."""
    return {
        "name": "students", "output_dir": str(grid_dir),
        "base": {"data": str(HAPT_QUICK), "data_overrides": SMALL_DATA,
                 "model": {"name": "tiny", "view": ["acc"]}, "train": {**TRAIN, "epochs": 1}},
        "axes": {"seed": list(range(seeds))},
    }


TEACHER = {
    "data": str(HAPT_QUICK),
    "model": {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16]}},
    "train": {**TRAIN, "epochs": 1},
}
ASSISTANT = {
    "data": str(HAPT_QUICK),
    "model": {"name": "tiny", "view": ["acc", "gyro"]},
    "distill": {"method": "kd", "params": {"alpha": 0.5, "temperature": 4.0}},
    "teachers": {"t": {"from": "teacher"}},
    "train": {**TRAIN, "epochs": 1},
}


def chain_spec(grid_dir: Path, teacher: dict[str, Any] | None = None, **extra: Any) -> dict:
    """4 cells (2 teachers x 2 seeds) over one teacher node and one assistant it teaches."""
    raw = {
        "name": "chain",
        "output_dir": str(grid_dir),
        "nodes": {"teacher": {"config": teacher or TEACHER},
                  "assistant": {"config": ASSISTANT}},
        "base": {
            "data": str(HAPT_QUICK),
            "data_overrides": SMALL_DATA,
            "model": {"name": "tiny", "view": ["acc"]},
            "distill": {"method": "kd", "params": {"alpha": 0.5, "temperature": 4.0}},
            "train": TRAIN,
        },
        "axes": {
            "teachers": [{"label": "teacher", "set": {"teachers": {"t": {"from": "teacher"}}}},
                         {"label": "assistant",
                          "set": {"teachers": {"t": {"from": "assistant"}}}}],
            "seed": [0, 1],
        },
    }
    raw.update(extra)
    return raw
