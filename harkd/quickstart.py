"""The quickstart: one command from the raw UCI HAPT recordings to a benchmarked student.

Steps (each reused when already done, and said so): prepare the data protocol; train the
acc+gyro teacher; train the accelerometer-only student alone and distilled with each method,
once per seed; export every student to ONNX and int8; time the teacher and the students on
onnxruntime's CPU provider beside the runtime floor; write `report.md`, `summary.json` and PNGs
(the confusion matrix of the best student, chosen on validation macro-F1, and macro-F1 against
latency). Latency depends on the architecture only, so it is measured on the seed-0 run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harkd.config import (
    ConfigError,
    LatencyConfig,
    RunConfig,
    apply_overrides,
    format_validation_error,
    load_yaml,
    validate_run_config,
)
from harkd.data import load_windowset, merge_overrides


class QuickstartConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output_dir: str = "runs/quickstart"
    teacher: str = Field(description="run config of the teacher")
    students: dict[str, str] = Field(description="label -> run config of a student")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    teacher_overrides: dict[str, Any] = Field(default_factory=dict)
    student_overrides: dict[str, Any] = Field(default_factory=dict)
    bench: LatencyConfig = Field(default_factory=LatencyConfig)
    int8: bool = True


def load_quickstart_config(
    path: str | Path, overrides: list[str] | None = None
) -> QuickstartConfig:
    raw = apply_overrides(load_yaml(path), overrides or [])
    try:
        return QuickstartConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, QuickstartConfig, str(path))) from None


def teacher_config(qs: QuickstartConfig) -> RunConfig:
    raw = merge_overrides(load_yaml(qs.teacher), qs.teacher_overrides)
    raw.update(name="teacher", output_dir=qs.output_dir)
    return validate_run_config(raw, source=qs.teacher)


def student_config(qs: QuickstartConfig, label: str, seed: int, teacher_dir: Path) -> RunConfig:
    """A student's run config: its own file, the quickstart's overrides, seed and teacher."""
    raw = merge_overrides(load_yaml(qs.students[label]), qs.student_overrides)
    raw = merge_overrides(raw, {"train": {"seed": seed}})
    raw.update(name=f"{label}-seed{seed}", output_dir=str(Path(qs.output_dir) / "students"))
    for teacher in raw.get("teachers", {}).values():
        teacher["run_dir"] = str(teacher_dir)
    return validate_run_config(raw, source=qs.students[label])


def _say(text: str) -> None:
    print(f"[harkd demo] {text}", flush=True)


def _export(run_dir: Path, int8: bool) -> dict[str, Any]:
    """Export a run (reusing an earlier export of the same weights by the same exporter) and
    return export.json."""
    from harkd.deploy.export import EXPORT_FORMAT, export_run

    record = run_dir / "export.json"
    onnx = run_dir / "model.onnx"
    fresh = record.is_file() and onnx.is_file()
    fresh = fresh and onnx.stat().st_mtime >= (run_dir / "model.safetensors").stat().st_mtime
    fresh = fresh and json.loads(record.read_text()).get("export_format") == EXPORT_FORMAT
    if fresh and (not int8 or (run_dir / "model.int8.onnx").is_file()):
        _say(f"reusing the ONNX export in {run_dir}")
    else:
        export_run(run_dir, int8=int8)
    return json.loads(record.read_text())


def _bench(path: Path, run_dir: Path, qs: QuickstartConfig) -> dict[str, Any]:
    """onnxruntime latency of one ONNX file (cached beside it as <file>.bench.json)."""
    from harkd.deploy.latency import benchmark
    from harkd.train.checkpoint import load_run_model

    cache = path.with_suffix(".bench.json")
    if cache.is_file() and cache.stat().st_mtime >= path.stat().st_mtime:
        _say(f"reusing the latency measurement of {path}")
        return json.loads(cache.read_text())
    model, _ = load_run_model(run_dir)
    b = qs.bench
    result = benchmark(
        path, threads=b.threads, runs=b.runs, warmup=b.warmup, batch=b.batch, module=model
    )
    cache.write_text(json.dumps(result, indent=1))
    return result


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def run_quickstart(qs: QuickstartConfig, progress: bool = True) -> dict[str, Any]:
    """Run every step and write the report; return the summary written to summary.json."""
    from harkd.deploy.flops import deployed_cost
    from harkd.train.checkpoint import load_run_model
    from harkd.train.loop import fit

    out = Path(qs.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_cfg = teacher_config(qs)
    _say(f"1/5 preparing {t_cfg.data}")
    ws = load_windowset(t_cfg, progress=progress)
    hit = "loaded from the cache" if ws.meta.get("from_cache") else "prepared and cached"
    counts = {s: int(ws.mask(s).sum()) for s in ("train", "val", "test")}
    _say(f"    {ws.meta.get('name')}: {len(ws)} windows {counts}, {hit}")

    _say(f"2/5 teacher {t_cfg.model.name} on {t_cfg.model.view}")
    teacher = fit(t_cfg, ws, run_dir=out / "teacher", progress=progress)
    teacher_dir = Path(teacher.run_dir)

    _say(f"3/5 students {list(qs.students)} x seeds {qs.seeds}")
    runs: dict[str, list[Any]] = {}
    for label in qs.students:
        for seed in qs.seeds:
            cfg = student_config(qs, label, seed, teacher_dir)
            runs.setdefault(label, []).append(fit(cfg, ws, progress=progress))

    _say("4/5 ONNX export, int8 and onnxruntime latency")
    rows = []
    t_model, t_meta = load_run_model(teacher_dir)
    _export(teacher_dir, int8=False)
    rows.append(
        _row(
            "teacher",
            [teacher],
            teacher_dir,
            _bench(teacher_dir / "model.onnx", teacher_dir, qs),
            deployed_cost(t_model, (1, t_meta["in_channels"], t_meta["window"])),
            None,
        )
    )
    for label, results in runs.items():
        exports = [_export(Path(r.run_dir), qs.int8) for r in results]
        run_dir = Path(results[0].run_dir)
        model, meta = load_run_model(run_dir)
        bench = _bench(run_dir / "model.onnx", run_dir, qs)
        int8 = None
        if qs.int8:
            int8 = {
                "size_ratio": exports[0]["int8"]["size_ratio"],
                "f1_change": [e["int8"]["f1_change"] for e in exports],
                "bench": _bench(run_dir / "model.int8.onnx", run_dir, qs),
            }
        cost = deployed_cost(model, (1, meta["in_channels"], meta["window"]))
        rows.append(_row(label, results, run_dir, bench, cost, int8))

    _say("5/5 report")
    summary = _write_report(out, rows, runs, ws, qs)
    print(summary["table"])
    _say(f"report: {out / 'report.md'}")
    return summary


def _row(label, results, run_dir, bench, cost, int8) -> dict[str, Any]:
    test_f1 = [r.metrics["test"]["macro_f1"] for r in results]
    val_f1 = [r.metrics["val"]["macro_f1"] for r in results]
    b1 = bench["batch1"]
    row = {
        "name": label,
        "run_dir": str(run_dir),
        "seeds": [r.seed for r in results],
        "test_macro_f1": _mean_std(test_f1),
        "test_macro_f1_per_seed": test_f1,
        "val_macro_f1": _mean_std(val_f1),
        "params": cost["params"],  # as deployed (training-time branches merged)
        "train_params": cost["train_params"],
        "macs": cost["macs"],
        "file_bytes": bench["file_bytes"],
        "p50_us": b1["model"]["p50_us"],
        "floor_p50_us": b1["floor"]["p50_us"],
        "x_floor": b1["x_floor"]["p50"],
        "torch_p50_us": bench["torch_eager"]["stats"]["p50_us"],
    }
    if int8 is not None:
        row["int8"] = {
            "p50_us": int8["bench"]["batch1"]["model"]["p50_us"],
            "x_floor": int8["bench"]["batch1"]["x_floor"]["p50"],
            "size_ratio": int8["size_ratio"],
            "macro_f1_change": _mean_std(int8["f1_change"]),
        }
    return row


def _write_report(out: Path, rows, runs, ws, qs: QuickstartConfig) -> dict[str, Any]:
    from harkd.deploy.compare import plot

    head = (
        "| model | seeds | test macro-F1 | params | MACs | p50 µs | × floor | "
        "int8 p50 µs | int8 size | int8 ΔF1 |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        m, s = r["test_macro_f1"]
        i8 = r.get("int8")
        cells = [
            r["name"],
            str(len(r["seeds"])),
            f"{m:.4f} ± {s:.4f}",
            f"{r['params']:,}",
            f"{r['macs']:,}",
            f"{r['p50_us']:.1f}",
            f"{r['x_floor']:.2f}",
            f"{i8['p50_us']:.1f}" if i8 else "",
            f"{i8['size_ratio']:.2f}×" if i8 else "",
            f"{i8['macro_f1_change'][0]:+.4f} ± {i8['macro_f1_change'][1]:.4f}" if i8 else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)

    students = [r for r in rows if r["name"] != "teacher"]
    best = max(students, key=lambda r: r["val_macro_f1"][0])  # chosen on validation only
    best_run = max(runs[best["name"]], key=lambda r: r.metrics["val"]["macro_f1"])
    shutil.copyfile(
        Path(best_run.run_dir) / "confusion_test.png", out / "confusion_best_student.png"
    )
    plot(
        [
            {
                "name": r["name"],
                "p50_us": r["p50_us"],
                "macro_f1": r["test_macro_f1"][0],
                "role": "teacher" if r["name"] == "teacher" else "student",
            }
            for r in rows
        ],
        out / "f1_vs_latency.png",
    )
    floor = rows[0]["floor_p50_us"]
    text = [
        "# harkd quickstart",
        "",
        f"Data: {ws.meta.get('name')} (UCI HAPT, real recordings), "
        f"{ {s: int(ws.mask(s).sum()) for s in ('train', 'val', 'test')} } windows; "
        f"test subjects {ws.meta['split_subjects']['test']} never seen in training or "
        "validation; normalisation from the training split; model selection on validation "
        "macro-F1.",
        f"Students: seeds {qs.seeds}, test macro-F1 mean ± std over seeds. The teacher is one "
        "run (seed of its config).",
        f"Latency: onnxruntime CPU provider, {qs.bench.threads} thread(s), batch 1, p50 of "
        f"{qs.bench.runs} runs; runtime floor (one-node graph, same input) p50 {floor:.1f} µs, "
        "measured interleaved in the same run. Students are timed on their seed-0 run; "
        "int8 ΔF1 is the test macro-F1 change from float to int8, mean ± std over seeds.",
        "",
        table,
        "",
        f"Best student on validation: **{best['name']}** "
        f"(confusion matrix of its best seed on the test split: `confusion_best_student.png`).",
        "Macro-F1 against latency: `f1_vs_latency.png`.",
        "",
    ]
    (out / "report.md").write_text("\n".join(text))
    summary = {"rows": rows, "best_student": best["name"], "table": table}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
