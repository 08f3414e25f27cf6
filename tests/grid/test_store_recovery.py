"""The run store's recovery: claims judged by pid and start time, a dead driver's runs taken
over by a live one, no row left running when the executor fails, corrupt stores named."""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from grid_helpers import students_spec_raw

from harkd.grid import runner
from harkd.grid.runner import run_grid
from harkd.grid.spec import GridSpec, spec_from_dict
from harkd.grid.store import RunStore, StoreError, process_start

HOST = socket.gethostname()


def three_runs(grid_dir: Path) -> GridSpec:
    return spec_from_dict(students_spec_raw(grid_dir), source="three.yaml")


def sleeper() -> subprocess.Popen:
    """A live process standing in for another driver."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def test_a_reused_pid_does_not_block_recovery(tmp_path):
    spec = three_runs(tmp_path / "g")
    first = sleeper()
    time.sleep(0.2)  # process start times tick at 10 ms: the stand-in must start measurably later
    second = sleeper()
    try:
        with RunStore(tmp_path / "runs.sqlite") as store:
            store.register(spec.expand().runs)
            gone = store.claim(None, HOST, first.pid)
            alive = store.claim(None, HOST, second.pid)
            first.kill()
            first.wait()
            # the dead driver's pid now belongs to a live process started later (pid reuse)
            store._db.execute("UPDATE runs SET pid = ? WHERE hash = ?", (second.pid, gone.hash))
            assert process_start(second.pid) is not None
            reset = {r.hash for r in store.recover(lease_s=600, host=HOST)}
            assert reset == {gone.hash}  # pid alive, but a process started at another time
            assert store.get(gone.hash).status == "pending"
            assert store.get(alive.hash).status == "running"  # same pid, same start: kept
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_a_store_without_start_times_is_migrated(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        store.register(three_runs(tmp_path / "g").expand().runs)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE runs DROP COLUMN pid_start")
    db.execute("UPDATE runs SET status = 'running', host = ?, pid = ?, started = ? "
               "WHERE idx = 0", (HOST, os.getpid(), time.time()))
    db.commit()
    db.close()
    with RunStore(path) as store:  # the column comes back; the old claim is judged by pid
        assert store.recover(lease_s=600, host=HOST) == []
        assert store.counts()["running"] == 1
        columns = [r[1] for r in store._db.execute("PRAGMA table_info(runs)")]
    assert "pid_start" in columns


@pytest.mark.slow
def test_a_second_driver_takes_over_a_dead_drivers_runs(hapt_quick_small, tmp_path):
    spec = three_runs(tmp_path / "g")
    runs = spec.expand().runs
    other = sleeper()  # a driver that claimed the first run, alive when the second starts
    with RunStore(tmp_path / "g" / "runs.sqlite") as store:
        store.register(runs)
        held = store.claim({runs[0].hash}, HOST, other.pid)
    killer = threading.Timer(3.0, other.kill)  # it dies while the second driver works
    killer.start()
    try:
        summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small,
                           progress=False)
    finally:
        killer.cancel()
        other.kill()
        other.wait()
    assert (summary.done, summary.failed, summary.pending, summary.recovered) == (3, 0, 0, 1)
    with RunStore(tmp_path / "g" / "runs.sqlite") as store:
        rows = {r.hash: r for r in store.rows()}
    assert rows[held.hash].attempts == 2 and rows[held.hash].pid == os.getpid()
    assert all(r.status == "done" for r in rows.values())
    assert sum(r.attempts for r in rows.values()) == 4  # every run trained once more, no more


class _FailingExecutor:
    """An executor that cannot start the work it is given."""

    slots, orders_dependencies, startup_s = 1, False, 0.0

    def submit(self, task):
        raise OSError(errno.EAGAIN, "cannot start a worker process")

    def close(self):
        pass


def test_no_row_stays_running_when_the_executor_fails(tmp_path, monkeypatch):
    spec = three_runs(tmp_path / "g")
    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: _FailingExecutor())
    with pytest.raises(OSError, match="cannot start a worker process"):
        run_grid(spec, windowset=object(), progress=False)
    with RunStore(tmp_path / "g" / "runs.sqlite") as store:
        assert store.counts() == {"pending": 3, "running": 0, "done": 0, "failed": 0,
                                  "blocked": 0}
        assert store.rows()[0].attempts == 1 and store.rows()[0].error == "interrupted"

    def no_executor(*args, **kwargs):
        raise RuntimeError("Ray cluster has 0 CPUs; each run needs 1")

    monkeypatch.setattr(runner, "make_executor", no_executor)
    with pytest.raises(RuntimeError, match="0 CPUs"):
        run_grid(spec, windowset=object(), progress=False)
    with RunStore(tmp_path / "g" / "runs.sqlite") as store:
        assert store.counts()["pending"] == 3


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_store_is_named_with_what_to_do(tmp_path, damage, capsys):
    from harkd.cli import main

    path = tmp_path / "g" / "runs.sqlite"
    with RunStore(path) as store:
        store.register(three_runs(tmp_path / "g").expand().runs)
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(b"not a database at all " * 200 if damage == "garbage"
                     else data[: len(data) // 2])
    with pytest.raises(StoreError, match=r"runs\.sqlite: not a readable run store .*move it aside"):
        RunStore(path)
    assert main(["report", str(tmp_path / "g")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "move it aside" in err[0]
    assert "Traceback" not in err[0]
