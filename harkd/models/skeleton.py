"""Skeleton teacher `stgcn` and skeleton + accelerometer fusion teacher `fusion`.

`stgcn`: a small spatio-temporal graph convolutional network (Yan, Xiong & Lin, "Spatial
Temporal Graph Convolutional Networks for Skeleton-Based Action Recognition", AAAI 2018). The
input [B, 3V, T] holds V joints joint-major (x, y, z per joint, as the `utd_mhad` and
`synth_skeleton` readers write the `skeleton` group). Each block: a graph convolution (a 1x1
convolution per adjacency partition, aggregated over the joints with the fixed normalised
partitions) then a temporal convolution (k x 1) with BatchNorm and ReLU, and a residual
connection. Partitions follow ST-GCN's spatial strategy on the Kinect v1 bone tree: the joint
itself, its parent (centripetal) and its children (centrifugal), each column-normalised.
`graph="auto"` uses the Kinect tree for 20 joints; any other joint count has no known bones and
gets two partitions, the joint itself and the mean of all other joints (one for a single joint).

`fusion`: late fusion of two branches (as in the multi-teacher setting of PSKD, Ni, Ngu & Yan,
ACM MM 2022): an `stgcn` trunk over the skeleton channels (all but the last `sensor_channels`)
and a 1-D CNN over the sensor channels (the last `sensor_channels`, the `acc` group when the
view is [skeleton, acc]); both halve the time axis per stage, so their maps align; the pooled
embeddings are concatenated and classified by one linear head.

Features: "stage1".."stageN" ([B, C_i, T_i], joints averaged; for `fusion` both branches' maps
concatenated), "final" (the last stage) and "embedding" ([B, C]). The contract tests build every
teacher for 6 channels; the intended inputs are 60 channels (`stgcn`, 20 joints) and 63
(`fusion`, skeleton + acc). Both export to ONNX (MatMul for the graph aggregation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from data_prep.skeleton_topology import KINECT_V1_JOINTS, KINECT_V1_PARENTS
from harkd.models.base import HARModel, ModelOutput, register_model
from harkd.models.blocks import ConvBNAct, check_positive


def _normalise_columns(a: torch.Tensor) -> torch.Tensor:
    """Divide each column by its sum (columns summing to 0 stay 0)."""
    s = a.sum(dim=0, keepdim=True)
    return a / torch.where(s > 0, s, torch.ones_like(s))


def graph_partitions(graph: str, joints: int) -> torch.Tensor:
    """Adjacency partitions [K, V, V]; `x @ A[k]` ([.., V] @ [V, V]) aggregates into each column.

    "kinect20": self, parent -> child (centripetal), child -> parent (centrifugal).
    "complete": self and the mean of all other joints (self only for one joint).
    "auto": "kinect20" for 20 joints, else "complete".
    """
    if graph == "auto":
        graph = "kinect20" if joints == len(KINECT_V1_JOINTS) else "complete"
    eye = torch.eye(joints)
    if graph == "kinect20":
        if joints != len(KINECT_V1_JOINTS):
            raise ValueError(f"graph 'kinect20' needs 20 joints (60 channels), got {joints}")
        from_parent, from_child = torch.zeros(joints, joints), torch.zeros(joints, joints)
        for child, parent in enumerate(KINECT_V1_PARENTS):
            if parent >= 0:
                from_parent[parent, child] = 1.0
                from_child[child, parent] = 1.0
        return torch.stack([eye, _normalise_columns(from_parent), _normalise_columns(from_child)])
    if graph == "complete":
        if joints == 1:
            return eye.unsqueeze(0)
        return torch.stack([eye, (torch.ones(joints, joints) - eye) / (joints - 1)])
    raise ValueError(f"unknown graph {graph!r}; choose 'auto', 'kinect20' or 'complete'")


class GraphConv(nn.Module):
    """Spatial graph convolution: per-partition 1x1 convolutions, aggregated over joints."""

    def __init__(self, in_channels: int, out_channels: int, partitions: torch.Tensor) -> None:
        super().__init__()
        k, v, _ = partitions.shape
        self.parts, self.out_channels, self.joints = k, out_channels, v
        self.conv = nn.Conv2d(in_channels, out_channels * k, 1)
        # [K*V, V]: one MatMul sums the partitions' aggregations
        self.register_buffer("adjacency", partitions.reshape(k * v, v).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, T, V]
        b, _, t, v = x.shape
        y = self.conv(x).reshape(b, self.parts, self.out_channels, t, v)
        y = y.permute(0, 2, 3, 1, 4).reshape(b, self.out_channels, t, self.parts * v)
        return y @ self.adjacency


class STGCNBlock(nn.Module):
    """Graph conv -> BN -> ReLU -> temporal conv (k x 1, stride) -> BN, + residual, ReLU."""

    def __init__(
        self, cin: int, cout: int, partitions: torch.Tensor, kernel: int, stride: int
    ) -> None:
        super().__init__()
        self.gcn = GraphConv(cin, cout, partitions)
        pad = (kernel - 1) // 2
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, (kernel, 1), (stride, 1), (pad, 0), bias=False),
            nn.BatchNorm2d(cout),
        )
        self.residual = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(
                nn.Conv2d(cin, cout, 1, (stride, 1), bias=False), nn.BatchNorm2d(cout)
            )
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.tcn(self.gcn(x)) + self.residual(x))


class STGCNTrunk(nn.Module):
    """Data BatchNorm, then one STGCN block per width; returns each block's map [B, C, T, V]."""

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        strides: Sequence[int],
        kernel: int,
        graph: str,
    ) -> None:
        super().__init__()
        if in_channels % 3 or in_channels < 3:
            raise ValueError(
                f"stgcn: input channels must be joints x 3 (x, y, z per joint), got {in_channels}"
            )
        if not widths or len(strides) != len(widths):
            raise ValueError(f"stgcn: one stride per width; got widths={widths}, strides={strides}")
        self.joints = in_channels // 3
        partitions = graph_partitions(graph, self.joints)
        self.data_bn = nn.BatchNorm1d(in_channels)
        chans = [3, *widths]
        self.blocks = nn.ModuleList(
            STGCNBlock(a, b, partitions, kernel, s)
            for a, b, s in zip(chans[:-1], chans[1:], strides, strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # x [B, 3V, T] joint-major
        b, _, t = x.shape
        h = self.data_bn(x).reshape(b, self.joints, 3, t).permute(0, 2, 3, 1)  # [B, 3, T, V]
        maps = []
        for block in self.blocks:
            h = block(h)
            maps.append(h)
        return maps


def _features(maps: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    feats = {f"stage{i + 1}": m for i, m in enumerate(maps)}
    feats["final"] = maps[-1]
    feats["embedding"] = maps[-1].mean(dim=-1)
    return feats


@register_model("stgcn", role="teacher")
class SkeletonGCN(HARModel):
    """ST-GCN skeleton teacher (module docstring). Default: 3 blocks of widths 16, 32, 64, each
    halving time, temporal kernel 5: 39,090 parameters for 20 joints and 10 classes."""

    param_range = (15_000, 150_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        widths: Sequence[int] = (16, 32, 64),
        strides: Sequence[int] = (2, 2, 2),
        kernel: int = 5,
        graph: str = "auto",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive("window", window)
        self.trunk = STGCNTrunk(in_channels, widths, strides, kernel, graph)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], num_classes)
        self.feature_names = (*(f"stage{i + 1}" for i in range(len(widths))), "final", "embedding")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        feats = _features([m.mean(dim=-1) for m in self.trunk(x)])
        return ModelOutput(self.head(self.dropout(feats["embedding"])), feats)


@register_model("fusion", role="teacher")
class SkeletonSensorFusion(HARModel):
    """Late fusion of an ST-GCN skeleton branch and a 1-D CNN sensor branch (module docstring).
    Default: widths 16, 32, 64 in both branches, strides 2: 52,994 parameters for 63 channels
    and 10 classes."""

    param_range = (20_000, 200_000)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        window: int,
        sensor_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
        strides: Sequence[int] = (2, 2, 2),
        kernel: int = 5,
        graph: str = "auto",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive("window", window)
        if not 0 < sensor_channels < in_channels:
            raise ValueError(
                f"fusion: sensor_channels={sensor_channels} must leave skeleton channels among "
                f"the {in_channels} inputs (the view is [skeleton..., sensor...])"
            )
        self.skeleton_channels = in_channels - sensor_channels
        self.skeleton = STGCNTrunk(self.skeleton_channels, widths, strides, kernel, graph)
        chans = [sensor_channels, *widths]
        self.sensor = nn.ModuleList(
            ConvBNAct(a, b, kernel, s)
            for a, b, s in zip(chans[:-1], chans[1:], strides, strict=True)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * widths[-1], num_classes)
        self.feature_names = (*(f"stage{i + 1}" for i in range(len(widths))), "final", "embedding")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        skel_maps = [m.mean(dim=-1) for m in self.skeleton(x[:, : self.skeleton_channels])]
        h, maps = x[:, self.skeleton_channels :], []
        for conv, skel in zip(self.sensor, skel_maps, strict=True):
            h = conv(h)
            maps.append(torch.cat([skel, h], dim=1))
        feats = _features(maps)
        return ModelOutput(self.head(self.dropout(feats["embedding"])), feats)
