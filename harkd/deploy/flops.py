"""Multiply-accumulates (MACs) and parameters of a model as deployed: counted on its ONNX graph.

`graph_macs` is harkd's one MAC counter. It runs the unoptimised graph once in onnxruntime on
zeros of the input shape, with every node output exposed, so every tensor's shape is known, and
adds per node:

- Conv / ConvInteger / QLinearConv (any `group`): output elements x (C_in / group) x kernel;
- Gemm / QGemm: output elements x K; MatMul / MatMulInteger / QLinearMatMul: output elements x
  the last axis of the first input (a batched matmul counts every batch);
- LSTM / GRU / RNN: steps x batch x directions x gates x hidden x (input + hidden), with 4, 3
  and 1 gates (the gate projections; element-wise cell updates and biases are not MACs);
- a Mul whose only reader is a ReduceSum (a weighted sum written element-wise): the Mul's
  output elements;
- everything else 0: element-wise operators, normalisation (BatchNormalization folds into the
  preceding Conv in onnxruntime), pooling, shape operators, quantize/dequantize.

An operator that does multiply-accumulate work this list does not cover (`UNCOUNTED`, e.g.
ConvTranspose, Einsum) raises ValueError instead of being counted as 0. `deployed_cost` exports
a PyTorch model's deployment form (`harkd.models.base.deployment_form`: training-time branches
merged) and counts that graph, so a model and its exported file always get the same figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper

from harkd.deploy.session import input_shape, make_session

if TYPE_CHECKING:
    from torch import nn

#: operator -> index of its weight input, for the convolution family
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_GEMM = {"Gemm", "QGemm"}
_MATMUL = {"MatMul", "MatMulInteger", "QLinearMatMul"}
_RNN_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
#: operators that multiply-accumulate in ways `graph_macs` has no rule for
UNCOUNTED = frozenset({
    "ConvTranspose", "ConvTransposeWithDynamicPads", "Einsum", "DeformConv", "Attention",
    "MultiHeadAttention", "QAttention", "FusedMatMul", "FusedConv", "DynamicQuantizeMatMul",
    "DynamicQuantizeLSTM", "MatMulNBits",
})


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once), trainable or not."""
    return sum(p.numel() for p in model.parameters())


def initializer_elements(proto: onnx.ModelProto) -> int:
    """Number of stored values in the graph's initializers (weights, biases, constants)."""
    return int(sum(np.prod(i.dims, dtype=np.int64) for i in proto.graph.initializer))


def value_shapes(proto: onnx.ModelProto, shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Concrete shape of every tensor of the graph when its single input has `shape`.

    Found by running the unoptimised graph in onnxruntime with every node output exposed, so
    it works for any operator onnxruntime runs (contrib int8 operators included).
    """
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    exposed = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in exposed:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                exposed.add(name)
    session = make_session(probe.SerializeToString(), optimization="disable")
    name, _ = input_shape(session)
    outs = session.run(None, {name: np.zeros(tuple(shape), np.float32)})
    shapes = {o.name: tuple(np.shape(v)) for o, v in zip(session.get_outputs(), outs, strict=True)}
    shapes[name] = tuple(shape)
    shapes.update({i.name: tuple(i.dims) for i in proto.graph.initializer})
    return shapes


def graph_macs(proto: onnx.ModelProto, shape: Sequence[int]) -> dict[str, int]:
    """MACs of one run of the graph on an input of `shape` (batch included), by operator type,
    plus "total" (see the module docstring for what is counted)."""
    uncounted = sorted({n.op_type for n in proto.graph.node} & UNCOUNTED)
    if uncounted:
        raise ValueError(f"graph_macs: no MAC rule for operator(s) {uncounted}; "
                         "add one in harkd/deploy/flops.py")
    shapes = value_shapes(proto, shape)
    readers: dict[str, list[str]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node.op_type)
    counts: dict[str, int] = {}

    def add(op: str, n: float) -> None:
        counts[op] = counts.get(op, 0) + int(n)

    for node in proto.graph.node:
        op = node.op_type
        out = shapes[node.output[0]]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if op in _CONV_WEIGHT:
            weight = shapes[node.input[_CONV_WEIGHT[op]]]
            add(op, np.prod(out) * np.prod(weight[1:]))
        elif op in _GEMM:
            a = shapes[node.input[0]]
            add(op, np.prod(out) * (a[0] if attrs.get("transA", 0) else a[1]))
        elif op in _MATMUL:
            add(op, np.prod(out) * shapes[node.input[0]][-1])
        elif op in _RNN_GATES:
            x, r = shapes[node.input[0]], shapes[node.input[2]]
            steps, batch = (x[1], x[0]) if attrs.get("layout", 0) else (x[0], x[1])
            dirs, hidden = r[0], r[2]
            add(op, steps * batch * dirs * _RNN_GATES[op] * hidden * (x[2] + hidden))
        elif op == "Mul" and readers.get(node.output[0]) == ["ReduceSum"]:
            add(op, np.prod(out))
    counts["total"] = sum(counts.values())
    return counts


def deployed_cost(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Parameters and MACs of the model as deployed (training-time branches merged), and its
    parameter count in training, `train_params`. The MACs are `graph_macs` of the ONNX graph
    the model exports to (without input normalisation, which costs no MACs)."""
    from harkd.deploy.export import trace_onnx
    from harkd.models.base import LogitsOnly, deployment_form

    deployed = LogitsOnly(deployment_form(model))
    return {
        "params": count_params(deployed),
        "macs": graph_macs(trace_onnx(deployed, input_shape), input_shape)["total"],
        "train_params": count_params(model),
    }
