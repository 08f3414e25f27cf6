"""int8 static quantization of an exported model with onnxruntime's tooling.

Static post-training quantization (Jacob et al., "Quantization and Training of Neural Networks
for Efficient Integer-Arithmetic-Only Inference", CVPR 2018): weights int8 (symmetric), by
default one scale per tensor after cross-layer range equalization (`harkd.deploy.equalize`,
Nagel et al., ICCV 2019), or one per output channel; activations uint8 (asymmetric) with ranges
calibrated by min/max over windows of the TRAINING split, fed raw exactly as the float file
takes them. Two graph formats:
`qdq` (QuantizeLinear/DequantizeLinear pairs that onnxruntime fuses into integer kernels) and
`qoperator` (QLinearConv, QLinearMatMul, ... written directly); `benchmarks/bench_latency.py`
times both.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from harkd.deploy.equalize import equalize_ranges
from harkd.deploy.onnx_io import (
    INPUT_NAME,
    file_size,
    input_transform,
    onnx_logits,
    read_metadata,
    save_onnx,
    set_metadata,
)
from harkd.deploy.slim import slim_graph
from harkd.train.metrics import macro_f1

FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
QUANT_KEY = "harkd.quantization"


class WindowReader(CalibrationDataReader):
    """Feeds raw windows [N, C, T] to the calibrator in batches, transformed as the file
    expects them (see `harkd.deploy.onnx_io.input_transform`)."""

    def __init__(self, windows: np.ndarray, metadata: dict[str, Any], batch: int = 64) -> None:
        prepare = input_transform(metadata)
        self._batches = iter(
            [prepare(windows[i : i + batch]) for i in range(0, len(windows), batch)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._batches, None)
        return None if x is None else {INPUT_NAME: x}


def calibration_windows(x_train: np.ndarray, n: int = 512, seed: int = 0) -> np.ndarray:
    """`n` training windows drawn without replacement (all of them when there are fewer)."""
    if len(x_train) == 0:
        raise ValueError("no training windows to calibrate on")
    idx = np.random.default_rng(seed).permutation(len(x_train))[:n]
    return x_train[np.sort(idx)]


def quantize_onnx(
    float_path: str | Path,
    out_path: str | Path,
    calibration: np.ndarray,
    fmt: str = "qdq",
    per_channel: bool = False,
    equalize: bool = True,
) -> Path:
    """Write the int8 version of `float_path` to `out_path`, calibrated on raw windows.

    With `equalize`, channel ranges of consecutive layers are equalized first (exact in float;
    see `harkd.deploy.equalize`), so that per-tensor weight scales lose little. The float
    file's metadata is carried over, with `harkd.quantization` added (format, per-channel,
    equalized layer pairs, number of calibration windows; the rest is fixed by this module).
    """
    if fmt not in FORMATS:
        raise ValueError(f"quantization format must be one of {sorted(FORMATS)}, got {fmt!r}")
    float_path, out_path = Path(float_path), Path(out_path)
    metadata = read_metadata(onnx.load(str(float_path)))
    with tempfile.TemporaryDirectory(prefix="harkd-quant-") as tmp:
        source = onnx.load(str(float_path))
        pairs = equalize_ranges(source) if equalize else 0
        equalized = Path(tmp) / "equalized.onnx"
        onnx.save(source, str(equalized))
        pre = Path(tmp) / "pre.onnx"
        raw = Path(tmp) / "int8.onnx"
        quant_pre_process(str(equalized), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(raw),
            WindowReader(calibration, metadata),
            quant_format=FORMATS[fmt],
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
        proto = onnx.load(str(raw))
    drop_zero_points(proto)
    slim_graph(proto)
    metadata[QUANT_KEY] = {
        "format": fmt,
        "per_channel": per_channel,
        "equalized_pairs": pairs,
        "calibration_windows": len(calibration),
    }
    set_metadata(proto, metadata)
    return save_onnx(proto, out_path)


#: integer operator -> index of its (symmetric, so all-zero) weight zero point
_WEIGHT_ZERO_POINT = {"QLinearConv": 5, "QLinearMatMul": 5, "QGemm": 5}


def drop_zero_points(proto: onnx.ModelProto) -> None:
    """Remove the all-zero zero points that symmetric weights carry, one value per channel.

    For a small student they are a sizeable part of the int8 file (a zero point, an int32 bias
    and a float scale per output channel against one int8 weight per input channel): a
    DequantizeLinear's zero point is optional (0 when absent); an integer operator's weight
    zero point may be one scalar. Unused initializers are removed afterwards.
    """
    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}

    def all_zero(name: str) -> bool:
        return name in inits and not numpy_helper.to_array(inits[name]).any()

    scalars: dict[int, str] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and len(node.input) == 3 and all_zero(node.input[2]):
            del node.input[2]
        index = _WEIGHT_ZERO_POINT.get(node.op_type)
        if index is not None and len(node.input) > index and all_zero(node.input[index]):
            dtype = inits[node.input[index]].data_type
            if dtype not in scalars:
                scalars[dtype] = f"zero_{dtype}"
                zero = numpy_helper.from_array(
                    np.zeros((), onnx.helper.tensor_dtype_to_np_dtype(dtype)), scalars[dtype]
                )
                graph.initializer.append(zero)
            node.input[index] = scalars[dtype]
    used = {name for node in graph.node for name in node.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


@dataclass
class QuantizeReport:
    """int8 against float on the test split, and the file sizes."""

    format: str
    calibration_windows: int
    test_windows: int
    float_bytes: int
    int8_bytes: int
    size_ratio: float
    f1_float: float
    f1_int8: float
    f1_change: float
    argmax_agreement: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_int8(
    float_path: str | Path,
    int8_path: str | Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> QuantizeReport:
    """Macro-F1 (`harkd.train.metrics.macro_f1`) of both files on the test windows, their
    argmax agreement and size ratio."""
    meta = read_metadata(onnx.load(str(int8_path)))
    pred_float = onnx_logits(float_path, x_test).argmax(1)
    pred_int8 = onnx_logits(int8_path, x_test).argmax(1)
    f1_float = macro_f1(y_test, pred_float)
    f1_int8 = macro_f1(y_test, pred_int8)
    fb, ib = file_size(float_path), file_size(int8_path)
    return QuantizeReport(
        format=meta.get(QUANT_KEY, {}).get("format", "unknown"),
        calibration_windows=meta.get(QUANT_KEY, {}).get("calibration_windows", 0),
        test_windows=len(x_test),
        float_bytes=fb,
        int8_bytes=ib,
        size_ratio=ib / fb,
        f1_float=f1_float,
        f1_int8=f1_int8,
        f1_change=f1_int8 - f1_float,
        argmax_agreement=float((pred_float == pred_int8).mean()),
    )
