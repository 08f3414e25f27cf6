"""Ablation grids: spec expansion (`spec`), the SQLite run store (`store`), executors (local
process pool, Ray) and the resumable runner (`runner.run_grid`)."""

from harkd.grid.spec import GridRun, GridSpec, load_spec, spec_from_dict
from harkd.grid.store import RunRow, RunStore

__all__ = ["GridRun", "GridSpec", "RunRow", "RunStore", "load_spec", "spec_from_dict"]
