"""Cross-layer range equalization of an ONNX float graph, before int8 quantization.

Nagel et al., "Data-Free Quantization Through Weight Equalization and Bias Correction", ICCV
2019, section 4.1: for two layers joined by a positively homogeneous function f (ReLU, average
pooling, flatten: f(s·x) = s·f(x) for s > 0), scaling output channel i of the first layer's
weights and bias by 1/s_i and input channel i of the second layer's weights by s_i leaves the
network's function unchanged. With s_i = sqrt(r1_i · r2_i) / r2_i, where r1_i and r2_i are the
absolute weight ranges of channel i in the two layers, both ranges become sqrt(r1_i · r2_i):
every channel of a layer then spans a similar range, so one scale per tensor quantizes it
about as well as one scale per channel. Depthwise-separable students need it most: folding
BatchNorm into a depthwise conv leaves channel ranges that differ by 100x or more, and
per-tensor int8 then rounds most channels to a handful of levels (a tiny student lost 12
macro-F1 points that way). Per-tensor scales in turn are what makes a few-thousand
parameter int8 file small, since per-channel scales and zero points cost as much as a
quarter of its weights.

Pairs are found in the graph: `Conv` → `Relu` → (`GlobalAveragePool`/`AveragePool`/`Flatten`)*
→ `Conv` or `Gemm` (transB = 1), every intermediate tensor read by that one node only, and
weights and biases stored as initializers. Pairs sharing a layer (stem → depthwise → head) are
equalized in turn, a few sweeps over all pairs, as the paper does for longer chains.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

#: positively homogeneous single-input operators that may sit between the two layers
_PASS_THROUGH = {"Relu", "GlobalAveragePool", "AveragePool", "Flatten"}


@dataclass(frozen=True)
class _Pair:
    first: onnx.NodeProto  # Conv with weight [C, ...] and optional bias [C]
    second: onnx.NodeProto  # Conv or Gemm whose input channels are the first's outputs


def equalize_ranges(proto: onnx.ModelProto, sweeps: int = 4) -> int:
    """Equalize every eligible layer pair of `proto` in place; returns the number of pairs."""
    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    pairs = list(_find_pairs(graph.node, inits))
    for _ in range(sweeps if pairs else 0):
        for pair in pairs:
            _equalize(pair, inits)
    return len(pairs)


def _find_pairs(nodes: Iterable[onnx.NodeProto], inits: dict) -> Iterable[_Pair]:
    nodes = list(nodes)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for node in nodes:
        if node.op_type != "Conv" or not _has_weights(node, inits):
            continue
        nxt, saw_relu = node, False
        while True:
            after = readers.get(nxt.output[0], [])
            if len(after) != 1:
                break
            nxt = after[0]
            if nxt.op_type in _PASS_THROUGH:
                saw_relu |= nxt.op_type == "Relu"
                continue
            if saw_relu and _takes_channels(nxt, inits, _out_channels(node, inits)):
                yield _Pair(node, nxt)
            break


def _has_weights(node: onnx.NodeProto, inits: dict) -> bool:
    return all(name in inits for name in node.input[1:3])


def _out_channels(conv: onnx.NodeProto, inits: dict) -> int:
    return int(inits[conv.input[1]].dims[0])


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def _takes_channels(node: onnx.NodeProto, inits: dict, channels: int) -> bool:
    """Whether `node` is a Conv or Gemm whose weight's input axis has `channels` entries."""
    if not _has_weights(node, inits):
        return False
    dims = list(inits[node.input[1]].dims)
    if node.op_type == "Gemm":
        plain = _attr(node, "transB", 0) == 1 and _attr(node, "transA", 0) == 0
        return plain and dims[1] == channels
    if node.op_type == "Conv":
        return dims[1] * _attr(node, "group", 1) == channels
    return False


def _second_ranges(node: onnx.NodeProto, w: np.ndarray, channels: int) -> tuple[np.ndarray, list]:
    """Per input channel absolute range of `w`, and the shape to broadcast a scale over it."""
    if node.op_type == "Gemm":  # [O, C]
        return np.abs(w).max(axis=0), [1, channels]
    if _attr(node, "group", 1) == channels and w.shape[1] == 1:  # depthwise: [C, 1, ...]
        return np.abs(w.reshape(channels, -1)).max(axis=1), [channels] + [1] * (w.ndim - 1)
    if _attr(node, "group", 1) == 1:  # [O, C, ...]
        per_in = np.abs(w).swapaxes(0, 1).reshape(channels, -1).max(axis=1)
        return per_in, [1, channels] + [1] * (w.ndim - 2)
    raise ValueError(f"equalize: grouped Conv with group {_attr(node, 'group', 1)} not supported")


def _equalize(pair: _Pair, inits: dict) -> None:
    w1 = numpy_helper.to_array(inits[pair.first.input[1]]).astype(np.float64)
    w2 = numpy_helper.to_array(inits[pair.second.input[1]]).astype(np.float64)
    channels = w1.shape[0]
    r1 = np.abs(w1.reshape(channels, -1)).max(axis=1)
    r2, shape2 = _second_ranges(pair.second, w2, channels)
    usable = (r1 > 0) & (r2 > 0)
    s = np.where(usable, np.sqrt(r1 * r2) / np.where(usable, r2, 1.0), 1.0)
    _store(inits[pair.first.input[1]], w1 / s.reshape([channels] + [1] * (w1.ndim - 1)))
    if len(pair.first.input) > 2 and pair.first.input[2]:
        bias = numpy_helper.to_array(inits[pair.first.input[2]]).astype(np.float64)
        _store(inits[pair.first.input[2]], bias / s)
    _store(inits[pair.second.input[1]], w2 * s.reshape(shape2))


def _store(init: onnx.TensorProto, value: np.ndarray) -> None:
    init.CopyFrom(numpy_helper.from_array(value.astype(np.float32), init.name))
