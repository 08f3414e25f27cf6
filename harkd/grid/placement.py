"""Where a grid's runs train: the GPUs of the local executor's workers, the GPUs a Ray task asks.

A run wants a GPU when its `train.device` is `cuda` or `cuda:N`, or `auto` where GPUs are seen
(`harkd.train.device.wants_cuda`). When some run of a grid wants one, the local executor starts
`runs_per_gpu` workers per GPU (one by default), worker `i` pinned to GPU `gpus[i % len(gpus)]`:
a run with `auto` or `cuda` trains on its worker's GPU, `cuda:N` on GPU N, `cpu` on the CPU.
The Ray executor asks `1 / runs_per_gpu` GPUs for each task of such a run and lets Ray place
it. Wanting a GPU where none is seen is a `ConfigError` before any run starts. The placement
never enters a run's config, so a run keeps its hash (and resumes) on any device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harkd.config import ConfigError
from harkd.train.device import cuda_device_count, wants_cuda


def visible_gpus() -> list[int]:
    """Indices of the CUDA devices torch sees in this process (empty without CUDA)."""
    return list(range(cuda_device_count()))


def device_setting(config: Mapping[str, Any]) -> str:
    """The `train.device` of a run config given as a mapping (`auto` when unset)."""
    return (config.get("train") or {}).get("device", "auto")


def gpu_runs(configs: Iterable[Mapping[str, Any]], gpus_seen: bool) -> list[str]:
    """The `train.device` of each run that wants a GPU, where `gpus_seen` says if any is."""
    return [s for s in map(device_setting, configs) if wants_cuda(s, gpus_seen)]


def select_gpus(wanted: Sequence[int] | None, seen: Sequence[int]) -> list[int]:
    """The GPUs to place runs on: `wanted` (each must be seen), default every seen one."""
    if wanted is None:
        return list(seen)
    unseen = sorted(set(wanted) - set(seen))
    if unseen:
        raise ConfigError(f"--gpus: GPU(s) {unseen} not seen; torch sees {list(seen) or 'none'}")
    return list(dict.fromkeys(wanted))


def worker_devices(configs: Iterable[Mapping[str, Any]], gpus: Sequence[int],
                   runs_per_gpu: int = 1) -> list[str] | None:
    """The device of each local worker: `runs_per_gpu` per GPU, interleaved over `gpus`, when
    a run wants a GPU; None when none does (plain CPU workers)."""
    if runs_per_gpu < 1:
        raise ConfigError(f"--runs-per-gpu must be >= 1, got {runs_per_gpu}")
    wanting = gpu_runs(configs, bool(gpus))
    if not wanting:
        return None
    if not gpus:
        raise ConfigError(
            f"{len(wanting)} run(s) ask for train.device={wanting[0]}, but no GPU is seen; "
            "set train.device=auto or cpu"
        )
    return [f"cuda:{gpus[i % len(gpus)]}" for i in range(len(gpus) * runs_per_gpu)]


def gpus_per_task(config: Mapping[str, Any], cluster_gpus: float, runs_per_gpu: int = 1) -> float:
    """The GPUs a Ray task of this run asks for: `1 / runs_per_gpu` when it wants a GPU (the
    cluster must have one), else 0."""
    setting = device_setting(config)
    if not wants_cuda(setting, cluster_gpus > 0):
        return 0.0
    if cluster_gpus <= 0:
        raise ConfigError(
            f"a run asks for train.device={setting}, but the Ray cluster has no GPU; "
            "set train.device=auto or cpu"
        )
    return 1.0 / runs_per_gpu
