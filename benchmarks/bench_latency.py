"""On-device cost of the default student beside the teachers and the peers.

One run measures, on onnxruntime's CPU provider with 1 thread, for `tiny` (acc view, 3
channels), the teachers `cnn1d` and `transformer` and the peers `deepconvlstm` and `tinyhar`
(acc+gyro, 6 channels; hapt-quick windows of 128 samples): batch-1 p50/p90/p99/mean and
per-window time at batch 256, each beside the runtime floor timed interleaved; file size,
parameters, MACs (module and graph), PyTorch eager latency; for `tiny` also per-node costs,
int8 (QOperator and QDQ: size ratio, latency, agreement and macro-F1 change on the test split),
and streaming over a whole test recording at a 1 s hop. Weights are randomly initialised
(latency does not depend on them); accuracy is the mean test macro-F1 of the finished runs
under --runs-dir of each model on its view (benchmarks/bench_train.py writes them to
runs/bench/train, its grid folder), and int8 is measured on the first of tiny's runs.

    python benchmarks/bench_latency.py [--runs 3000] [--runs-dir runs/bench/train]

Writes benchmarks/results/latency.json (+ latency.md/.csv table and latency.png).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from harkd.deploy.export import check_export, export_onnx, logits_module
from harkd.deploy.flops import deployed_cost
from harkd.deploy.latency import benchmark, machine_info, node_costs, profile_nodes
from harkd.deploy.quantize import calibration_windows, compare_int8, quantize_onnx
from harkd.deploy.streaming import stream, test_recording
from harkd.models import build_model, list_models
from harkd.report.cost import row, write_table
from harkd.report.plots import f1_latency
from harkd.train.runcard import read_card

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DATA = REPO / "configs" / "data" / "hapt-quick.yaml"
#: model -> channel groups it sees (docs/architecture.md 15: student acc, teachers/peers acc+gyro)
MODELS = {
    "tiny": ["acc"],
    "cnn1d": ["acc", "gyro"],
    "transformer": ["acc", "gyro"],
    "deepconvlstm": ["acc", "gyro"],
    "tinyhar": ["acc", "gyro"],
}
TARGETS = {
    "tiny_p50_x_floor_max": 2.0,
    "cnn1d_over_tiny_min": 10.0,
    "deepconvlstm_over_tiny_min": 20.0,
    "int8_size_ratio_max": 0.35,
}


def finished_runs(runs_dir: Path) -> dict[str, tuple[Path, float]]:
    """model name -> (first run dir, mean test macro-F1 over its runs), over the finished runs
    under `runs_dir` of each model of `MODELS` on the view it is timed on. The mean, not the
    best: picking the run with the highest test score would select on the test split."""
    found: dict[str, list[tuple[Path, float]]] = {}
    for card_file in sorted(runs_dir.glob("**/model.json")) if runs_dir.is_dir() else []:
        card = read_card(card_file.parent)
        f1 = card.metrics["test"].macro_f1
        if card.model in MODELS and card.view == MODELS[card.model]:
            found.setdefault(card.model, []).append((card_file.parent, f1))
    return {n: (runs[0][0], sum(f for _, f in runs) / len(runs)) for n, runs in found.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3000, help="timed batch-1 runs per model")
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs" / "bench" / "train",
                    help="folder searched for finished runs (default: bench_train.py's grid)")
    ap.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    args = ap.parse_args()
    t_start = time.time()
    ws = prepare(load_data_config(DATA), progress=False)
    train, test = ws.mask("train"), ws.mask("test")
    runs = finished_runs(args.runs_dir)
    results: dict[str, Any] = {"machine": machine_info(), "data": ws.meta["name"],
                               "runs_per_model": args.runs, "models": {}}
    with tempfile.TemporaryDirectory(prefix="harkd-bench-") as tmp:
        rows = measure_all(Path(tmp), ws, train, test, runs, args.runs, results)
    results["targets"] = evaluate_targets(results)
    results["seconds"] = time.time() - t_start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    write_table(rows, args.out.with_suffix(".md"), args.out.with_suffix(".csv"))
    f1_latency(rows, args.out.with_suffix(".png"))
    report(results)
    return 0


def measure_all(tmp: Path, ws: Any, train: np.ndarray, test: np.ndarray, runs: dict,
                n_runs: int, results: dict[str, Any]) -> list[dict[str, Any]]:
    """Export, check and time every model of `MODELS`; fills results["models"]."""
    rows = []
    for name, view in tqdm(MODELS.items(), desc="models", unit="model"):
        idx = ws.channel_indices(view)
        norm = ([ws.meta["norm"]["mean"][i] for i in idx], [ws.meta["norm"]["std"][i] for i in idx])
        torch.manual_seed(0)
        model = build_model(name, len(idx), ws.num_classes, ws.meta["window"]).eval()
        meta = {"harkd.model": name, "harkd.view": view, "harkd.channel_indices": idx,
                "harkd.window": ws.meta["window"], "harkd.label_names": ws.label_names}
        path = export_onnx(model, tmp / f"{name}.onnx", len(idx), ws.meta["window"], meta, norm)
        check = check_export(model, path, ws.X[test][:, idx], norm)
        res = benchmark(path, runs=n_runs, warmup=300, batch=256,
                        module=logits_module(model, norm))
        cost = deployed_cost(model, (1, len(idx), ws.meta["window"]))
        res.update(model=name, role=list_models()[name], view=view, weights="random",
                   params=cost["params"], train_params=cost["train_params"],
                   macs_module=cost["macs"],
                   export_check=check.to_dict(),
                   macro_f1=runs[name][1] if name in runs else None,
                   macro_f1_run=str(runs[name][0]) if name in runs else None)
        results["models"][name] = res
        rows.append(row(name, res, name, res["role"], res["macro_f1"], res["params"]))
        if name == "tiny":
            results["tiny_detail"] = tiny_detail(path, model, norm, ws, idx, train, test, runs)
    return rows


def tiny_detail(path: Path, model: torch.nn.Module, norm: Any, ws: Any, idx: list[int],
                train: np.ndarray, test: np.ndarray, runs: dict) -> dict[str, Any]:
    """Per-node costs, int8 in both formats and streaming for the default student."""
    window = ws.meta["window"]
    out: dict[str, Any] = {
        "node_costs": node_costs(path, len(idx), window),
        "profile": profile_nodes(path, len(idx), window, runs=1000),
    }
    weights = "random"
    if "tiny" in runs:  # int8 accuracy needs trained weights: use the finished run
        from harkd.train.checkpoint import load_run_model

        model, card = load_run_model(runs["tiny"][0])
        norm = (card.norm.mean, card.norm.std)
        path = export_onnx(model, path.with_name("tiny_trained.onnx"), len(idx), window,
                           {"harkd.model": "tiny", "harkd.channel_indices": idx}, norm)
        weights = str(runs["tiny"][0])
    x = ws.X[:, idx]
    out["int8"] = {"weights": weights}
    for fmt in ("qoperator", "qdq"):
        q = quantize_onnx(path, path.with_name(f"tiny.{fmt}.onnx"),
                          calibration_windows(x[train], 512), fmt)
        out["int8"][fmt] = {
            "compare": compare_int8(path, q, x[test], ws.y[test]).to_dict(),
            "latency": benchmark(q, runs=3000, warmup=300, batch=256),
        }
    signals, rate, source = test_recording(load_data_config(DATA))
    out["stream"] = {**stream(path, signals, rate, hop_s=1.0).to_dict(), "recording": source}
    return out


def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    m = results["models"]
    p50 = {k: v["batch1"]["model"]["p50_us"] for k, v in m.items()}
    int8 = results["tiny_detail"]["int8"]
    best_ratio = min(int8[f]["compare"]["size_ratio"] for f in ("qoperator", "qdq"))
    measured = {
        "tiny_p50_x_floor": m["tiny"]["batch1"]["x_floor"]["p50"],
        "cnn1d_over_tiny": p50["cnn1d"] / p50["tiny"],
        "deepconvlstm_over_tiny": p50["deepconvlstm"] / p50["tiny"],
        "int8_size_ratio": best_ratio,
    }
    return {
        "measured": measured,
        "targets": TARGETS,
        "met": {
            "tiny_p50_x_floor": measured["tiny_p50_x_floor"] <= TARGETS["tiny_p50_x_floor_max"],
            "cnn1d_over_tiny": measured["cnn1d_over_tiny"] >= TARGETS["cnn1d_over_tiny_min"],
            "deepconvlstm_over_tiny":
                measured["deepconvlstm_over_tiny"] >= TARGETS["deepconvlstm_over_tiny_min"],
            "int8_size_ratio": best_ratio <= TARGETS["int8_size_ratio_max"],
        },
    }


def report(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    print(f"{'model':13s} {'params':>8s} {'MACs':>10s} {'bytes':>8s} {'p50us':>8s} {'p99us':>8s} "
          f"{'xfloor':>7s} {'us/win@256':>10s} {'torch p50':>9s}")
    for name, r in results["models"].items():
        b = r["batch1"]
        print(f"{name:13s} {r['params']:8d} {r['macs_module']:10d} {r['file_bytes']:8d} "
              f"{b['model']['p50_us']:8.1f} {b['model']['p99_us']:8.1f} {b['x_floor']['p50']:7.2f} "
              f"{r['batchN']['model']['p50_us']:10.2f} {r['torch_eager']['stats']['p50_us']:9.1f}")
    d = results["tiny_detail"]
    print("tiny marginal node costs (us):",
          ", ".join(f"{c['op']} {c['marginal_us']:.2f}" for c in d["node_costs"]))
    for fmt in ("qoperator", "qdq"):
        c, lat = d["int8"][fmt]["compare"], d["int8"][fmt]["latency"]["batch1"]
        print(f"int8 {fmt}: {c['int8_bytes']} B ({c['size_ratio']:.3f} x float), agreement "
              f"{c['argmax_agreement']:.4f}, macro-F1 {c['f1_float']:.4f} -> {c['f1_int8']:.4f}, "
              f"p50 {lat['model']['p50_us']:.1f} us ({lat['x_floor']['p50']:.2f} x floor)")
    s = d["stream"]
    print(f"stream: {s['decisions']} decisions over {s['recording_s']:.0f} s, p50 "
          f"{s['latency']['p50_us']:.1f} us, p99 {s['latency']['p99_us']:.1f} us, "
          f"RTF {s['real_time_factor']:.2e}")
    t = results["targets"]
    for key, value in t["measured"].items():
        print(f"target {key}: {value:.3f} -> {'met' if t['met'][key] else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
