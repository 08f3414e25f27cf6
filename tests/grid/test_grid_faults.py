"""Faults in the middle of a grid: a full disk, a read-only folder, a store that cannot write.

Each stops the grid with one line (`GridFaultError`) and leaves the queue pending, no run
failed and none left running; the next invocation finishes every run exactly once. A run's
own error still marks that run failed, with its error stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from grid_helpers import students_spec_raw, write_spec

from harkd.grid.faults import GridFaultError, environmental_fault
from harkd.grid.runner import run_grid
from harkd.grid.spec import GridSpec, spec_from_dict
from harkd.grid.store import RunStore

N_RUNS = 2


def students(grid_dir: Path) -> GridSpec:
    return spec_from_dict(students_spec_raw(grid_dir, N_RUNS), source="students.yaml")


def second_run_dir(spec: GridSpec, grid_dir: Path) -> Path:
    """The run folder of the second run (a single worker claims in expansion order)."""
    folder = grid_dir / "runs" / spec.expand().runs[1].hash
    folder.mkdir(parents=True)
    return folder


def rows_by_status(grid_dir: Path) -> dict[str, list]:
    with RunStore(grid_dir / "runs.sqlite") as store:
        rows = store.rows()
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r.status, []).append(r)
    return out


def resume_finishes_every_run_once(spec: GridSpec, grid_dir: Path, windowset) -> None:
    """Rerun after the fault is gone: the runs not done train, each done exactly once."""
    before = {r.hash: r for rs in rows_by_status(grid_dir).values() for r in rs}
    summary = run_grid(spec, workers=1, threads=1, windowset=windowset, progress=False)
    assert (summary.done, summary.failed, summary.pending) == (N_RUNS, 0, 0)
    assert summary.ran == sum(r.status != "done" for r in before.values())
    after = rows_by_status(grid_dir)["done"]
    assert len(after) == N_RUNS
    for r in after:
        was = before[r.hash]
        assert r.attempts == was.attempts + (was.status != "done")
        if was.status == "done":
            assert r.finished == was.finished  # not trained again


def assert_stopped_pending(err: pytest.ExceptionInfo, grid_dir: Path, fault: str) -> None:
    """One line naming the fault; the first run done, the rest pending, the fault stored."""
    line = str(err.value)
    assert "\n" not in line and line.startswith("grid stopped: ") and fault in line
    assert "rerun the same command" in line
    status = rows_by_status(grid_dir)
    assert set(status) <= {"done", "pending"}, {k: len(v) for k, v in status.items()}
    assert len(status["done"]) == 1 and len(status["pending"]) == N_RUNS - 1
    assert any(r.error and fault in r.error for r in status["pending"])


@pytest.mark.slow
def test_a_full_disk_mid_grid_stops_it_pending(hapt_quick_small, cache_dir, tmp_path,
                                                monkeypatch, capsys):
    from harkd.cli import main

    grid_dir = tmp_path / "g"
    path = write_spec(tmp_path / "students.yaml", students_spec_raw(grid_dir, N_RUNS))
    spec = spec_from_dict(students_spec_raw(grid_dir, N_RUNS), source=str(path))
    # the second run's checkpoint lands on /dev/full: the kernel's own "no space left"
    checkpoint = second_run_dir(spec, grid_dir) / "last.safetensors"
    checkpoint.symlink_to("/dev/full")
    monkeypatch.setenv("HARKD_CACHE", str(cache_dir))
    code = main(["grid", str(path), "--workers", "1", "--threads", "1", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "Traceback" not in err[0], err
    assert "No space left on device" in err[0] and "free disk space" in err[0]
    assert str(checkpoint) in err[0] and err[0].startswith("harkd grid: grid stopped: ")
    status = rows_by_status(grid_dir)
    assert ({k: len(v) for k, v in status.items()}) == {"done": 1, "pending": 1}
    assert "No space left on device" in status["pending"][0].error
    checkpoint.unlink()
    resume_finishes_every_run_once(spec, grid_dir, hapt_quick_small)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only: a read-only bind mount as root (whom permissions do not stop),
    else its write permission removed; skips where neither is possible."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    bind = ["mount", "--bind", str(folder), str(folder)]
    if subprocess.run(bind, capture_output=True).returncode != 0:
        pytest.skip("running as root without permission to mount: cannot make a folder "
                    "read-only")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
def test_a_read_only_folder_mid_grid_stops_it_pending(hapt_quick_small, tmp_path):
    grid_dir = tmp_path / "g"
    spec = students(grid_dir)
    with read_only(second_run_dir(spec, grid_dir)), pytest.raises(GridFaultError) as err:
        run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    fault = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert_stopped_pending(err, grid_dir, fault)
    assert "make the grid folder writable" in str(err.value)
    resume_finishes_every_run_once(spec, grid_dir, hapt_quick_small)


@pytest.mark.slow
def test_a_store_that_cannot_write_stops_the_grid(hapt_quick_small, tmp_path, monkeypatch):
    grid_dir = tmp_path / "g"
    spec = students(grid_dir)
    complete = RunStore.complete
    calls = []

    def full_on_second(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise sqlite3.OperationalError("database or disk is full")
        return complete(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "complete", full_on_second)
    with pytest.raises(GridFaultError) as err:
        run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    monkeypatch.setattr(RunStore, "complete", complete)
    assert_stopped_pending(err, grid_dir, "database or disk is full")
    assert "runs.sqlite" in str(err.value)
    resume_finishes_every_run_once(spec, grid_dir, hapt_quick_small)
    with RunStore(grid_dir / "runs.sqlite") as store:  # its result came back from its folder
        assert store.get(calls[1]).timings["reused"] is True


@pytest.mark.slow
def test_a_runs_own_error_marks_only_that_run_failed(hapt_quick_small, teacher_dir, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(teacher_dir, teacher)
    weights = teacher / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated teacher weights
    grid_dir = tmp_path / "g"
    raw = students_spec_raw(grid_dir, N_RUNS)
    raw["base"]["teachers"] = {"t": {"name": "cnn1d", "view": ["acc", "gyro"],
                                     "params": {"widths": [8, 16]}, "run_dir": str(teacher)}}
    raw["base"]["distill"] = {"method": "kd", "params": {"alpha": 0.5, "temperature": 4.0}}
    spec = spec_from_dict(raw, source="bad-teacher.yaml")
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.failed, summary.pending) == (N_RUNS, 0)  # each failed, none left pending
    for r in rows_by_status(grid_dir)["failed"]:
        last = r.error.strip().splitlines()[-1]
        assert f"{weights}: not readable safetensors" in last
        assert "delete the run folder and train the run again" in last


def test_environmental_faults_are_told_from_a_runs_own_errors(tmp_path):
    full = OSError(28, "No space left on device", "/x/last.safetensors")
    assert environmental_fault(full) == "/x/last.safetensors: No space left on device"
    try:
        try:
            raise full
        except OSError as inner:
            raise RuntimeError("saving the checkpoint failed") from inner
    except RuntimeError as outer:
        assert "No space left" in environmental_fault(outer)
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    assert environmental_fault(readonly) == "SQLite: attempt to write a readonly database"
    assert environmental_fault(FileNotFoundError(2, "No such file", "x")) is None
    assert environmental_fault(ValueError("bad param")) is None
    assert environmental_fault(sqlite3.OperationalError("no such table: runs")) is None


def test_damaged_run_files_are_named_with_what_to_do(tmp_path):
    from harkd.train.checkpoint import load_checkpoint, save_checkpoint
    from harkd.train.runcard import CardError, read_card
    from harkd.train.rundir import RunDir

    rd = RunDir(tmp_path / "run").make()
    rd.card.write_text('{"format_version": 1, "model": "ti')  # cut off mid-write
    with pytest.raises(CardError) as err:
        read_card(rd.root)
    assert str(err.value).startswith(f"{rd.card}: not a run card: invalid JSON")
    assert str(err.value).endswith("delete the run folder and train the run again")
    save_checkpoint(rd, {"w": torch.zeros(64)}, {"epoch": 3})
    assert load_checkpoint(rd)[1] == {"epoch": 3}
    rd.last.write_bytes(rd.last.read_bytes()[:-40])  # truncated
    with pytest.raises(ValueError, match=rf"^{rd.last}: not a readable checkpoint .*delete it"):
        load_checkpoint(rd)
