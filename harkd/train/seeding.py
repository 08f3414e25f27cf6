"""Seeding that makes a run repeat bit for bit, and the RNG state a checkpoint carries."""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

#: cuBLAS's setting for reproducible matrix products (read when a CUDA context starts)
CUBLAS_WORKSPACE = ":4096:8"


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device), and set torch's
    deterministic algorithms and cuDNN's to `deterministic` (`train.deterministic`).

    Deterministic, cuDNN autotuning is off and cuBLAS gets a fixed workspace
    (`CUBLAS_WORKSPACE_CONFIG`, unless set already): free on the CPU, it may cost speed on a
    GPU (benchmarks/bench_device.py measures it). `warn_only=True`: an op without a
    deterministic kernel warns instead of failing (none of the registered models uses one on
    the CPU).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def rng_state(
    generator: torch.Generator, device: torch.device | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG state of a run: tensors (torch, the augmentation generator, and the CUDA
    generator of `device` when it is a GPU) and plain values."""
    tensors = {"rng.torch": torch.get_rng_state(), "rng.augment": generator.get_state()}
    if device is not None and device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    np_state = np.random.get_state()
    plain = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    return tensors, plain


def set_rng_state(
    tensors: dict[str, torch.Tensor],
    plain: dict[str, Any],
    generator: torch.Generator,
    device: torch.device | None = None,
) -> None:
    """Restore what `rng_state` saved (the CUDA state only onto a GPU `device`, when saved)."""
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.augment"])
    if device is not None and device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
