"""Run a grid: expand its graph, register it in the store, recover interrupted runs, claim
and execute in dependency order.

Running the same spec again resumes: rows stored under an earlier key of the same run (a store
written when the data protocol entered the key by its path, or from another checkout) are
re-keyed first (`RunStore.adopt`); done runs (training nodes and cells) are skipped,
interrupted ones (claimed by a process that is gone) go back to pending, failed ones and the
runs they blocked rerun only with `retry_failed`. Several drivers may run one grid at once:
a driver with nothing to claim waits while another holds runs of the grid, and takes them over
if that driver dies. An environmental fault (a full disk, a read-only folder, the store
failing to write; `harkd.grid.faults`) stops the grid with `GridFaultError` and leaves the
runs pending; only a run's own error marks it failed, with the error stored.

Each run trains in `<grid_dir>/runs/<hash>/`, so an interrupted run resumes from its own
checkpoint; its row becomes `done` only in the same transaction that writes its metrics. A run
is claimed once the training nodes it needs are done (the Ray executor takes runs whose nodes
are still in flight and lets Ray order them); when a node fails, every run that needs it is
marked blocked, naming it. A teacher that names a node reads that node's run directory; the
grid folder must be one that every worker sees. Runs that want a GPU are placed by
`harkd.grid.placement` (local workers pinned to GPUs, Ray tasks asking for theirs); the store
records the device each run trained on.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from harkd.grid.executors import Executor, RunOutcome, RunTask, data_key, make_executor
from harkd.grid.faults import GridFaultError, advice, environmental_fault
from harkd.grid.placement import select_gpus, visible_gpus, worker_devices
from harkd.grid.spec import Expansion, GridSpec
from harkd.grid.store import DEFAULT_LEASE_S, RunStore, unreadable_store

if TYPE_CHECKING:
    from data_prep.windowset import WindowSet

STORE_NAME = "runs.sqlite"
#: seconds between lease refreshes of the runs in flight
HEARTBEAT_S = 30.0
#: seconds between looks at the runs another driver holds, when there is nothing to claim
WAIT_S = 2.0


@dataclass
class GridSummary:
    """What one invocation found and did (counts over the runs of this expansion)."""

    grid_dir: Path
    total: int
    ran: int
    done: int
    failed: int
    blocked: int
    pending: int
    recovered: int
    retried: int
    failures: list[str]
    startup_s: float = 0.0
    devices: list[str] | None = None  # the GPU of each local worker (None: CPU workers)


def code_version() -> str:
    """`git describe --always --dirty` of the checkout, else the installed package version."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=root,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"harkd {version('harkd')}"


def store_path(grid_dir: str | Path) -> Path:
    return Path(grid_dir) / STORE_NAME


def run_dir_of(grid_dir: Path, run_hash: str) -> Path:
    return grid_dir / "runs" / run_hash


def with_teacher_dirs(config: dict[str, Any], grid_dir: Path) -> dict[str, Any]:
    """A run's config with each teacher's run directory filled in: a training node's own run
    directory in this grid, and any other relative run directory made absolute."""
    teachers = {}
    for name, t in (config.get("teachers") or {}).items():
        if t.get("node"):
            run_dir = run_dir_of(grid_dir, t["node"])
        else:
            run_dir = Path(t["run_dir"]).resolve() if t.get("run_dir") else None
        teachers[name] = {**t, "run_dir": None if run_dir is None else str(run_dir)}
    return {**config, "teachers": teachers}


def describe(axes: dict[str, str]) -> str:
    """`augment=jitter method=kd seed=0`."""
    return " ".join(f"{k}={v}" for k, v in axes.items())


def last_line(error: str) -> str:
    lines = [ln for ln in (error or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"


def _grid_meta(spec: GridSpec, expansion: Expansion) -> dict[str, Any]:
    return {
        "name": spec.name,
        "source": spec.source,
        "profile": expansion.profile,
        "axes": [{"name": a.name, "key": a.key, "labels": [v.label for v in a.values]}
                 for a in spec.axes],
    }


def place_runs(expansion: Expansion, pending: set[str], executor: str, address: str | None,
               gpus: Sequence[int] | None, runs_per_gpu: int) -> list[str] | None:
    """The GPU of each worker when a pending run wants one (`worker_devices` over `gpus`,
    default every GPU this process sees), else None; None too for a Ray cluster at `address`,
    whose tasks each ask Ray for their GPU."""
    if executor == "ray" and address:
        return None
    configs = [r.config.model_dump(mode="json") for r in expansion.runs if r.hash in pending]
    return worker_devices(configs, select_gpus(gpus, visible_gpus()), runs_per_gpu)


def warm_data_cache(expansion: Expansion, pending: set[str]) -> int:
    """Prepare each distinct WindowSet the pending runs need, once, before workers start.

    Workers then load it from the on-disk cache instead of racing to build it.
    """
    from harkd.data import load_windowset

    seen: set[str] = set()
    for run in expansion.runs:
        if run.hash not in pending:
            continue
        key = data_key(run.config)
        if key not in seen:
            seen.add(key)
            load_windowset(run.config)
    return len(seen)


def run_grid(
    spec: GridSpec,
    profile: str | None = None,
    *,
    grid_dir: str | Path | None = None,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    cpus_per_run: int = 1,
    threads: int | None = None,
    gpus: Sequence[int] | None = None,
    runs_per_gpu: int = 1,
    retry_failed: bool = False,
    windowset: WindowSet | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    progress: bool = True,
) -> GridSummary:
    """Run (or resume) every run of `spec` under `profile`; returns what happened.

    `windowset`: train every run on this WindowSet instead of loading each run's data config
    (tests, benchmarks). `gpus` (default: every GPU seen) and `runs_per_gpu` place runs that
    want a GPU (`place_runs`); the local executor then has one worker per placed device instead
    of `workers`. The driver process owns the store; see `harkd.grid.executors`.
    """
    expansion = spec.expand(profile)
    gdir = (Path(grid_dir) if grid_dir is not None else spec.grid_dir(profile)).resolve()
    hashes = {r.hash for r in expansion.runs}
    axes_of = {r.hash: r.axes for r in expansion.runs}
    host, pid, version = socket.gethostname(), os.getpid(), code_version()
    failures: list[str] = []
    ran = 0
    with RunStore(store_path(gdir)) as store:
        with store_faults(store.path):
            store.set_meta("grid", _grid_meta(spec, expansion))
            adopted = store.adopt(expansion.runs, gdir / "runs")
            store.register(expansion.runs)
            recovered = [r for r in store.recover(lease_s, host) if r.hash in hashes]
            retried = store.retry_failed(hashes) if retry_failed else 0
            store.block_dependants(hashes)
            counts = store.counts(hashes)
            pending = {r.hash for r in store.rows("pending") if r.hash in hashes}
        devices = place_runs(expansion, pending, executor, address, gpus, runs_per_gpu)
        if pending and windowset is None:
            warm_data_cache(expansion, pending)
        bar = tqdm(total=len(hashes), initial=counts["done"] + counts["blocked"],
                   desc=f"grid {spec.name}",
                   unit="run", disable=not progress, dynamic_ncols=True)
        if adopted:
            bar.write(f"{adopted} stored runs re-keyed (stored under an earlier key of the same "
                      "run)")
        for row in recovered:
            bar.write(f"interrupted run reset: {describe(row.axes)} ({row.hash})")
        pinned = devices if executor == "local" else None  # Ray places its own tasks
        if pinned:
            bar.write(f"runs placed on GPUs: {len(pinned)} workers on {', '.join(pinned)}")
        pool: Executor | None = None
        in_flight: dict[str, float] = {}
        last_beat = time.monotonic()
        try:
            while True:
                while pending and (pool is None or len(in_flight) < pool.slots):
                    if pool is None:
                        pool = make_executor(executor, workers, windowset, address, cpus_per_run,
                                             threads, devices, runs_per_gpu)
                    row = store.claim(hashes, host, pid, version,
                                      in_flight if pool.orders_dependencies else ())
                    if row is None:
                        break
                    # stamped before submit: a pool's first submits block while it spawns
                    in_flight[row.hash] = time.perf_counter()
                    pool.submit(RunTask(row.hash, with_teacher_dirs(row.config, gdir),
                                        str(run_dir_of(gdir, row.hash)),
                                        spec.latency,
                                        tuple(row.deps)))
                if in_flight:
                    for outcome in pool.wait(timeout=HEARTBEAT_S):
                        # in flight until stored: a fault below releases it with the rest
                        wall = time.perf_counter() - in_flight[outcome.hash]
                        if outcome.fault:  # not this run's failure: back to pending, stop
                            where = f"{describe(axes_of[outcome.hash])} ({outcome.hash})"
                            raise _StopError(outcome.fault, where)
                        if outcome.blocked:  # Ray: a needed node failed; blocked once stored
                            store.release([outcome.hash], host, pid)
                            del in_flight[outcome.hash]
                            continue
                        msg = _record(store, outcome, host, pid, wall)
                        del in_flight[outcome.hash]
                        ran += 1
                        if msg:
                            failures.append(f"{describe(axes_of[outcome.hash])}: {msg}")
                            bar.write(f"FAILED {failures[-1]}")
                            for row in store.block_dependants(hashes):
                                bar.write(f"BLOCKED {describe(row.axes)}: needs a failed node")
                                bar.update(1)
                        bar.update(1)
                    if in_flight and time.monotonic() - last_beat >= HEARTBEAT_S:
                        store.heartbeat(in_flight, host, pid)
                        last_beat = time.monotonic()
                elif held_elsewhere(store, hashes, host, pid):
                    time.sleep(WAIT_S)  # another driver's runs: wait, take them over if it dies
                else:
                    break
                for row in store.recover(lease_s, host):
                    if row.hash in hashes:
                        recovered.append(row)
                        bar.write(f"run of a dead driver taken over: {describe(row.axes)} "
                                  f"({row.hash})")
                pending = {h for h, st in store.status_of().items()
                           if st == "pending" and h in hashes}
        except BaseException as err:
            fault = err if isinstance(err, _StopError) else None
            if fault is None and environmental_fault(err):  # the driver's own writes
                where = str(store.path) if isinstance(err, sqlite3.Error) else "the driver"
                fault = _StopError(environmental_fault(err) or "", where)
            reason = f"stopped: {fault.fault}" if fault else "interrupted"
            try:  # rerun them next time
                store.release(in_flight, host, pid, reason)
            except Exception:  # noqa: BLE001 - the next driver resets rows of a dead pid
                if fault is None:
                    raise
            if fault is None:
                raise
            raise GridFaultError(fault.line(store, hashes)) from None
        finally:
            if pool is not None:
                pool.close()
            bar.close()
        final = store.counts(hashes)
    return GridSummary(grid_dir=gdir, total=len(hashes), ran=ran, done=final["done"],
                       failed=final["failed"], blocked=final["blocked"],
                       pending=final["pending"] + final["running"],
                       recovered=len(recovered), retried=retried, failures=failures,
                       startup_s=pool.startup_s if pool is not None else 0.0, devices=pinned)


@contextmanager
def store_faults(path: Path) -> Iterator[None]:
    """SQLite errors of the store at `path` as one line naming it: `GridFaultError` for an
    environmental fault, `StoreError` for a store that turned out unreadable."""
    try:
        yield
    except sqlite3.DatabaseError as err:
        fault = environmental_fault(err)
        if fault:
            raise GridFaultError(f"{path}: {fault}; {advice(fault)}, then rerun the same "
                                 "command") from None
        raise unreadable_store(path, err) from None


def held_elsewhere(store: RunStore, hashes: set[str], host: str, pid: int) -> bool:
    """Whether another driver holds (`running`) a run of this expansion."""
    return any(r.hash in hashes and (r.host, r.pid) != (host, pid)
               for r in store.rows("running"))


class _StopError(Exception):
    """An environmental fault met `where` (a run, the store or the driver)."""

    def __init__(self, fault: str, where: str) -> None:
        super().__init__(fault)
        self.fault, self.where = fault, where

    def line(self, store: RunStore, hashes: set[str]) -> str:
        """The one line the grid stops with: the fault, where, what to do, what is left."""
        try:
            counts = store.counts(hashes)
            left = f"{counts['pending'] + counts['running']} runs left to resume"
        except Exception:  # noqa: BLE001 - the store may be what failed
            left = "the runs not done resume"
        return (f"grid stopped: {self.fault} (in {self.where}); {advice(self.fault)}, then "
                f"rerun the same command: {left}")


def _record(store: RunStore, outcome: RunOutcome, host: str, pid: int, wall: float) -> str | None:
    """Write one outcome; returns the failure's one-line message, None when it succeeded."""
    if outcome.ok:
        timings = {**(outcome.timings or {}), "worker_s": outcome.worker_s}
        if store.complete(outcome.hash, host, pid, outcome.metrics or {}, timings,
                          outcome.n_params, wall, outcome.device):
            return None
        return "finished, but its claim was taken over (lease expired); result not stored"
    store.fail(outcome.hash, host, pid, outcome.error or "unknown error", wall)
    return last_line(outcome.error or "")
