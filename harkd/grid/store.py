"""The run store: one SQLite file per grid (`<grid_dir>/runs.sqlite`), one row per run.

Rows are keyed by the hash of the run's resolved config; a row is a cell or a training node
(`kind`), lists the hashes of the nodes it needs (`deps`) and, once done, the device it
trained on (`device`: cpu or cuda:N, from the run's card). A row moves
pending -> running (claimed by a host and pid) -> done | failed; a pending row whose needed
node failed becomes `blocked` (its error names that node). Only a row whose needed nodes are
done is claimed (or, for executors that order tasks themselves, done or running).

The database runs in WAL mode with `synchronous=FULL`, so a committed transaction survives a
power loss, and several processes may share it: every write is one short transaction, claims
use `BEGIN IMMEDIATE` (the write lock is taken before the pending row is read, so two claimers
never get the same run) and a busy connection waits (`busy_timeout`) instead of failing.

A claim records its owner: host, pid and the pid's start time (`process_start`), since pids
are reused. A `running` row whose owner is gone (same host, and its pid no longer alive or now
a process started at another time) or whose heartbeat is older than the lease is
*interrupted*; `recover` puts it back to pending, and a driver calls it while it waits, so it
takes over the runs of a driver that died beside it. `complete` and `fail` only touch a row
still claimed by the caller, so a driver that lost its claim can never overwrite a newer
result, and a `done` row is never claimed again.

A file that is not a readable SQLite store (truncated, overwritten, malformed pages) is refused
with `StoreError`, naming it and what to do.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harkd.grid.faults import GridFaultError, advice, environmental_fault
from harkd.grid.rekey import earlier_keys
from harkd.grid.spec import GridRun

STATUSES = ("pending", "running", "done", "failed", "blocked")
DEFAULT_LEASE_S = 900.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    hash TEXT PRIMARY KEY,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'blocked')),
    kind TEXT NOT NULL DEFAULT 'cell',
    deps TEXT NOT NULL DEFAULT '[]',
    axes TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT,
    timings TEXT,
    n_params INTEGER,
    wall_s REAL,
    device TEXT,
    host TEXT,
    pid INTEGER,
    pid_start INTEGER,
    code_version TEXT,
    started REAL,
    finished REAL,
    heartbeat REAL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, idx);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class RunRow:
    """One run as stored (JSON columns decoded)."""

    hash: str
    index: int
    status: str
    kind: str
    deps: list[str]
    axes: dict[str, str]
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    timings: dict[str, Any] | None
    n_params: int | None
    wall_s: float | None
    device: str | None
    host: str | None
    pid: int | None
    code_version: str | None
    started: float | None
    finished: float | None
    heartbeat: float | None
    error: str | None
    attempts: int


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _row(r: sqlite3.Row) -> RunRow:
    loads = lambda s: None if s is None else json.loads(s)  # noqa: E731
    return RunRow(
        hash=r["hash"], index=r["idx"], status=r["status"], kind=r["kind"],
        deps=json.loads(r["deps"]), axes=json.loads(r["axes"]),
        config=json.loads(r["config"]), metrics=loads(r["metrics"]), timings=loads(r["timings"]),
        n_params=r["n_params"], wall_s=r["wall_s"], device=r["device"], host=r["host"],
        pid=r["pid"],
        code_version=r["code_version"], started=r["started"], finished=r["finished"],
        heartbeat=r["heartbeat"], error=r["error"], attempts=r["attempts"],
    )


class StoreError(ValueError):
    """A run store that cannot be read: the message names the file and what to do."""


def unreadable_store(path: Path, err: Exception) -> StoreError:
    """The error for a store file SQLite cannot read, saying what to do."""
    return StoreError(f"{path}: not a readable run store ({err}); move it aside and rerun the "
                      "grid: finished runs are taken back from their run folders without training")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (not Linux): the signal check is all we have
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), None when
    there is no such process or no procfs. A reused pid has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_gone(pid: int, started: int | None) -> bool:
    """Whether the process that claimed a row on this host (`pid`, started at `started`) is
    gone: its pid is not alive, or now belongs to a process started at another time."""
    if not pid_alive(pid):
        return True
    return started is not None and process_start(pid) not in (None, started)


class RunStore:
    """The SQLite run store of one grid; safe to open from several processes at once."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        try:
            self._open(busy_timeout_s)
        except sqlite3.DatabaseError as err:
            self._db.close()
            fault = environmental_fault(err)
            if fault:
                raise GridFaultError(f"{self.path}: cannot open the run store: {fault}; "
                                     f"{advice(fault)}, then rerun") from None
            raise unreadable_store(self.path, err) from None

    def _open(self, busy_timeout_s: float) -> None:
        self._db.row_factory = sqlite3.Row
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous = FULL")
        problems = [r[0] for r in self._db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problems[0]}")
        with self._tx():
            _migrate(self._db)
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(stmt)

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front (BEGIN IMMEDIATE)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- grid-level ---------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                       (key, json.dumps(value, sort_keys=True)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        r = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if r is None else json.loads(r["value"])

    def register(self, runs: Iterable[GridRun]) -> int:
        """Add the runs not yet stored as pending, and give every pending run its index in
        `runs`, so a resumed grid trains what is left in the order of the spec it runs now;
        returns how many were new."""
        runs = list(runs)
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO runs (hash, idx, status, kind, deps, axes, config) "
                "VALUES (?, ?, 'pending', ?, ?, ?, ?)",
                [(r.hash, r.index, r.kind, json.dumps(list(r.deps)), _json(r.axes),
                  _json(r.config.model_dump(mode="json"))) for r in runs],
            )
            new = db.total_changes - before
            db.executemany("UPDATE runs SET idx = ? WHERE hash = ? AND status = 'pending'",
                           [(r.index, r.hash) for r in runs])
            return new

    def adopt(self, runs: Sequence[GridRun], runs_dir: Path) -> int:
        """Re-key each row stored under an earlier key of a run of `runs` (`harkd.grid.rekey`):
        its hash, needed nodes and config become the run's, and its folder in `runs_dir` takes
        the new hash, the old name staying as a link to it (the files of the runs it taught name
        their teachers' folders by the old hash); returns how many rows were re-keyed. The store
        remembers each match (meta `rekeyed`), so a folder a crash left under its old name is
        moved next time."""
        with self._tx() as db:
            stored = [
                {"hash": r["hash"], "kind": r["kind"], "axes": json.loads(r["axes"]),
                 "deps": json.loads(r["deps"]), "config": json.loads(r["config"])}
                for r in db.execute("SELECT hash, kind, axes, deps, config FROM runs")
            ]
            known: dict[str, str] = self.get_meta("rekeyed", {})
            found = earlier_keys(runs, stored, known)
            by_hash = {r.hash: r for r in runs}
            for new, old in found.items():
                run = by_hash[new]
                db.execute("UPDATE runs SET hash = ?, deps = ?, config = ? WHERE hash = ?",
                           (new, json.dumps(list(run.deps)),
                            _json(run.config.model_dump(mode="json")), old))
                known[old] = new
            if found:
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rekeyed', ?)",
                           (json.dumps(known, sort_keys=True),))
        for old, new in known.items():
            before, after = runs_dir / old, runs_dir / new
            if before.is_dir() and not before.is_symlink() and not after.exists():
                before.rename(after)
            if after.is_dir() and not before.exists() and not before.is_symlink():
                before.symlink_to(new, target_is_directory=True)
        return len(found)

    def recover(self, lease_s: float = DEFAULT_LEASE_S, host: str | None = None) -> list[RunRow]:
        """Reset interrupted `running` rows to pending; returns them as they were."""
        host = host or socket.gethostname()
        now = time.time()
        with self._tx() as db:
            stale = [
                _row(r) for r in db.execute("SELECT * FROM runs WHERE status = 'running'")
                if (r["host"] == host and owner_gone(r["pid"], r["pid_start"]))
                or now - (r["heartbeat"] or r["started"] or 0.0) > lease_s
            ]
            db.executemany(
                "UPDATE runs SET status = 'pending', host = NULL, pid = NULL, pid_start = NULL, "
                "error = 'interrupted' WHERE hash = ? AND status = 'running'",
                [(r.hash,) for r in stale],
            )
        return stale

    def retry_failed(self, hashes: Collection[str]) -> int:
        """Put the failed and blocked runs among `hashes` back to pending; returns how many."""
        with self._tx() as db:
            n = 0
            for h in hashes:
                n += db.execute("UPDATE runs SET status = 'pending', error = NULL WHERE hash = ? "
                                "AND status IN ('failed', 'blocked')", (h,)).rowcount
            return n

    def block_dependants(self, hashes: Collection[str] | None = None) -> list[RunRow]:
        """Mark `blocked` every pending row (among `hashes`) that needs, directly or through
        other nodes, a failed or blocked row; its error names the failed node. Returns them."""
        with self._tx() as db:
            rows = {r["hash"]: _row(r) for r in db.execute("SELECT * FROM runs")}
            status = {h: r.status for h, r in rows.items()}
            error = {h: r.error for h, r in rows.items()}
            blocked: list[RunRow] = []
            changed = True
            while changed:  # to a fixed point: chains block link by link
                changed = False
                for r in rows.values():
                    if status[r.hash] != "pending" or (hashes is not None and r.hash not in hashes):
                        continue
                    bad = next((d for d in r.deps if status.get(d) in ("failed", "blocked")),
                               None)
                    if bad is None:
                        continue
                    reason = error[bad] if status[bad] == "blocked" else (
                        f"blocked: node {rows[bad].axes.get('node', '?')} ({bad}) failed")
                    db.execute("UPDATE runs SET status = 'blocked', error = ? WHERE hash = ? "
                               "AND status = 'pending'", (reason, r.hash))
                    status[r.hash], error[r.hash] = "blocked", reason
                    blocked.append(r)
                    changed = True
            return blocked

    # -- per-run ------------------------------------------------------------------------------

    def claim(self, hashes: Collection[str] | None, host: str, pid: int,
              code_version: str | None = None, also_ready: Collection[str] = ()) -> RunRow | None:
        """Atomically take the first pending run (among `hashes`, None: any) whose needed nodes
        are done or in `also_ready` (the caller's runs in flight, for an executor that orders
        tasks itself); None if there is none."""
        now = time.time()
        with self._tx() as db:
            status = {r["hash"]: r["status"] for r in db.execute("SELECT hash, status FROM runs")}
            for r in db.execute("SELECT hash, deps FROM runs WHERE status = 'pending' "
                                "ORDER BY idx").fetchall():
                if not all(status.get(d) == "done" or d in also_ready
                           for d in json.loads(r["deps"])):
                    continue
                if hashes is None or r["hash"] in hashes:
                    db.execute(
                        "UPDATE runs SET status = 'running', host = ?, pid = ?, pid_start = ?,"
                        " code_version = ?, started = ?, heartbeat = ?, finished = NULL,"
                        " error = NULL, attempts = attempts + 1 WHERE hash = ?",
                        (host, pid, process_start(pid), code_version, now, now, r["hash"]),
                    )
                    return self._get(db, r["hash"])
        return None

    def heartbeat(self, hashes: Iterable[str], host: str, pid: int) -> None:
        """Refresh the lease of the caller's running rows."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE runs SET heartbeat = ? WHERE hash = ? AND status = 'running' "
                "AND host = ? AND pid = ?", [(now, h, host, pid) for h in hashes])

    def release(self, hashes: Iterable[str], host: str, pid: int,
                reason: str = "interrupted") -> None:
        """Give the caller's running rows back (pending, `reason` as their error) when it stops
        before they finish."""
        with self._tx() as db:
            db.executemany(
                "UPDATE runs SET status = 'pending', host = NULL, pid = NULL, pid_start = NULL, "
                "error = ? WHERE hash = ? AND status = 'running' AND host = ? "
                "AND pid = ?", [(reason, h, host, pid) for h in hashes])

    def complete(self, hash: str, host: str, pid: int, metrics: dict[str, Any],
                 timings: dict[str, Any], n_params: int | None, wall_s: float,
                 device: str | None = None) -> bool:
        """Mark a claimed run done with its results and the device it trained on, in one
        transaction.

        Returns False (and changes nothing) when the caller no longer holds the claim.
        """
        with self._tx() as db:
            return db.execute(
                "UPDATE runs SET status = 'done', metrics = ?, timings = ?, n_params = ?, "
                "wall_s = ?, device = ?, finished = ?, error = NULL WHERE hash = ? "
                "AND status = 'running' AND host = ? AND pid = ?",
                (_json(metrics), _json(timings), n_params, wall_s, device, time.time(), hash,
                 host, pid),
            ).rowcount == 1

    def fail(self, hash: str, host: str, pid: int, error: str, wall_s: float | None = None) -> bool:
        """Mark a claimed run failed with its error text (False when the claim was lost)."""
        with self._tx() as db:
            return db.execute(
                "UPDATE runs SET status = 'failed', error = ?, wall_s = ?, finished = ? "
                "WHERE hash = ? AND status = 'running' AND host = ? AND pid = ?",
                (error, wall_s, time.time(), hash, host, pid),
            ).rowcount == 1

    # -- reading ------------------------------------------------------------------------------

    @staticmethod
    def _get(db: sqlite3.Connection, hash: str) -> RunRow:
        return _row(db.execute("SELECT * FROM runs WHERE hash = ?", (hash,)).fetchone())

    def get(self, hash: str) -> RunRow | None:
        r = self._db.execute("SELECT * FROM runs WHERE hash = ?", (hash,)).fetchone()
        return None if r is None else _row(r)

    def rows(self, status: str | None = None) -> list[RunRow]:
        """Every row (or those with `status`), in expansion order."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; statuses: {list(STATUSES)}")
        sql = "SELECT * FROM runs" + (" WHERE status = ?" if status else "") + " ORDER BY idx"
        return [_row(r) for r in self._db.execute(sql, (status,) if status else ())]

    def status_of(self) -> dict[str, str]:
        """hash -> status of every row."""
        return {r["hash"]: r["status"] for r in self._db.execute("SELECT hash, status FROM runs")}

    def counts(self, hashes: Collection[str] | None = None) -> dict[str, int]:
        """Number of rows per status (among `hashes`, None: all)."""
        out = dict.fromkeys(STATUSES, 0)
        for r in self._db.execute("SELECT hash, status FROM runs"):
            if hashes is None or r["hash"] in hashes:
                out[r["status"]] += 1
        return out


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a store written by an older harkd up to date: one written before training nodes
    (no kind/deps, no 'blocked') is rebuilt; one without the `device` or `pid_start` column
    gets it (NULL for its runs: the device that trained them was not recorded; a claim
    without a start time is judged by its pid alone)."""
    found = db.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()
    if found is None:
        return
    if "'blocked'" in found[0]:
        present = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
        for column in ("device TEXT", "pid_start INTEGER"):
            if column.split()[0] not in present:
                db.execute(f"ALTER TABLE runs ADD COLUMN {column}")
        return
    columns = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
    db.execute("ALTER TABLE runs RENAME TO runs_old")
    db.execute("DROP INDEX IF EXISTS runs_status")
    db.execute(_SCHEMA.split(";")[0])
    names = ", ".join(columns)
    db.execute(f"INSERT INTO runs ({names}) SELECT {names} FROM runs_old")
    db.execute("DROP TABLE runs_old")

