"""onnxruntime CPU latency, measured beside the runtime's own floor.

A device-like session: CPU provider, 1 intra-op and 1 inter-op thread by default, sequential
execution, `ORT_ENABLE_ALL`. Every session is driven through an I/O binding with its input and
output pre-allocated, so a timed call is `run_with_iobinding` only. The *floor* is a one-node
graph (`Add` of a scalar zero) with the model's input shape, timed interleaved with the model
(one floor call, one model call, ...) so both see the same machine state; every figure is also
given as a multiple of the floor. PyTorch eager latency of the same module is timed with one
thread under `inference_mode`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harkd.deploy.flops import graph_macs, initializer_elements
from harkd.deploy.onnx_io import file_size
from harkd.deploy.session import input_shape, load_onnx, make_session, resolve_shape


def floor_model(channels: int, window: int) -> bytes:
    """A one-node graph (`Add` of a scalar zero) with input `windows` [batch, channels, window]."""
    x = helper.make_tensor_value_info("windows", TensorProto.FLOAT, ["batch", channels, window])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", channels, window])
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    graph = helper.make_graph(
        [helper.make_node("Add", ["windows", "zero"], ["out"])], "floor", [x], [y], [zero]
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return proto.SerializeToString()


@dataclass
class LatencyStats:
    """Percentiles and mean of one timed call, in microseconds."""

    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    runs: int

    @classmethod
    def from_ns(cls, samples: Sequence[int] | np.ndarray, per: int = 1) -> LatencyStats:
        """Stats of durations in nanoseconds, each divided by `per` (windows per call)."""
        us = np.asarray(samples, dtype=np.float64) / 1000.0 / per
        p50, p90, p99 = np.percentile(us, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(us.mean()), int(us.size))

    def over(self, floor: LatencyStats) -> dict[str, float]:
        """Each figure as a multiple of the same figure of `floor`."""
        return {
            k: getattr(self, f"{k}_us") / getattr(floor, f"{k}_us")
            for k in ("p50", "p90", "p99", "mean")
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bound_runner(session: ort.InferenceSession, x: np.ndarray) -> Callable[[], int]:
    """A zero-argument call running `session` on `x` through an I/O binding; returns ns."""
    name, _ = input_shape(session)
    binding = session.io_binding()
    binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x)))
    outputs = [o.name for o in session.get_outputs()]
    for out in outputs:
        binding.bind_output(out)
    session.run_with_iobinding(binding)  # let onnxruntime allocate the outputs once ...
    for out, value in zip(outputs, binding.get_outputs(), strict=True):
        binding.bind_ortvalue_output(out, value)  # ... then reuse them on every call
    run = session.run_with_iobinding
    clock = time.perf_counter_ns

    def call() -> int:
        t0 = clock()
        run(binding)
        return clock() - t0

    return call


def time_interleaved(
    runners: dict[str, Callable[[], int]], runs: int, warmup: int
) -> dict[str, np.ndarray]:
    """Call every runner in turn `warmup` times untimed, then `runs` times; ns per call."""
    for _ in range(warmup):
        for call in runners.values():
            call()
    out = {name: np.empty(runs, dtype=np.int64) for name in runners}
    for i in range(runs):
        for name, call in runners.items():
            out[name][i] = call()
    return out


def onnx_latency(
    session: ort.InferenceSession,
    channels: int,
    window: int,
    batch: int = 1,
    runs: int = 2000,
    warmup: int = 200,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, LatencyStats]:
    """{"model": ..., "floor": ...} at `batch`, interleaved; the floor uses `threads` too."""
    x = np.random.default_rng(seed).standard_normal((batch, channels, window), dtype=np.float32)
    floor = make_session(floor_model(channels, window), threads=threads)
    samples = time_interleaved(
        {"floor": bound_runner(floor, x), "model": bound_runner(session, x)}, runs, warmup
    )
    return {k: LatencyStats.from_ns(v, per=batch) for k, v in samples.items()}


def torch_latency(
    module: Any, channels: int, window: int, batch: int = 1, runs: int = 500, warmup: int = 50,
    threads: int = 1,
) -> LatencyStats:
    """PyTorch eager latency of `module` (raw windows -> logits), `threads` threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(batch, channels, window)
        module = module.eval()
        samples = np.empty(runs, dtype=np.int64)
        with torch.inference_mode():
            for _ in range(warmup):
                module(x)
            for i in range(runs):
                t0 = time.perf_counter_ns()
                module(x)
                samples[i] = time.perf_counter_ns() - t0
    finally:
        torch.set_num_threads(before)
    return LatencyStats.from_ns(samples, per=batch)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
    }


def benchmark(
    path: str | Path,
    threads: int = 1,
    runs: int = 2000,
    warmup: int = 200,
    batch: int = 256,
    shape: Sequence[int] | None = None,
    module: Any = None,
) -> dict[str, Any]:
    """Every latency figure of one ONNX file, each beside the floor measured in the same run.

    Returns: file, file_bytes, input [channels, window], initializer_elements, macs (from the
    graph, by operator), batch1 {model, floor, x_floor}, batchN {batch, model, floor, x_floor}
    (per-window figures), threads; with `module` (raw windows -> logits) also torch_eager
    {stats, x_floor, x_onnx}.
    """
    proto = load_onnx(path)
    session = make_session(proto.SerializeToString(), threads=threads)
    channels, window = resolve_shape(session, shape, source=str(path))
    one = onnx_latency(session, channels, window, 1, runs, warmup, threads)
    big_runs = max(20, runs // max(1, batch // 8))
    many = onnx_latency(session, channels, window, batch, big_runs, max(5, warmup // 10), threads)
    out: dict[str, Any] = {
        "file": str(path),
        "file_bytes": file_size(path),
        "input": [channels, window],
        "initializer_elements": initializer_elements(proto),
        "macs": graph_macs(proto, (1, channels, window)),
        "threads": threads,
        "batch1": _with_floor(one),
        "batchN": {"batch": batch, **_with_floor(many)},
    }
    if module is not None:
        eager = torch_latency(module, channels, window, 1, max(50, runs // 4), 20, threads)
        out["torch_eager"] = {
            "stats": eager.to_dict(),
            "x_floor": eager.over(one["floor"]),
            "x_onnx": eager.over(one["model"]),
        }
    return out


def _with_floor(stats: dict[str, LatencyStats]) -> dict[str, Any]:
    return {
        "model": stats["model"].to_dict(),
        "floor": stats["floor"].to_dict(),
        "x_floor": stats["model"].over(stats["floor"]),
    }


def profile_nodes(
    path: str | Path, channels: int, window: int, batch: int = 1, runs: int = 2000,
    threads: int = 1,
) -> dict[str, Any]:
    """Where the time of one call goes: onnxruntime's per-node profiler over `runs` calls.

    Returns {"run_us": mean time of a whole `run` under the profiler, "nodes": [{node,
    op, mean_us, share}] in execution order (after graph optimisation, so fused nodes
    appear as e.g. FusedConv), "overhead_us": run time not spent inside any node}. The
    profiler's timestamps have 1 µs resolution, so per-node means carry about ±0.5 µs bias.
    """
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="harkd-prof-") as tmp:
        session = make_session(path, threads, profile_prefix=str(Path(tmp) / "prof"))
        name, _ = input_shape(session)
        x = np.random.default_rng(0).standard_normal((batch, channels, window), np.float32)
        for _ in range(runs):
            session.run(None, {name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, dict[str, Any]] = {}
    run_us: list[float] = []
    for ev in events:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            node = ev["name"][: -len("_kernel_time")]
            entry = nodes.setdefault(node, {"node": node, "op": ev["args"].get("op_name"),
                                            "total": 0.0, "calls": 0})
            entry["total"] += ev["dur"]
            entry["calls"] += 1
        elif ev.get("cat") == "Session" and ev["name"] == "model_run":
            run_us.append(ev["dur"])
    run_mean = float(np.mean(run_us[-runs:]))
    out = []
    for entry in nodes.values():
        mean = entry["total"] / entry["calls"]
        out.append({"node": entry["node"], "op": entry["op"], "mean_us": mean,
                    "share": mean / run_mean})
    return {
        "run_us": run_mean,
        "nodes": out,
        "overhead_us": run_mean - sum(n["mean_us"] for n in out),
    }


def node_costs(
    path: str | Path, channels: int, window: int, runs: int = 3000, warmup: int = 300,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """Marginal batch-1 cost of each node, by timing growing prefixes of the graph.

    Prefix k is the graph cut after node k (its output made the graph output); all prefixes
    and the floor are optimised as usual and timed interleaved, and a node's cost is the
    p50 of its prefix minus the p50 of the previous one (the floor for the first). Unlike the
    profiler, which adds several µs to every node it times, this shows what a node costs in a
    real call (a ReLU fused into its Conv costs ~0). Constant and Identity nodes are skipped.
    """
    proto = load_onnx(path)
    name = proto.graph.input[0].name
    x = np.random.default_rng(0).standard_normal((1, channels, window), np.float32)
    runners = {"floor": bound_runner(make_session(floor_model(channels, window), threads), x)}
    ops = {}
    for k, node in enumerate(proto.graph.node):
        if node.op_type in ("Constant", "Identity"):
            continue
        prefix = onnx.ModelProto()
        prefix.CopyFrom(proto)
        del prefix.graph.node[k + 1 :]
        del prefix.graph.output[:]
        prefix.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
        used = {i for n in prefix.graph.node for i in n.input}
        keep = [i for i in prefix.graph.initializer if i.name in used]
        del prefix.graph.initializer[:]
        prefix.graph.initializer.extend(keep)
        key = f"{node.name or k}"
        runners[key] = bound_runner(make_session(prefix.SerializeToString(), threads), x)
        ops[key] = node.op_type
    del name
    samples = time_interleaved(runners, runs, warmup)
    p50 = {k: float(np.percentile(v, 50)) / 1000 for k, v in samples.items()}
    out, previous = [], p50["floor"]
    for key, op in ops.items():
        out.append({"node": key, "op": op, "prefix_p50_us": p50[key],
                    "marginal_us": p50[key] - previous})
        previous = p50[key]
    return out
