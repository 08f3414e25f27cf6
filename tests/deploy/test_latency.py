"""Latency harness: ordered figures, a positive floor, consistent multiples, honest counts."""

from __future__ import annotations

import pytest

from harkd.deploy.export import logits_module
from harkd.deploy.latency import benchmark, node_costs, profile_nodes
from harkd.deploy.session import load_onnx


def test_benchmark_figures_are_sane(tiny_onnx, trained_tiny, acc_data):
    module = logits_module(trained_tiny, acc_data.norm)
    res = benchmark(tiny_onnx, runs=300, warmup=30, batch=32, module=module)
    assert res["input"] == [3, 128] and res["threads"] == 1
    assert res["file_bytes"] == tiny_onnx.stat().st_size
    for key in ("batch1", "batchN"):
        model, floor, x = res[key]["model"], res[key]["floor"], res[key]["x_floor"]
        for stats in (model, floor):
            assert 0 < stats["p50_us"] <= stats["p90_us"] <= stats["p99_us"]
            assert stats["mean_us"] > 0
        for q in ("p50", "p90", "p99", "mean"):
            assert x[q] == pytest.approx(model[f"{q}_us"] / floor[f"{q}_us"])
    assert res["batch1"]["model"]["runs"] == 300
    assert res["batchN"]["batch"] == 32
    eager = res["torch_eager"]
    assert eager["stats"]["p50_us"] > 0
    assert eager["x_onnx"]["p50"] == pytest.approx(
        eager["stats"]["p50_us"] / res["batch1"]["model"]["p50_us"]
    )
    # MACs of the file (branches merged, normalisation folded into the stem): stem Conv
    # 3 -> 64, k17, stride 16, T 128 -> 7; depthwise k9 on 64 channels; head 64 -> K
    conv, head = 64 * 3 * 17 * 7 + 64 * 9 * 7, 64 * acc_data.num_classes
    assert res["macs"] == {"Conv": conv, "Gemm": head, "total": conv + head}


def test_per_node_attribution(tiny_onnx):
    costs = node_costs(tiny_onnx, 3, 128, runs=100, warmup=10)
    ops = [c["op"] for c in costs]
    # the normalisation is folded into the stem: the graph starts with the Unsqueeze to 4-D
    assert ops[0] == "Unsqueeze" and "Conv" in ops and ops[-1] == "Gemm"
    assert all(c["prefix_p50_us"] > 0 for c in costs)
    prof = profile_nodes(tiny_onnx, 3, 128, runs=50)
    assert prof["run_us"] > 0 and prof["nodes"]
    assert {n["op"] for n in prof["nodes"]} >= {"Unsqueeze", "Gemm"}
    assert len(load_onnx(tiny_onnx).graph.input) == 1
