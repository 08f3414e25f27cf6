"""Shrinking an exported graph without changing what it computes (`slim_graph`).

For a student of a few thousand parameters the names, docstrings and annotations the
exporters write take more bytes than its weights; `slim_graph` drops them.
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper


def slim_graph(proto: onnx.ModelProto) -> None:
    """Shorten names and drop what onnxruntime does not need, in place.

    Internal tensors get 1-2 letter names, nodes none (the graph input and output keep theirs);
    initializers holding the same values are merged into one (the quantizer writes one zero
    point per tensor, most of them equal); attributes equal to the operator's default
    (`_DEFAULT_ATTRIBUTES`), docstrings, `value_info` shape annotations (onnxruntime infers
    them again) and opset imports of domains no node uses are dropped. The TorchScript
    exporter names tensors after module paths (`/model/blocks.0/blocks.0.1/.../Relu_output_0`)
    and the quantizer imports eight domains: for a few-thousand-parameter student that is more
    bytes than its int8 weights, which would keep the int8 file from being ~4x smaller than
    the float one.
    """
    graph = proto.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    same = _merge_equal_initializers(graph)
    mapping: dict[str, str] = {}

    def rename(name: str) -> str:
        name = same.get(name, name)
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = _short_name(len(mapping))
        return mapping[name]

    for init in graph.initializer:
        init.name = rename(init.name)
        init.doc_string = ""
    for node in graph.node:
        node.name = ""
        node.doc_string = ""
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        defaults = _DEFAULT_ATTRIBUTES.get(node.op_type, {})
        kept = [a for a in node.attribute if not _is_default(a, defaults.get(a.name))]
        del node.attribute[:]
        node.attribute.extend(kept)
    del graph.value_info[:]
    used = {node.domain or "" for node in graph.node}
    opsets = [o for o in proto.opset_import if (o.domain or "") in used | {""}]
    del proto.opset_import[:]
    proto.opset_import.extend(opsets)
    graph.doc_string = ""
    proto.doc_string = ""


_CONV_DEFAULTS = {"dilations": 1, "pads": 0, "strides": 1, "group": 1}
#: operator -> attribute -> its default (a list attribute is default when every entry is)
_DEFAULT_ATTRIBUTES: dict[str, dict[str, float]] = {
    "Conv": _CONV_DEFAULTS,
    "QLinearConv": _CONV_DEFAULTS,
    "ConvInteger": _CONV_DEFAULTS,
    "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
    "QGemm": {"alpha": 1.0, "transA": 0, "transB": 0},
    "Flatten": {"axis": 1},
}


def _is_default(attr: onnx.AttributeProto, default: float | None) -> bool:
    if default is None:
        return False
    value = onnx.helper.get_attribute_value(attr)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(v == default for v in values)


def _merge_equal_initializers(graph: onnx.GraphProto) -> dict[str, str]:
    """Drop initializers equal (type, shape, values) to an earlier one; returns the renaming."""
    first: dict[tuple, str] = {}
    same: dict[str, str] = {}
    kept = []
    for init in graph.initializer:
        key = (init.data_type, tuple(init.dims), numpy_helper.to_array(init).tobytes())
        if key in first:
            same[init.name] = first[key]
        else:
            first[key] = init.name
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return same


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _short_name(index: int) -> str:
    """0 -> "a", 51 -> "Z", 52 -> "aa", ... (letters only, unique per index)."""
    out = ""
    index += 1
    while index:
        index, digit = divmod(index - 1, len(_LETTERS))
        out = _LETTERS[digit] + out
    return out
