"""Real acc-only windows from the hapt_quick_small fixture, and a briefly trained student."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from data_prep.windowset import WindowSet
from harkd.deploy.export import export_onnx, logits_module
from harkd.models import build_model


@dataclass
class AccData:
    x_train: np.ndarray  # raw acc windows [N, 3, 128] in g
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    norm: tuple[list[float], list[float]]  # training mean / std of the acc channels
    num_classes: int


@pytest.fixture(scope="session")
def acc_data(hapt_quick_small: WindowSet) -> AccData:
    ws = hapt_quick_small
    idx = ws.channel_indices(["acc"])
    mean = [ws.meta["norm"]["mean"][i] for i in idx]
    std = [ws.meta["norm"]["std"][i] for i in idx]
    tr, te = ws.mask("train"), ws.mask("test")
    return AccData(ws.X[tr][:, idx], ws.X[te][:, idx], ws.y[tr], ws.y[te], (mean, std),
                   ws.num_classes)


@pytest.fixture(scope="session")
def trained_tiny(acc_data: AccData) -> torch.nn.Module:
    """`tiny` after two epochs of plain cross-entropy on the training windows (~2 s)."""
    torch.manual_seed(0)
    model = build_model("tiny", 3, acc_data.num_classes, 128)
    module = logits_module(model, acc_data.norm).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(acc_data.x_train), torch.from_numpy(acc_data.y_train)
    for _ in range(2):
        for idx in torch.randperm(len(x)).split(64):
            loss = torch.nn.functional.cross_entropy(module(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def tiny_onnx(trained_tiny: torch.nn.Module, acc_data: AccData,
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    meta = {"harkd.model": "tiny", "harkd.channel_indices": [0, 1, 2], "harkd.window": 128}
    return export_onnx(trained_tiny, path, 3, 128, meta, acc_data.norm)
