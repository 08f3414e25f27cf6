"""Where distillation pays: the regime studies, run by the experiment engine and analysed.

Regime A, scarce labels (`configs/grids/label_budget.yaml`): k labelled training subjects
(k = 2, 3, 5, 10, all) × 10 paired draws × five arms (none, ls, kd, kd+pool, kd+pool-acc);
each draw's teachers are training nodes trained on its labelled subjects only. This script
runs the grid (resumable: finished runs are reused) and then, per budget:

- each arm's test macro-F1, mean ± std over draws, and the teachers' (acc+gyro and acc-only);
- paired differences over draws (same subject draw, seed, data order and augmentation) with
  their 95 % bootstrap interval: every arm against `none`; each KD arm against `ls` (the
  teacher-free control); `kd+pool` against `kd+pool-acc` (what the gyroscope adds) and against
  `kd` (what the pool adds);
- a verdict per arm: a lift counts only where its interval against `none` excludes 0 and it
  also beats `ls` and (for the acc+gyro arms) the acc-only teacher's arm, each with an
  interval excluding 0.

The selection rule is stated with every figure: the default profile keeps the epoch of best
validation macro-F1 (3 validation subjects, early stopping with patience 10); `--profile
fixed` trains every student a fixed 60 epochs and keeps the last (validation not used for
selection; the teachers are shared with the default profile), the check that the conclusions
do not hang on a noisy selection.

Run:  python benchmarks/bench_regimes.py label-budget [--budgets 2,3,5] [--profile fixed]
      [--workers 2] [--grid-dir DIR] [--analyse-only]
Both profiles run in one grid folder (the cells differ, the teachers are shared).
Writes benchmarks/results/regimes.json and regimes.md (the section of this regime and
profile is replaced, the others kept) and benchmarks/results/regimes_label_budget[-fixed].png.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from data_prep.configio import load_config  # noqa: E402
from harkd.grid.runner import run_grid, store_path  # noqa: E402
from harkd.grid.spec import spec_from_dict  # noqa: E402
from harkd.grid.store import RunStore  # noqa: E402
from harkd.report.stats import format_mean_std, mean_std, paired_test  # noqa: E402
from harkd.report.tables import markdown_table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SPECS = {"label-budget": REPO / "configs" / "grids" / "label_budget.yaml"}
METRIC = "test.macro_f1"
BASELINE, CONTROL = "none", "ls"
#: (arm, control) pairs a lift must beat, besides `none`
CONTROLS = {"kd": ["ls"], "kd+pool": ["ls", "kd+pool-acc", "kd"], "kd+pool-acc": ["ls"]}
SELECTION = {
    None: "model selection: the epoch of best validation macro-F1 (3 validation subjects; "
          "early stopping, patience 10; teachers likewise)",
    "fixed": "student selection: none — the last of a fixed 60 epochs is kept (validation "
             "only reported); teachers as in the default profile (best validation epoch)",
}


def run(regime: str, budgets: list[str] | None, profile: str | None, workers: int,
        grid_dir: Path | None) -> Path:
    """Run (or resume) the regime's grid, restricted to `budgets`; returns its folder."""
    path = SPECS[regime]
    raw = load_config(path)
    if budgets:
        raw["axes"]["budget"] = [b for b in raw["axes"]["budget"] if b["label"] in budgets]
    if grid_dir is not None:
        raw["output_dir"] = str(grid_dir)
    spec = spec_from_dict(raw, source=str(path), spec_dir=path.parent)
    out = spec.grid_dir(None).resolve()  # every profile in one store: they share the teachers
    t0 = time.perf_counter()
    summary = run_grid(spec, profile, grid_dir=out, workers=workers, threads=1)
    print(f"{regime}: {summary.done}/{summary.total} done ({summary.ran} now, "
          f"{time.perf_counter() - t0:.0f} s), {summary.failed} failed, {summary.blocked} "
          "blocked")
    return out


def node_scores(grid_dir: Path) -> pd.DataFrame:
    """Test macro-F1 of every finished training node, with its budget and seed."""
    with RunStore(store_path(grid_dir)) as store:
        rows = store.rows("done")
    recs = []
    for r in rows:
        if r.kind != "node":
            continue
        split = r.config["data_overrides"]["split"]
        budget = split.get("label_budget")
        recs.append({"node": r.axes["node"], "budget": "all" if budget is None else str(budget),
                     "draw": str(r.config["train"]["seed"]), METRIC: r.metrics["test"]["macro_f1"]})
    return pd.DataFrame(recs)


def paired(df: pd.DataFrame, budget: str, arm: str, other: str) -> dict[str, Any]:
    """`arm - other` over the draws of `budget` where both finished."""
    part = df[df["budget"] == budget]
    a = part[part["method"] == arm].set_index("draw")[METRIC]
    b = part[part["method"] == other].set_index("draw")[METRIC]
    both = a.index.intersection(b.index)
    return {"vs": other, **paired_test((a[both] - b[both]).to_numpy()).to_dict()}


def excludes_zero(comp: dict[str, Any]) -> bool:
    return comp["n"] >= 2 and math.isfinite(comp["ci_low"]) and comp["ci_low"] > 0


def cell_scores(grid_dir: Path, profile: str | None) -> pd.DataFrame:
    """Test macro-F1 of the finished cells of `profile` (told apart by their selection rule)."""
    with RunStore(store_path(grid_dir)) as store:
        rows = store.rows("done")
    wanted = "last" if profile == "fixed" else "best_val"
    return pd.DataFrame([{**r.axes, METRIC: r.metrics["test"]["macro_f1"]} for r in rows
                         if r.kind == "cell"
                         and r.config["train"].get("selection", "best_val") == wanted])


def analyse(grid_dir: Path, profile: str | None) -> dict[str, Any]:
    df = cell_scores(grid_dir, profile)
    nodes = node_scores(grid_dir)
    budgets = [b for b in ["2", "3", "5", "10", "all"] if b in set(df["budget"])]
    arms = [a for a in ["none", "ls", "kd", "kd+pool", "kd+pool-acc"] if a in set(df["method"])]
    out: dict[str, Any] = {"grid_dir": str(grid_dir), "profile": profile or "default",
                           "selection": SELECTION[profile], "metric": METRIC, "budgets": {}}
    for b in budgets:
        part = df[df["budget"] == b]
        entry: dict[str, Any] = {"arms": {}, "teachers": {}}
        for name in ("teacher", "teacher_acc"):
            scores = nodes[(nodes["budget"] == b) & (nodes["node"] == name)][METRIC]
            entry["teachers"][name] = mean_std(scores).to_dict()
        for arm in arms:
            scores = part[part["method"] == arm][METRIC]
            res: dict[str, Any] = {"test_macro_f1": mean_std(scores).to_dict(),
                                   "per_draw": dict(zip(part[part["method"] == arm]["draw"],
                                                        scores, strict=True))}
            if arm != BASELINE:
                res["vs_none"] = paired(df, b, arm, BASELINE)
            if arm in CONTROLS:  # a distillation arm: it must beat its controls too
                res["vs_controls"] = [paired(df, b, arm, c) for c in CONTROLS[arm] if c in arms]
                res["lift_counts"] = excludes_zero(res["vs_none"]) and all(
                    excludes_zero(c) for c in res["vs_controls"] if c["vs"] != "kd")
            entry["arms"][arm] = res
        out["budgets"][b] = entry
    return out


def _ms(d: dict[str, Any], signed: bool = False) -> str:
    from harkd.report.stats import MeanStd

    if d["n"] == 0:
        return ""
    return format_mean_std(MeanStd(d["mean"], d["std"] if d["std"] is not None else math.nan,
                                   d["n"]), 4, signed)


def _diff(c: dict[str, Any]) -> str:
    if c["n"] < 2:
        return ""
    pts = [100 * c["diff_mean"], 100 * c["ci_low"], 100 * c["ci_high"]]
    return f"{pts[0]:+.2f} [{pts[1]:+.2f}, {pts[2]:+.2f}]"


def markdown(res: dict[str, Any]) -> str:
    lines = [f"## Regime A, scarce labels — {res['profile']} profile", "",
             f"Grid `{res['grid_dir']}`; {res['selection']}. Test macro-F1 mean ± std over "
             "draws (n = draws); Δ in macro-F1 points, paired over draws, with its 95 % "
             "bootstrap interval. A lift counts when its interval against `none` excludes 0 "
             "and it also beats `ls` and, for the acc+gyro arms, the acc-only teacher's arm.",
             ""]
    header = ["k labelled", "arm", "n", "test macro-F1", "Δ vs none", "Δ vs ls",
              "Δ vs kd+pool-acc", "Δ vs kd", "lift counts"]
    rows = []
    for b, entry in res["budgets"].items():
        t, ta = entry["teachers"]["teacher"], entry["teachers"]["teacher_acc"]
        rows.append([b, "teacher (acc+gyro cnn1d)", t["n"], _ms(t), "", "", "", "", ""])
        rows.append([b, "teacher (acc-only cnn1d)", ta["n"], _ms(ta), "", "", "", "", ""])
        for arm, r in entry["arms"].items():
            ctl = {c["vs"]: _diff(c) for c in r.get("vs_controls", [])}
            rows.append([b, arm, r["test_macro_f1"]["n"], _ms(r["test_macro_f1"]),
                         _diff(r["vs_none"]) if "vs_none" in r else "", ctl.get("ls", ""),
                         ctl.get("kd+pool-acc", ""), ctl.get("kd", ""),
                         ("yes" if r["lift_counts"] else "no") if "lift_counts" in r else ""])
    return "\n".join(lines) + "\n" + markdown_table(header, rows) + "\n"


def plot(res: dict[str, Any], path: Path) -> None:
    """Macro-F1 against the number of labelled subjects (log x), per arm: mean ± std over draws
    and each draw's point; the teachers dashed."""
    budgets = list(res["budgets"])
    xs = {b: (18 if b == "all" else int(b)) for b in budgets}
    fig, ax = plt.subplots(figsize=(7.2, 4.8))
    colours = {"none": "tab:gray", "ls": "tab:olive", "kd": "tab:blue", "kd+pool": "tab:red",
               "kd+pool-acc": "tab:purple"}
    arms = [a for a in colours if any(a in e["arms"] for e in res["budgets"].values())]
    for i, arm in enumerate(arms):
        shift = 1 + 0.025 * (i - len(arms) / 2)
        have = [b for b in budgets if arm in res["budgets"][b]["arms"]]
        m = [res["budgets"][b]["arms"][arm]["test_macro_f1"] for b in have]
        x = [xs[b] * shift for b in have]
        ax.errorbar(x, [d["mean"] for d in m], yerr=[d["std"] or 0 for d in m], marker="o",
                    capsize=3, color=colours[arm], label=arm)
        for b, xb in zip(have, x, strict=True):
            pts = list(res["budgets"][b]["arms"][arm]["per_draw"].values())
            ax.scatter([xb] * len(pts), pts, s=6, color=colours[arm], alpha=0.35)
    for name, style in (("teacher", "acc+gyro teacher"), ("teacher_acc", "acc-only teacher")):
        t = [res["budgets"][b]["teachers"][name] for b in budgets]
        if any(d["n"] for d in t):
            ax.plot([xs[b] for b in budgets], [d["mean"] for d in t], ls="--", color="black"
                    if name == "teacher" else "tab:brown", label=style)
    ax.set_xscale("log")
    ax.set_xticks([xs[b] for b in budgets], [f"{b}" if b != "all" else "all (18)"
                                              for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("labelled training subjects k (log scale)")
    ax.set_ylabel("test macro-F1 (9 test subjects)")
    ax.set_title(f"Scarce labels: acc-only tiny student, {res['profile']} selection")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(regime: str, res: dict[str, Any]) -> None:
    key = f"{regime}:{res['profile']}"
    js = RESULTS / "regimes.json"
    data = json.loads(js.read_text()) if js.is_file() else {}
    data[key] = res
    js.write_text(json.dumps(data, indent=1, default=float))
    md = RESULTS / "regimes.md"
    sections = {k: markdown(v) for k, v in data.items()}
    md.write_text("# Where distillation pays: measured regimes\n\n"
                  "Written by `python benchmarks/bench_regimes.py` (see its docstring).\n\n"
                  + "\n".join(sections[k] for k in sorted(sections)))
    suffix = "" if res["profile"] == "default" else f"-{res['profile']}"
    plot(res, RESULTS / f"regimes_{regime.replace('-', '_')}{suffix}.png")
    print(markdown(res))
    print(f"wrote {js}, {md}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("regime", choices=sorted(SPECS))
    parser.add_argument("--budgets", default=None, help="comma-separated budget labels")
    parser.add_argument("--profile", default=None, choices=[None, "fixed"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid-dir", type=Path, default=None)
    parser.add_argument("--analyse-only", action="store_true")
    args = parser.parse_args()
    budgets = args.budgets.split(",") if args.budgets else None
    if args.analyse_only:
        grid_dir = (args.grid_dir or Path(load_config(SPECS[args.regime])["output_dir"])).resolve()
    else:
        grid_dir = run(args.regime, budgets, args.profile, args.workers, args.grid_dir)
    write(args.regime, analyse(grid_dir, args.profile))


if __name__ == "__main__":
    main()
