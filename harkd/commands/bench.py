"""`harkd bench MODEL_OR_RUN ...`: onnxruntime CPU latency beside the runtime floor.

Each argument is an .onnx file or a run directory (its model.onnx, exported first when
missing). Reports p50/p90/p99/mean at batch 1 and per window at --batch, each also as a
multiple of the floor (a one-node graph with the same input, timed interleaved); file size,
parameters and MACs; for run directories PyTorch eager latency and test macro-F1 too.
--stream slides the model over a whole test recording at --hop seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harkd.commands.options import nonnegative_int, positive_float, positive_int
from harkd.config import ConfigError
from harkd.shipped import config_file
from harkd.train.rundir import atomic_write_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", type=Path, help=".onnx files or run directories")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="intra-op threads (default 1)")
    parser.add_argument("--runs", type=positive_int, default=2000,
                        help="timed batch-1 runs (default 2000)")
    parser.add_argument("--warmup", type=nonnegative_int, default=200,
                        help="untimed runs first (default 200)")
    parser.add_argument("--batch", type=positive_int, default=256,
                        help="large batch (default 256)")
    parser.add_argument("--shape", type=input_shape, default=None,
                        help="input CHANNELS,TIME (needed when the file's axes are dynamic)")
    parser.add_argument("--stream", action="store_true", help="also stream a test recording")
    parser.add_argument("--hop", type=positive_float, default=1.0,
                        help="stream hop in seconds (default 1)")
    parser.add_argument("--data", default=None,
                        help="data protocol YAML for --stream and exports (default: the run's)")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--plot", type=Path, default=None,
                        help="PNG of macro-F1 against p50 latency (table .md/.csv beside it)")


def run(args: argparse.Namespace) -> int:
    results = []
    for target in args.targets:
        res = bench_target(target, args, args.shape)
        print(describe(res))
        results.append(res)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.json, json.dumps(results, indent=1).encode())
    if args.plot is not None:
        from harkd.report.cost import row, write_table
        from harkd.report.plots import f1_latency

        rows = [row(r["name"], r, r.get("model", ""), r.get("role", ""), r.get("macro_f1"),
                    r.get("params")) for r in results]
        write_table(rows, args.plot.with_suffix(".md"), args.plot.with_suffix(".csv"))
        f1_latency(rows, args.plot)
    return 0


def input_shape(text: str) -> list[int]:
    """`6,128` as [6, 128] (argparse answers anything else with one line naming --shape)."""
    try:
        shape = [int(v) for v in text.split(",")]
    except ValueError:
        shape = []
    if len(shape) != 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected CHANNELS,TIME (integers >= 1), got {text!r}")
    return shape


def bench_target(target: Path, args: argparse.Namespace, shape: list[int] | None) -> dict[str, Any]:
    """Benchmark one .onnx file or run directory."""
    from harkd.deploy.latency import benchmark

    info: dict[str, Any] = {"name": target.stem if target.suffix == ".onnx" else target.name}
    module = None
    path = target
    if target.is_dir():
        from harkd.deploy import flops
        from harkd.deploy.export import export_run, logits_module, run_normalization
        from harkd.models import list_models
        from harkd.train.checkpoint import load_run_model

        path = target / "model.onnx"
        if not path.is_file():
            export_run(target, data_cfg=None if args.data is None else config_file(args.data))
        model, card = load_run_model(target)
        module = logits_module(model, run_normalization(card))
        cost = flops.deployed_cost(model, (1, *card.input_shape))
        info.update(
            model=card.model,
            role=list_models().get(card.model, ""),
            params=cost["params"],
            train_params=cost["train_params"],
            macro_f1=card.metrics["test"].macro_f1,
        )
    res = benchmark(path, args.threads, args.runs, args.warmup, args.batch, shape, module)
    res.update(info)
    if args.stream:
        res["stream"] = stream_target(path, target, args)
    return res


def stream_target(path: Path, target: Path, args: argparse.Namespace) -> dict[str, Any]:
    from data_prep.config import load_data_config
    from harkd.deploy.streaming import stream, test_recording

    if args.data is not None:
        cfg = load_data_config(config_file(args.data))
    elif target.is_dir() and (target / "config.yaml").is_file():
        from harkd.config import load_run_config
        from harkd.data import data_config

        cfg = data_config(load_run_config(target / "config.yaml"))
    else:
        raise ConfigError(f"{target}: --stream needs a data protocol; give --data CONFIG")
    if target.is_dir():  # the run's model must fit the protocol it streams
        from data_prep.pipeline import prepare
        from harkd.train.compat import check_compatible
        from harkd.train.runcard import read_card

        check_compatible(read_card(target), prepare(cfg, progress=False), "evaluate",
                         where=str(target))  # fmt: skip
    signals, rate, source = test_recording(cfg)
    out = stream(path, signals, rate, args.hop, threads=args.threads).to_dict()
    out["recording"] = source
    return out


def describe(res: dict[str, Any]) -> str:
    """A few lines of figures for one benchmark result."""
    one, big = res["batch1"], res["batchN"]
    m, f, x = one["model"], one["floor"], one["x_floor"]
    lines = [
        f"{res['name']}: {res['file']} ({res['file_bytes']} B, input {res['input']}, "
        f"{res.get('params', res['initializer_elements'])} params, "
        f"{res['macs']['total']} MACs, {res['threads']} thread(s))",
        f"  batch 1   p50 {m['p50_us']:.1f} p90 {m['p90_us']:.1f} p99 {m['p99_us']:.1f} "
        f"mean {m['mean_us']:.1f} us  | floor p50 {f['p50_us']:.1f} us | x floor p50 "
        f"{x['p50']:.2f} p90 {x['p90']:.2f} p99 {x['p99']:.2f} mean {x['mean']:.2f}",
        f"  batch {big['batch']} p50 {big['model']['p50_us']:.2f} us/window "
        f"(floor {big['floor']['p50_us']:.2f}, x {big['x_floor']['p50']:.2f})",
    ]
    if "torch_eager" in res:
        e = res["torch_eager"]
        lines.append(f"  torch eager p50 {e['stats']['p50_us']:.1f} us "
                     f"({e['x_onnx']['p50']:.2f} x onnxruntime, {e['x_floor']['p50']:.2f} x floor)")
    if res.get("macro_f1") is not None:
        lines.append(f"  test macro-F1 {res['macro_f1']:.4f}")
    if "stream" in res:
        s = res["stream"]
        lines.append(f"  stream {s['decisions']} decisions over {s['recording_s']:.1f} s: "
                     f"p50 {s['latency']['p50_us']:.1f} p99 {s['latency']['p99_us']:.1f} us, "
                     f"real-time factor {s['real_time_factor']:.2e}")
    return "\n".join(lines)
