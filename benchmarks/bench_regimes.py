"""Where distillation pays: the three regime studies, run by the experiment engine and analysed.

- **label-budget** (regime A, `configs/grids/label_budget.yaml`): k labelled training subjects
  (k = 2, 3, 5, 10, all) x 10 paired subject draws x six arms (none, ls, kd, kd+pool,
  kd+pool-acc, takd+pool through an acc+gyro assistant); each draw's teachers are training nodes
  trained on its labelled subjects only, its assistant a node taught by its teacher.
- **student-size** (regime B, `configs/grids/student_size.yaml`): acc-only students of about
  500, 1.1k, 2.2k and 4.5k parameters, every label, 10 paired seeds x five arms (none, ls, kd
  from the acc+gyro cnn1d, kd-acc from an acc-only cnn1d, takd through an acc+gyro assistant).
- **hapt-12** (regime C, `configs/grids/hapt12.yaml`): 12 classes, 10 subject folds; the tiny
  student's arms (none, ls, kd, takd) paired over folds, macro-F1 over all 12 classes and over the 6
  transitions alone; and the peers (DeepConvLSTM, TinyHAR, TinierHAR) on the folds the spec
  gives them, compared with the distilled student fold by fold.

Per group of the regime (budget, student, model) every arm gets its mean ± std over the
replicates and paired differences with their 95 % bootstrap interval against `none` and its
controls (`benchmarks/regime_analysis.py`); the goals of the study are checked and stated as
met or not. Student-size and hapt-12 also export one finished run of every model to ONNX and
time them side by side in one onnxruntime run (batch 1, 1 thread, interleaved with the
runtime floor), so the plots and the goals use latencies measured together.

The selection rule is stated with every figure: the default profile keeps the epoch of best
validation macro-F1 (3 validation subjects, early stopping with patience 10); `--profile fixed`
trains every student a fixed budget (label-budget 60 epochs, student-size and hapt-12 the default
profile's 30, DeepConvLSTM 15) and keeps the last epoch (validation not used for selection; the
teachers and assistants are shared with the default profile).

Run:  python benchmarks/bench_regimes.py REGIME [--groups 2,3,5] [--profile fixed]
      [--workers 2] [--grid-dir DIR] [--analyse-only] [--keep-earlier]
Writes benchmarks/results/regimes.json and regimes.md (this regime and profile's section is
replaced, the others kept; with --keep-earlier the section's replicates that the store lacks are
kept and analysed with the store's, and the runs both have are compared), hapt-12 also
peers_hapt12.json and .md, and one PNG per regime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from regime_analysis import (  # noqa: E402
    Regime,
    analyse,
    excludes_zero,
    fmt_diff,
    fmt_ms,
    load_rows,
    markdown,
    nodes_markdown,
    paired_replicates,
    preamble,
)

from data_prep.configio import load_config  # noqa: E402
from harkd.deploy.latency import bound_runner, floor_model, machine_info, time_interleaved  # noqa: E402
from harkd.deploy.session import make_session  # noqa: E402
from harkd.grid.runner import run_dir_of, run_grid  # noqa: E402
from harkd.grid.spec import spec_from_dict  # noqa: E402
from harkd.report.tables import markdown_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
GRIDS = REPO / "configs" / "grids"
BEST_VAL = ("model selection: the epoch of best validation macro-F1 (3 validation subjects; "
            "early stopping, patience 10, at most 30 epochs; teachers likewise)")


def fixed_budget(epochs: int, shared: str) -> str:
    """The selection rule of a regime's `fixed` profile."""
    return (f"student selection: none - the last of a fixed {epochs} epochs is kept (validation "
            f"only reported); {shared} as in the default profile")


def budget_of(config: dict[str, Any]) -> str:
    budget = config["data_overrides"]["split"].get("label_budget")
    return "all" if budget is None else str(budget)


REGIMES = {
    "label-budget": Regime(
        title="Regime A, scarce labels", spec=GRIDS / "label_budget.yaml", group="budget",
        pair="draw", groups=("2", "3", "5", "10", "all"),
        arms=("none", "ls", "kd", "kd+pool", "kd+pool-acc", "takd+pool"),
        # TAKD's acc-only-teacher control is kd+pool from the acc-only cnn1d (no acc-only chain)
        controls={"kd": ("ls",), "kd+pool": ("ls", "kd+pool-acc"), "kd+pool-acc": ("ls",),
                  "takd+pool": ("ls", "kd+pool-acc")},
        shown={"kd+pool": ("kd",), "takd+pool": ("kd+pool",)}, node_group=budget_of,
        selection={"default": BEST_VAL,
                   "fixed": fixed_budget(60, "teachers")}),
    "student-size": Regime(
        title="Regime B, microcontroller-size students", spec=GRIDS / "student_size.yaml",
        group="student", pair="seed", groups=("tiny_500", "tiny_1k", "tiny_2k", "tiny"),
        arms=("none", "ls", "kd", "kd-acc", "takd"),
        # TAKD's acc-only-teacher control is KD from the acc-only cnn1d (no acc-only chain)
        controls={"kd": ("ls", "kd-acc"), "kd-acc": ("ls",), "takd": ("ls", "kd-acc")},
        shown={"takd": ("kd",)},
        selection={"default": BEST_VAL, "fixed": fixed_budget(30, "teachers and assistant")}),
    "hapt-12": Regime(
        title="Regime C, 12-class HAPT", spec=GRIDS / "hapt12.yaml", group="model", pair="fold",
        groups=("tiny", "tinierhar-acc", "tinyhar-acc", "tinierhar", "tinyhar", "deepconvlstm"),
        arms=("none", "ls", "kd", "takd"), controls={"kd": ("ls",), "takd": ("ls",)},
        shown={"takd": ("kd",)}, metrics=("macro_f1", "transitions_f1"),
        selection={"default": BEST_VAL.replace(")", "; class-weighted cross-entropy; "
                                                     "DeepConvLSTM 15 epochs)"),
                   "fixed": fixed_budget(30, "teachers") + "; class-weighted cross-entropy; "
                            "DeepConvLSTM 15 epochs"}),
}
#: published anchors for hapt-12 (WHAR Arena 2026: 3 s windows, 10 subject folds, macro-F1 %)
ANCHORS = {"CNN-HAR": (84.80, 5.58), "TinierHAR": (81.42, 6.23), "TinyHAR": (81.02, 6.79),
           "DeepConvLSTM": (77.33, 7.17)}


def run(regime: Regime, groups: list[str] | None, profile: str, workers: int,
        grid_dir: Path | None) -> Path:
    """Run (or resume) the regime's grid, restricted to `groups`; returns its folder."""
    raw = load_config(regime.spec)
    if grid_dir is not None:
        raw["output_dir"] = str(grid_dir)
    spec = spec_from_dict(raw, source=str(regime.spec), spec_dir=regime.spec.parent)
    if groups:
        spec = spec.select({regime.group: groups})
    out = spec.grid_dir(None).resolve()  # every profile in one store: they share the teachers
    t0 = time.perf_counter()
    summary = run_grid(spec, None if profile == "default" else profile, grid_dir=out,
                       workers=workers, threads=1)
    print(f"{regime.title}: {summary.done}/{summary.total} done ({summary.ran} now, "
          f"{time.perf_counter() - t0:.0f} s), {summary.failed} failed, {summary.blocked} "
          "blocked")
    return out


def side_by_side_latency(grid_dir: Path, regime: Regime, runs: int = 3000) -> dict[str, Any]:
    """p50/p99 at batch 1 of one finished run per group (its `none` arm), every model and the
    runtime floor timed interleaved in one onnxruntime run (1 thread)."""
    from harkd.deploy.export import export_run
    from harkd.deploy.flops import deployed_cost
    from harkd.train.checkpoint import load_run_model

    chosen: dict[str, Any] = {}
    for row in sorted(load_rows(grid_dir), key=lambda r: str(r.axes.get(regime.pair))):
        g = row.axes.get(regime.group)
        if row.kind == "cell" and row.axes.get("method") == "none" and g not in chosen:
            chosen[g] = row
    runners, info, shape = {}, {}, None
    for g in [g for g in regime.groups if g in chosen]:
        run_dir = run_dir_of(grid_dir, chosen[g].hash)
        exported = export_run(run_dir)
        model, card = load_run_model(run_dir)
        cost = deployed_cost(model, (1, *card.input_shape))
        shape = card.input_shape
        x = np.random.default_rng(0).standard_normal((1, *shape), dtype=np.float32)
        runners[g] = bound_runner(make_session(exported.onnx_path, threads=1), x)
        info[g] = {"params": cost["params"], "macs": cost["macs"], "input": list(shape),
                   "run_dir": str(run_dir)}
    if not runners:
        return {}
    # the floor at the widest input any model takes
    widest = max(info.values(), key=lambda d: d["input"][0])["input"]
    floor_x = np.zeros((1, *widest), dtype=np.float32)
    runners["floor"] = bound_runner(make_session(floor_model(*widest), threads=1), floor_x)
    samples = time_interleaved(runners, runs, warmup=300)
    for name, ns in samples.items():
        stats = {"p50_us": float(np.percentile(ns, 50)) / 1e3,
                 "p99_us": float(np.percentile(ns, 99)) / 1e3}
        info.setdefault(name, {}).update(stats)
    return {"runs": runs, "threads": 1, "batch": 1, "machine": machine_info(), "models": info}


# -- goals ----------------------------------------------------------------------------------


def comp(res: dict[str, Any], group: str, arm: str, vs: str, metric: str = "macro_f1"
         ) -> dict[str, Any] | None:
    r = res["groups"].get(group, {}).get(metric, {}).get(arm)
    if r is None:
        return None
    if vs == "none":
        return r.get("vs_none")
    return next((c for c in (*r.get("vs_controls", []), *r.get("vs_shown", []))
                 if c["vs"] == vs), None)


def goals_label_budget(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for b in ("2", "3", "5"):
        arms = res["groups"].get(b, {}).get("macro_f1", {})
        lifts = {a: r["vs_none"] for a, r in arms.items() if "vs_none" in r}
        if not lifts:
            continue
        best = max(lifts, key=lambda a: lifts[a]["diff_mean"])
        # the best arm against the acc-only teacher's (kd+pool's where the best arm has none)
        gyro_arm = best if comp(res, b, best, "kd+pool-acc") else "kd+pool"
        gyro = comp(res, b, gyro_arm, "kd+pool-acc")
        out.append({
            "goal": f"k={b}: best arm lifts >= 3 points over none, interval excluding 0; the "
                    "acc+gyro teacher's arm beats the acc-only teacher's",
            "best_arm": best, "lift": fmt_diff(lifts[best]),
            "gyro_vs_acc": f"{gyro_arm} - kd+pool-acc {fmt_diff(gyro)}",
            "met": bool(lifts[best]["diff_mean"] >= 0.03 and excludes_zero(lifts[best])
                        and gyro is not None and excludes_zero(gyro))})
    return out


def goals_student_size(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    small = [g for g in ("tiny_500", "tiny_1k") if g in res["groups"]]
    for g in small:
        arms = res["groups"][g]["macro_f1"]
        distilled = [a for a in ("kd", "kd-acc", "takd") if a in arms]
        best = max(distilled, key=lambda a: arms[a]["test"]["mean"], default=None)
        if best is None:
            continue
        vs_none, vs_ls = comp(res, g, best, "none"), comp(res, g, best, "ls")
        params = res.get("latency", {}).get("models", {}).get(g, {}).get("params")
        out.append({
            "goal": f"{g} ({params or '?'} deployed params): a distilled arm gains "
                    ">= 1.5 points over none and beats label smoothing",
            "best_arm": best, "vs_none": fmt_diff(vs_none), "vs_ls": fmt_diff(vs_ls),
            "met": bool(vs_none and vs_none["diff_mean"] >= 0.015 and excludes_zero(vs_none)
                        and vs_ls and excludes_zero(vs_ls))})
    ref = res["groups"].get("tiny", {}).get("macro_f1", {}).get("none")
    if ref and small:
        cands = [(g, a, r) for g in small for a, r in res["groups"][g]["macro_f1"].items()
                 if a in ("kd", "kd-acc", "takd")]
        g, a, r = max(cands, key=lambda c: c[2]["test"]["mean"])
        pt = paired_replicates(r, ref)
        out.append({
            "goal": "the best distilled student at <= 1.5k parameters is within 1 point of the "
                    "4.5k student alone",
            "best": f"{g}/{a}", "vs_tiny_none": fmt_diff(pt),
            "met": bool(pt["n"] >= 2 and pt["diff_mean"] >= -0.01)})
    return out


#: the tiny student's distilled arms compared with the peers (both stated before the runs)
DISTILLED = ("kd", "takd")


def goals_hapt12(res: dict[str, Any], peers: dict[str, Any]) -> list[dict[str, Any]]:
    """Regime C's goals for each distilled arm of the tiny student (kd, and takd)."""
    out = []
    lat = peers.get("latency", {}).get("models", {})
    for arm, peer, margin, speed in ((a, *goal) for a in DISTILLED for goal in (
            ("tinyhar-acc", 0.0, 10), ("tinierhar-acc", 0.0, 10), ("deepconvlstm", 0.03, None))):
        p = peers["fold_diffs"].get(peer, {}).get(arm)
        if p is None:
            continue
        ratio = (lat[peer]["p50_us"] / lat["tiny"]["p50_us"]
                 if peer in lat and "tiny" in lat else None)
        met = p["n"] >= 2 and p["diff_mean"] >= margin
        if margin > 0:
            met = met and excludes_zero(p)
        if speed is not None:
            met = met and ratio is not None and ratio >= speed
        what = (f"is at or above {peer} on macro-F1 at >= {speed}x lower p50" if speed
                else f"beats {peer} by >= {100 * margin:.0f} points")
        out.append({"goal": f"the distilled acc-only tiny student ({arm}) {what}",
                    "student_minus_peer": fmt_diff(p), "folds": p["n"],
                    "p50_ratio": None if ratio is None else round(ratio, 1), "met": bool(met)})
    return out


def peer_comparison(res: dict[str, Any]) -> dict[str, Any]:
    """Each distilled arm of the tiny student against each peer, paired over the folds both
    have: `fold_diffs[peer][arm]`."""
    tiny = res["groups"].get("tiny", {}).get("macro_f1", {})
    out: dict[str, Any] = {"fold_diffs": {}}
    for g, entry in res["groups"].items():
        if g == "tiny" or "none" not in entry.get("macro_f1", {}):
            continue
        out["fold_diffs"][g] = {arm: paired_replicates(tiny[arm], entry["macro_f1"]["none"])
                                for arm in DISTILLED if arm in tiny}
    return out


# -- plots ----------------------------------------------------------------------------------

#: the peers' colours on the hapt-12 plot, none of them an arm's
PEER_COLOURS = ("tab:orange", "tab:cyan", "tab:brown", "tab:pink", "black", "gold")
COLOURS = {"none": "tab:gray", "ls": "tab:olive", "kd": "tab:blue", "kd+pool": "tab:red",
           "kd+pool-acc": "tab:purple", "kd-acc": "tab:purple", "takd": "tab:green",
           "takd+pool": "tab:green"}


def _arm_series(ax: Any, res: dict[str, Any], arms: list[str], xs: dict[str, float],
                metric: str = "macro_f1", log: bool = True) -> None:
    """Per arm: mean ± std over replicates at each group's x, and each replicate's point.

    The arms are set side by side around each group's x: by 3 % steps on a log axis, and on a
    linear one by a tenth of the smallest gap between groups, so that no arm drifts towards
    the next group (close latencies stay readable as clusters)."""
    groups = [g for g in xs if g in res["groups"]]
    values = sorted(xs[g] for g in groups)
    gaps = [b - a for a, b in zip(values, values[1:], strict=False) if b > a]
    step = 0.1 * min(gaps) if gaps else 0.01 * (values[0] if values else 1.0)
    for i, arm in enumerate(arms):
        have = [g for g in groups if arm in res["groups"][g].get(metric, {})]
        if not have:
            continue
        offset = i - (len(arms) - 1) / 2
        m = [res["groups"][g][metric][arm]["test"] for g in have]
        x = [xs[g] * (1 + 0.03 * offset) if log else xs[g] + step * offset for g in have]
        ax.errorbar(x, [d["mean"] for d in m], yerr=[d["std"] or 0 for d in m], marker="o",
                    capsize=3, color=COLOURS.get(arm), label=arm)
        for g, xg in zip(have, x, strict=True):
            pts = list(res["groups"][g][metric][arm]["per_replicate"].values())
            ax.scatter([xg] * len(pts), pts, s=6, color=COLOURS.get(arm), alpha=0.35)


def _log_ticks(ax: Any, xs: dict[str, float], labels: dict[str, str]) -> None:
    ax.set_xscale("log")
    ax.set_xticks(list(xs.values()), [labels[g] for g in xs])
    ax.minorticks_off()


def _plain_log_axis(ax: Any) -> None:
    """A log x axis ticked at 1, 2 and 5 times each power of ten, written as plain numbers."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_label_budget(regime: Regime, res: dict[str, Any], path: Path) -> None:
    xs = {b: (18 if b == "all" else int(b)) for b in regime.groups if b in res["groups"]}
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    _arm_series(ax, res, list(regime.arms), xs)
    for name, label, colour in (("teacher", "acc+gyro teacher", "black"),
                                ("teacher_acc", "acc-only teacher", "tab:brown")):
        by = res["nodes"].get(name, {})
        have = [b for b in xs if b in by]
        if have:
            ax.plot([xs[b] for b in have], [by[b]["macro_f1"]["mean"] for b in have], ls="--",
                    color=colour, label=label)
    _log_ticks(ax, xs, {b: "all (18)" if b == "all" else b for b in xs})
    ax.set_xlabel("labelled training subjects k (log scale)")
    ax.set_ylabel("test macro-F1 (9 test subjects)")
    ax.set_title(f"Scarce labels: acc-only tiny student, {res['profile']} selection")
    _finish(fig, ax, path)


def plot_student_size(regime: Regime, res: dict[str, Any], latency: dict[str, Any],
                      path: Path) -> None:
    """Macro-F1 against deployed parameters and against onnxruntime p50, per arm."""
    models = latency.get("models", {})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    have = [g for g in regime.groups if g in res["groups"] and g in models]
    xs = {g: float(models[g]["params"]) for g in have}
    _arm_series(axes[0], res, list(regime.arms), xs)
    _log_ticks(axes[0], xs, {g: f"{g}\n{v:,.0f}" for g, v in xs.items()})
    axes[0].set_xlabel("deployed parameters (log scale)")
    # the students' latencies differ by tenths of a microsecond: a linear axis, each cluster
    # named above its points instead of by crowded ticks
    xs = {g: float(models[g]["p50_us"]) for g in have}
    _arm_series(axes[1], res, list(regime.arms), xs, log=False)
    for g, v in xs.items():
        axes[1].annotate(g, (v, 1.0), xycoords=("data", "axes fraction"), xytext=(0, -4),
                         textcoords="offset points", rotation=90, ha="center", va="top",
                         fontsize=8)
    axes[1].set_xlabel("onnxruntime p50 at batch 1, µs (measured side by side)")
    axes[0].set_ylabel("test macro-F1 (hapt-quick, 9 test subjects)")
    fig.suptitle(f"Microcontroller-size acc-only students, every label, {res['profile']} "
                 "selection: mean ± std over seeds, points per seed")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_hapt12(regime: Regime, res: dict[str, Any], latency: dict[str, Any],
                path: Path) -> None:
    """Macro-F1 (12 classes) against onnxruntime p50: the tiny student's arms and the peers."""
    models = latency.get("models", {})
    fig, ax = plt.subplots(figsize=(8, 5))
    peers = [g for g in res["groups"] if g != "tiny"]
    for g, entry in res["groups"].items():
        if g not in models:
            continue
        for arm, r in entry["macro_f1"].items():
            label = f"tiny {arm}" if g == "tiny" else g
            colour = COLOURS.get(arm) if g == "tiny" else PEER_COLOURS[peers.index(g)]
            marker = "o" if g == "tiny" else "s"
            x = models[g]["p50_us"] * (1 + 0.04 * regime.arms.index(arm))
            ax.errorbar([x], [r["test"]["mean"]], yerr=[r["test"]["std"] or 0], marker=marker,
                        capsize=3, color=colour, label=f"{label} (n={r['test']['n']})")
            pts = list(r["per_replicate"].values())
            ax.scatter([x] * len(pts), pts, s=6, alpha=0.35, color=colour)
    _plain_log_axis(ax)
    ax.set_xlabel("onnxruntime p50 at batch 1, µs (log scale, measured side by side)")
    ax.set_ylabel("test macro-F1, 12 classes (per-fold points)")
    ax.set_title("hapt-12, 10 subject folds: the acc-only tiny student and the peers")
    _finish(fig, ax, path)


def _finish(fig: Any, ax: Any, path: Path) -> None:
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- output ---------------------------------------------------------------------------------


def section(regime: Regime, res: dict[str, Any]) -> str:
    parts = [f"## {regime.title} - {res['profile']} profile", "", preamble(regime, res), ""]
    for metric in regime.metrics:
        if any(metric in e for e in res["groups"].values()):
            parts += [f"### test {metric}", "", markdown(regime, res, metric)]
    if res["nodes"]:
        parts += ["### training nodes (teachers, assistants)", "", nodes_markdown(res)]
    if res.get("latency"):
        rows = [[g, d.get("params", ""), d.get("macs", ""), f"{d['p50_us']:.1f}",
                 f"{d['p99_us']:.1f}"] for g, d in res["latency"]["models"].items()]
        parts += ["### deployed cost (one onnxruntime run, batch 1, 1 thread, interleaved)", "",
                  markdown_table(["model", "params", "MACs", "p50 µs", "p99 µs"], rows)]
    if res.get("goals"):
        rows = [[g["goal"], "met" if g["met"] else "not met",
                 "; ".join(f"{k} {v}" for k, v in g.items() if k not in ("goal", "met"))]
                for g in res["goals"]]
        parts += ["### goals", "", markdown_table(["goal", "verdict", "figures"], rows)]
    return "\n".join(parts) + "\n"


def peers_markdown(res: dict[str, Any], peers: dict[str, Any]) -> str:
    lat = peers.get("latency", {}).get("models", {})
    rows = []
    for g, entry in res["groups"].items():
        for arm, r in entry["macro_f1"].items():
            tr = entry.get("transitions_f1", {}).get(arm, {}).get("test", {})
            d = lat.get(g, {})
            vs = peers["fold_diffs"].get(g, {}) if g != "tiny" else {}
            rows.append([g if g != "tiny" else f"tiny {arm}", d.get("params", ""),
                         d.get("macs", ""), f"{d['p50_us']:.1f}" if d else "",
                         fmt_ms(r["test"]), fmt_ms(tr),
                         *(fmt_diff(vs.get(a)) for a in DISTILLED)])
    anchors = [[k, f"{m:.2f} ± {s:.2f}"] for k, (m, s) in ANCHORS.items()]
    return ("# Peers on hapt-12\n\nWritten by `python benchmarks/bench_regimes.py hapt-12`. "
            f"{res['selection']}. Macro-F1 mean ± std over folds (n); the last columns are the "
            "distilled tiny student (kd, takd) minus the peer, paired over the folds both ran, "
            "in points with its 95 % bootstrap interval.\n\n"
            + markdown_table(["model", "params", "MACs", "p50 µs", "macro-F1 (12)",
                              "transitions F1", *(f"Δ tiny {a} - peer" for a in DISTILLED)],
                             rows)
            + "\n\nPublished anchors (WHAR Arena 2026: 3 s windows at 50 Hz, 10 subject folds, "
              "macro-F1 %; ours: 2.56 s windows, HAPT's 12 classes with null dropped, our "
              "training settings and 30 epochs):\n\n"
            + markdown_table(["model", "macro-F1 %"], anchors) + "\n")


def written() -> dict[str, Any]:
    """Every section of regimes.json written so far."""
    js = RESULTS / "regimes.json"
    return json.loads(js.read_text()) if js.is_file() else {}


def write(name: str, regime: Regime, res: dict[str, Any]) -> None:
    js = RESULTS / "regimes.json"
    data = written()
    data[f"{name}:{res['profile']}"] = res
    js.write_text(json.dumps(data, indent=1, default=float))
    sections = {k: section(REGIMES[k.split(":")[0]], v) for k, v in data.items()}
    (RESULTS / "regimes.md").write_text(
        "# Where distillation pays: measured regimes\n\nWritten by `python "
        "benchmarks/bench_regimes.py` (see its docstring).\n\n"
        + "\n".join(sections[k] for k in sorted(sections)))
    print(section(regime, res))
    print(f"wrote {js}, {RESULTS / 'regimes.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("regime", choices=sorted(REGIMES))
    parser.add_argument("--groups", default=None, help="comma-separated labels of the group "
                        "axis (budget, student or model) to run")
    parser.add_argument("--profile", default="default", choices=["default", "fixed"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid-dir", type=Path, default=None)
    parser.add_argument("--analyse-only", action="store_true")
    parser.add_argument("--keep-earlier", action="store_true",
                        help="also analyse the replicates of this section's earlier analysis "
                        "(regimes.json) that the store lacks, e.g. when only some groups or "
                        "arms were rerun into a new store; where both have a run, the "
                        "largest score difference is reported")
    args = parser.parse_args()
    regime = REGIMES[args.regime]
    if args.analyse_only:
        grid_dir = (args.grid_dir or Path(load_config(regime.spec)["output_dir"])).resolve()
    else:
        grid_dir = run(regime, args.groups.split(",") if args.groups else None, args.profile,
                       args.workers, args.grid_dir)
    earlier = written().get(f"{args.regime}:{args.profile}") if args.keep_earlier else None
    res = analyse(regime, grid_dir, args.profile, earlier)
    suffix = "" if args.profile == "default" else f"-{args.profile}"
    png = RESULTS / f"regimes_{args.regime.replace('-', '_')}{suffix}.png"
    if args.regime == "label-budget":
        res["goals"] = goals_label_budget(res)
        plot_label_budget(regime, res, png)
    else:
        res["latency"] = side_by_side_latency(grid_dir, regime)
        if args.regime == "student-size":
            res["goals"] = goals_student_size(res)
            plot_student_size(regime, res, res["latency"], png)
        else:
            peers = {**peer_comparison(res), "latency": res["latency"]}
            res["peers"] = peers
            res["goals"] = goals_hapt12(res, peers)
            plot_hapt12(regime, res, res["latency"], png)
            if args.profile == "default":  # the peers train under the default profile only
                (RESULTS / "peers_hapt12.json").write_text(
                    json.dumps({"anchors": ANCHORS, "selection": res["selection"], **peers,
                                "groups": res["groups"]}, indent=1, default=float))
                (RESULTS / "peers_hapt12.md").write_text(peers_markdown(res, peers))
    write(args.regime, regime, res)


if __name__ == "__main__":
    main()
