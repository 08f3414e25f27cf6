"""`cnn1d` teacher: a ResNet-style 1-D CNN (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, adapted to time series as in Wang, Yan & Oates, IJCNN 2017).

Stem conv -> stages of residual blocks (conv-BN-ReLU-conv-BN + shortcut, ReLU) -> global average
pooling -> linear head. Every stage after the first halves the time axis.
Default: widths (32, 64, 128), one block per stage, kernel 5: 177,542 parameters for 6 channels
and 6 classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ConvBNAct, check_positive


class ResidualBlock(nn.Module):
    """Basic residual block: two k-wide convolutions with BN, projection shortcut on change."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(in_channels, out_channels, kernel, stride),
            ConvBNAct(out_channels, out_channels, kernel, act=False),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels and stride == 1
            else ConvBNAct(in_channels, out_channels, 1, stride, act=False)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


@register_model("cnn1d", role="teacher")
class CNN1D(HARModel):
    """ResNet-style 1-D CNN teacher.

    Features: "stage1".."stageN" ([B, w_i, T_i], one per stage), "final" (= last stage map) and
    "embedding" ([B, w_N], the pooled vector).
    """

    param_range = (100_000, 300_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        widths: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int | Sequence[int] = 1,
        kernel: int = 5,
        stem_kernel: int = 7,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive("window", window)
        if not widths:
            raise ValueError("cnn1d: widths must name at least one stage width")
        depths = (
            [blocks_per_stage] * len(widths)
            if isinstance(blocks_per_stage, int)
            else list(blocks_per_stage)
        )
        if len(depths) != len(widths) or min(depths) < 1:
            raise ValueError(
                f"cnn1d: blocks_per_stage must be an int >= 1 or one int >= 1 per stage "
                f"({len(widths)} stages), got {blocks_per_stage!r}"
            )
        self.stem = ConvBNAct(in_channels, widths[0], stem_kernel)
        stages = []
        prev = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            blocks = [
                ResidualBlock(
                    prev if j == 0 else width, width, kernel, stride=2 if i > 0 and j == 0 else 1
                )
                for j in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            prev = width
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(prev, num_classes)
        self.feature_names = (
            *(f"stage{i + 1}" for i in range(len(widths))),
            "final",
            "embedding",
        )

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.stem(x)
        feats: dict[str, torch.Tensor] = {}
        for i, stage in enumerate(self.stages):
            h = stage(h)
            feats[f"stage{i + 1}"] = h
        feats["final"] = h
        emb = h.mean(dim=-1)
        feats["embedding"] = emb
        return ModelOutput(self.head(self.dropout(emb)), feats)
