"""Seeding that makes a CPU run repeat bit for bit, and the RNG state a checkpoint carries."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels.

    `warn_only=True`: an op without a deterministic kernel warns instead of failing (none of
    the registered models uses one on CPU).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state(generator: torch.Generator) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG state of a run: tensors (torch, the augmentation generator) and plain values."""
    tensors = {"rng.torch": torch.get_rng_state(), "rng.augment": generator.get_state()}
    np_state = np.random.get_state()
    plain = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }
    return tensors, plain


def set_rng_state(
    tensors: dict[str, torch.Tensor], plain: dict[str, Any], generator: torch.Generator
) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.augment"])
    version, internal, gauss = plain["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = plain["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
