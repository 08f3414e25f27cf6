"""`deepconvlstm` peer: DeepConvLSTM (Ordonez & Roggen, "Deep Convolutional and LSTM Recurrent
Neural Networks for Multimodal Wearable Activity Recognition", Sensors 16(1):115, 2016).

Four convolutional layers of 64 filters with (5 x 1) kernels along time only, no padding, ReLU,
shared by every sensor channel; the C x 64 features of each time step feed two LSTM layers of
128 units (dropout 0.5 before each LSTM layer and before the classifier); the class scores come
from the last time step.

Parameter count for HAPT acc+gyro (6 channels, 12 classes): 458,828 with the paper's two LSTM
layers. The 327k published with TinyHAR's pipeline (Zhou et al., ISWC 2022; docs/architecture.md 15)
is that repository's configuration: one LSTM layer of 128 and stride 2 on the 2nd and 4th
convolution (`lstm_layers=1, strides=(1, 2, 1, 2)` here gives exactly 326,732 parameters and
24.5M MACs for a 128-sample window against the published 24.9M). The paper's design costs
87.0M MACs: no striding keeps 112 of the 128 steps for two LSTM layers. The second LSTM layer adds
4 * (2 * 128 * 128 + 2 * 128) = 132,096 parameters; strides change MACs, not parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ChannelwiseConv, check_positive


@register_model("deepconvlstm", role="peer")
class DeepConvLSTM(HARModel):
    """DeepConvLSTM with the paper's defaults.

    Features: "stage1".."stage4" (each conv layer, [B, C * filters, T_l], channel-major),
    "final" (the last LSTM layer's outputs, [B, hidden, T']) and "embedding" (its last step).
    """

    param_range = (300_000, 500_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        filters: int = 64,
        kernel: int = 5,
        strides: Sequence[int] = (1, 1, 1, 1),
        hidden: int = 128,
        lstm_layers: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_positive("hidden", hidden)
        check_positive("lstm_layers", lstm_layers)
        self.convs = ChannelwiseConv(in_channels, filters, kernel, strides, batch_norm=False)
        if self.convs.out_len(window) < 1:
            raise ValueError(
                f"deepconvlstm: window {window} is too short for {len(strides)} convolutions "
                f"of kernel {kernel} with strides {list(strides)}"
            )
        self.dropout = nn.Dropout(dropout)
        self.lstms = nn.ModuleList(
            nn.LSTM(in_channels * filters if i == 0 else hidden, hidden, batch_first=True)
            for i in range(lstm_layers)
        )
        self.head = nn.Linear(hidden, num_classes)
        self.feature_names = (
            *(f"stage{i + 1}" for i in range(len(strides))),
            "final",
            "embedding",
        )

    def forward(self, x: torch.Tensor) -> ModelOutput:
        maps = self.convs(x)  # each [B, C, F, T_l]
        feats = {f"stage{i + 1}": m.flatten(1, 2) for i, m in enumerate(maps)}
        h = feats[f"stage{len(maps)}"].transpose(1, 2)  # [B, T', C * F]
        for lstm in self.lstms:
            h, _ = lstm(self.dropout(h))
        feats["final"] = h.transpose(1, 2)
        emb = h[:, -1]
        feats["embedding"] = emb
        return ModelOutput(self.head(self.dropout(emb)), feats)
