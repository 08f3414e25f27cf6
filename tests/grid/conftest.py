"""A tiny real grid on 8 HAPT subjects, run once per session with the local executor.

Base: the acc-only tiny student, 2 epochs; axes augment {none, jitter} × method {none, kd}
× seed {0, 1} (8 runs); kd learns from a small acc+gyro cnn1d teacher trained here. Every
grid in these tests shares this base, so runs with the same hash must give the same metrics
whichever executor ran them and however often they were interrupted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from grid_helpers import HAPT_QUICK, SMALL_DATA, TRAIN, tiny_spec_raw

from data_prep.windowset import WindowSet
from harkd.grid.runner import GridSummary, run_grid
from harkd.grid.spec import GridSpec, spec_from_dict


@pytest.fixture(scope="session")
def teacher_dir(hapt_quick_small: WindowSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch acc+gyro cnn1d teacher run on the small HAPT subset."""
    from harkd.config import validate_run_config
    from harkd.train.loop import fit

    run_dir = tmp_path_factory.mktemp("teacher")
    cfg = validate_run_config({
        "data": str(HAPT_QUICK), "data_overrides": SMALL_DATA,
        "model": {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16]}},
        "train": {**TRAIN, "epochs": 1},
    })
    fit(cfg, ws=hapt_quick_small, run_dir=run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def cache_dir(hapt_quick_small: WindowSet) -> Path:
    """The on-disk cache holding hapt_quick_small (for grids run in a subprocess)."""
    return Path(hapt_quick_small.meta["cache_path"]).parent


@pytest.fixture(scope="session")
def local_grid(hapt_quick_small: WindowSet, teacher_dir: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[GridSpec, GridSummary]:
    """The tiny grid, uninterrupted, with 2 local workers of 1 thread each."""
    grid_dir = tmp_path_factory.mktemp("grid") / "tiny"
    spec = spec_from_dict(tiny_spec_raw(teacher_dir, grid_dir), source="tiny.yaml")
    summary = run_grid(spec, executor="local", workers=2, threads=1,
                       windowset=hapt_quick_small, progress=False)
    return spec, summary
