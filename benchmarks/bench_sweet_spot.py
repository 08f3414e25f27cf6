"""The teacher "sweet spot": what a distilled student's quality follows, read from a grid store.

Seed claim: distillation is bounded by how much class-similarity information the teacher's
outputs keep, which the teacher's training (batch size, epochs) sets. The grid
`configs/grids/teacher_sweet_spot.yaml` trains the acc+gyro cnn1d teacher as training nodes over
batch size x epochs and distils the same acc-only tiny student from each (paired seeds), with
the student alone as a reference. This script reads the grid's run store and, per teacher:

- the teacher's validation and test macro-F1 (from the store);
- its non-target-class entropy on validation: per window, the entropy (nats) of the teacher's
  distribution over the classes other than the true one, renormalised (softmax of the other
  logits, T = 1), averaged over the windows; at most ln(K - 1), reached when the teacher finds
  every wrong class equally likely, i.e. keeps no similarity between classes;
- the students' test macro-F1 and their top-1 agreement with the teacher on the test windows
  (the share of windows where both predict the same class), mean ± std over seeds;
- Spearman rank correlations over the teachers of the students' mean macro-F1 with the
  teacher's macro-F1 and with its non-target entropy.

Run:  python benchmarks/bench_sweet_spot.py GRID_DIR [--out DIR] [--cache-dir DIR]
Writes <out>/sweet_spot.json, sweet_spot.md and sweet_spot.png (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from data_prep.windowset import WindowSet  # noqa: E402
from harkd.config import ConfigError, RunConfig, validate_run_config  # noqa: E402
from harkd.data import Normalizer, load_windowset  # noqa: E402
from harkd.grid.executors import data_key  # noqa: E402
from harkd.grid.runner import run_dir_of, store_path  # noqa: E402
from harkd.grid.store import RunRow, RunStore  # noqa: E402
from harkd.report.stats import MeanStd, format_mean_std, mean_std  # noqa: E402
from harkd.report.tables import fmt, markdown_table  # noqa: E402
from harkd.train.checkpoint import load_run_model  # noqa: E402
from harkd.train.compat import check_compatible  # noqa: E402
from harkd.train.metrics import predict  # noqa: E402
from harkd.train.rundir import atomic_write_bytes, atomic_write_json  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def non_target_entropy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per window, the entropy (nats) of softmax over the logits of every class but the true
    one: [N, K] logits and [N] labels -> [N]."""
    n, k = logits.shape
    others = logits[~np.eye(k, dtype=bool)[y]].reshape(n, k - 1).astype(np.float64)
    log_q = others - others.max(axis=1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=1, keepdims=True))
    return -(np.exp(log_q) * log_q).sum(axis=1)


def top1_agreement(a_logits: np.ndarray, b_logits: np.ndarray) -> float:
    """The share of windows on which two models predict the same class."""
    return float(np.mean(a_logits.argmax(axis=1) == b_logits.argmax(axis=1)))


def split_logits(run_dir: Path, ws: WindowSet, split: str) -> np.ndarray:
    """A finished run's logits on one split: its view of the windows, standardised with the
    statistics on its card (after the card is checked against the data)."""
    model, card = load_run_model(run_dir)
    channels = check_compatible(card, ws, "evaluate", where=str(run_dir))
    x = Normalizer(card.norm.mean, card.norm.std)(ws.X[ws.mask(split)][:, channels])
    return predict(model, x)


class _Data:
    """Each distinct data protocol of the grid's runs, prepared once."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir, self.sets = cache_dir, {}

    def __call__(self, cfg: RunConfig) -> WindowSet:
        key = data_key(cfg)
        if key not in self.sets:
            self.sets[key] = load_windowset(cfg, self.cache_dir)
        return self.sets[key]


def analyse(grid_dir: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """The per-teacher table (module docstring) of the finished runs of the grid in `grid_dir`."""
    path = store_path(grid_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run store here; run `harkd grid SPEC` first")
    with RunStore(path) as store:
        rows = store.rows("done")
    data = _Data(cache_dir)
    nodes = {r.hash: r for r in rows if r.kind == "node"}
    students: dict[str | None, list[RunRow]] = defaultdict(list)
    for r in rows:
        if r.kind == "cell":
            needed = [t.get("node") for t in r.config.get("teachers", {}).values()]
            if len(needed) > 1:
                raise ValueError(f"run {r.hash}: {len(needed)} teachers; the sweet spot needs one")
            students[needed[0] if needed else None].append(r)
    teachers = []
    for h, students_of in students.items():
        if h is None or h not in nodes:
            continue
        teachers.append(teacher_summary(grid_dir, nodes[h], students_of, data))
    teachers.sort(key=lambda t: (t["batch_size"], t["epochs"]))
    alone = [r.metrics["test"]["macro_f1"] for r in students.get(None, [])]
    return {
        "grid_dir": str(grid_dir),
        "teachers": teachers,
        "student_alone": mean_std(alone).to_dict(),
        "max_non_target_entropy": math.log(teachers[0]["classes"] - 1) if teachers else None,
        "spearman": correlations(teachers),
    }


def teacher_summary(grid_dir: Path, node: RunRow, students: list[RunRow], data: _Data) -> dict:
    """One teacher's row: its training, scores, non-target entropy and its students'."""
    cfg = validate_run_config(node.config, source=f"node {node.hash}")
    ws = data(cfg)
    teacher_dir = run_dir_of(grid_dir, node.hash)
    val = split_logits(teacher_dir, ws, "val")
    f1, agreement, t_test = [], [], {}
    for s in students:
        s_cfg = validate_run_config(s.config, source=f"run {s.hash}")
        s_ws = data(s_cfg)
        key = data_key(s_cfg)  # the teacher scored once on each data protocol
        t_test[key] = t_test[key] if key in t_test else split_logits(teacher_dir, s_ws, "test")
        s_test = split_logits(run_dir_of(grid_dir, s.hash), s_ws, "test")
        agreement.append(top1_agreement(t_test[key], s_test))
        f1.append(s.metrics["test"]["macro_f1"])
    return {
        "node": node.hash,
        "batch_size": cfg.train.batch_size,
        "epochs": cfg.train.epochs,
        "classes": ws.num_classes,
        "teacher_val_macro_f1": node.metrics["val"]["macro_f1"],
        "teacher_test_macro_f1": node.metrics["test"]["macro_f1"],
        "teacher_val_non_target_entropy": float(non_target_entropy(val, ws.y[ws.mask("val")])
                                                .mean()),
        "student_test_macro_f1": mean_std(f1).to_dict(),
        "agreement_test": mean_std(agreement).to_dict(),
    }


def correlations(teachers: list[dict[str, Any]]) -> dict[str, float | None]:
    """Spearman's rho over the teachers of the students' mean macro-F1 with the teacher's
    test macro-F1 and with its non-target entropy (None below 3 teachers)."""
    student = [t["student_test_macro_f1"]["mean"] for t in teachers]
    out: dict[str, float | None] = {}
    for name, key in (("teacher_macro_f1", "teacher_test_macro_f1"),
                      ("non_target_entropy", "teacher_val_non_target_entropy")):
        values = [t[key] for t in teachers]
        rho = stats.spearmanr(values, student).statistic if len(teachers) >= 3 else math.nan
        out[name] = None if math.isnan(rho) else float(rho)
    return out


def _ms(d: dict[str, Any]) -> str:
    """A mean ± std read back from its JSON form."""
    return format_mean_std(MeanStd(d["mean"], d["std"], d["n"]))


def markdown(result: dict[str, Any]) -> str:
    """The teachers' table, the reference and the correlations, as markdown."""
    header = ["teacher batch", "epochs", "teacher val F1", "teacher test F1",
              "non-target entropy (val, nats)", "student test F1", "agreement (test)"]
    rows = [[t["batch_size"], t["epochs"], fmt(t["teacher_val_macro_f1"]),
             fmt(t["teacher_test_macro_f1"]), fmt(t["teacher_val_non_target_entropy"]),
             _ms(t["student_test_macro_f1"]), _ms(t["agreement_test"])]
            for t in result["teachers"]]
    rho = result["spearman"]
    return "\n".join([
        "# Teacher sweet spot", "",
        f"Grid: `{result['grid_dir']}`. Macro-F1 mean ± std over seeds; non-target entropy at "
        f"most ln(K - 1) = {fmt(result['max_non_target_entropy'])} nats.", "",
        markdown_table(header, rows),
        f"Student alone: {_ms(result['student_alone']) or 'not in the grid'}.", "",
        "Spearman rho over the teachers of the students' mean test macro-F1 with the teacher's "
        f"test macro-F1: {fmt(rho['teacher_macro_f1'])}; with its non-target entropy: "
        f"{fmt(rho['non_target_entropy'])}.", "",
    ])


def plot(result: dict[str, Any], path: Path) -> None:
    """Student macro-F1 against teacher macro-F1 and against non-target entropy."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label in ((axes[0], "teacher_test_macro_f1", "teacher test macro-F1"),
                           (axes[1], "teacher_val_non_target_entropy",
                            "teacher non-target entropy on validation (nats)")):
        for t in result["teachers"]:
            s = t["student_test_macro_f1"]
            ax.errorbar(t[key], s["mean"], yerr=s["std"] or 0, fmt="o", color="tab:blue")
            ax.annotate(f"b{t['batch_size']} e{t['epochs']}", (t[key], s["mean"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=8)
        if result["student_alone"]["n"]:
            ax.axhline(result["student_alone"]["mean"], color="tab:gray", ls="--",
                       label="student alone")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("student test macro-F1")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid_dir", type=Path, help="the grid folder (holds runs.sqlite)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="default benchmarks/results")
    parser.add_argument("--cache-dir", type=Path, default=None, help="WindowSet cache")
    args = parser.parse_args(argv)
    try:
        result = analyse(args.grid_dir, args.cache_dir)
    except (ConfigError, OSError, ValueError, KeyError) as err:
        print(f"bench_sweet_spot: {err.args[0] if err.args else err}", file=sys.stderr)
        return 1
    if not result["teachers"]:
        print(f"bench_sweet_spot: {args.grid_dir}: no finished teacher with finished students",
              file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "sweet_spot.json", result)
    atomic_write_bytes(args.out / "sweet_spot.md", markdown(result).encode())
    plot(result, args.out / "sweet_spot.png")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
