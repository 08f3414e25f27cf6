"""DeepConvLSTM and TinyHAR follow their published designs (sizes worked out by hand)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harkd.deploy.flops import count_macs, count_params
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
    assert count_macs(pipeline, (1, 6, 128)) == conv_macs + lstm_macs + 128 * 12


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
    assert count_macs(model, (1, 6, 128)) == conv_macs + attn_macs + rest


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
