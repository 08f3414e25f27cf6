"""graph_macs / deployed_cost / count_params against counts worked out by hand.

Every module is exported to ONNX (`trace_onnx`) and counted on that graph, the way harkd counts
a deployed model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from harkd.deploy.export import trace_onnx
from harkd.deploy.flops import count_params, deployed_cost, graph_macs
from harkd.models import build_model
from harkd.models.base import LogitsOnly
from harkd.models.skeleton import GraphConv, graph_partitions
from harkd.models.tinyhar import ChannelAttention


def macs(module: nn.Module, shape: tuple[int, ...]) -> int:
    return graph_macs(trace_onnx(module.eval(), shape), shape)["total"]


@contextmanager
def fused_attention_off() -> Iterator[None]:
    """PyTorch's fused inference kernel for attention does not export to ONNX (the harkd
    transformer turns it off the same way while it is exported)."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


class First(nn.Module):
    """The first output of a module that returns a tuple (RNNs, attention)."""

    def __init__(self, inner: nn.Module, self_attention: bool = False) -> None:
        super().__init__()
        self.inner, self.self_attention = inner, self_attention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        args = (x, x, x) if self.self_attention else (x,)
        return self.inner(*args)[0]


def test_conv1d_plain_strided_depthwise_and_grouped() -> None:
    # out length (32 + 2 - 3) // 1 + 1 = 32; 8 outputs x 32 steps x 4 inputs x 3 taps
    assert macs(nn.Conv1d(4, 8, 3, padding=1), (1, 4, 32)) == 8 * 32 * 4 * 3
    # stride 2, no padding: (32 - 5) // 2 + 1 = 14 steps; batch 2 doubles it
    assert macs(nn.Conv1d(4, 8, 5, stride=2), (2, 4, 32)) == 2 * 8 * 14 * 4 * 5
    # depthwise: every output channel reads one input channel
    assert macs(nn.Conv1d(6, 6, 5, padding=2, groups=6), (1, 6, 20)) == 6 * 20 * 5
    # groups=2: 4 input channels per group
    assert macs(nn.Conv1d(8, 4, 1, groups=2), (1, 8, 10)) == 4 * 10 * 4


def test_conv2d_linear_and_zero_cost_layers() -> None:
    assert macs(nn.Conv2d(3, 8, (1, 7), (1, 4), (0, 3)), (1, 3, 1, 128)) == 8 * 32 * 3 * 7
    assert macs(nn.Linear(10, 6), (4, 10)) == 4 * 60  # a Gemm
    assert macs(nn.Linear(10, 6), (2, 7, 10)) == 2 * 7 * 60  # a MatMul, per token
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(), nn.AdaptiveAvgPool1d(1),
        nn.Flatten(), nn.Linear(4, 3),
    )
    # conv: 4 outputs x 8 steps x 2 inputs x 3 taps; BN, ReLU, pooling: 0; head 4 x 3
    assert macs(model, (1, 2, 10)) == 4 * 8 * 2 * 3 + 4 * 3


def test_recurrent_layers() -> None:
    # LSTM: 4 gates x (input*hidden + hidden*hidden) per step; second layer input = hidden
    lstm = First(nn.LSTM(5, 7, num_layers=2, batch_first=True))
    per_step = 4 * (5 * 7 + 7 * 7) + 4 * (7 * 7 + 7 * 7)
    assert macs(lstm, (3, 11, 5)) == 3 * 11 * per_step
    # time-major, bidirectional GRU: 3 gates, both directions
    gru = First(nn.GRU(4, 6, bidirectional=True))
    assert macs(gru, (9, 2, 4)) == 9 * 2 * 2 * 3 * (4 * 6 + 6 * 6)


def test_attention() -> None:
    L, E = 5, 8
    mha = First(nn.MultiheadAttention(E, 2, batch_first=True), self_attention=True)
    # q, k, v and output projections, then Q·Kᵀ and attention·V
    with fused_attention_off():
        assert macs(mha, (3, L, E)) == 3 * (4 * L * E * E + 2 * L * L * E)
    # TinyHAR's attention: inner width 2 heads x 4 = 8 on tokens of width 6
    tokens = 5
    projections = tokens * 6 * 24 + tokens * 8 * 6
    matmuls = 2 * 2 * tokens * tokens * 4
    assert macs(ChannelAttention(dim=6, heads=2, head_dim=4), (3, tokens, 6)) == 3 * (
        projections + matmuls)


def test_transformer_encoder_layer() -> None:
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True).eval()
    L = 4
    expected = 4 * L * 8 * 8 + 2 * L * L * 8 + L * 8 * 16 + L * 16 * 8
    with fused_attention_off():
        # called from a parent module, as a model calls it (traced alone, its is_causal
        # argument becomes a tensor that scaled_dot_product_attention refuses)
        assert macs(nn.Sequential(layer), (1, L, 8)) == expected


class WeightedSum(nn.Module):
    """Softmax weights over time, then the weighted sum written element-wise (as TinyHAR's
    temporal attention does): [B, T, D] -> [B, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(self.score(x), dim=1) * x).sum(dim=1)


class Gate(nn.Module):
    """x * sigmoid(x): a product that is not summed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def test_a_weighted_sum_written_elementwise_counts_one_mac_per_product() -> None:
    # score: 6 steps x 4 features x 1 output; weighted sum: 6 x 4 products accumulated
    assert macs(WeightedSum(4), (1, 6, 4)) == 6 * 4 + 6 * 4
    # a product that is not summed is element-wise: no MACs
    assert macs(Gate(), (1, 6, 4)) == 0


def test_gemm_with_transposed_input_counts_its_inner_axis() -> None:
    """A hand-built graph: Gemm(A, B, transA=1) with A [5, 2] -> Aᵀ [2, 5], B [5, 3]."""
    b = numpy_helper.from_array(torch.ones(5, 3).numpy(), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["a", "b"], ["y"], transA=1)], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [5, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [b],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert graph_macs(proto, (5, 2)) == {"Gemm": 2 * 3 * 5, "total": 2 * 3 * 5}


def test_an_operator_without_a_rule_raises() -> None:
    proto = trace_onnx(nn.ConvTranspose1d(2, 3, 4).eval(), (1, 2, 8))
    assert any(n.op_type == "ConvTranspose" for n in proto.graph.node)
    with pytest.raises(ValueError, match=r"no MAC rule for operator\(s\) \['ConvTranspose'\]"):
        graph_macs(proto, (1, 2, 8))


def test_count_params_counts_shared_once() -> None:
    lin = nn.Linear(4, 3)
    assert count_params(lin) == 15
    assert count_params(nn.Sequential(lin, nn.ReLU(), lin)) == 15
    assert count_params(nn.BatchNorm1d(5)) == 10


def test_deployed_cost_counts_the_merged_tiny_student() -> None:
    """tiny: stem Conv (3 -> 64, k17, stride 16, T 128 -> 7), depthwise k9 on 64 channels,
    head 64 -> 6; the training-time branches (k9 and k3 beside each conv) are merged."""
    torch.manual_seed(0)
    model = build_model("tiny", 3, 6, 128).train()
    before = count_params(model)
    cost = deployed_cost(model, (1, 3, 128))
    assert cost["macs"] == 64 * 3 * 17 * 7 + 64 * 9 * 7 + 64 * 6
    assert cost["train_params"] == before == count_params(model)  # the model is left alone
    assert cost["params"] < before
    assert model.training  # and so is its mode
    # unmerged, the branches cost MACs
    assert macs(LogitsOnly(build_model("tiny", 3, 6, 128)), (1, 3, 128)) > cost["macs"]


def test_the_skeleton_graph_convolution_counts_its_joint_aggregation() -> None:
    """GraphConv on [B, 3, T=8, V=20] with the 3 Kinect partitions, 4 output channels: a 1x1
    convolution to 4 x 3 maps, then one matrix product [.., 3 x 20] @ [3 x 20, 20]."""
    gcn = GraphConv(3, 4, graph_partitions("kinect20", 20))
    conv = (4 * 3) * 8 * 20 * 3
    aggregation = 4 * 8 * 20 * (3 * 20)
    assert macs(gcn, (1, 3, 8, 20)) == conv + aggregation
