"""WindowSet loading for a run, views, normalisation and batch iteration (docs/architecture.md 5).

`load_windowset(cfg)` prepares (or loads from the cache) the data protocol of a run config with
its `data_overrides`; `view_channels` turns a view (channel groups) into channel indices;
`Normalizer` applies the training split's per-channel mean/std; `make_loader` iterates over one
split in batches whose shuffling order depends only on (seed, epoch), so a resumed run sees the
same batches as an uninterrupted one; `make_pool_loader` draws endless batches of the unlabelled
pool (`split.pool` in the data protocol) in an order that depends only on (seed, epoch) too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from data_prep.config import DataConfig, absolute_source, validate_data_config
from data_prep.configio import load_config, merge_keys
from data_prep.windowset import POOL, SPLITS, WindowSet
from harkd.config import ConfigError, RunConfig


def data_config(cfg: RunConfig) -> DataConfig:
    """The run's data protocol: `cfg.data` with `cfg.data_overrides` applied and validated."""
    raw = absolute_source(merge_keys(load_config(cfg.data, path_keys=("path",)),
                                     cfg.data_overrides, where="data_overrides."))
    return validate_data_config(raw, source=f"{cfg.data} (with data_overrides)")


def load_windowset(
    cfg: RunConfig, cache_dir: Path | None = None, progress: bool = False
) -> WindowSet:
    """Prepare (or load from the cache) the WindowSet of a run config."""
    from data_prep.pipeline import prepare

    return prepare(data_config(cfg), cache_dir=cache_dir, progress=progress)


def view_channels(ws: WindowSet, groups: Sequence[str]) -> list[int]:
    """Channel indices of a view (channel groups, in the order given)."""
    if not groups:
        raise ConfigError("a view must name at least one channel group")
    missing = [g for g in groups if g not in ws.groups]
    if missing:
        raise ConfigError(
            f"view {list(groups)}: channel group(s) {missing} are not in the data; "
            f"it has {sorted(ws.groups)}"
        )
    return ws.channel_indices(list(groups))


class Normalizer:
    """Per-channel standardisation `(x - mean) / std` with training-split statistics."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
        self.std = torch.as_tensor(std, dtype=torch.float32).flatten()
        if self.mean.shape != self.std.shape:
            raise ValueError(f"norm mean {list(self.mean.shape)} and std {list(self.std.shape)}")
        if not bool(torch.isfinite(self.mean).all() and (self.std > 0).all()):
            raise ValueError(f"norm must be finite with std > 0, got std {self.std.tolist()}")

    @classmethod
    def from_windowset(cls, ws: WindowSet) -> Normalizer:
        """The statistics `data_prep` computed on the training split (`meta["norm"]`)."""
        if "norm" not in ws.meta:
            raise KeyError("WindowSet meta has no 'norm' (training-split statistics)")
        return cls(ws.meta["norm"]["mean"], ws.meta["norm"]["std"])

    def select(self, channels: Sequence[int]) -> Normalizer:
        """The statistics of a subset of channels (a model's view)."""
        idx = list(channels)
        return Normalizer(self.mean[idx], self.std[idx])

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Standardise windows [B, C, T] (C must match the statistics)."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim != 3 or x.shape[1] != self.mean.numel():
            raise ValueError(f"expected windows [B, {self.mean.numel()}, T], got {list(x.shape)}")
        return (x - self.mean.view(1, -1, 1)) / self.std.view(1, -1, 1)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, end) of each batch over `n` windows; a lone last window joins the batch before."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


class WindowLoader:
    """Batches `(x [B, C, T], y [B])` of one split, normalised once up front.

    With `shuffle`, epoch `e` visits the windows in the order of a permutation drawn from
    `numpy.random.default_rng([seed, e])` (set it with `set_epoch`). Every window is visited
    once per epoch; a lone last window joins the batch before it (BatchNorm needs two samples).
    """

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, seed: int
    ) -> None:
        if len(x) == 0:
            raise ValueError("cannot make batches of an empty split")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.seed = int(batch_size), shuffle, int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def to(self, device: torch.device) -> WindowLoader:
        """Keep the split on `device`: batches are then cut there, with no host copies."""
        self.x, self.y = self.x.to(device), self.y.to(device)
        return self

    def __len__(self) -> int:
        return len(batch_bounds(len(self.x), self.batch_size))

    @property
    def n_windows(self) -> int:
        return len(self.x)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.batch_positions():
            yield self.x[idx], self.y[idx]

    def batch_positions(self) -> Iterator[torch.Tensor | slice]:
        """Each batch's window positions in the split (a slice without `shuffle`), in this
        epoch's order: what a trainer uses to look up other per-window data (subjects)."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))
            order_t = torch.from_numpy(order).to(self.x.device)
        for lo, hi in batch_bounds(len(self.x), self.batch_size):
            yield order_t[lo:hi] if self.shuffle else slice(lo, hi)


class PoolLoader:
    """Endless batches `x [B, C, T]` of the unlabelled pool, normalised once up front.

    After `set_epoch(e)`, iterating passes over the pool again and again: pass `p` visits every
    window once, in the order of a permutation drawn from
    `numpy.random.default_rng([seed, e, p])`, in batches cut as `WindowLoader` cuts them. The
    stream depends only on (seed, epoch), so a trainer that draws one pool batch per labelled
    batch and sets the same epoch on both loaders sees the same pool batches after a resume.
    """

    def __init__(self, x: torch.Tensor, batch_size: int, seed: int) -> None:
        if len(x) == 0:
            raise ValueError("cannot make batches of an empty pool")
        self.x, self.batch_size, self.seed = x, int(batch_size), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def to(self, device: torch.device) -> PoolLoader:
        """Keep the pool on `device`: batches are then cut there, with no host copies."""
        self.x = self.x.to(device)
        return self

    @property
    def n_windows(self) -> int:
        return len(self.x)

    def __len__(self) -> int:
        """Batches in one pass over the pool."""
        return len(batch_bounds(len(self.x), self.batch_size))

    def __iter__(self) -> Iterator[torch.Tensor]:
        bounds = batch_bounds(len(self.x), self.batch_size)
        for p in itertools.count():
            rng = np.random.default_rng([self.seed, self.epoch, p])
            order = torch.from_numpy(rng.permutation(len(self.x))).to(self.x.device)
            for lo, hi in bounds:
                yield self.x[order[lo:hi]]


def make_pool_loader(
    ws: WindowSet, batch_size: int, seed: int = 0, normalizer: Normalizer | None = None
) -> PoolLoader:
    """Endless batches of every channel of the pool's windows, standardised with `normalizer`
    (default: the WindowSet's training-split statistics)."""
    m = ws.mask(POOL)
    if not m.any():
        why = "its pool is empty" if "pool" in ws.meta else "its data protocol has no split.pool"
        raise ConfigError(
            f"{ws.meta.get('name', 'the data')} has no unlabelled pool windows ({why}); set "
            "split.pool: true, with split.label_budget to hide some training subjects' labels"
        )
    normalizer = normalizer or Normalizer.from_windowset(ws)
    return PoolLoader(normalizer(ws.X[m]), batch_size, seed)


def make_loader(
    ws: WindowSet,
    split: str,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    normalizer: Normalizer | None = None,
) -> WindowLoader:
    """Batches of every channel of `split`, standardised with `normalizer` (default: the
    WindowSet's training-split statistics)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {list(SPLITS)}")
    m = ws.mask(split)
    normalizer = normalizer or Normalizer.from_windowset(ws)
    x = normalizer(ws.X[m])
    y = torch.as_tensor(ws.y[m], dtype=torch.long)
    if len(x) == 0:
        raise ValueError(
            f"split {split!r} has no windows (subjects: "
            f"{ws.meta.get('split_subjects', {}).get(split)})"
        )
    return WindowLoader(x, y, batch_size, shuffle, seed)
