"""harkd.data: data_overrides merging, views, normalisation and the batch iterator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_prep.windowset import WindowSet
from harkd.config import ConfigError
from harkd.data import Normalizer, WindowLoader, make_loader, merge_overrides, view_channels


def test_overrides_merge_mappings_and_replace_the_rest() -> None:
    raw = {"split": {"kind": "fixed", "test_subjects": ["2"], "seed": 0}, "subjects": None}
    out = merge_overrides(raw, {"split": {"seed": 3}, "split.n_val_subjects": 2, "subjects": [1]})
    assert out == {
        "split": {"kind": "fixed", "test_subjects": ["2"], "seed": 3, "n_val_subjects": 2},
        "subjects": [1],
    }
    assert raw["split"]["seed"] == 0  # the input is not modified
    with pytest.raises(ConfigError, match="'subjects' is not a mapping"):
        merge_overrides({"subjects": [1]}, {"subjects.x": 1})


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
