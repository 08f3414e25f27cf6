"""Batches for the augmentation tests: real hapt-quick windows and realistic synthetic ones."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from data_prep.windowset import WindowSet


@dataclass
class Batch:
    x: torch.Tensor  # [B, C, T] standardised
    y_soft: torch.Tensor  # [B, K] one-hot
    groups: dict[str, list[int]]
    norm: dict[str, torch.Tensor]  # mean/std [C]

    def raw(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """Un-normalised copy of `x` (default the batch itself)."""
        x = self.x if x is None else x
        return x * self.norm["std"].view(1, -1, 1) + self.norm["mean"].view(1, -1, 1)


@pytest.fixture(scope="session")
def real_batch(hapt_quick_small: WindowSet) -> Batch:
    """64 real training windows [64, 6, 128] (acc in g, gyro in rad/s), standardised."""
    train = hapt_quick_small.subset("train")
    pick = np.random.default_rng(0).choice(len(train), size=64, replace=False)
    norm = {
        k: torch.tensor(v, dtype=torch.float32) for k, v in hapt_quick_small.meta["norm"].items()
    }
    x = (torch.from_numpy(train.X[pick]) - norm["mean"].view(1, -1, 1)) / norm["std"].view(1, -1, 1)
    y = torch.nn.functional.one_hot(torch.from_numpy(train.y[pick]), hapt_quick_small.num_classes)
    return Batch(x.contiguous(), y.float(), hapt_quick_small.groups, norm)


@pytest.fixture()
def synthetic_batch() -> Batch:
    """[32, 6, 128] wrist-like signals: gravity plus a few sinusoids plus noise, standardised."""
    gen = torch.Generator().manual_seed(123)
    B, C, T = 32, 6, 128
    t = torch.arange(T) / 50.0
    freq = 0.5 + 3 * torch.rand(B, C, 3, 1, generator=gen)
    phase = 6.28 * torch.rand(B, C, 3, 1, generator=gen)
    amp = 0.2 + torch.rand(B, C, 3, 1, generator=gen)
    x = (amp * torch.sin(6.28 * freq * t + phase)).sum(dim=2)
    x = x + 0.05 * torch.randn(B, C, T, generator=gen)
    x[:, :3] += torch.tensor([0.0, 0.7, 0.7]).view(1, 3, 1)  # gravity on the accelerometer
    mean, std = x.mean(dim=(0, 2)), x.std(dim=(0, 2))
    norm = {"mean": mean, "std": std}
    y = torch.nn.functional.one_hot(torch.arange(B) % 6, 6).float()
    return Batch(
        (x - mean.view(1, -1, 1)) / std.view(1, -1, 1),
        y,
        {"acc": [0, 1, 2], "gyro": [3, 4, 5]},
        norm,
    )
