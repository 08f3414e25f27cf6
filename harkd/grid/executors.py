"""Executors: where a grid's runs train (`local` process pool or `ray` tasks).

The driver owns the run store: it claims a run, hands the executor a `RunTask` and writes the
`RunOutcome` when it comes back. Workers never touch the SQLite file. That keeps one writer
per grid invocation (no lock contention between workers), works unchanged for Ray workers on
other hosts (which cannot reach the driver's disk), and means a worker that dies mid-run
leaves nothing half-written in the store: the driver records the failure, or, if the driver
died too, the next invocation finds the claim's pid gone and reruns the run.

Both executors call the same `execute`, which trains with `harkd.train.loop.fit` in the run's
own directory (fit resumes from its last checkpoint there) and returns plain JSON-able
results, so the same spec gives the same results on either executor for a given number of
torch threads per run. Where runs want a GPU (`harkd.grid.placement`), each local worker is
pinned to one GPU and Ray tasks ask for theirs; the outcome names the device that trained.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harkd.config import ConfigError, RunConfig, validate_run_config
from harkd.grid.faults import environmental_fault
from harkd.grid.placement import gpus_per_task

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    from data_prep.windowset import WindowSet
    from harkd.train.loop import RunResult

EXECUTORS = ("local", "ray")
#: seconds between checks that a pool worker's driver is still alive
_PARENT_POLL_S = 0.5


@dataclass(frozen=True)
class RunTask:
    """What a worker needs to train one run."""

    hash: str
    config: dict[str, Any]
    run_dir: str
    latency: dict[str, int] | None = None
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    """What comes back: results, or the error's traceback text."""

    hash: str
    ok: bool
    metrics: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    n_params: int | None = None
    error: str | None = None
    worker_s: float = 0.0
    blocked: bool = False
    device: str | None = None
    #: an environmental fault (full disk, read-only folder; `harkd.grid.faults`), not the run's own
    fault: str | None = None


class Executor(Protocol):
    """Runs tasks; `slots` of them at a time. With `orders_dependencies`, a task may be
    submitted while the tasks of its `deps` are in flight (the executor runs it after them).
    `startup_s`: the seconds it took to start its workers."""

    slots: int
    orders_dependencies: bool
    startup_s: float

    def submit(self, task: RunTask) -> None: ...

    def wait(self, timeout: float) -> list[RunOutcome]: ...

    def close(self) -> None: ...


# -- worker side -------------------------------------------------------------------------------

_windowsets: dict[str, WindowSet] = {}
_given: WindowSet | None = None
#: the device this worker was placed on (`cuda:N`, `cpu`; None: `train.device` decides)
_placed: str | None = None


def data_key(cfg: RunConfig) -> str:
    """Hash of a run's resolved data protocol (`cfg.data` with its overrides applied)."""
    from harkd.data import data_config

    return hashlib.sha256(data_config(cfg).model_dump_json().encode()).hexdigest()[:16]


def _windowset_for(cfg: RunConfig) -> WindowSet:
    """The given WindowSet, else this process's cached one for the run's data config."""
    if _given is not None:
        return _given
    key = data_key(cfg)
    if key not in _windowsets:
        from harkd.data import load_windowset

        _windowsets[key] = load_windowset(cfg)
    return _windowsets[key]


def init_worker(threads: int, parent_pid: int | None = None,
                windowset: WindowSet | None = None, devices: Queue[str] | None = None) -> None:
    """Pool initializer: torch threads, the shared WindowSet, the device this worker takes
    from the `devices` queue (one entry per worker), and exit when the driver dies."""
    global _given, _placed
    import torch

    torch.set_num_threads(threads)
    _given = windowset
    if devices is not None:  # a pool never starts more workers than it has entries
        _placed = devices.get()
        if _placed.startswith("cuda"):
            torch.cuda.set_device(torch.device(_placed))
    if parent_pid is not None:
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    # A SIGKILLed driver cannot stop its pool; an orphan would keep training into a run dir
    # that the next invocation is about to reuse.
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_S)
    os._exit(1)


def _jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples, paths."""
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist")
                                 else str(o)))


def outcome_from_result(run_hash: str, result: RunResult, fit_s: float,
                        worker_s: float) -> RunOutcome:
    """Flatten fit's RunResult into what the store keeps (`fit_s`: fit's own wall time; the
    device from the run's card)."""
    from harkd.train.runcard import read_card

    return RunOutcome(
        hash=run_hash,
        ok=True,
        metrics=_jsonable(result.metrics),
        timings=_jsonable({**result.timings, "fit_s": fit_s, "epochs_run": result.epochs_run,
                           "best_epoch": result.best_epoch, "reused": result.from_cache}),
        n_params=int(result.n_params),
        worker_s=worker_s,
        device=read_card(result.run_dir).device,
    )


def measure_latency(run_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    """Export a finished run to ONNX (checked against PyTorch) and time it at batch 1 beside
    the runtime floor; its deployed parameters and MACs; with `int8`, the int8 model's time,
    size and macro-F1 change too."""
    from harkd.deploy.export import export_run
    from harkd.deploy.flops import deployed_cost
    from harkd.deploy.latency import benchmark
    from harkd.train.checkpoint import load_run_model

    exported = export_run(run_dir, int8=bool(options.get("int8")))
    timing = {k: options[k] for k in ("threads", "runs", "warmup", "batch")}
    one = benchmark(exported.onnx_path, **timing)["batch1"]
    model, card = load_run_model(run_dir)
    cost = deployed_cost(model, (1, *card.input_shape))
    out: dict[str, Any] = {
        "p50_us": one["model"]["p50_us"], "p99_us": one["model"]["p99_us"],
        "floor_p50_us": one["floor"]["p50_us"], "x_floor_p50": one["x_floor"]["p50"],
        "threads": options["threads"], "params": cost["params"], "macs": cost["macs"],
    }
    if exported.int8_path is not None and exported.int8 is not None:
        q = benchmark(exported.int8_path, **timing)["batch1"]
        out["int8"] = {"p50_us": q["model"]["p50_us"], "x_floor_p50": q["x_floor"]["p50"],
                       "size_ratio": exported.int8["size_ratio"],
                       "macro_f1_change": exported.int8["f1_change"]}
    return out


def execute(task: RunTask) -> RunOutcome:
    """Train one run (any exception becomes a failed outcome carrying its traceback)."""
    t0 = time.perf_counter()
    try:
        from harkd.train.loop import fit

        cfg = validate_run_config(task.config, source=f"run {task.hash}")
        ws = _windowset_for(cfg)
        t_fit = time.perf_counter()
        result = fit(cfg, ws=ws, run_dir=Path(task.run_dir), progress=False, device=_placed)
        fit_s = time.perf_counter() - t_fit
        if task.latency:
            result.metrics["latency"] = measure_latency(task.run_dir, task.latency)
        return outcome_from_result(task.hash, result, fit_s, time.perf_counter() - t0)
    except Exception as err:  # the driver records every failure with its traceback
        return RunOutcome(hash=task.hash, ok=False, error=traceback.format_exc(),
                          fault=environmental_fault(err),
                          worker_s=time.perf_counter() - t0)


# -- local --------------------------------------------------------------------------------------


def _ready() -> int:
    """A no-op task: returns once a worker has started (spawned, imported, initialised)."""
    from harkd.train import loop  # noqa: F401  (the import every run needs, paid at start-up)

    return os.getpid()


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LocalExecutor:
    """A spawn-context process pool; each worker gets cores // workers torch threads.

    With `devices` (`harkd.grid.placement.worker_devices`), one worker per entry, each pinned
    to that device; `workers` is then not used.
    """

    def __init__(self, workers: int = 1, windowset: WindowSet | None = None,
                 threads: int | None = None, devices: list[str] | None = None) -> None:
        if devices:
            workers = len(devices)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.slots = workers
        self.devices = devices
        self.orders_dependencies = False
        self.threads = threads or max(1, available_cores() // workers)
        self._windowset = windowset
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future, str] = {}
        t0 = time.perf_counter()
        self._ensure_pool()
        self.startup_s = time.perf_counter() - t0

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        """The pool, with every worker started: the workers spawn and import side by side
        once, instead of one by one as runs queue behind a worker still starting."""
        if self._pool is None:
            ctx = mp.get_context("spawn")
            devices = None
            if self.devices:
                devices = ctx.Queue()
                for device in self.devices:
                    devices.put(device)
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.slots, mp_context=ctx, initializer=init_worker,
                initargs=(self.threads, os.getpid(), self._windowset, devices))
            for fut in [self._pool.submit(_ready) for _ in range(self.slots)]:
                fut.result()
        return self._pool

    def submit(self, task: RunTask) -> None:
        self._futures[self._ensure_pool().submit(execute, task)] = task.hash

    def wait(self, timeout: float) -> list[RunOutcome]:
        if not self._futures:
            return []
        done, _ = cf.wait(self._futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        broken = False
        for fut in done:
            run_hash = self._futures.pop(fut)
            try:
                out.append(fut.result())
            except Exception as err:  # a dead worker breaks the whole pool
                broken = True
                out.append(RunOutcome(hash=run_hash, ok=False, error=(
                    f"worker process died ({type(err).__name__}: {err}); killed, out of memory "
                    "or crashed")))
        if broken and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        return out

    def close(self) -> None:
        if self._pool is not None:
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                if self._futures:
                    proc.terminate()  # interrupted: do not wait for runs in flight
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._futures.clear()


# -- ray ----------------------------------------------------------------------------------------

#: times Ray reruns a task whose worker process died (killed, out of memory, node lost); the
#: rerun resumes from the run's checkpoint. A run's own error comes back as a failed outcome
#: (`execute`), which Ray never retries.
RAY_SYSTEM_RETRIES = 2
#: the runtime_env variable naming the driver's working directory
WORKDIR_ENV = "HARKD_WORKDIR"


def worker_environment() -> dict[str, str]:
    """harkd's environment for Ray workers: the driver's `HARKD_*` variables, its WindowSet
    cache as an absolute path (the default ./.cache/harkd resolved where the driver runs) and
    its working directory, so that workers started elsewhere (`ray start` in another folder,
    without the driver's variables) read and write what the driver would."""
    from data_prep.cache import ENV_VAR, resolve_cache_dir

    env = {k: v for k, v in os.environ.items() if k.startswith("HARKD_")}
    env[ENV_VAR] = str(resolve_cache_dir().resolve())
    env[WORKDIR_ENV] = os.getcwd()
    return env


def connect_ray(address: str | None, num_cpus: int) -> None:
    """Connect this driver to Ray, with `worker_environment` as the job's runtime_env and the
    workers' output shown here.

    `address` (`auto`, `host:port`, `ray://...`): that cluster. Without it, the cluster
    `ray.init()` itself would join (`RAY_ADDRESS`, else the latest `ray start` on this machine)
    when one runs, else a new local Ray of `num_cpus` CPUs. Resources are declared only when
    starting one: a running cluster keeps its own.
    """
    import ray
    from ray._private.services import canonicalize_bootstrap_address  # ray.init's own rule

    settings = {"runtime_env": {"env_vars": worker_environment()}, "log_to_driver": True}
    if address is None and canonicalize_bootstrap_address(None) is None:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **settings)
        return
    try:
        ray.init(address=address, **settings)  # None: the running cluster ray.init finds
    except ConnectionError as err:
        raise ConfigError(
            f"--address {address or 'auto'}: cannot join a Ray cluster there ({err}); a cluster "
            "with token authentication (Ray's default) also needs RAY_AUTH_MODE=token and its "
            "token (~/.ray/auth_token or RAY_AUTH_TOKEN)") from None


def _ray_execute(task: RunTask, threads: int, windowset: WindowSet, placed: str | None,
                 *needed: RunOutcome) -> RunOutcome:
    """A Ray task: start in the driver's working directory where this host has it, set this
    worker's threads and the task's WindowSet (from the object store), then `execute`.

    `placed`: `cpu` for a task that asked for no GPU (None: the GPU Ray gave it, which the
    task sees as its first). `needed`: the outcomes of the training nodes still in flight when
    this task was submitted (Ray starts the task once they are done); if one failed, this run
    is blocked.
    """
    global _given, _placed
    import torch

    failed = [o.hash for o in needed if not o.ok]
    if failed:
        return RunOutcome(hash=task.hash, ok=False, blocked=True,
                          error=f"blocked: needed node(s) {failed} failed")
    workdir = os.environ.get(WORKDIR_ENV)
    if workdir and os.path.isdir(workdir):
        os.chdir(workdir)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _given, _placed = windowset, placed
    return execute(task)


class RayExecutor:
    """Each run a Ray task declaring `cpus_per_run` CPUs (torch gets that many threads), and
    `1 / runs_per_gpu` GPUs when the run wants one (`harkd.grid.placement.gpus_per_task`); at
    most `workers` tasks in flight, whatever the cluster's size.

    Connects as `connect_ray` says (a new local Ray gets workers × cpus_per_run CPUs). Each
    distinct WindowSet the runs need is loaded once by the driver (from the cache the runner
    warmed), put into the object store and handed to every task that trains on it;
    `windowset`: the one every run trains on. A task whose worker dies is retried
    `RAY_SYSTEM_RETRIES` times.
    """

    def __init__(self, address: str | None = None, workers: int = 1, cpus_per_run: int = 1,
                 windowset: WindowSet | None = None, runs_per_gpu: int = 1) -> None:
        import ray

        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        t0 = time.perf_counter()
        self._ray = ray
        self._owns = not ray.is_initialized()
        if self._owns:
            connect_ray(address, workers * cpus_per_run)
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < cpus_per_run:
            if self._owns:
                ray.shutdown()
            raise ConfigError(f"--cpus-per-run {cpus_per_run}: the Ray cluster has {cpus} CPUs")
        self.slots = workers
        self.gpus = float(ray.cluster_resources().get("GPU", 0))
        self.runs_per_gpu = runs_per_gpu
        self.orders_dependencies = True
        self._threads = cpus_per_run
        self._remote = ray.remote(num_cpus=cpus_per_run, max_retries=RAY_SYSTEM_RETRIES,
                                  retry_exceptions=False)(_ray_execute)
        self._given = ray.put(windowset) if windowset is not None else None
        self._data: dict[str, Any] = {}  # data_key -> the WindowSet's object ref
        self._refs: dict[Any, str] = {}
        self.startup_s = time.perf_counter() - t0

    def _data_for(self, task: RunTask) -> Any:
        """The object ref of the WindowSet the task trains on (put on first use)."""
        if self._given is not None:
            return self._given
        cfg = validate_run_config(task.config, source=f"run {task.hash}")
        key = data_key(cfg)
        if key not in self._data:
            from harkd.data import load_windowset

            self._data[key] = self._ray.put(load_windowset(cfg))
        return self._data[key]

    def submit(self, task: RunTask) -> None:
        in_flight = {h: ref for ref, h in self._refs.items()}
        needed = [in_flight[h] for h in task.deps if h in in_flight]
        gpus = gpus_per_task(task.config, self.gpus, self.runs_per_gpu)
        remote = self._remote.options(num_gpus=gpus) if gpus else self._remote
        placed = None if gpus else "cpu"
        ref = remote.remote(task, self._threads, self._data_for(task), placed, *needed)
        self._refs[ref] = task.hash

    def wait(self, timeout: float) -> list[RunOutcome]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            run_hash = self._refs.pop(ref)
            try:
                out.append(self._ray.get(ref))
            except Exception as err:  # its worker died once more than retried, or node lost
                out.append(RunOutcome(hash=run_hash, ok=False,
                                      error=f"Ray task failed: {type(err).__name__}: {err}"))
        return out

    def close(self) -> None:
        for ref in self._refs:
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        self._data.clear()
        if self._owns:
            self._ray.shutdown()


def make_executor(kind: str, workers: int = 1, windowset: WindowSet | None = None,
                  address: str | None = None, cpus_per_run: int = 1,
                  threads: int | None = None, devices: list[str] | None = None,
                  runs_per_gpu: int = 1) -> Executor:
    """`local` with `workers` processes of `threads` torch threads (default cores // workers),
    or one process per entry of `devices`, pinned to it; or `ray` with at most `workers` tasks
    in flight (at least one per entry of `devices`), on the cluster `connect_ray` finds or
    starts; each task gets cpus_per_run threads and, when its run wants a GPU, 1 / runs_per_gpu
    GPUs)."""
    if kind == "local":
        return LocalExecutor(workers=workers, windowset=windowset, threads=threads,
                             devices=devices)
    if kind == "ray":
        return RayExecutor(address=address, workers=max(workers, len(devices or ())),
                           cpus_per_run=cpus_per_run, windowset=windowset,
                           runs_per_gpu=runs_per_gpu)
    raise ValueError(f"unknown executor {kind!r}; executors: {list(EXECUTORS)}")
