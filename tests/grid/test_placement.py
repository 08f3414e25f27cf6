"""Placing a grid's runs on GPUs, with GPU discovery faked: which device each local worker gets,
what a Ray task asks for, the errors where no GPU is seen, and the device each run's row
records (a real grid, its workers "placed" on the CPU, gives the unplaced grid's results)."""

from __future__ import annotations

import queue
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from grid_helpers import stored_metrics, tiny_spec_raw, write_spec

from harkd.cli import main
from harkd.config import ConfigError
from harkd.grid import executors, runner
from harkd.grid.placement import gpus_per_task, select_gpus, worker_devices
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import _SCHEMA, RunStore

#: the 4 runs without augmentation, a subset of the session grid (`local_grid`)
SUBSET = {"exclude": [{"augment": "jitter"}]}


def cfg(device: str | None = None) -> dict[str, Any]:
    """A run config mapping as the store holds it (no `device` key: the default, auto)."""
    return {"train": {} if device is None else {"device": device}}


def test_one_worker_per_gpu_by_default_and_more_when_asked() -> None:
    configs = [cfg(), cfg("cpu")]
    assert worker_devices(configs, [0, 1]) == ["cuda:0", "cuda:1"]
    assert worker_devices(configs, [0, 1], runs_per_gpu=2) == [
        "cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert worker_devices(configs, [3], runs_per_gpu=3) == ["cuda:3"] * 3
    assert worker_devices([cfg("cuda:1")], [0, 1]) == ["cuda:0", "cuda:1"]


def test_cpu_workers_when_no_run_wants_a_gpu() -> None:
    assert worker_devices([cfg("cpu"), cfg("cpu")], [0, 1]) is None
    assert worker_devices([cfg(), cfg("auto")], []) is None  # auto, and no GPU seen


def test_a_run_that_needs_a_gpu_where_none_is_seen_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^1 run\(s\) ask for train.device=cuda, but no GPU"):
        worker_devices([cfg(), cfg("cuda")], [])
    with pytest.raises(ConfigError, match="--runs-per-gpu must be >= 1"):
        worker_devices([cfg()], [0], runs_per_gpu=0)


def test_gpu_selection() -> None:
    assert select_gpus(None, [0, 1, 2]) == [0, 1, 2]
    assert select_gpus([2, 0, 2], [0, 1, 2]) == [2, 0]
    with pytest.raises(ConfigError, match=r"^--gpus: GPU\(s\) \[3\] not seen; torch sees \[0, 1\]"):
        select_gpus([1, 3], [0, 1])
    with pytest.raises(ConfigError, match="torch sees none"):
        select_gpus([0], [])


def test_ray_tasks_ask_for_a_gpu_share_only_when_their_run_wants_one() -> None:
    assert gpus_per_task(cfg(), 2) == 1.0
    assert gpus_per_task(cfg("cuda"), 1, runs_per_gpu=4) == 0.25
    assert gpus_per_task(cfg("cpu"), 2) == 0.0
    assert gpus_per_task(cfg(), 0) == 0.0  # auto on a cluster without GPUs: the CPU
    with pytest.raises(ConfigError, match="the Ray cluster has no GPU"):
        gpus_per_task(cfg("cuda:0"), 0)


def test_place_runs_uses_the_gpus_seen(teacher_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_from_dict(tiny_spec_raw(teacher_dir, tmp_path / "g", **SUBSET), source="p.yaml")
    expansion = spec.expand()
    pending = {r.hash for r in expansion.runs}
    monkeypatch.setattr(runner, "visible_gpus", lambda: [0, 1, 2])
    assert runner.place_runs(expansion, pending, "local", None, None, 1) == [
        "cuda:0", "cuda:1", "cuda:2"]
    assert runner.place_runs(expansion, pending, "local", None, [1], 2) == ["cuda:1", "cuda:1"]
    assert runner.place_runs(expansion, set(), "local", None, None, 1) is None  # nothing to run
    assert runner.place_runs(expansion, pending, "ray", "ray://head:10001", None, 1) is None
    monkeypatch.setattr(runner, "visible_gpus", lambda: [])
    assert runner.place_runs(expansion, pending, "local", None, None, 1) is None


def test_a_worker_takes_one_device_from_the_queue() -> None:
    devices: queue.Queue[str] = queue.Queue()
    for d in ("cpu", "cuda:1"):
        devices.put(d)
    try:
        executors.init_worker(1, None, None, devices)
        assert executors._placed == "cpu" and devices.get_nowait() == "cuda:1"
    finally:
        executors._placed = None


def test_the_grid_command_refuses_cuda_runs_without_a_gpu(
    teacher_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    raw = tiny_spec_raw(teacher_dir, tmp_path / "g", **SUBSET)
    raw["base"]["train"] = {**raw["base"]["train"], "device": "cuda"}
    monkeypatch.setattr(runner, "visible_gpus", lambda: [])
    assert main(["grid", str(write_spec(tmp_path / "g.yaml", raw)), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("harkd grid: 4 run(s) ask for train.device=cuda, but no GPU is seen; set "
                   "train.device=auto or cpu")
    assert main(["grid", str(tmp_path / "g.yaml"), "--gpus", "0,x"]) == 2  # argparse's one line
    assert "--gpus: expected GPU indices like 0,1, got '0,x'" in capsys.readouterr().err


@pytest.mark.slow
def test_placed_workers_give_the_local_results_and_rows_record_the_device(
    local_grid, hapt_quick_small, teacher_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    placed: list[list[str] | None] = []

    def place_on_cpu(*args: Any) -> list[str]:
        placed.append(["cpu", "cpu"])
        return placed[-1]

    monkeypatch.setattr(runner, "place_runs", place_on_cpu)
    spec = spec_from_dict(tiny_spec_raw(teacher_dir, tmp_path / "placed", **SUBSET), source="p")
    summary = runner.run_grid(spec, windowset=hapt_quick_small, progress=False)
    assert (summary.done, summary.failed, summary.devices) == (4, 0, ["cpu", "cpu"])
    local = stored_metrics(local_grid[1].grid_dir)
    for h, m in stored_metrics(summary.grid_dir).items():
        assert m == local[h]
    for grid_dir in (summary.grid_dir, local_grid[1].grid_dir):
        with RunStore(grid_dir / "runs.sqlite") as store:
            assert {r.device for r in store.rows()} == {"cpu"}


def test_a_store_without_the_device_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    old_schema = _SCHEMA.replace("    device TEXT,\n", "")
    assert old_schema != _SCHEMA
    db = sqlite3.connect(path)
    db.executescript(old_schema)
    db.execute("INSERT INTO runs (hash, idx, status, axes, config) VALUES "
               "('a', 0, 'running', '{}', '{}'), ('b', 1, 'done', '{}', '{}')")
    db.execute("UPDATE runs SET host = ?, pid = 7 WHERE hash = 'a'", (socket.gethostname(),))
    db.commit()
    db.close()
    with RunStore(path) as store:
        assert [r.device for r in store.rows()] == [None, None]  # not recorded then
        assert store.complete("a", socket.gethostname(), 7, {"test": {}}, {}, 3, 1.0, "cuda:1")
        assert store.get("a").device == "cuda:1" and store.get("b").status == "done"
    with RunStore(path) as again:  # migrating twice changes nothing
        assert again.get("a").device == "cuda:1"
