"""Building blocks shared by several models (not a model module: not auto-imported).

- `ConvBNAct`: Conv1d + BatchNorm1d + optional ReLU, the unit of the ResNet teacher and the tiny
  students (BN folds into the convolution at export).
- `ChannelwiseConv`: the per-sensor-channel temporal convolution stack of DeepConvLSTM
  (Ordonez & Roggen 2016) and TinyHAR (Zhou et al. 2022): every input channel is convolved
  separately with the same 1-D kernels (a (k x 1) Conv2d in the papers).
- `check_positive`: argument validation with the parameter named in the message.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def check_positive(name: str, value: float) -> None:
    """Raise ValueError naming `name` when `value` is not > 0."""
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def conv_out_len(length: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a 1-D convolution (dilation 1)."""
    return (length + 2 * padding - kernel) // stride + 1


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> ReLU (optional), padding (k - 1) // 2 unless given.

    With `as_2d` the layer is a (1 x k) Conv2d + BatchNorm2d working on [B, C, 1, T]: the same
    function, but onnxruntime's CPU provider runs 2-D convolutions through its NCHWc kernels and
    1-D ones through im2col + GEMM, which made the tiny students about 2x slower at batch 1
    (benchmarks/bench_models.py).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: bool = True,
        as_2d: bool = False,
        padding: int | None = None,
    ) -> None:
        pad = (kernel - 1) // 2 if padding is None else padding
        conv: nn.Module
        if as_2d:
            conv = nn.Conv2d(
                in_channels,
                out_channels,
                (1, kernel),
                (1, stride),
                (0, pad),
                groups=groups,
                bias=False,
            )
            norm: nn.Module = nn.BatchNorm2d(out_channels)
        else:
            conv = nn.Conv1d(
                in_channels, out_channels, kernel, stride, pad, groups=groups, bias=False
            )
            norm = nn.BatchNorm1d(out_channels)
        layers = [conv, norm]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ChannelwiseConv(nn.Module):
    """Per-channel temporal convolutions with kernels shared across sensor channels.

    Input [B, C, T]; each of the C channels goes through the same stack of Conv1d layers
    (1 -> F -> F ...), kernel `kernel`, no padding, the given strides, ReLU, and BatchNorm
    after the ReLU when `batch_norm` (TinyHAR's released order). Returns the map of every
    layer as [B, C, F, T_l].
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel: int,
        strides: Sequence[int],
        batch_norm: bool,
    ) -> None:
        super().__init__()
        check_positive("filters", filters)
        self.in_channels = in_channels
        self.filters = filters
        layers = []
        for i, stride in enumerate(strides):
            mods: list[nn.Module] = [
                nn.Conv1d(1 if i == 0 else filters, filters, kernel, stride),
                nn.ReLU(inplace=True),
            ]
            if batch_norm:
                mods.append(nn.BatchNorm1d(filters))
            layers.append(nn.Sequential(*mods))
        self.layers = nn.ModuleList(layers)
        self.kernel = kernel
        self.strides = tuple(strides)

    def out_len(self, length: int) -> int:
        """Temporal length after the stack for an input of `length` samples."""
        for stride in self.strides:
            length = conv_out_len(length, self.kernel, stride)
        return length

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        C, T = self.in_channels, x.shape[-1]
        h = x.reshape(-1, 1, T)  # [B*C, 1, T]
        maps = []
        for layer in self.layers:
            h = layer(h)
            maps.append(h.reshape(-1, C, self.filters, h.shape[-1]))
        return maps
