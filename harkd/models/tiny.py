"""`tiny` student family: depthwise 1-D CNNs for accelerometer-only input.

The MobileNet recipe (Howard et al., "MobileNets", arXiv 1704.04861, 2017: depthwise
convolutions and a width multiplier) cut down for a watch: a strided stem convolution, depthwise
blocks (optionally followed by pointwise 1x1 convs), global average pooling and a linear head.
The convolutions are (1 x k) Conv2d on [B, C, 1, T] (onnxruntime's NCHWc kernels; 1-D convs
run ~2x slower there) and BN folds into them at export. Training-time parallel kernel branches
(RepVGG / MobileOne re-parameterisation, see RepConvBNAct) merge away at export.

Default (chosen by measurement; hapt-quick acc-only, student_tiny.yaml, seeds 0-2,
test macro-F1): an unpadded (1 x 17) stem of 64 channels at stride 16, one depthwise conv
(kernel 9, stride 1), no pointwise conv, branches (9, 3): 0.901 +- 0.008 against 0.895 +- 0.007
for the former (32/64 k9 depthwise-separable) default. At batch 1 onnxruntime spends about
0.5 us per node, more than this model's arithmetic, so the exported graph is the fewest nodes a
conv net takes (Unsqueeze, 2 Conv, GlobalAveragePool, ReorderOutput, Flatten, Gemm): about 1.9-2.0x
the runtime floor against 2.3x for the former default with its pointwise conv. 8,070 parameters
in training, 4,486 once the branches are merged.

Presets differ only in the width multiplier (channel counts rounded to multiples of 8):
`tiny_xs` (0.25, 2,022 training parameters), `tiny_s` (0.5, 4,038), `tiny` (1.0, 8,070),
`tiny_m` (1.5, 12,102), `tiny_l` (3.0, 24,198); a deeper net is `widths=[...]` with more entries.

Microcontroller sizes, named by the parameter count they deploy with (branches merged; 3 acc
channels, 6 classes; MACs per window from `harkd.deploy.flops.deployed_cost`):

| preset | options | deployed params | MACs | test macro-F1, seed 0 |
|---|---|---|---|---|
| `tiny_500` | width 0.125 (8 channels), stem kernel 15 | 518 | 3,504 | 0.850 |
| `tiny_1k` | width 0.25 (16 channels) = `tiny_xs` | 1,126 | 6,816 | 0.866 |
| `tiny_2k` | width 0.5 (32 channels) = `tiny_s` | 2,246 | 13,632 | 0.886 |
| `tiny` | the default (64 channels) | 4,486 | 27,264 | (0.901 +- 0.008, 3 seeds) |

Deployed parameters are 70 x channels + 6 with the default kernels (the stem's 3 x 17 weights
per channel dominate); at 8 channels the stem kernel 15 brings 566 down to 518. Macro-F1:
hapt-quick, student_tiny.yaml with model.name set (30 epochs, patience 10), one seed only.
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
    "tiny_xs": 0.25,
    "tiny_s": 0.5,
    "tiny": 1.0,
    "tiny_m": 1.5,
    "tiny_l": 3.0,
}

#: microcontroller-size presets, named by their deployed parameter count (3 channels, 6 classes):
#: name -> (nominal deployed parameters, TinyNet options); see the module docstring
SIZE_PRESETS: dict[str, tuple[int, dict[str, float]]] = {
    "tiny_500": (500, {"width": 0.125, "stem_kernel": 15}),
    "tiny_1k": (1_100, {"width": 0.25}),
    "tiny_2k": (2_200, {"width": 0.5}),
}

#: the default design (see the module docstring)
DEFAULT_WIDTHS = (64, 64)
DEFAULT_STRIDES = (16, 1)
DEFAULT_KERNEL = 9
DEFAULT_STEM_KERNEL = 17
DEFAULT_POINTWISE = False
DEFAULT_BRANCHES: tuple[int, ...] = (9, 3)

#: channel counts are multiples of this: onnxruntime's NCHWc kernels work on blocks of 8
#: channels (AVX2) and insert re-ordering nodes for other counts
CHANNEL_BLOCK = 8


def scaled_width(base: int, multiplier: float) -> int:
    """Channel count for `base` channels under the width multiplier (a multiple of 8, >= 8)."""
    return max(CHANNEL_BLOCK, CHANNEL_BLOCK * round(base * multiplier / CHANNEL_BLOCK))


class RepConvBNAct(nn.Module):
    """(1 x k) Conv2d + BN (+ ReLU) on [B, C, 1, T] with extra parallel branches in training.

    Structural re-parameterisation (RepVGG, Ding et al., CVPR 2021, arXiv 2101.03697; MobileOne,
    Vasu et al., CVPR 2023, arXiv 2206.04040): besides the main k-wide convolution + BN, each
    entry of `branches` adds a centred convolution of that (odd, smaller) kernel + its own BN;
    their sum goes through the ReLU. In eval mode every branch is affine, so `reparameterize()`
    merges them into the main convolution exactly and the exported graph keeps one Conv node.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        padding: int | None = None,
        branches: Sequence[int] = (),
    ) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 if padding is None else padding
        for k in branches:
            if k > kernel or (kernel - k) % 2:
                raise ValueError(
                    f"tiny: a branch kernel must be <= the main kernel {kernel} and differ from "
                    f"it by an even number; got {k}"
                )
        self.main = ConvBNAct(
            in_channels, out_channels, kernel, stride, groups, act=False, as_2d=True, padding=pad
        )
        #: per branch, input samples cropped from each end (a centred kernel on an unpadded conv)
        self.crops = [max(0, (kernel - k) // 2 - pad) for k in branches]
        self.extra = nn.ModuleList(
            ConvBNAct(in_channels, out_channels, k, stride, groups, act=False, as_2d=True,
                      padding=max(0, pad - (kernel - k) // 2))
            for k in branches
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.main(x)
        for crop, branch in zip(self.crops, self.extra, strict=True):
            out = out + branch(x[..., crop : x.shape[-1] - crop])
        return self.act(out)

    def reparameterize(self) -> None:
        """Merge the branches into the main convolution (eval-mode BN statistics), in place."""
        if not self.extra:
            return
        kernel = self.main[0].kernel_size[1]
        weight, bias = _fused(self.main)
        for branch in self.extra:
            w, b = _fused(branch)
            side = (kernel - w.shape[-1]) // 2
            weight = weight + nn.functional.pad(w, (side, side))
            bias = bias + b
        conv, norm = self.main[0], self.main[1]
        with torch.no_grad():
            conv.weight.copy_(weight)
            norm.weight.fill_(1.0)
            norm.bias.copy_(bias)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        self.extra = nn.ModuleList()
        self.crops = []

    def fold_input_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Take raw input instead of `(x - mean) / std` ([1, C, 1, 1] each); see TinyNet."""
        with torch.no_grad():
            for conv, norm in [(m[0], m[1]) for m in (self.main, *self.extra)]:
                conv.weight.div_(std)
                norm.running_mean.add_((conv.weight * mean).sum(dim=(1, 2, 3)))


def _fused(conv_bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of a Conv (no bias) + BatchNorm pair with the BN's running statistics."""
    conv, norm = conv_bn[0], conv_bn[1]
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return conv.weight * scale.reshape(-1, 1, 1, 1), norm.bias - norm.running_mean * scale


class DepthwiseSeparable(nn.Sequential):
    """Depthwise (1 x k) conv + BN + ReLU, then (with `pointwise`) a pointwise conv + BN + ReLU,
    on [B, C, 1, T]; `branches` re-parameterise the depthwise conv (see RepConvBNAct)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        pointwise: bool = True,
        branches: Sequence[int] = (),
    ) -> None:
        layers: list[nn.Module] = [
            RepConvBNAct(in_channels, in_channels, kernel, stride, in_channels, branches=branches)
        ]
        if pointwise:
            layers.append(ConvBNAct(in_channels, out_channels, 1, as_2d=True))
        super().__init__(*layers)


class TinyNet(HARModel):
    """Depthwise-separable 1-D CNN student.

    Args:
        widths: base channel counts, stem first then one per block (the depth option:
            `len(widths) - 1` blocks).
        width: width multiplier applied to every entry of `widths`.
        strides: stride of the stem and of each block's depthwise conv (same length as widths).
        kernel: depthwise kernel size; stem_kernel: the stem's kernel size.
        pointwise: blocks end with a pointwise conv; without, a block is its depthwise conv
            alone and every width must be the stem's.
        branches: kernel sizes of the extra training-time branches of the stem and of every
            depthwise conv (see RepConvBNAct), merged away by `reparameterize()`.

    Features: one "stage<i>" per convolution ([B, C_i, T_i]: "stage1" the stem, then the
    depthwise (and pointwise) output of each block), "final" (the last map) and "embedding"
    ([B, C_last]).
    """

    param_range = (700, 30_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        width: float = 1.0,
        strides: Sequence[int] = DEFAULT_STRIDES,
        kernel: int = DEFAULT_KERNEL,
        stem_kernel: int = DEFAULT_STEM_KERNEL,
        dropout: float = 0.0,
        pointwise: bool = DEFAULT_POINTWISE,
        branches: Sequence[int] = DEFAULT_BRANCHES,
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
        if not pointwise and len(set(chans)) > 1:
            raise ValueError(
                f"tiny: without pointwise convolutions every block keeps the stem's width; got "
                f"widths={list(widths)} (x{width})"
            )
        # unpadded, so that an input normalisation folds into it exactly
        self.stem = RepConvBNAct(
            in_channels, chans[0], stem_kernel, strides[0], padding=0, branches=branches
        )
        self.blocks = nn.ModuleList(
            DepthwiseSeparable(c_in, c_out, kernel, s, pointwise, branches)
            for c_in, c_out, s in zip(chans[:-1], chans[1:], strides[1:], strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], num_classes)
        n_stages = 1 + sum(len(block) for block in self.blocks)  # one per convolution
        self.feature_names = (*(f"stage{i + 1}" for i in range(n_stages)), "final", "embedding")

    def conv_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every convolution, stem first, each [B, C_i, 1, T_i], for windows
        [B, C, T] (run as (1 x k) Conv2d on [B, C, 1, T], see ConvBNAct(as_2d=True))."""
        h = self.stem(x.unsqueeze(2))
        maps = [h]
        for block in self.blocks:
            for conv in block:  # depthwise, then pointwise
                h = conv(h)
                maps.append(h)
        return maps

    def forward(self, x: torch.Tensor) -> ModelOutput:
        maps = self.conv_maps(x)
        h = maps[-1]
        feats = {f"stage{i + 1}": m.squeeze(2) for i, m in enumerate(maps)}
        feats["final"] = feats[f"stage{len(maps)}"]
        # GlobalAveragePool in ONNX: onnxruntime runs it on the NCHWc layout, before the
        # re-ordering node, which is cheaper than a ReduceMean after it
        emb = torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)
        feats["embedding"] = emb
        return ModelOutput(self.head(self.dropout(emb)), feats)

    def reparameterize(self) -> None:
        """Merge every training-time branch into its convolution (exact in eval mode), in place.
        The export path calls it on a copy (harkd.deploy.export.logits_module)."""
        for module in self.modules():
            if isinstance(module, RepConvBNAct):
                module.reparameterize()

    def fold_input_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Make the model take raw windows instead of `(x - mean) / std` (per channel), in place.

        The scaling goes into the stem's weights, the shift into its BatchNorm running means
        (in training mode batch statistics absorb the shift just as well). Exact, because the
        stem is unpadded; it spares the exported graph a normalisation node.
        """
        n_in = self.stem.main[0].in_channels
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if mean_t.shape[1] != n_in or std_t.shape[1] != n_in:
            raise ValueError(
                f"tiny: normalisation has {mean_t.shape[1]} means and {std_t.shape[1]} stds, "
                f"the model {n_in} input channels"
            )
        if not bool((std_t > 0).all()):
            raise ValueError(f"tiny: normalisation std must be > 0, got {std_t.flatten().tolist()}")
        self.stem.fold_input_normalization(mean_t, std_t)


for _name, _multiplier in TINY_PRESETS.items():
    register_model(_name, role="student")(partial(TinyNet, width=_multiplier))
for _name, (_, _options) in SIZE_PRESETS.items():
    register_model(_name, role="student")(partial(TinyNet, **_options))
