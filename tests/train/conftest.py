"""Finished runs on the small real HAPT subset, trained once per session by `fit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from data_prep.windowset import WindowSet
from harkd.config import RunConfig, validate_run_config

REPO = Path(__file__).resolve().parents[2]
SMALL_CNN = {"widths": [8, 16], "kernel": 3}


def run_config(root: Path, model: dict[str, Any], **extra: Any) -> RunConfig:
    """A 1-epoch run config on hapt-quick training `model` (method `none` unless `extra` says)."""
    raw: dict[str, Any] = {
        "name": "run",
        "data": str(REPO / "configs" / "data" / "hapt-quick.yaml"),
        "model": model,
        "train": {"epochs": 1, "batch_size": 128, "seed": 0, "patience": None, "threads": 1},
        "output_dir": str(root),
    }
    return validate_run_config(raw | extra, source="test config")


@pytest.fixture(scope="session")
def teacher_run(hapt_quick_small: WindowSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a small acc+gyro cnn1d (1 epoch on hapt_quick_small)."""
    from harkd.train.loop import fit

    root = tmp_path_factory.mktemp("teacher")
    cfg = run_config(root, {"name": "cnn1d", "view": ["acc", "gyro"], "params": SMALL_CNN})
    fit(cfg, ws=hapt_quick_small, run_dir=root / "teacher", progress=False)
    return root / "teacher"
