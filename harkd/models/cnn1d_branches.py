"""`cnn1d_branches` teacher: one `cnn1d` trunk per modality, fused only at the head.

The view's channels are cut into consecutive groups (`branch_channels`, default one group per
triaxial sensor: [acc, gyro] -> [3, 3]); each group goes through its own ResNet-style 1-D CNN
(`harkd.models.cnn1d`, without its classifier), so each modality is encoded on its own. The
branches' pooled embeddings are concatenated and a linear head (after dropout) classifies them.
This is the teacher modality-relation distillation (`mrkd`) reads: its per-modality embeddings
are the feature "modalities".

Default: widths (24, 48, 96), one block per stage, kernel 5: 200,022 parameters for 6 channels
(two branches) and 6 classes, about the size of the single-trunk cnn1d (177,542).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.cnn1d import CNN1D

#: channels of one branch when `branch_channels` is not given (a triaxial sensor)
SENSOR_AXES = 3


def split_channels(in_channels: int, branch_channels: Sequence[int] | None) -> list[int]:
    """The channel count of each branch; a ValueError naming `branch_channels` otherwise."""
    if branch_channels is None:
        if in_channels % SENSOR_AXES or in_channels < 2 * SENSOR_AXES:
            raise ValueError(
                f"cnn1d_branches: {in_channels} input channels are not two or more triaxial "
                f"sensors; give branch_channels (channels per modality, in view order)"
            )
        return [SENSOR_AXES] * (in_channels // SENSOR_AXES)
    counts = [int(c) for c in branch_channels]
    if len(counts) < 2 or min(counts) < 1 or sum(counts) != in_channels:
        raise ValueError(
            f"cnn1d_branches: branch_channels must be two or more counts >= 1 summing to the "
            f"{in_channels} input channels, got {list(branch_channels)!r}"
        )
    return counts


@register_model("cnn1d_branches", role="teacher")
class CNN1DBranches(HARModel):
    """One cnn1d trunk per modality (channel group), fused by a linear head.

    Features: "stage1".."stageN" and "final" (the branches' maps concatenated over channels,
    [B, M * w_i, T_i]), "modalities" ([B, w_N, M]: column m is branch m's pooled embedding) and
    "embedding" ([B, M * w_N], the concatenated embeddings the head reads).
    """

    param_range = (100_000, 300_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        branch_channels: Sequence[int] | None = None,
        widths: Sequence[int] = (24, 48, 96),
        blocks_per_stage: int | Sequence[int] = 1,
        kernel: int = 5,
        stem_kernel: int = 7,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        counts = split_channels(in_channels, branch_channels)
        self.bounds = [(sum(counts[:i]), sum(counts[: i + 1])) for i in range(len(counts))]
        branches = []
        for count in counts:
            trunk = CNN1D(count, 1, window, widths, blocks_per_stage, kernel, stem_kernel, dropout)
            trunk.head = nn.Identity()  # the branch ends at its pooled embedding
            branches.append(trunk)
        self.branches = nn.ModuleList(branches)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(len(counts) * widths[-1], num_classes)
        stages = tuple(f"stage{i + 1}" for i in range(len(widths)))
        self.feature_names = (*stages, "final", "modalities", "embedding")
        self._stages = stages

    def forward(self, x: torch.Tensor) -> ModelOutput:
        outs = [
            branch(x[:, lo:hi]).features
            for branch, (lo, hi) in zip(self.branches, self.bounds, strict=True)
        ]
        feats = {name: torch.cat([o[name] for o in outs], dim=1) for name in self._stages}
        feats["final"] = feats[self._stages[-1]]
        feats["modalities"] = torch.stack([o["embedding"] for o in outs], dim=-1)
        emb = torch.cat([o["embedding"] for o in outs], dim=1)
        feats["embedding"] = emb
        return ModelOutput(self.head(self.dropout(emb)), feats)
