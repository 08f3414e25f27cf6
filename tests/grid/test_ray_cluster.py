"""The Ray executor on a running Ray cluster, as a user who outgrew one machine runs it.

`ray start --head --block` is started here in its own temporary folder and session, with an
environment that lacks the driver's `HARKD_*` variables; `harkd grid --executor ray --address`
joins it from another working directory with `HARKD_CACHE` set (and `RAY_AUTH_MODE=token`, which
a cluster with Ray's default token authentication asks of a driver that names its address). The
grid must complete with the driver's cache and settings (no worker builds a cache of its own),
at most `--workers` runs at a time on the larger cluster, a killed worker retried by Ray, and
models byte-identical to the local executor's. The cluster is ended through the process group
this test started (`ray stop` would stop every Ray instance on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grid_helpers import stored_metrics, tiny_spec_raw, write_spec

from harkd.grid.store import RunStore

#: the runs of seed 0 without augmentation: a subset of the session grid, so hashes are shared
SUBSET = {"exclude": [{"augment": "jitter"}, {"seed": 1}]}
LATENCY = {"threads": 1, "runs": 10, "warmup": 1, "batch": 4}
CLUSTER_CPUS = 2
START_TIMEOUT_S = 180
GRID_TIMEOUT_S = 1800  # a guard against a hang, not a speed check: a loaded machine is slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_cluster() -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """(address, the `ray start` process, its folder) of a head node of CLUSTER_CPUS CPUs."""
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.is_file():
        pytest.skip(f"ray cannot start: no `ray` command beside {sys.executable}")
    # short: Ray's socket paths under it must fit in 107 bytes
    folder = Path(tempfile.mkdtemp(prefix="harkd-ray-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HARKD_", "RAY_"))}
    port = _free_port()
    log = (folder / "ray-start.log").open("wb")
    proc = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}",
         f"--temp-dir={folder}", f"--num-cpus={CLUSTER_CPUS}", "--num-gpus=0",
         "--include-dashboard=false", "--disable-usage-stats",
         f"--ray-client-server-port={_free_port()}"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address_file = folder / "ray_current_cluster"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not address_file.is_file():
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (folder / "ray-start.log").read_text(errors="replace")[-1500:]
                pytest.skip(f"ray cannot start here (`ray start --head` exit "
                            f"{proc.poll()}):\n{tail}")
            time.sleep(0.5)
        yield address_file.read_text().strip(), proc, folder
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    """End the cluster: `ray start --block` shuts down the processes it started on SIGTERM;
    whatever is left of its process group is then killed."""
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(90)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _task_workers(session: int) -> list[int]:
    """PIDs of this cluster's worker processes running a task (Ray titles them after it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
            if title.startswith(b"ray::_ray_execute") and os.getsid(int(entry.name)) == session:
                pids.append(int(entry.name))
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
    return pids


def _kill_a_worker_mid_run(grid_dir: Path, session: int, stop: threading.Event,
                           killed: list[int]) -> None:
    """SIGKILL the first worker seen running a task once some run has a checkpoint."""
    while not stop.is_set() and not killed:
        if any(grid_dir.glob("runs/*/last.json")):
            for pid in _task_workers(session):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.02)


@pytest.mark.slow
def test_grid_on_a_running_cluster_uses_the_drivers_settings_and_gives_the_local_models(
        ray_cluster, local_grid, teacher_dir, cache_dir, tmp_path):
    address, proc, folder = ray_cluster
    workdir = tmp_path / "driver"
    workdir.mkdir()
    cached = sorted(p.name for p in cache_dir.glob("*.npz"))
    grid_dir = tmp_path / "ray"
    # latency: each worker exports its run, which reloads the run's data from the cache
    spec = write_spec(tmp_path / "ray.yaml",
                      tiny_spec_raw(teacher_dir, grid_dir, latency=LATENCY, **SUBSET))
    env = {**os.environ, "HARKD_CACHE": str(cache_dir), "RAY_AUTH_MODE": "token"}
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_a_worker_mid_run,
                              args=(grid_dir, proc.pid, stop, killed), daemon=True)
    killer.start()
    try:
        driver = subprocess.run(
            [sys.executable, "-m", "harkd.cli", "grid", str(spec), "--executor", "ray",
             "--address", address, "--workers", "1", "--cpus-per-run", "1", "--no-progress"],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=GRID_TIMEOUT_S)
    finally:
        stop.set()
        killer.join()

    assert driver.returncode == 0, driver.stderr[-3000:]
    assert "grid tiny: 2/2 done, 0 failed" in driver.stdout
    assert killed, "no worker was seen mid-run to kill"
    # the driver's cache served every worker: nothing built beside it, in the driver's working
    # directory or in the cluster's folder
    assert sorted(p.name for p in cache_dir.glob("*.npz")) == cached
    assert not (workdir / ".cache").exists() and not (folder / ".cache").exists()
    with RunStore(grid_dir / "runs.sqlite") as store:
        rows = sorted(store.rows(), key=lambda r: r.started)
    # --workers 1 on a 2-CPU cluster: one run at a time; the retried one was claimed once
    assert all(a.finished <= b.started for a, b in zip(rows, rows[1:], strict=False))
    assert all(r.attempts == 1 and r.device == "cpu" for r in rows)

    local = stored_metrics(local_grid[1].grid_dir)
    ray = stored_metrics(grid_dir)
    assert set(ray) <= set(local)
    for run_hash, metrics in ray.items():
        assert metrics.pop("latency")["p50_us"] > 0
        assert metrics == local[run_hash]
        for name in ("model.safetensors", "model.json"):
            ours = grid_dir / "runs" / run_hash / name
            assert ours.read_bytes() == (local_grid[1].grid_dir / "runs" / run_hash
                                         / name).read_bytes(), name
