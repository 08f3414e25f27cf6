"""`harkd grid SPEC [--profile P] [--dry-run] [--executor local|ray] [--workers N] ...`.

Runs (or resumes) an ablation grid: done runs are skipped, interrupted ones rerun, failed ones
rerun with `--retry-failed`. `--dry-run` prints the expanded runs (axis values and config hash)
and their count without training anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harkd.config import ConfigError

if TYPE_CHECKING:
    from harkd.grid.spec import GridSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", type=Path, help="grid spec YAML (configs/grids/*.yaml)")
    parser.add_argument("--profile", default=None, help="a profile of the spec, e.g. quick")
    parser.add_argument("--dry-run", action="store_true", help="print the runs, train nothing")
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    parser.add_argument("--workers", type=int, default=1,
                        help="local: processes; ray without --address: local Ray CPUs / "
                             "--cpus-per-run (default 1)")
    parser.add_argument("--address", default=None, help="ray: address of a running cluster")
    parser.add_argument("--cpus-per-run", type=int, default=1,
                        help="ray: CPUs declared by each run's task (its torch threads)")
    parser.add_argument("--threads", type=int, default=None,
                        help="local: torch threads per worker (default cores // workers)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="grid folder (default: the spec's output_dir, -<profile> appended)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from harkd.grid.spec import load_spec

    try:
        spec = load_spec(args.spec)
        grid_dir = spec.grid_dir(args.profile, args.output_dir)
        if args.dry_run:
            print(dry_run(spec, args.profile, grid_dir))
            return 0
        from harkd.grid.runner import run_grid

        summary = run_grid(
            spec, args.profile, grid_dir=grid_dir, executor=args.executor,
            workers=args.workers, address=args.address, cpus_per_run=args.cpus_per_run,
            threads=args.threads,
            retry_failed=args.retry_failed, progress=not args.no_progress,
        )
    except (ConfigError, OSError, ValueError, RuntimeError) as err:
        print(f"harkd grid: {err}", file=sys.stderr)
        return 1
    print(f"grid {spec.name}: {summary.done}/{summary.total} done, {summary.failed} failed, "
          f"{summary.pending} not finished; {summary.ran} ran now, {summary.recovered} "
          f"interrupted runs reset, {summary.retried} failed runs retried")
    print(f"store: {grid_dir / 'runs.sqlite'}; report: harkd report {grid_dir}")
    if summary.failed and not args.retry_failed:
        print("rerun failed runs with --retry-failed")
    return 0 if summary.failed == 0 and summary.pending == 0 else 1


def dry_run(spec: GridSpec, profile: str | None, grid_dir: Path) -> str:
    """The expanded runs, one a line (index, hash, axis values, status in the store if any)."""
    from harkd.grid.runner import describe, store_path
    from harkd.grid.store import RunStore

    exp = spec.expand(profile)
    status: dict[str, str] = {}
    if store_path(grid_dir).is_file():
        with RunStore(store_path(grid_dir)) as store:
            status = {r.hash: r.status for r in store.rows()}
    width = len(str(len(exp.runs)))
    lines = [f"{r.index:>{width}}  {r.hash}  {status.get(r.hash, 'new'):8s} {describe(r.axes)}"
             for r in exp.runs]
    lines.append(
        f"{len(exp.runs)} runs (product {exp.product}, {exp.excluded} excluded, "
        f"{exp.included} included, {exp.merged} identical merged); profile "
        f"{profile or 'none'}; grid dir {grid_dir}")
    return "\n".join(lines)
