"""harkd.data: data_overrides merging, views, normalisation, the batch iterator and the
unlabelled pool's endless batches."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from data_prep.configio import merge_keys
from data_prep.windowset import WindowSet
from harkd.config import ConfigError
from harkd.data import (
    Normalizer,
    WindowLoader,
    make_loader,
    make_pool_loader,
    view_channels,
)


def test_overrides_merge_mappings_and_replace_the_rest() -> None:
    raw = {"split": {"kind": "fixed", "test_subjects": ["2"], "seed": 0}, "subjects": None}
    out = merge_keys(raw, {"split": {"seed": 3}, "split.n_val_subjects": 2, "subjects": [1]})
    assert out == {
        "split": {"kind": "fixed", "test_subjects": ["2"], "seed": 3, "n_val_subjects": 2},
        "subjects": [1],
    }
    assert raw["split"]["seed"] == 0  # the input is not modified
    with pytest.raises(ConfigError, match="'subjects' is not a mapping"):
        merge_keys({"subjects": [1]}, {"subjects.x": 1})


def test_views_and_their_errors(hapt_quick_small: WindowSet) -> None:
    assert view_channels(hapt_quick_small, ["acc"]) == [0, 1, 2]
    assert view_channels(hapt_quick_small, ["gyro", "acc"]) == [3, 4, 5, 0, 1, 2]
    with pytest.raises(ConfigError, match=r"\['skeleton'\] are not in the data; it has"):
        view_channels(hapt_quick_small, ["acc", "skeleton"])


def test_normalizer_uses_training_statistics(hapt_quick_small: WindowSet) -> None:
    ws = hapt_quick_small
    x = Normalizer.from_windowset(ws)(ws.X[ws.mask("train")])
    assert x.mean(dim=(0, 2)).abs().max() < 1e-4
    assert (x.std(dim=(0, 2)) - 1).abs().max() < 1e-3
    acc = Normalizer.from_windowset(ws).select([0, 1, 2])
    assert torch.allclose(acc(ws.X[:5, :3]), Normalizer.from_windowset(ws)(ws.X[:5])[:, :3])
    with pytest.raises(ValueError, match=r"expected windows \[B, 3, T\]"):
        acc(ws.X[:5])
    with pytest.raises(ValueError, match="std > 0"):
        Normalizer([0.0], [0.0])


def test_loader_visits_every_window_once_in_a_seeded_order() -> None:
    x = torch.arange(11, dtype=torch.float32).view(11, 1, 1)
    loader = WindowLoader(x, torch.arange(11), batch_size=5, shuffle=True, seed=7)
    sizes = [len(b) for b, _ in loader]
    assert sizes == [5, 6]  # a lone last window joins the batch before it
    seen = [int(v) for b, _ in loader for v in b.flatten()]
    assert sorted(seen) == list(range(11))
    again = [int(v) for b, _ in loader for v in b.flatten()]
    loader.set_epoch(1)
    other = [int(v) for b, _ in loader for v in b.flatten()]
    assert again == seen and other != seen


def test_make_loader_normalises_one_split(hapt_quick_small: WindowSet) -> None:
    ws = hapt_quick_small
    loader = make_loader(ws, "val", batch_size=256, shuffle=False)
    assert loader.n_windows == int(ws.mask("val").sum())
    x, y = next(iter(loader))
    assert x.shape == (256, 6, 128) and np.array_equal(y.numpy(), ws.y[ws.mask("val")][:256])
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        make_loader(ws, "dev", 8, False)


def _with_pool(n_pool: int, pool_meta: bool = True) -> WindowSet:
    """Two training windows and `n_pool` pool windows whose every value is their pool index;
    training statistics mean [1, 2], std [2, 4]."""
    n = 2 + n_pool
    x = np.concatenate(
        [np.zeros((2, 2, 4)), np.arange(n_pool)[:, None, None] * np.ones((1, 2, 4))]
    ).astype(np.float32)
    meta = {"name": "tiny", "norm": {"mean": [1.0, 2.0], "std": [2.0, 4.0]}}
    if pool_meta:
        meta["pool"] = {"windows_label_budget": n_pool}
    return WindowSet(
        X=x,
        y=np.array([0, 1] + [-1] * n_pool, dtype=np.int64),
        subject=np.array(["1"] * n),
        recording=np.zeros(n, dtype=np.int64),
        start=np.arange(n, dtype=np.int64) * 4,
        split=np.array([0, 0] + [3] * n_pool, dtype=np.uint8),
        meta=meta,
    )


def test_pool_loader_is_endless_normalised_and_seeded() -> None:
    loader = make_pool_loader(_with_pool(7), batch_size=3, seed=5)
    assert loader.n_windows == 7 and len(loader) == 2  # a lone last window joins its batch
    batches = list(itertools.islice(loader, 6))  # three passes over the pool
    assert all(isinstance(b, torch.Tensor) and b.shape[1:] == (2, 4) for b in batches)
    assert [len(b) for b in batches] == [3, 4] * 3
    index = [(b[:, 0, 0] * 2 + 1).round().int().tolist() for b in batches]  # undo the norm
    assert all(torch.allclose(b[:, 1], (b[:, 0] * 2 + 1 - 2) / 4) for b in batches)
    passes = [index[i] + index[i + 1] for i in (0, 2, 4)]
    assert all(sorted(p) == list(range(7)) for p in passes)  # each pass visits every window once
    assert len({tuple(p) for p in passes}) == 3  # in a new order each pass
    again = [b.tolist() for b in itertools.islice(loader, 6)]
    assert again == [b.tolist() for b in batches]  # the stream depends on (seed, epoch) only
    loader.set_epoch(1)
    assert [b.tolist() for b in itertools.islice(loader, 6)] != again
    raw = make_pool_loader(_with_pool(7), 7, seed=5, normalizer=Normalizer([0.0, 0.0], [1, 1]))
    assert sorted(next(iter(raw))[:, 0, 0].tolist()) == list(range(7))


def test_pool_loader_needs_a_pool(hapt_quick_small: WindowSet) -> None:
    with pytest.raises(ConfigError, match=r"no unlabelled pool windows \(its data protocol has no"):
        make_pool_loader(hapt_quick_small, 32, seed=0)
    with pytest.raises(ConfigError, match=r"tiny has no unlabelled pool windows \(its pool is"):
        make_pool_loader(_with_pool(0), 32, seed=0)
