"""DeepConvLSTM, TinyHAR and TinierHAR follow their published designs (sizes worked out by
hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harkd.deploy.export import check_export, export_onnx
from harkd.deploy.flops import count_params, deployed_cost
from harkd.models import build_model


def test_deepconvlstm_sizes_paper_and_tinyhar_pipeline() -> None:
    # paper: conv 1->64 (5*64+64), 3 x conv 64->64 (5*64*64+64), LSTM 384->128, LSTM 128->128
    conv = 5 * 64 + 64 + 3 * (5 * 64 * 64 + 64)
    lstm1 = 4 * (6 * 64 * 128 + 128 * 128 + 2 * 128)
    lstm2 = 4 * (128 * 128 + 128 * 128 + 2 * 128)
    head = 128 * 12 + 12
    assert count_params(build_model("deepconvlstm", 6, 12, 128)) == conv + lstm1 + lstm2 + head
    # TinyHAR's pipeline: one LSTM layer, stride 2 on conv 2 and 4 -> the published ~327k
    pipeline = build_model("deepconvlstm", 6, 12, 128, lstm_layers=1, strides=(1, 2, 1, 2))
    assert count_params(pipeline) == conv + lstm1 + head == 326_732
    # lengths 124, 60, 56, 26; per channel conv MACs, then 26 LSTM steps and the head
    conv_macs = 6 * (124 * 64 * 5 + (60 + 56 + 26) * 64 * 64 * 5)
    lstm_macs = 26 * 4 * (384 * 128 + 128 * 128)
    assert deployed_cost(pipeline, (1, 6, 128))["macs"] == conv_macs + lstm_macs + 128 * 12


def test_deepconvlstm_convolves_each_channel_with_shared_kernels() -> None:
    torch.manual_seed(0)
    model = build_model("deepconvlstm", 6, 6, 64).eval()
    x = torch.randn(2, 6, 64)
    conv = model.convs.layers[0][0]
    # the paper's (5 x 1) Conv2d on [B, 1, T, C]
    ref = F.relu(F.conv2d(x.transpose(1, 2)[:, None], conv.weight[..., None], conv.bias))
    got = model(x).features["stage1"].reshape(2, 6, 64, 60)  # [B, C, F, T]
    torch.testing.assert_close(got, ref.permute(0, 3, 1, 2))


def test_deepconvlstm_classifies_from_last_lstm_step() -> None:
    torch.manual_seed(0)
    model = build_model("deepconvlstm", 3, 4, 64).eval()
    out = model(torch.randn(2, 3, 64))
    final, emb = out.features["final"], out.features["embedding"]
    assert final.shape == (2, 128, 64 - 4 * 4)
    torch.testing.assert_close(emb, final[:, :, -1])
    torch.testing.assert_close(out.logits, model.head(emb))


def test_tinyhar_size_and_macs() -> None:
    model = build_model("tinyhar", 6, 12, 128)
    conv = 5 * 20 + 20 + 3 * (5 * 20 * 20 + 20) + 4 * 2 * 20  # + BN
    transformer = 2 * 2 * 20 + 20 * 192 + 64 * 20 + 20 + 20 * 16 + 16 + 16 * 20 + 20
    fusion = 120 * 40 + 40
    lstm = 4 * (40 * 40 + 40 * 40 + 2 * 40)
    aggregation = 40 * 40 + 40 + 40 + 1
    head = 40 * 12 + 12
    assert count_params(model) == conv + transformer + fusion + lstm + aggregation + head == 32_369
    # lengths 124, 60, 56, 26 (strides 1, 2, 1, 2 as released)
    conv_macs = 6 * (124 * 20 * 5 + (60 + 56 + 26) * 20 * 20 * 5)
    tokens = 26 * 6
    attn_macs = tokens * (20 * 192 + 64 * 20 + 20 * 16 + 16 * 20) + 26 * 2 * 4 * 6 * 6 * 16
    rest = 26 * (120 * 40 + 4 * 2 * 40 * 40 + 40 * 40 + 40 + 40) + 40 * 12
    assert deployed_cost(model, (1, 6, 128))["macs"] == conv_macs + attn_macs + rest


def test_tinyhar_cross_channel_block_is_permutation_equivariant() -> None:
    torch.manual_seed(0)
    model = build_model("tinyhar", 6, 6, 128).eval()
    x = torch.randn(2, 6, 128)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    a = model(x).features["stage2"].reshape(2, 6, 20, -1)
    b = model(x[:, perm]).features["stage2"].reshape(2, 6, 20, -1)
    torch.testing.assert_close(b, a[:, perm], atol=1e-5, rtol=1e-5)


def test_tinyhar_gamma_starts_at_zero_so_embedding_is_last_step() -> None:
    torch.manual_seed(0)
    model = build_model("tinyhar", 6, 6, 128).eval()
    out = model(torch.randn(2, 6, 128))
    assert model.aggregate.gamma.item() == 0.0
    torch.testing.assert_close(out.features["embedding"], out.features["final"][:, :, -1])


def tinierhar_params(channels: int, classes: int) -> int:
    """TinierHAR's parameters by hand: F = 4, 2 + 4 blocks, k = 5, bidirectional GRU of 16."""
    block1 = 1 * 5 + 1 * 4 + 2 * 4 + (1 * 4 + 2 * 4)  # depthwise, pointwise, BN, shortcut + BN
    block2 = 4 * 5 + 4 * 8 + 2 * 8 + (4 * 8 + 2 * 8)
    same_width = 4 * (8 * 5 + 8 * 8 + 2 * 8)  # identity shortcuts
    gru = 2 * 3 * ((8 * channels) * 16 + 16 * 16 + 2 * 16)
    return block1 + block2 + same_width + gru + 32 + (32 * classes + classes)


def test_tinierhar_size_and_macs_match_the_released_configuration() -> None:
    model = build_model("tinierhar", 6, 12, 128)
    # the released code logs 7,483 for HAPT (6 channels, 12 classes); it has 94 more biases,
    # each cancelled by the BN or softmax after it: 37 depthwise, 44 pointwise, 12 shortcut, 1
    # score
    assert count_params(model) == tinierhar_params(6, 12) == 7_483 - 94
    assert count_params(build_model("tinierhar", 6, 6, 128)) == tinierhar_params(6, 6) == 7_191
    assert count_params(build_model("tinierhar", 3, 6, 128)) == tinierhar_params(3, 6) == 4_887
    # lengths 128 -> 64 -> 32 over 6 sensor rows; 32 GRU steps of 48 inputs, both directions
    conv = 6 * (128 * (5 + 4 + 4) + 64 * (4 * 5 + 32 + 32) + 4 * 32 * (8 * 5 + 64))
    gru = 32 * 2 * 3 * 16 * (48 + 16)
    aggregation = 32 * 32 + 32 * 32  # scores, weighted sum
    assert deployed_cost(model, (1, 6, 128))["macs"] == conv + gru + aggregation + 32 * 12


def test_tinierhar_convolves_each_channel_with_shared_kernels() -> None:
    torch.manual_seed(0)
    model = build_model("tinierhar", 6, 6, 128).eval()
    x = torch.randn(2, 6, 128)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    a = model(x).features["stage6"].reshape(2, 8, 6, 32)  # [B, 2F, C, T']
    b = model(x[:, perm]).features["stage6"].reshape(2, 8, 6, 32)
    torch.testing.assert_close(b, a[:, :, perm])


def test_tinierhar_blocks_are_residual() -> None:
    torch.manual_seed(0)
    model = build_model("tinierhar", 3, 6, 128).eval()
    with torch.no_grad():
        norm = model.blocks[3].pointwise[1]  # silence the main path of an identity block
        norm.weight.zero_()
        norm.bias.zero_()
        feats = model(torch.randn(2, 3, 128)).features
    torch.testing.assert_close(feats["stage4"], feats["stage3"])
    assert not torch.equal(feats["stage3"], feats["stage2"])


def test_tinierhar_aggregates_gru_outputs_by_softmax_over_time() -> None:
    torch.manual_seed(0)
    model = build_model("tinierhar", 6, 6, 128).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 6, 128))
        steps = out.features["final"].transpose(1, 2)  # [B, T', 32]
        weights = torch.softmax(steps @ model.aggregate.score.weight.T, dim=1)
    assert out.features["final"].shape == (2, 32, 32)
    torch.testing.assert_close(out.features["embedding"], (weights * steps).sum(dim=1))
    torch.testing.assert_close(out.logits, model.head(out.features["embedding"]))


@pytest.mark.parametrize("view", [["acc"], ["acc", "gyro"]])
def test_tinierhar_exports_and_matches_pytorch_on_real_windows(view, hapt_quick_small, tmp_path):
    ws = hapt_quick_small
    idx = ws.channel_indices(view)
    norm = ([ws.meta["norm"]["mean"][i] for i in idx], [ws.meta["norm"]["std"][i] for i in idx])
    torch.manual_seed(0)
    model = build_model("tinierhar", len(idx), ws.num_classes, 128).eval()
    path = export_onnx(model, tmp_path / "tinierhar.onnx", len(idx), 128, {}, norm)
    check = check_export(model, path, np.ascontiguousarray(ws.X[ws.mask("test")][:300, idx]), norm)
    assert check.passed, check


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kernel": 4}, "kernel must be odd"),
        ({"extra_blocks": -1}, "extra_blocks must be >= 0"),
        ({"hidden": 0}, "hidden must be > 0"),
        ({"window": 3}, "window 3 is too short"),
    ],
)
def test_tinierhar_rejects_bad_options(options: dict, message: str) -> None:
    window = options.pop("window", 128)
    with pytest.raises(ValueError, match=message):
        build_model("tinierhar", 6, 6, window, **options)
