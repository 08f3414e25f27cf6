"""`harkd grid SPEC [--profile P] [--dry-run] [--executor local|ray] [--workers N] ...`.

Runs (or resumes) a grid, training nodes (teachers, assistants) before the cells that need
them: done runs are skipped, interrupted ones rerun, failed ones (and the runs they blocked)
rerun with `--retry-failed`. `--dry-run` prints the graph (nodes, the cells and what each
needs, hashes, what is done or new) without training anything. Runs whose `train.device` wants
a GPU are placed on the visible GPUs (`--gpus`, `--runs-per-gpu`; `harkd.grid.placement`).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from harkd.commands.options import positive_int
from harkd.config import ConfigError
from harkd.shipped import config_file

if TYPE_CHECKING:
    from harkd.grid.spec import GridSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="grid spec YAML (configs/grids/*.yaml)")
    parser.add_argument("--profile", default=None, help="a profile of the spec, e.g. quick")
    add_select_argument(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the runs, train nothing")
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="local: processes (for runs on GPUs: --runs-per-gpu per GPU "
                             "instead); ray: runs at a time on the cluster, and a new local "
                             "Ray's CPUs / --cpus-per-run (default 1)")
    parser.add_argument("--address", default=None,
                        help="ray: address of a running cluster (default: the one ray.init "
                             "finds, else a new local Ray)")
    parser.add_argument("--cpus-per-run", type=positive_int, default=1,
                        help="ray: CPUs declared by each run's task (its torch threads)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="local: torch threads per worker (default cores // workers; on a "
                             "machine other work shares, use 1: a tiny run beside a 2-worker grid "
                             "took 47 s per epoch with 2 threads, 1.4 s with 1)")
    parser.add_argument("--gpus", type=gpu_list, default=None, metavar="I,J,...",
                        help="GPUs to place runs that want one on (default: every visible GPU)")
    parser.add_argument("--runs-per-gpu", type=positive_int, default=1,
                        help="runs sharing one GPU: local workers per GPU (these replace "
                             "--workers when runs use GPUs), ray 1/N GPU per task (default 1)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="grid folder (default: the spec's output_dir, -<profile> appended)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from harkd.grid.spec import load_spec

    spec = load_spec(config_file(args.spec)).select(parse_select(args.select))
    grid_dir = spec.grid_dir(args.profile, args.output_dir)
    if args.dry_run:
        print(dry_run(spec, args.profile, grid_dir))
        return 0
    from harkd.grid.runner import run_grid

    summary = run_grid(
        spec, args.profile, grid_dir=grid_dir, executor=args.executor,
        workers=args.workers, address=args.address, cpus_per_run=args.cpus_per_run,
        threads=args.threads, gpus=args.gpus, runs_per_gpu=args.runs_per_gpu,
        retry_failed=args.retry_failed, progress=not args.no_progress,
    )
    print(f"grid {spec.name}: {summary.done}/{summary.total} done, {summary.failed} failed, "
          f"{summary.blocked} blocked by a failed node, {summary.pending} not finished; "
          f"{summary.ran} ran now, {summary.recovered} interrupted runs reset, "
          f"{summary.retried} failed or blocked runs retried")
    print(f"store: {grid_dir / 'runs.sqlite'}; report: harkd report {grid_dir}")
    if (summary.failed or summary.blocked) and not args.retry_failed:
        print("rerun failed and blocked runs with --retry-failed")
    return 0 if summary.failed == summary.blocked == summary.pending == 0 else 1


def gpu_list(text: str) -> list[int]:
    """`0,2` as [0, 2] (argparse answers anything else with one line naming --gpus)."""
    try:
        gpus = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GPU indices like 0,1, got {text!r}") from None
    if any(g < 0 for g in gpus):
        raise argparse.ArgumentTypeError(f"GPU indices are >= 0, got {text!r}")
    return gpus


def dry_run(spec: GridSpec, profile: str | None, grid_dir: Path) -> str:
    """The graph of runs, one a line: training nodes first (what needs them), then the cells
    (axis values and the nodes they need), each with its hash and its status in the store
    (`new` when the store has no such run: it would train; `done` runs are reused; a run
    stored under an earlier key shows that row's status, and the grid re-keys it)."""
    from harkd.grid.rekey import earlier_keys
    from harkd.grid.runner import describe, store_path
    from harkd.grid.store import RunStore

    exp = spec.expand(profile)
    status: dict[str, str] = {}
    if store_path(grid_dir).is_file():
        with RunStore(store_path(grid_dir)) as store:
            status = store.status_of()
            earlier = earlier_keys(exp.runs, [asdict(r) for r in store.rows()],
                                   store.get_meta("rekeyed", {}))
        status.update({new: status[old] for new, old in earlier.items()})
    name = {r.hash: r.axes["node"] for r in exp.nodes}
    users: dict[str, int] = {}
    for r in exp.runs:
        for d in r.deps:
            users[d] = users.get(d, 0) + 1
    width = len(str(len(exp.runs)))
    lines = []
    for r in exp.runs:
        what = f"node {name[r.hash]}" if r.kind == "node" else describe(r.axes)
        needs = f"  needs {', '.join(name[d] for d in r.deps)}" if r.deps else ""
        used = f"  needed by {users.get(r.hash, 0)}" if r.kind == "node" else ""
        lines.append(f"{r.index:>{width}}  {r.hash}  {status.get(r.hash, 'new'):8s} "
                     f"{what}{needs}{used}")
    known = [r for r in exp.runs if r.hash in status]
    lines.append(
        f"{len(exp.runs)} runs: {len(exp.nodes)} training nodes, {len(exp.cells)} cells "
        f"(product {exp.product}, {exp.excluded} excluded, {exp.included} included, "
        f"{exp.merged} identical merged); {sum(status[r.hash] == 'done' for r in known)} done "
        f"(reused), {len(exp.runs) - len(known)} new; profile {profile or 'none'}; "
        f"grid dir {grid_dir}")
    return "\n".join(lines)


def add_select_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--select", action="append", default=[], metavar="AXIS=LABEL,...",
                        help="keep only these values of an axis (repeatable), e.g. draw=0,1")


def parse_select(items: list[str]) -> dict[str, list[str]]:
    """`["draw=0,1", "method=none"]` -> {"draw": ["0", "1"], "method": ["none"]}."""
    out = {}
    for item in items:
        axis, sep, labels = item.partition("=")
        if not sep or not axis:
            raise ConfigError(f"--select {item!r}: expected AXIS=LABEL[,LABEL...]")
        out[axis] = [lb for lb in labels.split(",") if lb]
    return out

