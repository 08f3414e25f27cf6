"""Distillation under label noise: RoS-KD and its controls at 0, 10 and 30 % noisy training labels,
read from the run stores of `configs/grids/roskd.yaml` (noisy levels) and of the distillation
benchmark (`bench_distill.py`, the clean level: the same protocol, the same seeds).

Arms (method labels of both grids): `none`, `ls` (label smoothing), `kd` (one acc+gyro cnn1d on
every training subject), `roskd` (three subset teachers, one drawn per step), and where run
`kd-acc` (KD from an acc-only cnn1d: what the gyroscope adds). Every teacher trained on the
noisy labels of its level; validation and test labels are as recorded. For each level and
selection rule (the epoch of best validation macro-F1; the weights after the last epoch, a
fixed budget: `test_last`, or the run's last.safetensors for runs from before it was stored):
test macro-F1 mean ± std over seeds, and paired differences (95 % bootstrap interval) of
roskd, kd and kd-acc against none and ls, of roskd against kd, and of kd against kd-acc; and the
teachers' own test macro-F1 at each level (one seed each: the grid's training nodes).

Run:
    harkd grid configs/grids/roskd.yaml --profile noisy --workers 2
    python benchmarks/bench_label_noise.py --grid runs/grids/roskd-noisy \\
        --clean-grid runs/bench/distill
Writes <out>/label_noise.json, .md and .png (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from engine_bench import (  # noqa: E402
    RESULTS,
    command_line,
    fixed_budget_f1,
    format_paired,
    write_json,
    write_text,
)

from harkd.config import ConfigError  # noqa: E402
from harkd.grid.runner import run_dir_of, store_path  # noqa: E402
from harkd.grid.store import RunStore  # noqa: E402
from harkd.report.stats import paired_test  # noqa: E402
from harkd.train.plots import save_figure  # noqa: E402

ARMS = ("none", "ls", "kd", "kd-acc", "roskd")
#: (arm, reference) pairs tabulated at each level, when both arms ran
PAIRS = (("roskd", "none"), ("roskd", "ls"), ("roskd", "kd"), ("kd", "none"), ("kd", "ls"),
         ("kd", "kd-acc"), ("kd-acc", "none"), ("kd-acc", "ls"), ("ls", "none"))
#: the training nodes tabulated: acc+gyro and acc-only teachers, RoS-KD's subset teachers
TEACHERS = ("teacher", "teacher_acc", "subset0", "subset1", "subset2")
RULES = {"best": "best validation epoch", "last": "last epoch (fixed budget)"}
#: noise level label -> percent of training labels changed
LEVELS = {"clean": 0, "symmetric-10": 10, "symmetric-30": 30}

Scores = dict[str, dict[str, dict[str, dict[int, float]]]]  # rule -> level -> arm -> seed -> F1
Teachers = dict[str, dict[str, float]]  # level -> node name -> test macro-F1


def noise_level(config: dict[str, Any]) -> str:
    """The level label of a run config's training-label noise (`clean` without any)."""
    noise = (config.get("data_overrides") or {}).get("split", {}).get("label_noise")
    return "clean" if not noise else f"{noise['kind']}-{round(100 * noise['rate'])}"


def read_scores(grid: Path, level: str | None, scores: Scores, teachers: Teachers) -> int:
    """Add the finished cells of `grid` (its `noise` axis names the level, else `level`) to
    `scores`, and its teacher nodes to `teachers`; returns how many cells were read."""
    if not store_path(grid).is_file():
        raise ConfigError(f"{grid}: no run store ({store_path(grid).name}); not a grid folder")
    with RunStore(store_path(grid)) as store:
        done = store.rows("done")
    for r in done:
        name = r.axes.get("node")
        if r.kind == "node" and name in TEACHERS and noise_level(r.config) in LEVELS:
            teachers.setdefault(noise_level(r.config), {})[name] = r.metrics["test"]["macro_f1"]
    rows = [r for r in done if r.kind == "cell"]
    n = 0
    for r in rows:
        arm, noise = r.axes.get("method"), r.axes.get("noise", level)
        if arm not in ARMS or noise not in LEVELS or "seed" not in r.axes:
            continue
        seed = int(r.axes["seed"])
        last = fixed_budget_f1(r, run_dir_of(grid, r.hash))
        for rule, value in (("best", r.metrics["test"]["macro_f1"]), ("last", last)):
            if value is not None:
                scores.setdefault(rule, {}).setdefault(noise, {}).setdefault(arm, {})[seed] = value
        n += 1
    return n


def tabulate(scores: Scores) -> dict[str, Any]:
    """Per rule and level: each arm's mean, std and seeds, and the paired differences."""
    out: dict[str, Any] = {}
    for rule, levels in scores.items():
        for level in sorted(levels, key=LEVELS.get):
            arms = levels[level]
            entry: dict[str, Any] = {"arms": {}, "paired": {}}
            for arm in (a for a in ARMS if a in arms):
                v = list(arms[arm].values())
                entry["arms"][arm] = {"mean": float(np.mean(v)), "n": len(v),
                                      "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                                      "seeds": {str(s): f for s, f in sorted(arms[arm].items())}}
            for a, b in PAIRS:
                seeds = sorted(set(arms.get(a, {})) & set(arms.get(b, {})))
                if len(seeds) >= 2:
                    entry["paired"][f"{a} - {b}"] = paired_test(
                        [arms[a][s] - arms[b][s] for s in seeds]).to_dict()
            out.setdefault(rule, {})[level] = entry
    return out


def markdown(result: dict[str, Any], command: str) -> str:
    lines = ["# Distillation under label noise (hapt-quick, acc+gyro cnn1d teachers, acc-only tiny "
             "student)", "", f"Command: `{command}`", "",
             "Test macro-F1, mean ± std over paired seeds; Δ in points with its 95 % bootstrap "
             "interval. Noisy levels: symmetric noise on the training labels of students and "
             "teachers alike.", ""]
    for rule, levels in result["tables"].items():
        arms = [a for a in ARMS if any(a in e["arms"] for e in levels.values())]
        lines += [f"## Selection: {RULES[rule]}", "",
                  "| noise | " + " | ".join(arms) + " |", "|---" * (len(arms) + 1) + "|"]
        for level, e in levels.items():
            cells = [f"{e['arms'][a]['mean']:.4f} ± {e['arms'][a]['std'] or 0:.4f} "
                     f"(n = {e['arms'][a]['n']})" if a in e["arms"] else "" for a in arms]
            lines.append(f"| {LEVELS[level]} % | " + " | ".join(cells) + " |")
        pairs = [p for p in (f"{a} - {b}" for a, b in PAIRS)
                 if any(p in e["paired"] for e in levels.values())]
        lines += ["", "| noise | " + " | ".join(pairs) + " |", "|---" * (len(pairs) + 1) + "|"]
        for level, e in levels.items():
            cells = [format_paired(e["paired"][p], spread=False) if p in e["paired"] else ""
                     for p in pairs]
            lines.append(f"| {LEVELS[level]} % | " + " | ".join(cells) + " |")
        lines.append("")
    names = [t for t in TEACHERS if any(t in v for v in result["teachers"].values())]
    if names:
        lines += ["## Teachers (test macro-F1; one seed each, best validation epoch)", "",
                  "| noise | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for level in sorted(result["teachers"], key=LEVELS.get):
            got = result["teachers"][level]
            lines.append(f"| {LEVELS[level]} % | "
                         + " | ".join(f"{got[t]:.4f}" if t in got else "" for t in names) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Macro-F1 against the noise level, one panel per rule: each arm's mean ± std and seeds."""
    rules = list(result["tables"])
    fig, axes = plt.subplots(1, len(rules), figsize=(5.5 * len(rules), 4.2), sharey=True,
                             squeeze=False)
    for ax, rule in zip(axes[0], rules, strict=True):
        levels = result["tables"][rule]
        for i, arm in enumerate(a for a in ARMS if any(a in e["arms"] for e in levels.values())):
            xs = [LEVELS[lv] + (i - 2) * 0.5 for lv, e in levels.items() if arm in e["arms"]]
            got = [e["arms"][arm] for e in levels.values() if arm in e["arms"]]
            line = ax.errorbar(xs, [g["mean"] for g in got], yerr=[g["std"] or 0 for g in got],
                               marker="o", capsize=3, label=arm)
            for x, g in zip(xs, got, strict=True):
                ax.scatter([x] * len(g["seeds"]), list(g["seeds"].values()), s=8, alpha=0.35,
                           color=line[0].get_color())
        ax.set_xticks(sorted({LEVELS[lv] for lv in levels}))
        ax.set_xlabel("noisy training labels (%)")
        ax.set_title(f"selection: {RULES[rule]}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test macro-F1")
    axes[0][0].legend()
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, required=True,
                        help="the noisy levels' grid folder (configs/grids/roskd.yaml)")
    parser.add_argument("--clean-grid", type=Path, default=None,
                        help="the distillation benchmark's grid folder: the clean level")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    scores: Scores = {}
    teachers: Teachers = {}
    try:
        read = read_scores(args.grid, None, scores, teachers)
        if args.clean_grid is not None:
            read += read_scores(args.clean_grid, "clean", scores, teachers)
        if not read:
            raise ConfigError(f"{args.grid}: no finished cell of the arms {list(ARMS)}")
        result = {"command": command_line("bench_label_noise.py", argv),
                  "tables": tabulate(scores), "teachers": teachers}
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "label_noise.json", result)
        write_text(args.out / "label_noise.md", markdown(result, result["command"]))
        plot(result, args.out / "label_noise.png")
    except (ConfigError, OSError) as err:
        print(f"bench_label_noise: {err}", file=sys.stderr)
        return 2
    print(markdown(result, result["command"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
