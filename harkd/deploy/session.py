"""Opening an exported file: reading the ONNX model, an onnxruntime CPU session, its input.

Every error here names the file or shape at fault and what was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx
import onnxruntime as ort


class ModelFileError(ValueError):
    """A file that is missing, unreadable or not an ONNX model."""


class InputShapeError(ValueError):
    """An input shape the model cannot take; the message names both shapes."""


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX file, with an error naming the file and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file (expected an ONNX model, .onnx)")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # protobuf DecodeError, OSError, ...: all mean "not ONNX"
        raise ModelFileError(
            f"{path}: not a readable ONNX model (expected a serialized onnx.ModelProto): "
            f"{type(err).__name__}: {err}"
        ) from None
    if not proto.graph.node or not proto.graph.input or not proto.graph.output:
        raise ModelFileError(
            f"{path}: not an ONNX model (expected a graph with nodes, inputs and outputs; "
            f"found {len(proto.graph.node)} nodes, {len(proto.graph.input)} inputs)"
        )
    return proto


def make_session(
    model: str | Path | bytes,
    threads: int = 1,
    optimization: str = "all",
    profile_prefix: str | None = None,
) -> ort.InferenceSession:
    """An onnxruntime CPU session (`threads` intra-op threads, 1 inter-op, sequential).

    `model` is a path or serialized bytes; `optimization` one of "disable", "basic",
    "extended", "all"; `profile_prefix` turns on onnxruntime's per-node profiler.
    """
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if optimization not in levels:
        raise ValueError(f"optimization must be one of {sorted(levels)}, got {optimization!r}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = levels[optimization]
    opts.log_severity_level = 3
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    if not isinstance(model, bytes):
        model = load_onnx(model).SerializeToString()
    try:
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelFileError(f"onnxruntime cannot load the model: {err}") from None


def input_shape(session: ort.InferenceSession) -> tuple[str, list[int | None]]:
    """The single input's name and shape (None for a dynamic axis)."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise InputShapeError(
            f"expected a model with one input [batch, channels, time], got inputs {names}"
        )
    shape = [d if isinstance(d, int) else None for d in inputs[0].shape]
    return inputs[0].name, shape


def resolve_shape(
    session: ort.InferenceSession, requested: Sequence[int] | None = None, source: str = "model"
) -> tuple[int, int]:
    """(channels, time) to feed: the model's fixed axes, checked against `requested`."""
    _, shape = input_shape(session)
    if len(shape) != 3:
        raise InputShapeError(
            f"{source}: expected an input of rank 3 [batch, channels, time], the model's input "
            f"is {_fmt(shape)}"
        )
    want = list(requested) if requested is not None else [None, None]
    if len(want) != 2:
        raise InputShapeError(f"{source}: give the input shape as (channels, time), got {want}")
    out = []
    for axis, (have, give) in enumerate(zip(shape[1:], want, strict=True)):
        if have is not None and give is not None and have != give:
            raise InputShapeError(
                f"{source}: the model expects input {_fmt(shape)} [batch, channels, time], "
                f"given [batch, {want[0]}, {want[1]}]"
            )
        value = have if have is not None else give
        if value is None:
            raise InputShapeError(
                f"{source}: input axis {axis + 1} of {_fmt(shape)} is dynamic; give the shape"
            )
        out.append(int(value))
    return out[0], out[1]


def _fmt(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
