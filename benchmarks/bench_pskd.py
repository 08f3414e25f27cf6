"""PSKD benchmark on SYNTHETIC paired skeleton + wrist-accelerometer data (issue 6).

Data: configs/data/synth-paired.yaml (data_prep/synth_skeleton.py; no person recorded any of
it). Teachers (configs/train/synth_teacher_{acc,fusion,skeleton}.yaml) are trained once with
seed 0 and frozen; then for each seed: the acc-only tiny student alone
(configs/train/synth_student_tiny.yaml), KD from the single teacher with the best validation
macro-F1 (configs/distill/kd_synth.yaml; ties broken in the order skeleton, fusion, acc), and
PSKD with the hard and the soft ACS loss (configs/distill/pskd_synth.yaml). Reported: test
macro-F1 mean ± std over seeds and each method's per-seed paired difference against the student
alone. Model selection is on validation macro-F1 only (inside `fit`). Run from the repository
root:

    python benchmarks/bench_pskd.py                       # 3 seeds, the configs' epochs
    python benchmarks/bench_pskd.py --seeds 0 --epochs 4 --teacher-epochs 2 --subjects 12 \
        --trials 2 --duration 8 --out runs/pskd-smoke   # a quick look

Writes <out>/pskd.json and pskd.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harkd.config import RunConfig, load_run_config, load_yaml  # noqa: E402
from harkd.report.stats import MeanStd, format_mean_std, mean_std  # noqa: E402
from harkd.report.tables import markdown_table  # noqa: E402

DATA = REPO / "configs" / "data" / "synth-paired.yaml"
TRAIN = REPO / "configs" / "train"
DISTILL = REPO / "configs" / "distill"
TEACHERS = {  # teacher name in pskd_synth.yaml -> its training config; tie order for KD
    "skeleton": TRAIN / "synth_teacher_skeleton.yaml",
    "fusion": TRAIN / "synth_teacher_fusion.yaml",
    "acc": TRAIN / "synth_teacher_acc.yaml",
}
LABEL = "SYNTHETIC data (data_prep/synth_skeleton.py): no person recorded any of it"


def config(path: Path, overrides: list[str]) -> RunConfig:
    return load_run_config(path, overrides)


def run(cfg: RunConfig, run_dir: Path, cache: Path) -> dict[str, Any]:
    from harkd.train.loop import fit

    t0 = time.perf_counter()
    r = fit(cfg, run_dir=run_dir, progress=False, cache_dir=cache)
    print(f"  {r.summary()}", flush=True)
    return {
        "test_macro_f1": r.metrics["test"]["macro_f1"],
        "val_macro_f1": r.metrics["val"]["macro_f1"],
        "test_accuracy": r.metrics["test"]["accuracy"],
        "best_epoch": r.best_epoch,
        "s_per_epoch": r.timings["s_per_epoch"],
        "wall_s": time.perf_counter() - t0,
        "run_dir": str(run_dir),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="student epochs (default: configs)")
    ap.add_argument("--teacher-epochs", type=int, default=None)
    ap.add_argument("--boundaries", type=int, nargs="+", default=None, help="PSKD stage epochs")
    ap.add_argument("--subjects", type=int, default=None, help="synthetic subjects (default 12)")
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None, help="seconds per trial")
    ap.add_argument("--work", type=Path, default=REPO / "runs" / "bench_pskd")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    reader = {
        k: v
        for k, v in (
            ("n_subjects", args.subjects),
            ("trials", args.trials),
            ("duration_s", args.duration),
        )
        if v is not None
    }
    common = [f"data={DATA}"]
    if reader:
        opts = {**load_yaml(DATA)["reader_options"], **reader}
        common.append(f"data_overrides={json.dumps({'reader_options': opts})}")
    cache = args.work / "cache"

    print("teachers (seed 0, trained once):", flush=True)
    teachers, teacher_cfg = {}, {}
    for name, path in TEACHERS.items():
        extra = [] if args.teacher_epochs is None else [f"train.epochs={args.teacher_epochs}"]
        cfg = config(path, [*common, *extra])
        teachers[name] = run(cfg, args.work / f"teacher-{name}", cache)
        teacher_cfg[name] = {
            "name": cfg.model.name,
            "view": cfg.model.view,
            "params": cfg.model.params,
            "run_dir": str(args.work / f"teacher-{name}"),
        }
    best = max(TEACHERS, key=lambda n: teachers[n]["val_macro_f1"])  # first wins ties
    print(f"best single teacher by validation macro-F1: {best}", flush=True)

    student_extra = [] if args.epochs is None else [f"train.epochs={args.epochs}"]
    pskd_extra = [f"teachers={json.dumps(teacher_cfg)}"]
    if args.boundaries is not None:
        pskd_extra.append(f"distill.params.boundaries={json.dumps(args.boundaries)}")
    methods = {
        "student": (TRAIN / "synth_student_tiny.yaml", []),
        f"kd_{best}": (
            DISTILL / "kd_synth.yaml",
            [f"teachers={json.dumps({best: teacher_cfg[best]})}"],
        ),
        "pskd_hard": (DISTILL / "pskd_synth.yaml", [*pskd_extra, "distill.params.variant=hard"]),
        "pskd_soft": (DISTILL / "pskd_synth.yaml", [*pskd_extra, "distill.params.variant=soft"]),
    }
    per_seed: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in methods}
    for seed in args.seeds:
        print(f"seed {seed}:", flush=True)
        for m, (path, extra) in methods.items():
            cfg = config(path, [*common, *student_extra, *extra, f"train.seed={seed}", f"name={m}"])
            per_seed[m][seed] = run(cfg, args.work / f"{m}-seed{seed}", cache)

    base = [per_seed["student"][s]["test_macro_f1"] for s in args.seeds]
    summary = {}
    for m in methods:
        f1 = [per_seed[m][s]["test_macro_f1"] for s in args.seeds]
        diffs = [a - b for a, b in zip(f1, base, strict=True)]
        summary[m] = {
            "test_macro_f1": mean_std(f1).to_dict(),
            "val_macro_f1": mean_std([per_seed[m][s]["val_macro_f1"] for s in args.seeds])
            .to_dict(),
            "diff_vs_student": {**mean_std(diffs).to_dict(), "per_seed": diffs},
        }
    result = {
        "data": LABEL,
        "protocol": "configs/data/synth-paired.yaml"
        + (f" with reader_options {reader}" if reader else "")
        + "; teachers trained once (seed 0) and frozen; student seeds vary",
        "command": "python benchmarks/bench_pskd.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "seeds": args.seeds,
        "teachers": teachers,
        "best_teacher": best,
        "summary": summary,
        "per_seed": {m: {str(s): r for s, r in v.items()} for m, v in per_seed.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pskd.json").write_text(json.dumps(result, indent=1))
    (args.out / "pskd.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# PSKD on {r['data']}",
        "",
        f"{r['protocol']}. Seeds {r['seeds']}. `{r['command']}`",
        "",
        markdown_table(
            ("teacher", "val macro-F1", "test macro-F1"),
            [(name, f"{t['val_macro_f1']:.4f}", f"{t['test_macro_f1']:.4f}")
             for name, t in r["teachers"].items()],
        ),
        markdown_table(
            ("acc-only tiny student", "test macro-F1 (mean ± std)", "paired diff vs alone",
             "per seed"),
            [(m, format_mean_std(MeanStd(**s["test_macro_f1"]), 4),
              format_mean_std(MeanStd(*(s["diff_vs_student"][k] for k in ("mean", "std", "n"))),
                              4, signed=True),
              ", ".join(f"{x:+.4f}" for x in s["diff_vs_student"]["per_seed"]))
             for m, s in r["summary"].items()],
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
