"""Seeded label noise on the training windows (`split.label_noise` of a data protocol).

Robust-distillation methods (RoS-KD, Jaiswal et al. 2022) claim robustness to wrong labels, so
the data layer can make training labels wrong on purpose, reproducibly; validation, test and
pool windows are never touched, so every score stays one against the labels as recorded.

- `symmetric` (the usual benchmark noise, e.g. Patrini et al., CVPR 2017): round(rate * n) of
  the n training windows, drawn with the seed, each take a class drawn uniformly from the
  other classes.
- `boundary` (the typical HAR annotation error: a label boundary drawn a little early or late,
  so the windows next to an activity change carry the neighbouring activity): the round(rate * n)
  training windows nearest in time to a window of another class in the same recording (ties
  in an order drawn with the seed) take that nearest other class (the earlier one on a tie).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_prep.config import LabelNoiseConfig
from data_prep.configio import ConfigError


def add_label_noise(
    y: np.ndarray,
    train: np.ndarray,
    recording: np.ndarray,
    start: np.ndarray,
    num_classes: int,
    cfg: LabelNoiseConfig,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A copy of the labels `y` with noise on the windows where `train` is true, and a report
    (kind, rate, seed, training windows, relabelled windows).

    `recording` and `start` place each window in time (used by the `boundary` kind).
    """
    idx = np.flatnonzero(train)
    n = int(round(cfg.rate * len(idx)))
    rng = np.random.default_rng(cfg.seed)
    noisy = y.copy()
    if cfg.kind == "symmetric":
        if num_classes < 2:
            raise ConfigError("split.label_noise needs at least two classes")
        chosen = rng.choice(idx, size=n, replace=False)
        noisy[chosen] = (y[chosen] + rng.integers(1, num_classes, size=n)) % num_classes
    else:
        distance, other = nearest_other_class(y[idx], recording[idx], start[idx])
        candidates = int(np.isfinite(distance).sum())
        if n > candidates:
            raise ConfigError(
                f"split.label_noise.rate={cfg.rate} asks for {n} boundary windows, but only "
                f"{candidates} of the {len(idx)} training windows have a window of another "
                "class in their recording"
            )
        order = np.lexsort((rng.permutation(len(idx)), distance))[:n]
        noisy[idx[order]] = other[order]
    report = {"kind": cfg.kind, "rate": cfg.rate, "seed": cfg.seed,
              "training_windows": len(idx), "relabelled": int((noisy != y).sum())}
    return noisy, report


def nearest_other_class(
    y: np.ndarray, recording: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each window, the distance in samples to the nearest window of another class in its
    recording (inf when there is none) and that window's class (-1 when there is none; on a
    tie, the earlier window's)."""
    distance = np.full(len(y), np.inf)
    other = np.full(len(y), -1, dtype=y.dtype)
    for rec in np.unique(recording):
        mine = np.flatnonzero(recording == rec)
        mine = mine[np.argsort(start[mine], kind="stable")]
        gap = np.abs(start[mine][:, None] - start[mine][None, :]).astype(float)
        gap[y[mine][:, None] == y[mine][None, :]] = np.inf
        nearest = gap.argmin(axis=1)  # the first (earliest) of equal minima
        distance[mine] = gap[np.arange(len(mine)), nearest]
        found = np.isfinite(distance[mine])
        other[mine[found]] = y[mine][nearest[found]]
    return distance, other
