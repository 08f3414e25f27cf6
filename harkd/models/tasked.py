"""`tasked`: the sensor-token transformer of TASKED (Suh, Rey & Lukowicz, "TASKED:
Transformer-based Adversarial learning for human activity recognition using wearable sensors
via Self-KnowledgE Distillation", Knowledge-Based Systems 260, 2023, arXiv 2209.09092).

The input's channels are read as consecutive tri-axial sensors (acc x, y, z, then gyro x, y, z:
the order of the view [acc, gyro]); `in_channels` must be a multiple of 3. Each sensor is
handled in its own frame: its axes and their magnitude (the part of the signal that does not
depend on how the sensor is turned) are cut into patches of `patch` samples and embedded by
the sensor's own linear map (a grouped convolution: no weights shared across sensors, whose
frames differ), plus a learned sensor embedding and a sinusoidal time encoding. A pre-norm
Transformer encoder (Vaswani et al., NeurIPS 2017) attends over every (sensor, time) token, so
it relates sensors to each other and each sensor across time; the tokens' mean goes to a
linear head. TASKED's subject-adversarial training, MMD alignment and self-distillation are the
method `tasked` (harkd/distill/tasked.py), which trains any registered model.

Departures: the paper's per-sensor convolutional feature extractors are one patch embedding
per sensor here, and its separate spatial and temporal attention is one attention over all
tokens. harkd standardises each channel, so the magnitude is that of the standardised axes:
rotation-invariant only as far as a sensor's axes share a scale.

Sizes (6 classes, 128 samples): `tasked` (d_model 64, depth 3, ffn 128) 105,286 parameters on
acc+gyro and 103,110 on acc only; `tasked_s` (d_model 16, depth 1, ffn 32, 2 heads) 2,902 on
acc only, under the tiny students' ~5k budget (3,446 on acc+gyro).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import check_positive
from harkd.models.transformer import exportable_attention, sinusoidal_encoding

#: axes per sensor
AXES = 3


class TASKEDNet(HARModel):
    """Sensor-token transformer (module docstring).

    Features: "stage1" (the embedded tokens), "stage2".."stage{depth + 1}" (each layer's
    output), "final" (after the last LayerNorm), each [B, sensors * d_model, T / patch], and
    "embedding" ([B, d_model], the tokens' mean).
    """

    param_range = (2_000, 200_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        d_model: int = 64,
        heads: int = 4,
        depth: int = 3,
        ffn: int = 128,
        patch: int = 8,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for name, value in (("d_model", d_model), ("heads", heads), ("depth", depth),
                            ("ffn", ffn), ("patch", patch)):  # fmt: skip
            check_positive(name, value)
        if in_channels % AXES:
            raise ValueError(f"tasked: in_channels ({in_channels}) must be tri-axial sensors, "
                             f"a multiple of {AXES}")
        if d_model % heads:
            raise ValueError(f"tasked: d_model ({d_model}) must be divisible by heads ({heads})")
        if window < patch:
            raise ValueError(f"tasked: window ({window}) is shorter than patch ({patch})")
        self.sensors, self.d_model, self.steps = in_channels // AXES, d_model, window // patch
        self.embed = nn.Conv1d(self.sensors * (AXES + 1), self.sensors * d_model, patch,
                               stride=patch, groups=self.sensors)
        self.sensor_embedding = nn.Parameter(torch.randn(1, self.sensors, 1, d_model) * 0.02)
        self.register_buffer("time_encoding", sinusoidal_encoding(self.steps, d_model),
                             persistent=False)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model, heads, ffn, dropout, activation="gelu", batch_first=True, norm_first=True
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)
        self.feature_names = (*(f"stage{i + 1}" for i in range(depth + 1)), "final", "embedding")

    def _map(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, sensors * T', D] tokens -> [B, sensors * D, T'] map."""
        b = tokens.shape[0]
        h = tokens.reshape(b, self.sensors, self.steps, self.d_model).permute(0, 1, 3, 2)
        return h.reshape(b, self.sensors * self.d_model, self.steps)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        b = x.shape[0]
        axes = x[..., : self.steps * self.embed.stride[0]].reshape(b, self.sensors, AXES, -1)
        magnitude = torch.sqrt(axes.pow(2).sum(dim=2, keepdim=True) + 1e-8)
        per_sensor = torch.cat([axes, magnitude], dim=2).reshape(b, self.sensors * (AXES + 1), -1)
        h = self.embed(per_sensor).reshape(b, self.sensors, self.d_model, self.steps)
        h = h.transpose(2, 3) + self.sensor_embedding + self.time_encoding
        h = self.dropout(h.reshape(b, self.sensors * self.steps, self.d_model))
        feats = {"stage1": self._map(h)}
        with exportable_attention():
            for i, layer in enumerate(self.layers):
                h = layer(h)
                feats[f"stage{i + 2}"] = self._map(h)
        h = self.norm(h)
        feats["final"] = self._map(h)
        feats["embedding"] = h.mean(dim=1)
        return ModelOutput(self.head(self.dropout(feats["embedding"])), feats)


register_model("tasked", role="teacher")(TASKEDNet)
register_model("tasked_s", role="student")(partial(TASKEDNet, d_model=16, heads=2, depth=1,
                                                   ffn=32))
