"""int8 static quantization: runs, stays close to the float model, is much smaller.

Stated tolerance on the real test windows of hapt_quick_small, for a briefly trained `tiny`:
argmax agreement with the float file >= 95% and macro-F1 change >= -0.03.
"""

from __future__ import annotations

import onnx
import pytest

from harkd.deploy.flops import graph_macs
from harkd.deploy.onnx_io import onnx_logits, read_metadata
from harkd.deploy.quantize import QUANT_KEY, calibration_windows, compare_int8, quantize_onnx
from harkd.deploy.session import make_session
from harkd.train.metrics import macro_f1


@pytest.mark.parametrize("fmt", ["qoperator", "qdq"])
def test_int8_within_tolerance_on_real_windows(fmt, tiny_onnx, acc_data, tmp_path):
    calib = calibration_windows(acc_data.x_train, 128)
    path = quantize_onnx(tiny_onnx, tmp_path / f"tiny.{fmt}.onnx", calib, fmt)
    proto = onnx.load(str(path))
    assert read_metadata(proto)[QUANT_KEY] == {
        "format": fmt, "per_channel": False, "equalized_pairs": 2, "calibration_windows": 128,
    }
    assert read_metadata(proto)["harkd.model"] == "tiny"
    ops = {n.op_type for n in proto.graph.node}
    assert ("QLinearConv" in ops) if fmt == "qoperator" else ("DequantizeLinear" in ops)
    out = make_session(path).run(["logits"], {"windows": acc_data.x_test[:5]})[0]
    assert out.shape == (5, acc_data.num_classes)
    report = compare_int8(tiny_onnx, path, acc_data.x_test, acc_data.y_test)
    assert report.argmax_agreement >= 0.95, report
    assert report.f1_change >= -0.03, report
    assert report.f1_int8 == macro_f1(acc_data.y_test, onnx_logits(path, acc_data.x_test).argmax(1))
    # the integer graph does the float graph's multiply-accumulates, counted on its own ops
    int8_macs = graph_macs(proto, (1, 3, 128))
    assert int8_macs["total"] == graph_macs(onnx.load(str(tiny_onnx)), (1, 3, 128))["total"]
    assert ("QLinearConv" in int8_macs) == (fmt == "qoperator")
    # the target (<= 0.35x) holds for the integer-operator graph; QDQ pairs cost more
    assert report.size_ratio <= (0.35 if fmt == "qoperator" else 0.40), report
    assert report.size_ratio == pytest.approx(report.int8_bytes / report.float_bytes)


def test_calibration_draws_training_windows_without_replacement(acc_data):
    calib = calibration_windows(acc_data.x_train, 50, seed=1)
    assert calib.shape == (50, 3, 128)
    rows = {w.tobytes() for w in calib}
    assert len(rows) == 50 and rows <= {w.tobytes() for w in acc_data.x_train}
    assert len(calibration_windows(acc_data.x_train[:10], 50)) == 10
    with pytest.raises(ValueError, match="no training windows"):
        calibration_windows(acc_data.x_train[:0])


def test_unknown_format_is_named(tiny_onnx, acc_data, tmp_path):
    with pytest.raises(ValueError, match="one of \\['qdq', 'qoperator'\\]"):
        quantize_onnx(tiny_onnx, tmp_path / "x.onnx", acc_data.x_train[:8], "int4")
