"""count_macs / count_params against counts worked out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harkd.deploy.flops import count_macs, count_params, deployed_cost
from harkd.models.tinyhar import ChannelAttention


def test_conv1d_plain_strided_and_depthwise() -> None:
    # out length (32 + 2 - 3) // 1 + 1 = 32; 8 outputs x 32 steps x 4 inputs x 3 taps
    assert count_macs(nn.Conv1d(4, 8, 3, padding=1), (1, 4, 32)) == 8 * 32 * 4 * 3
    # stride 2, no padding: (32 - 5) // 2 + 1 = 14 steps; batch 2 doubles it
    assert count_macs(nn.Conv1d(4, 8, 5, stride=2), (2, 4, 32)) == 2 * 8 * 14 * 4 * 5
    # depthwise: every output channel reads one input channel
    assert count_macs(nn.Conv1d(6, 6, 5, padding=2, groups=6), (1, 6, 20)) == 6 * 20 * 5
    # groups=2: 4 input channels per group
    assert count_macs(nn.Conv1d(8, 4, 1, groups=2), (1, 8, 10)) == 4 * 10 * 4


def test_conv2d_linear_and_zero_cost_layers() -> None:
    assert count_macs(nn.Conv2d(3, 8, (1, 7), (1, 4), (0, 3)), (1, 3, 1, 128)) == 8 * 32 * 3 * 7
    assert count_macs(nn.Linear(10, 6), (4, 10)) == 4 * 60
    assert count_macs(nn.Linear(10, 6), (2, 7, 10)) == 2 * 7 * 60  # per token
    model = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(), nn.AdaptiveAvgPool1d(1)
    )
    assert count_macs(model, (1, 2, 10)) == 4 * 8 * 2 * 3  # BN folds: 0


def test_recurrent_layers() -> None:
    # LSTM: 4 gates x (input*hidden + hidden*hidden) per step; second layer input = hidden
    lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True)
    per_step = 4 * (5 * 7 + 7 * 7) + 4 * (7 * 7 + 7 * 7)
    assert count_macs(lstm, (3, 11, 5)) == 3 * 11 * per_step
    # time-major, bidirectional GRU: 3 gates, both directions
    gru = nn.GRU(4, 6, bidirectional=True)
    assert count_macs(gru, (9, 2, 4)) == 9 * 2 * 2 * 3 * (4 * 6 + 6 * 6)


class SelfAttention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


def test_multihead_attention_and_own_macs() -> None:
    L, E = 5, 8
    expected = 4 * L * E * E + 2 * L * L * E  # q, k, v, out projections + QK^T + AV
    assert count_macs(SelfAttention(), (3, L, E)) == 3 * expected
    # TinyHAR's attention: inner width 2 heads x 4 = 8 on tokens of width 6
    attn = ChannelAttention(dim=6, heads=2, head_dim=4)
    tokens = 5
    projections = tokens * 6 * 24 + tokens * 8 * 6
    matmuls = 2 * 2 * tokens * tokens * 4
    assert count_macs(attn, (3, tokens, 6)) == 3 * (projections + matmuls)


def test_transformer_encoder_layer_counts_attention_once() -> None:
    layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True).eval()
    L = 4
    expected = 4 * L * 8 * 8 + 2 * L * L * 8 + L * 8 * 16 + L * 16 * 8
    assert count_macs(layer, (1, L, 8)) == expected
    assert layer.training is False  # mode restored


def test_unknown_parameterised_leaf_raises() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.w

    with pytest.raises(ValueError, match="no MAC rule for parameterised module Scale"):
        count_macs(Scale(), (1, 3))


def test_count_params_counts_shared_once() -> None:
    lin = nn.Linear(4, 3)
    assert count_params(lin) == 15
    assert count_params(nn.Sequential(lin, nn.ReLU(), lin)) == 15
    assert count_params(nn.BatchNorm1d(5)) == 10


def test_deployed_cost_counts_the_merged_tiny_student() -> None:
    """tiny: stem Conv (3 -> 64, k17, stride 16, T 128 -> 7), depthwise k9 on 64 channels,
    head 64 -> 6; the training-time branches (k9 and k3 beside each conv) are merged."""
    from harkd.models import build_model

    torch.manual_seed(0)
    model = build_model("tiny", 3, 6, 128)
    before = count_params(model)
    cost = deployed_cost(model, (1, 3, 128))
    assert cost["macs"] == 64 * 3 * 17 * 7 + 64 * 9 * 7 + 64 * 6
    assert cost["train_params"] == before == count_params(model)  # the model is left alone
    assert cost["params"] < before
    assert count_macs(model, (1, 3, 128)) > cost["macs"]  # the branches cost MACs in training
    # a model without training-time branches costs the same either way
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    assert deployed_cost(lin, (1, 3, 4)) == {"params": 39, "macs": 36, "train_params": 39}
