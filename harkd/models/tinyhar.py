"""`tinyhar` peer: TinyHAR (Zhou, Zhao, Huang, Hefenbrock, Riedel & Beigl, "TinyHAR: A Lightweight
Deep Learning Model Designed for Human Activity Recognition", ISWC 2022), in the configuration
of its released code (github.com/teco-kit/ISWC22-HAR, `TinyHAR_Model` with cross-channel
interaction "transformer", fusion "FC", temporal interaction "lstm", aggregation "tnaive").

1. Individual convolutional subnet: 4 layers of F = 20 filters, (5 x 1) kernels shared by all
   sensor channels, no padding, ReLU then BatchNorm, stride 2 on the 2nd and 4th layer (as
   released; the paper's text says stride 2 on every layer: `strides=(2, 2, 2, 2)`).
2. Cross-channel interaction: one pre-norm transformer block over the C channel tokens at every
   time step (4 heads of 16 dims, GELU feed-forward of 16 units), dropout 0.1 after it.
3. Cross-channel fusion: one FC layer from C * F to 2F features per time step, ReLU.
4. Global temporal extraction: one LSTM layer of 2F units.
5. Temporal attention aggregation: tanh(FC) scores, softmax over time, weighted sum c, output
   x_T + gamma * c with a trainable gamma initialised to 0.
6. Linear classifier.

For HAPT acc+gyro (6 channels, 12 classes, 128 samples) this gives 32,369 parameters and
3.30M MACs (published: about 29k and 2.9M). The parameter count does not depend on the
strides; the paper's all-stride-2 variant costs 0.89M MACs. We follow the released code layer
by layer and could not locate the 3k-parameter difference in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ChannelwiseConv, check_positive


class ChannelAttention(nn.Module):
    """Multi-head scaled dot-product self-attention whose inner width (heads * head_dim) may
    differ from the token width, as in TinyHAR's cross-channel block. x: [N, tokens, dim]."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = (
            z.reshape(-1, t, self.heads, self.head_dim).transpose(1, 2)
            for z in self.qkv(x).chunk(3, dim=-1)
        )
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.head_dim**-0.5, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, t, self.heads * self.head_dim)
        return self.out(out)


class ChannelTransformer(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + FFN(LN(x)) (GELU)."""

    def __init__(self, dim: int, heads: int, head_dim: int, ffn: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ChannelAttention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class TemporalAttention(nn.Module):
    """TinyHAR's temporal aggregation: x_T + gamma * sum_t softmax_t(w·tanh(W x_t)) x_t."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, T, D]
        weights = torch.softmax(self.score(torch.tanh(self.proj(x))), dim=1)  # [B, T, 1]
        context = (weights * x).sum(dim=1)
        return x[:, -1] + self.gamma * context


@register_model("tinyhar", role="peer")
class TinyHAR(HARModel):
    """TinyHAR as released (see the module docstring).

    Features: "stage1" (conv subnet, [B, C * F, T']), "stage2" (after cross-channel
    interaction, [B, C * F, T']), "stage3" (after FC fusion, [B, 2F, T']), "final" (LSTM
    outputs, [B, 2F, T']) and "embedding" (temporal aggregation, [B, 2F]).
    """

    param_range = (20_000, 40_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        filters: int = 20,
        kernel: int = 5,
        strides: Sequence[int] = (1, 2, 1, 2),
        heads: int = 4,
        head_dim: int = 16,
        ffn: int = 16,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for name, value in (("heads", heads), ("head_dim", head_dim), ("ffn", ffn)):
            check_positive(name, value)
        self.convs = ChannelwiseConv(in_channels, filters, kernel, strides, batch_norm=True)
        if self.convs.out_len(window) < 1:
            raise ValueError(
                f"tinyhar: window {window} is too short for {len(strides)} convolutions "
                f"of kernel {kernel} with strides {list(strides)}"
            )
        self.in_channels, self.filters = in_channels, filters
        self.interaction = ChannelTransformer(filters, heads, head_dim, ffn)
        self.dropout = nn.Dropout(dropout)
        self.fusion = nn.Sequential(nn.Linear(in_channels * filters, 2 * filters), nn.ReLU())
        self.lstm = nn.LSTM(2 * filters, 2 * filters, batch_first=True)
        self.aggregate = TemporalAttention(2 * filters)
        self.head = nn.Linear(2 * filters, num_classes)
        self.feature_names = ("stage1", "stage2", "stage3", "final", "embedding")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        C, F = self.in_channels, self.filters
        h = self.convs(x)[-1]  # [B, C, F, T']
        T = h.shape[-1]
        feats = {"stage1": h.flatten(1, 2)}
        tokens = h.permute(0, 3, 1, 2).reshape(-1, C, F)  # [B * T', C, F]: channels are tokens
        h = self.dropout(self.interaction(tokens)).reshape(-1, T, C * F)  # [B, T', C * F]
        feats["stage2"] = h.transpose(1, 2)
        h = self.fusion(h)  # [B, T', 2F]
        feats["stage3"] = h.transpose(1, 2)
        h, _ = self.lstm(h)
        feats["final"] = h.transpose(1, 2)
        emb = self.aggregate(h)
        feats["embedding"] = emb
        return ModelOutput(self.head(emb), feats)
