"""Flatness of trained runs against their teachers: the claim that self-distilled students reach
flatter minima (selfkd, born-again chains), measured as the loss under small random weight
perturbations (`harkd.distill.flatness`: each parameter tensor gets Gaussian noise of about
sigma times its own norm; mean over --draws seeded draws).

For each RUN_DIR (a finished run: `harkd train` / `harkd distill` output, or a grid's
runs/<hash>), and for every teacher its config.yaml names, the model's mean cross-entropy on the
run's --split windows (its own view, standardised with its card's statistics; a seeded draw of
--max-windows of them, the same for every model of one data protocol) at its weights and under
perturbations of each --sigmas value. Printed as a markdown table, one row per model
(a teacher shared by several runs once), and for each run the increase minus its teacher's
(negative: the run sits in the flatter minimum). Nothing is trained.

With --grid DIR (a grid folder, e.g. of configs/grids/born_again.yaml), the RUN_DIRs are every
finished run of its store, and each method of the grid's `method` axis is compared with the
cell of `--baseline` (default none) that shares its other axes (the same seed): the paired
difference of the loss increase, mean and 95 % bootstrap interval over the pairs, per sigma
(negative: the method's minima are the flatter). The grid's own figures go to
benchmarks/results/flatness.json and flatness.md with --out.

Run from the repository root:
    python benchmarks/bench_flatness.py runs/grids/born_again/runs/* --sigmas 0.02 0.05 0.1
    python benchmarks/bench_flatness.py --grid runs/grids/born_again --out \
        benchmarks/results/flatness.json
Options: --draws 20, --split train, --max-windows 1024 (0: all), --cache-dir DIR (WindowSet
cache), --out FILE.json (and FILE.md), --threads 1. One perturbed evaluation of the default tiny
student on 7,000 windows costs about 2 s of CPU, hence the subset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from harkd.config import ConfigError, RunConfig, load_yaml, validate_run_config  # noqa: E402
from harkd.data import Normalizer, load_windowset  # noqa: E402
from harkd.distill.flatness import flatness  # noqa: E402
from harkd.grid.runner import run_dir_of, store_path  # noqa: E402
from harkd.grid.store import RunStore  # noqa: E402
from harkd.report.stats import paired_test  # noqa: E402
from harkd.report.tables import fmt, markdown_table  # noqa: E402
from harkd.train.checkpoint import load_run_model  # noqa: E402
from harkd.train.runcard import CardError  # noqa: E402
from harkd.train.rundir import atomic_write_bytes, atomic_write_json  # noqa: E402


def run_config(run_dir: Path) -> RunConfig:
    """The resolved config a finished run wrote (config.yaml)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: not found; {run_dir} is not a run directory")
    return validate_run_config(load_yaml(path), source=str(path))


class Measurer:
    """Flatness of run directories, each WindowSet prepared once."""

    def __init__(self, sigmas: list[float], draws: int, split: str, max_windows: int,
                 cache_dir: Path | None) -> None:
        self.sigmas, self.draws, self.split, self.cache_dir = sigmas, draws, split, cache_dir
        self.max_windows = max_windows
        self.windowsets: dict[str, Any] = {}

    def measure(self, run_dir: Path, cfg: RunConfig) -> dict[str, Any]:
        model, card = load_run_model(run_dir)
        key = cfg.model_dump_json(include={"data", "data_overrides"})
        if key not in self.windowsets:
            self.windowsets[key] = load_windowset(cfg, self.cache_dir)
        ws = self.windowsets[key]
        idx = np.flatnonzero(ws.mask(self.split))
        if 0 < self.max_windows < len(idx):
            idx = np.sort(np.random.default_rng(0).choice(idx, self.max_windows, replace=False))
        x = Normalizer(card.norm.mean, card.norm.std)(ws.X[idx][:, card.channel_indices])
        y = torch.from_numpy(ws.y[idx]).long()
        found = [flatness(model, x, y, s, self.draws, seed=0) for s in self.sigmas]
        return {"run_dir": str(run_dir), "name": cfg.name, "method": card.method,
                "model": card.model, "n_params": card.n_params, "loss": found[0].base,
                "increase": {str(f.sigma): f.increase for f in found},
                "spread": {str(f.sigma): f.spread for f in found}}


def grid_runs(grid_dir: Path) -> list[tuple[Path, dict[str, str]]]:
    """(run dir, axes) of every finished run of a grid's store, training nodes included."""
    if not store_path(grid_dir).is_file():
        raise ConfigError(f"{grid_dir}: no run store ({store_path(grid_dir).name}); not a grid "
                          "folder")
    with RunStore(store_path(grid_dir)) as store:
        return [(run_dir_of(grid_dir, r.hash), r.axes) for r in store.rows("done")]


def paired_against(models: dict[str, dict[str, Any]], axes: dict[str, dict[str, str]],
                   baseline: str, keys: list[str]) -> list[dict[str, Any]]:
    """Each method's loss increase minus the `baseline` cell's with the same other axes, paired
    (mean and 95 % bootstrap interval over the pairs), per sigma."""
    def rest(a: dict[str, str]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in a.items() if k != "method"))
    base = {rest(a): models[d] for d, a in axes.items() if a.get("method") == baseline}
    methods = sorted({a["method"] for a in axes.values()
                      if a.get("method") not in (None, baseline)})
    out = []
    for method in methods:
        pairs = [(models[d], base[rest(a)]) for d, a in axes.items()
                 if a.get("method") == method and rest(a) in base]
        if len(pairs) < 2:
            continue
        row: dict[str, Any] = {"method": method, "baseline": baseline, "n": len(pairs)}
        for k in keys:
            t = paired_test([m["increase"][k] - b["increase"][k] for m, b in pairs])
            row[k] = {"diff_mean": t.diff_mean, "ci_low": t.ci_low, "ci_high": t.ci_high,
                      "p": t.p, "test": t.test}
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*", type=Path)
    parser.add_argument("--grid", type=Path, default=None,
                        help="a grid folder: measure its finished runs, methods paired by seed")
    parser.add_argument("--baseline", default="none", help="the method label others pair with")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.02, 0.05, 0.1])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--split", choices=["train", "val", "test"], default="train")
    parser.add_argument("--max-windows", type=int, default=1024)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: a 2-core machine running a grid beside it was "
                             "7x slower with 2)")
    args = parser.parse_args(argv)
    if not args.run_dirs and args.grid is None:
        parser.error("give RUN_DIRs or --grid DIR")
    torch.set_num_threads(args.threads)
    m = Measurer(args.sigmas, args.draws, args.split, args.max_windows, args.cache_dir)
    models: dict[str, dict[str, Any]] = {}
    pairs: list[tuple[str, str]] = []
    axes: dict[str, dict[str, str]] = {}
    try:
        if args.grid is not None:
            found = grid_runs(args.grid)
            axes = {str(d): a for d, a in found}
            args.run_dirs = [*args.run_dirs, *(d for d, _ in found)]
        for run_dir in tqdm(args.run_dirs, desc="flatness", unit="run"):
            cfg = run_config(run_dir)
            teachers = [Path(t.run_dir) for t in cfg.teachers.values() if t.run_dir]
            for d, d_cfg in [(run_dir, cfg), *((t, None) for t in teachers)]:
                if str(d) not in models:
                    models[str(d)] = m.measure(d, d_cfg or run_config(d))
            pairs += [(str(run_dir), str(t)) for t in teachers]
    except (ConfigError, CardError, OSError, ValueError) as err:
        print(f"bench_flatness: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    keys = [str(s) for s in args.sigmas]
    text = [f"Loss increase under weight perturbations ({args.draws} draws, {args.split} split, "
            f"at most {args.max_windows or 'all'} windows)\n",
            markdown_table(
                ["run", "method", "model", "params", "loss", *(f"+loss sigma {k}" for k in keys)],
                [[r["name"], r["method"], r["model"], r["n_params"], fmt(r["loss"], 4),
                  *(fmt(r["increase"][k], 4) for k in keys)] for r in models.values()])]
    if pairs:
        text += ["\nRun minus its teacher (negative: the run's minimum is the flatter)\n",
                 markdown_table(
                     ["run", "teacher", *(f"sigma {k}" for k in keys)],
                     [[models[s]["name"], models[t]["name"],
                       *(fmt(models[s]["increase"][k] - models[t]["increase"][k], 4)
                         for k in keys)] for s, t in pairs])]
    paired = paired_against(models, axes, args.baseline, keys) if axes else []
    if paired:
        text += [f"\nEach method minus `{args.baseline}` with the same seed (paired; 95 % "
                 "bootstrap interval; negative: the method's minima are the flatter)\n",
                 markdown_table(["method", "n", *(f"sigma {k}" for k in keys)],
                                [[r["method"], r["n"],
                                  *(f"{r[k]['diff_mean']:+.4f} [{r[k]['ci_low']:+.4f}, "
                                    f"{r[k]['ci_high']:+.4f}]" for k in keys)]
                                 for r in paired])]
    print("\n".join(text))
    if args.out is not None:
        atomic_write_json(args.out, {"command": "python benchmarks/bench_flatness.py "
                                     + " ".join(sys.argv[1:] if argv is None else argv),
                                     "sigmas": args.sigmas, "draws": args.draws,
                                     "split": args.split, "max_windows": args.max_windows,
                                     "models": list(models.values()), "pairs": pairs,
                                     "axes": axes, "paired": paired})
        atomic_write_bytes(args.out.with_suffix(".md"), ("\n".join(text) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
