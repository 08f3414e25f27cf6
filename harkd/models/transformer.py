"""`transformer` teacher: a Transformer encoder over a down-sampled sensor sequence.

Vaswani et al., "Attention Is All You Need" (NeurIPS 2017) with pre-norm layers (Xiong et al.,
"On Layer Normalization in the Transformer Architecture", ICML 2020). The input [B, C, T] is
embedded either by a convolutional stem (two strided conv-BN-ReLU layers) or by a patch
embedding (one conv with kernel = stride = patch, as in ViT, Dosovitskiy et al., ICLR 2021),
gets a sinusoidal or learned positional encoding, passes `depth` nn.TransformerEncoderLayer
(batch_first, norm_first), a final LayerNorm, mean or CLS pooling, and a linear head.
Default: d_model 64, 4 heads, FFN 256, depth 4, conv stem: 211,846 parameters for 6 channels
and 6 classes.

The layers are called one by one (for the per-layer features), so nn.TransformerEncoder's
nested-tensor path never runs. nn.TransformerEncoderLayer's fused inference fast path does not
export to ONNX (it lowers to one `_transformer_encoder_layer_fwd` op): `forward` runs the layers
under `exportable_attention()`, which disables it while `torch.onnx` traces the model, and the
plain path computes the same function.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ConvBNAct, check_positive

STEMS = ("conv", "patch")
POSITIONAL = ("sinusoidal", "learned")
POOLING = ("mean", "cls")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"transformer: {name} must be one of {list(allowed)}, got {value!r}")
    return value


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos positional encoding of Vaswani et al. (2017), [length, dim]."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


@contextmanager
def exportable_attention() -> Iterator[None]:
    """Attention layers' fused inference fast path off while torch.onnx traces (module
    docstring); restored on leaving."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    exporting = torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
    try:
        if exporting:
            torch.backends.mha.set_fastpath_enabled(False)
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


@register_model("transformer", role="teacher")
class TransformerHAR(HARModel):
    """Transformer-encoder teacher.

    Args:
        stem: "conv" (two stride-2 conv-BN-ReLU layers, kernel 5, so T' = T / 4) or "patch"
            (non-overlapping patches of `patch` samples, T' = T // patch).
        positional: "sinusoidal" (fixed) or "learned".
        pooling: "mean" over tokens or a learned "cls" token.

    Features: "stage1".."stage{depth}" (each layer's output as [B, d_model, T']), "final"
    (after the last LayerNorm, [B, d_model, T'], CLS token excluded) and "embedding"
    ([B, d_model]).
    """

    param_range = (100_000, 400_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        d_model: int = 64,
        heads: int = 4,
        depth: int = 4,
        ffn: int = 256,
        dropout: float = 0.1,
        stem: str = "conv",
        patch: int = 4,
        positional: str = "sinusoidal",
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        for name, value in (
            ("d_model", d_model),
            ("heads", heads),
            ("depth", depth),
            ("ffn", ffn),
            ("patch", patch),
            ("window", window),
        ):
            check_positive(name, value)
        if d_model % heads:
            raise ValueError(
                f"transformer: d_model ({d_model}) must be divisible by heads ({heads})"
            )
        self.pooling = _choice("pooling", pooling, POOLING)
        if _choice("stem", stem, STEMS) == "conv":
            self.stem = nn.Sequential(
                ConvBNAct(in_channels, d_model // 2, 5, stride=2),
                ConvBNAct(d_model // 2, d_model, 5, stride=2),
            )
            tokens = (window - 1) // 2 + 1
            tokens = (tokens - 1) // 2 + 1
        else:
            if window < patch:
                raise ValueError(f"transformer: window ({window}) is shorter than patch ({patch})")
            self.stem = nn.Conv1d(in_channels, d_model, patch, stride=patch)
            tokens = window // patch
        self.tokens = tokens
        n_pos = tokens + (pooling == "cls")
        if _choice("positional", positional, POSITIONAL) == "learned":
            self.pos = nn.Parameter(torch.randn(1, n_pos, d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_encoding(n_pos, d_model)[None], persistent=False)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)
        self.feature_names = (*(f"stage{i + 1}" for i in range(depth)), "final", "embedding")

    def _tokens_to_map(self, h: torch.Tensor) -> torch.Tensor:
        """[B, (1 +) T', D] -> [B, D, T'], dropping the CLS token."""
        if self.cls is not None:
            h = h[:, 1:]
        return h.transpose(1, 2)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = self.stem(x).transpose(1, 2)  # [B, T', D]
        if self.cls is not None:
            h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1)
        h = self.dropout(h + self.pos)
        feats: dict[str, torch.Tensor] = {}
        with exportable_attention():
            for i, layer in enumerate(self.layers):
                h = layer(h)
                feats[f"stage{i + 1}"] = self._tokens_to_map(h)
        h = self.norm(h)
        feats["final"] = self._tokens_to_map(h)
        emb = h[:, 0] if self.cls is not None else h.mean(dim=1)
        feats["embedding"] = emb
        return ModelOutput(self.head(self.dropout(emb)), feats)
