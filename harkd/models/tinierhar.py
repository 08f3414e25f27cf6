"""`tinierhar` peer: TinierHAR (Bian, Liu, Fortes Rey, Geissler & Lukowicz, "TinierHAR: Towards
Ultra-Lightweight Deep Learning Models for Efficient Human Activity Recognition on Edge Devices",
2025, arXiv 2507.07949), in the configuration of the authors' released code
(github.com/zhaxidele/TinierHAR: `models/TinierHAR.py`, sizes from `configs/model.yaml`).

1. Residual depthwise-separable convolutions along time, with kernels shared by every sensor
   channel (the map is [B, filters, C, T]; the released (k x 1) Conv2d on [B, 1, T, C], here
   (1 x k) on [B, 1, C, T]). A block is a depthwise (1 x k) conv, a pointwise 1x1 conv, BN and
   ReLU, then a max-pool of 2 over time where the block pools; its shortcut is a 1x1 conv + BN
   where the width changes (identity otherwise), pooled like the main path; the block returns
   the sum, with no activation after it. Block 1 goes 1 -> F and block 2 F -> 2F, both pooling;
   `extra_blocks` more keep 2F and the length. Defaults: F = 4, 4 extra blocks (6 in all), k = 5.
2. Dropout (0.3), then the 2F x C features of each time step feed one bidirectional GRU of
   `hidden` = 16 units per direction.
3. Temporal aggregation: a linear score per time step, softmax over time, and the weighted sum
   of the GRU outputs ([B, 2 * hidden]).
4. Linear classifier.

Where this version departs from the released code: the convolutions followed by BN and the
score layer have no bias. A constant added before a BN is removed by it, and one added to every
score is removed by the softmax, so those 94 biases never change the output (their gradient is
zero) and would only be stored on the device. HAPT acc+gyro (6 channels, 128 samples): 7,389
parameters for 12 classes (the released code: 7,483, its logged HAPT figure), 7,191 for the
6 classes of hapt-quick; 321,152 MACs for 12 classes. Acc only (3 channels, 6 classes): 4,887.
The paper's windows are 4 s (200 samples at 50 Hz); the parameter count does not depend on it.

Measured on hapt-quick (configs/train/tinierhar.yaml and tinierhar_acc.yaml, 30 epochs with
patience 10, seed 0 only): test macro-F1 0.941 on acc+gyro, 0.884 on the accelerometer alone.
"""

from __future__ import annotations

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ConvBNAct, check_positive

#: every pooling block halves the time axis
POOL = 2


class ResidualSeparableBlock(nn.Module):
    """TinierHAR's convolution block on [B, C_in, sensors, T] (see the module docstring):
    depthwise (1 x k) conv -> pointwise conv -> BN -> ReLU (-> max-pool), plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, pool: bool) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, (1, kernel), padding=(0, kernel // 2), groups=in_channels,
            bias=False,
        )
        self.pointwise = ConvBNAct(in_channels, out_channels, 1, as_2d=True)
        self.pool = nn.MaxPool2d((1, POOL)) if pool else nn.Identity()
        self.shortcut = (
            ConvBNAct(in_channels, out_channels, 1, act=False, as_2d=True)
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pointwise(self.depthwise(x))) + self.pool(self.shortcut(x))


class AttentionPooling(nn.Module):
    """Weighted sum over time with weights softmax_t(w . x_t) (TinierHAR's temporal
    aggregation; no bias, which the softmax would cancel). x: [B, T, D] -> [B, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.score(x), dim=1)  # [B, T, 1]
        return (weights * x).sum(dim=1)


@register_model("tinierhar", role="peer")
class TinierHAR(HARModel):
    """TinierHAR with the released defaults (see the module docstring).

    Args:
        filters: F, the width of the first block (the others have 2F).
        extra_blocks: blocks after the two pooling ones (the released `nb_conv_blocks`).
        kernel: the depthwise kernel (odd, so that padding keeps the length).
        hidden: GRU units per direction.
        dropout: before the GRU.

    Features: "stage1".."stage<n>" (each block's output, [B, width * C, T_i], width-major),
    "final" (the GRU outputs, [B, 2 * hidden, T / 4]) and "embedding" (the aggregation,
    [B, 2 * hidden]).
    """

    param_range = (5_000, 10_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        filters: int = 4,
        extra_blocks: int = 4,
        kernel: int = 5,
        hidden: int = 16,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        for name, value in (("filters", filters), ("kernel", kernel), ("hidden", hidden)):
            check_positive(name, value)
        if extra_blocks < 0:
            raise ValueError(f"tinierhar: extra_blocks must be >= 0, got {extra_blocks}")
        if kernel % 2 == 0:
            raise ValueError(f"tinierhar: kernel must be odd (so padding keeps the length), "
                             f"got {kernel}")
        if window < POOL * POOL:
            raise ValueError(f"tinierhar: window {window} is too short for two poolings of 2")
        widths = [1, filters, *([2 * filters] * (extra_blocks + 1))]
        self.blocks = nn.ModuleList(
            ResidualSeparableBlock(c_in, c_out, kernel, pool=i < 2)
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        )
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(2 * filters * in_channels, hidden, batch_first=True, bidirectional=True)
        self.aggregate = AttentionPooling(2 * hidden)
        self.head = nn.Linear(2 * hidden, num_classes)
        self.feature_names = (
            *(f"stage{i + 1}" for i in range(len(self.blocks))),
            "final",
            "embedding",
        )

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = x.unsqueeze(1)  # [B, 1, C, T]: one map row per sensor channel
        feats = {}
        for i, block in enumerate(self.blocks):
            h = block(h)
            feats[f"stage{i + 1}"] = h.flatten(1, 2)
        steps = feats[f"stage{len(self.blocks)}"].transpose(1, 2)  # [B, T', width * C]
        h, _ = self.gru(self.dropout(steps))
        feats["final"] = h.transpose(1, 2)
        emb = self.aggregate(h)
        feats["embedding"] = emb
        return ModelOutput(self.head(emb), feats)
