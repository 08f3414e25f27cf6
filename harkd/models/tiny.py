"""`tiny` student family: depthwise-separable 1-D CNNs for accelerometer-only input.

The MobileNet recipe (Howard et al., "MobileNets", arXiv 1704.04861, 2017: depthwise-separable
convolutions and a width multiplier) cut down for a watch: a strided stem convolution, a few
depthwise-separable blocks (depthwise k-wide conv + pointwise 1x1 conv, each with BN + ReLU),
global average pooling and a linear head. The convolutions are (1 x k) Conv2d on [B, C, 1, T]
(see blocks.ConvBNAct) and BN folds into them at export.

Default (chosen by measurement, benchmarks/bench_models.py): an unpadded (1 x 7) stem of 32
channels at stride 4, one block (depthwise kernel 9 at stride 2, pointwise to 64): 3,654
parameters and 59k MACs for 3 channels and 6 classes. onnxruntime runs it as 7 nodes
(Unsqueeze, 3 NCHWc convolutions, ReorderOutput, ReduceMean, Gemm); at batch 1 each costs
about 0.5 us whatever its size, so node count, not MACs, sets the latency: a second block
cost 0.1-0.3x of the runtime floor more per run. Measured on the development machine: p50
1.3-1.8x the floor with `InferenceSession.run`, 2.2-2.4x with I/O binding (whose floor is
lower); the smallest conv graph possible (stem, pool, head) is already 1.3-1.8x there.

Presets differ only in the width multiplier (channel counts rounded to multiples of 8):
`tiny_xs` (0.5, 1,318 parameters), `tiny_s` (0.75, 2,358), `tiny` (1.0, 3,654), `tiny_m`
(1.5, 7,014), `tiny_l` (3.0, 23,238); a deeper net is `widths=[...]` with one more entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ConvBNAct, check_positive

#: preset name -> width multiplier
TINY_PRESETS: dict[str, float] = {
    "tiny_xs": 0.5,
    "tiny_s": 0.75,
    "tiny": 1.0,
    "tiny_m": 1.5,
    "tiny_l": 3.0,
}

#: channel counts are multiples of this: onnxruntime's NCHWc kernels work on blocks of 8
#: channels (AVX2) and insert re-ordering nodes for other counts
CHANNEL_BLOCK = 8


def scaled_width(base: int, multiplier: float) -> int:
    """Channel count for `base` channels under the width multiplier (a multiple of 8, >= 8)."""
    return max(CHANNEL_BLOCK, CHANNEL_BLOCK * round(base * multiplier / CHANNEL_BLOCK))


class DepthwiseSeparable(nn.Sequential):
    """Depthwise (1 x k) conv + BN + ReLU, then pointwise conv + BN + ReLU, on [B, C, 1, T]."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__(
            ConvBNAct(in_channels, in_channels, kernel, stride, groups=in_channels, as_2d=True),
            ConvBNAct(in_channels, out_channels, 1, as_2d=True),
        )


class TinyNet(HARModel):
    """Depthwise-separable 1-D CNN student.

    Args:
        widths: base channel counts, stem first then one per depthwise-separable block (the
            depth option: `len(widths) - 1` blocks).
        width: width multiplier applied to every entry of `widths`.
        strides: stride of the stem and of each block's depthwise conv (same length as widths).
        kernel: depthwise kernel size; stem_kernel: the stem's kernel size.

    Features: one "stage<i>" per convolution ([B, C_i, T_i]: "stage1" the stem, then the
    depthwise and the pointwise output of each block), "final" (the last map) and "embedding"
    ([B, C_last]).
    """

    param_range = (700, 30_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        widths: Sequence[int] = (32, 64),
        width: float = 1.0,
        strides: Sequence[int] = (4, 2),
        kernel: int = 9,
        stem_kernel: int = 7,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive("width", width)
        check_positive("window", window)
        if len(widths) < 1 or len(strides) != len(widths):
            raise ValueError(
                f"tiny: strides must give one stride per entry of widths (stem first); got "
                f"widths={list(widths)}, strides={list(strides)}"
            )
        chans = [scaled_width(w, width) for w in widths]
        # unpadded, so that an input normalisation folds into it exactly
        self.stem = ConvBNAct(in_channels, chans[0], stem_kernel, strides[0], as_2d=True, padding=0)
        self.blocks = nn.ModuleList(
            DepthwiseSeparable(c_in, c_out, kernel, s)
            for c_in, c_out, s in zip(chans[:-1], chans[1:], strides[1:], strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], num_classes)
        n_stages = 1 + 2 * len(self.blocks)  # one per convolution
        self.feature_names = (*(f"stage{i + 1}" for i in range(n_stages)), "final", "embedding")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.stem(x.unsqueeze(2))  # [B, C, 1, T]: see ConvBNAct(as_2d=True)
        maps = [h]
        for block in self.blocks:
            for conv in block:  # depthwise, then pointwise
                h = conv(h)
                maps.append(h)
        feats = {f"stage{i + 1}": m.squeeze(2) for i, m in enumerate(maps)}
        feats["final"] = feats[f"stage{len(maps)}"]
        emb = h.mean(dim=(2, 3))
        feats["embedding"] = emb
        return ModelOutput(self.head(self.dropout(emb)), feats)

    def fold_input_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Make the model take raw windows instead of `(x - mean) / std` (per channel), in place.

        The scaling goes into the stem's weights, the shift into its BatchNorm running mean
        (in training mode batch statistics absorb the shift just as well). Exact, because the
        stem is unpadded; it spares the exported graph a Sub and a Div node (issue 8).
        """
        conv, norm = self.stem[0], self.stem[1]
        mean_t = torch.as_tensor(mean, dtype=conv.weight.dtype).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=conv.weight.dtype).reshape(1, -1, 1, 1)
        if mean_t.shape[1] != conv.in_channels or std_t.shape[1] != conv.in_channels:
            raise ValueError(
                f"tiny: normalisation has {mean_t.shape[1]} means and {std_t.shape[1]} stds, "
                f"the model {conv.in_channels} input channels"
            )
        if not bool((std_t > 0).all()):
            raise ValueError(f"tiny: normalisation std must be > 0, got {std_t.flatten().tolist()}")
        with torch.no_grad():
            conv.weight.div_(std_t)
            norm.running_mean.add_((conv.weight * mean_t).sum(dim=(1, 2, 3)))


for _name, _multiplier in TINY_PRESETS.items():
    register_model(_name, role="student")(partial(TinyNet, width=_multiplier))
