"""Helpers shared by the tests of the online, self and assistant methods: a model whose logits
are its own parameters (for losses computed by hand), small run configs on the small real HAPT
subset, and grid specs of training-node chains on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harkd.config import RunConfig, validate_run_config
from harkd.models.base import ModelOutput

REPO = Path(__file__).resolve().parents[2]
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
#: the session fixture hapt_quick_small's subjects and split, as run-config data_overrides
SMALL_DATA = {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
              "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}}
TRAIN = {"epochs": 1, "batch_size": 128, "seed": 0, "patience": None, "threads": 1}
SMALL_CNN = {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16], "kernel": 3}}


class FixedLogits(nn.Module):
    """A model whose logits for every window are its parameter `logits` [K] (or, given a
    [B, K] table, row i for the i-th window of the batch)."""

    def __init__(self, logits: list[float] | list[list[float]]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        z = self.logits if self.logits.dim() == 2 else self.logits.expand(len(x), -1)
        return ModelOutput(z + 0 * x.sum(dim=(1, 2)).unsqueeze(1), {"final": x})


def run_config(root: Path, method: str, params: dict[str, Any], **extra: Any) -> RunConfig:
    """A 1-epoch run config on the small HAPT subset: the acc-only tiny_xs student and `method`."""
    raw: dict[str, Any] = {
        "name": f"{method}-small",
        "data": str(HAPT_QUICK),
        "data_overrides": SMALL_DATA,
        "model": {"name": "tiny_xs", "view": ["acc"]},
        "distill": {"method": method, "params": params},
        "train": TRAIN,
        "output_dir": str(root),
    }
    return validate_run_config(raw | extra, source=f"test config {method}")


def node(model: dict[str, Any], method: str = "none", params: dict[str, Any] | None = None,
         teachers: dict[str, Any] | None = None) -> dict[str, Any]:
    """An inline training node: `model` trained 1 epoch by `method` on the cells' data."""
    return {"config": {"data": str(HAPT_QUICK), "model": model, "train": TRAIN,
                       "distill": {"method": method, "params": params or {}},
                       "teachers": teachers or {}}}


def chain_spec(grid_dir: Path, nodes: dict[str, Any], methods: list[dict[str, Any]]) -> dict:
    """A grid spec on the small HAPT subset: training `nodes`, one cell per `methods` value."""
    return {
        "name": "chain",
        "output_dir": str(grid_dir),
        "nodes": nodes,
        "base": {"data": str(HAPT_QUICK), "data_overrides": SMALL_DATA,
                 "model": {"name": "tiny_xs", "view": ["acc"]}, "train": TRAIN},
        "axes": {"method": methods},
    }
