"""The SQLite run store: atomic claims under concurrent writers, recovery, guarded writes."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sqlite3
import subprocess
import sys
import time

from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore, pid_alive

BASE = {"data": "configs/data/hapt-quick.yaml", "model": {"name": "tiny"}}
N_RUNS = 40
WRITERS = 4


def runs(n: int = N_RUNS):
    raw = {"name": "s", "base": BASE, "axes": {"seed": list(range(n))}}
    return spec_from_dict(raw).expand().runs


def _writer(path: str, start, out: mp.Queue) -> None:
    """Claim and complete runs until none is left; report what this process claimed."""
    store = RunStore(path)
    host, pid, mine = socket.gethostname(), os.getpid(), []
    start.wait(timeout=60)
    while (row := store.claim(None, host, pid)) is not None:
        mine.append(row.hash)
        time.sleep(0.005)  # "training"
        assert store.complete(row.hash, host, pid, {"test": {"acc": row.index}}, {"fit_s": 0.0},
                              10, 0.01)
    store.close()
    out.put(mine)


def test_concurrent_writers_never_share_a_run(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        assert store.register(runs()) == N_RUNS
        assert store.register(runs()) == 0  # registering again adds nothing
    ctx = mp.get_context("spawn")
    out, start = ctx.Queue(), ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_writer, args=(str(path), start, out)) for _ in range(WRITERS)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    flat = [h for part in claimed for h in part]
    assert len(flat) == len(set(flat)) == N_RUNS
    with RunStore(path) as store:
        rows = store.rows()
        assert store.counts() == {"pending": 0, "running": 0, "done": N_RUNS, "failed": 0,
                                  "blocked": 0}
    assert all(r.attempts == 1 and r.metrics == {"test": {"acc": r.index}} for r in rows)
    assert len({r.pid for r in rows}) > 1  # the work really was shared
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_resumed_spec_trains_what_is_left_in_its_own_order(tmp_path):
    host, pid = socket.gethostname(), os.getpid()
    first = runs(4)
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register(first)
        done = store.claim(None, host, pid)
        assert done.hash == first[0].hash
        assert store.complete(done.hash, host, pid, {}, {}, None, 1.0)
        # the same runs, the spec now listing them in reverse: the pending ones follow it
        raw = {"name": "s", "base": BASE, "axes": {"seed": [3, 2, 1, 0]}}
        again = spec_from_dict(raw).expand().runs
        assert {r.hash for r in again} == {r.hash for r in first}
        assert store.register(again) == 0
        order = [store.claim(None, host, pid).hash for _ in range(3)]
        assert order == [first[3].hash, first[2].hash, first[1].hash]
        assert store.get(done.hash).index == 0  # a finished run keeps its place


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_resets_dead_and_expired_claims_only(tmp_path):
    host = socket.gethostname()
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register(runs(4))
        dead, live, other, fresh = (store.claim(None, host, _dead_pid()),
                                    store.claim(None, host, os.getpid()),
                                    store.claim(None, "elsewhere", 1),
                                    store.claim(None, "elsewhere", 2))
        store._db.execute("UPDATE runs SET heartbeat = ? WHERE hash = ?",
                          (time.time() - 1000, other.hash))
        reset = {r.hash for r in store.recover(lease_s=600, host=host)}
        assert reset == {dead.hash, other.hash}
        assert store.get(live.hash).status == "running"
        assert store.get(fresh.hash).status == "running"
        assert store.get(dead.hash).status == "pending"
        again = store.claim(None, host, os.getpid())
        assert again.hash == dead.hash and again.attempts == 2


def test_writes_need_the_claim_and_done_is_final(tmp_path):
    host, pid = socket.gethostname(), os.getpid()
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register(runs(3))
        a = store.claim(None, host, pid)
        assert not store.complete(a.hash, host, pid + 1, {}, {}, None, 1.0)  # not the owner
        assert store.complete(a.hash, host, pid, {"x": 1}, {}, 5, 1.0)
        assert not store.fail(a.hash, host, pid, "late")  # done stays done
        b = store.claim(None, host, pid)
        assert store.fail(b.hash, host, pid, "Traceback...\nValueError: boom", 0.5)
        c = store.claim(None, host, pid)
        store.release([c.hash], host, pid)
        assert store.get(c.hash).status == "pending"
        assert store.retry_failed([b.hash]) == 1
        claimed = {store.claim(None, host, pid).hash for _ in range(2)}
        assert claimed == {b.hash, c.hash}
        assert store.claim(None, host, pid) is None
        assert store.get(a.hash).status == "done" and store.get(a.hash).metrics == {"x": 1}


def test_claim_respects_the_hash_filter_and_order(tmp_path):
    rs = runs(5)
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register(rs)
        wanted = {rs[3].hash, rs[1].hash}
        got = [store.claim(wanted, "h", 1).hash for _ in range(2)]
        assert got == [rs[1].hash, rs[3].hash]
        assert store.claim(wanted, "h", 1) is None


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(_dead_pid())
