"""Cross-layer range equalization (Nagel et al., ICCV 2019) on exported graphs."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from harkd.deploy.equalize import equalize_ranges
from harkd.deploy.export import export_onnx, logits_module
from harkd.deploy.onnx_io import onnx_logits, read_metadata
from harkd.deploy.quantize import QUANT_KEY, compare_int8, quantize_onnx


def weights(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Conv/Gemm weights of the graph, in node order, keyed by op and position."""
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    return {f"{n.op_type}{k}": inits[n.input[1]] for k, n in enumerate(proto.graph.node)
            if n.op_type in ("Conv", "Gemm")}


def test_equalization_keeps_the_function_and_equalizes_ranges(tiny_onnx, acc_data, tmp_path):
    proto = onnx.load(str(tiny_onnx))
    assert equalize_ranges(proto, sweeps=1) == 2  # stem -> depthwise, depthwise -> head
    out = tmp_path / "eq.onnx"
    onnx.save(proto, str(out))
    x = acc_data.x_test[:256]
    np.testing.assert_allclose(onnx_logits(out, x), onnx_logits(tiny_onnx, x), atol=1e-4)
    # the first pair after one sweep: stem output channel i and depthwise channel i span the
    # same absolute range, sqrt(r1_i * r2_i) of the ranges before
    before = list(weights(onnx.load(str(tiny_onnx))).values())
    after = list(weights(proto).values())
    stem_b, dw_b = before[0].reshape(64, -1), before[1].reshape(64, -1)
    stem_a = np.abs(after[0].reshape(64, -1)).max(1)
    r1, r2 = np.abs(stem_b).max(1), np.abs(dw_b).max(1)
    np.testing.assert_allclose(stem_a, np.sqrt(r1 * r2), rtol=1e-5)


def test_plain_conv_to_conv_pair_through_relu(tmp_path):
    """A regular (group 1) conv after the ReLU is scaled along its input axis."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(3, 8, 5), nn.ReLU(), nn.Conv1d(8, 4, 3))
    with torch.no_grad():
        net[0].weight[2] *= 50.0  # one channel 50x wider than the others
    path = tmp_path / "net.onnx"
    torch.onnx.export(net.eval(), torch.randn(1, 3, 32), str(path), input_names=["windows"],
                      output_names=["logits"], dynamic_axes={"windows": {0: "batch"}},
                      dynamo=False)
    proto = onnx.load(str(path))
    assert equalize_ranges(proto) == 1
    w1, w2 = list(weights(proto).values())
    r1 = np.abs(w1.reshape(8, -1)).max(1)
    r2 = np.abs(w2).swapaxes(0, 1).reshape(8, -1).max(1)
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    x = np.random.default_rng(0).standard_normal((16, 3, 32)).astype(np.float32)
    eq = tmp_path / "eq.onnx"
    onnx.save(proto, str(eq))
    np.testing.assert_allclose(onnx_logits(eq, x), net(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-4)


def test_no_pair_without_a_relu_between(tmp_path):
    """Conv -> Conv with nothing positively homogeneous between them is linear too, but the
    rule is only applied where the paper's condition (a ReLU on the path) holds."""
    net = nn.Sequential(nn.Conv1d(3, 8, 5), nn.Tanh(), nn.Conv1d(8, 4, 3))
    path = tmp_path / "net.onnx"
    torch.onnx.export(net.eval(), torch.randn(1, 3, 32), str(path), dynamo=False)
    proto = onnx.load(str(path))
    before = [i.SerializeToString() for i in proto.graph.initializer]
    assert equalize_ranges(proto) == 0
    assert [i.SerializeToString() for i in proto.graph.initializer] == before


def test_per_tensor_int8_recovers_a_student_with_one_wide_depthwise_channel(
    trained_tiny, acc_data, tmp_path
):
    """BatchNorm folding can leave one depthwise channel 100x wider than the rest (a trained
    quickstart student had 428 against a median of 3): per-tensor int8 then rounds the other
    channels away; equalized first, it stays with the float model."""
    model = copy.deepcopy(trained_tiny)
    deployed = logits_module(model, acc_data.norm, deploy=True)
    dw = deployed.model.blocks[0][0]
    conv = dw.main[0] if hasattr(dw, "main") else dw[0]
    with torch.no_grad():  # channel 0 x200 in, /200 out through the head: same function
        conv.weight[0] *= 200.0
        if conv.bias is not None:
            conv.bias[0] *= 200.0
        deployed.model.head.weight[:, 0] /= 200.0
    path = tmp_path / "wide.onnx"
    export_onnx(deployed.model, path, 3, 128, {"harkd.model": "tiny"})
    calib = acc_data.x_train[:256]
    # the exported model takes raw windows: normalisation was folded into the stem above
    plain = quantize_onnx(path, tmp_path / "plain.onnx", calib, "qoperator", equalize=False)
    equal = quantize_onnx(path, tmp_path / "equal.onnx", calib, "qoperator")
    assert read_metadata(onnx.load(str(equal)))[QUANT_KEY]["equalized_pairs"] == 2
    args = (acc_data.x_test, acc_data.y_test)
    worse = compare_int8(path, plain, *args)
    better = compare_int8(path, equal, *args)
    assert better.argmax_agreement >= 0.95, better
    assert better.argmax_agreement > worse.argmax_agreement + 0.05, (worse, better)
    assert better.size_ratio == pytest.approx(worse.size_ratio, abs=0.01)
    print(f"agreement without equalization {worse.argmax_agreement:.4f}, "
          f"with {better.argmax_agreement:.4f}")
