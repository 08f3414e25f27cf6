"""Windowing: count formula, boundaries, majority and purity (hypothesis property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.recording import label_values
from data_prep.windowing import (
    count_windows,
    extract,
    label_windows,
    majority_labels,
    window_mean_std,
    window_starts,
)

FAST = settings(max_examples=60, deadline=None)

label_tracks = st.lists(st.sampled_from([-1, 1, 2, 3, 7]), min_size=0, max_size=120).map(
    lambda v: np.array(v, dtype=np.int64)
)


@FAST
@given(st.integers(0, 500), st.integers(1, 64), st.integers(1, 64))
def test_count_formula(n, length, step):
    starts = window_starts(n, length, step)
    expected = (n - length) // step + 1 if n >= length else 0
    assert count_windows(n, length, step) == len(starts) == expected
    if len(starts):
        assert starts[0] == 0 and (np.diff(starts) == step).all()
        assert (
            starts[-1] + length <= n < starts[-1] + length + step
        )  # the last one fits, no more do


@FAST
@given(label_tracks, st.integers(1, 30), st.integers(1, 30), st.floats(0.05, 1.0))
def test_majority_and_purity_are_respected(labels, length, step, purity):
    class_of = {1: 0, 2: 1, 3: 2}
    win = label_windows(labels, length, step, purity, class_of, null_index=None)
    total = count_windows(len(labels), length, step)
    assert len(win.starts) + sum(win.dropped.values()) == total  # every window kept or counted
    for start, y in zip(win.starts, win.y, strict=True):
        seg = labels[start : start + length]
        assert len(seg) == length  # never past the end of the recording
        values, counts = np.unique(seg, return_counts=True)
        major = values[counts.argmax()]
        assert major == [1, 2, 3][y]
        assert counts.max() / length >= purity - 1e-9


@FAST
@given(label_tracks, st.integers(1, 30), st.integers(1, 30))
def test_null_class_kept_or_dropped(labels, length, step):
    dropped = label_windows(labels, length, step, 0.01, {1: 0, 2: 1}, null_index=None)
    kept = label_windows(labels, length, step, 0.01, {1: 0, 2: 1}, null_index=2)
    assert len(kept.starts) == len(dropped.starts) + dropped.dropped.get("windows_null", 0)
    assert "windows_null" not in kept.dropped
    assert kept.dropped.get("windows_unselected_label", 0) == dropped.dropped.get(
        "windows_unselected_label", 0
    )


def test_ties_go_to_the_smallest_id_and_reasons_are_counted():
    labels = np.array([2, 2, 1, 1, -1, -1, -1, -1, 7, 7, 7, 7, 1, 1, 1, 2])
    major, share = majority_labels(labels, np.array([0, 4, 8, 12]), 4)
    assert major.tolist() == [1, -1, 7, 1] and share.tolist() == [0.5, 1.0, 1.0, 0.75]
    win = label_windows(labels, 4, 4, 0.6, {1: 0, 2: 1}, null_index=None)
    assert win.starts.tolist() == [12] and win.y.tolist() == [0]
    assert dict(win.dropped) == {
        "windows_impure": 1,
        "windows_null": 1,
        "windows_unselected_label": 1,
    }


def test_extract_copies_the_right_samples():
    signals = np.arange(40, dtype=np.float32).reshape(20, 2)
    out = extract(signals, np.array([0, 5, 12]), 8)
    assert out.shape == (3, 2, 8) and out.flags.c_contiguous
    np.testing.assert_array_equal(out[1], signals[5:13].T)
    assert extract(signals, np.zeros(0, dtype=np.int64), 8).shape == (0, 2, 8)
    into = np.full((5, 2, 8), np.nan, dtype=np.float32)
    assert extract(signals, np.array([0, 5, 12]), 8, out=into[1:4]) is not None
    np.testing.assert_array_equal(into[1:4], out)
    assert np.isnan(into[[0, 4]]).all()  # rows outside `out` untouched


@FAST
@given(
    st.lists(st.sampled_from([-1, 3, 4, 70_000]), min_size=1, max_size=300),
    st.sampled_from([np.int32, np.int64]),
    st.integers(1, 40),
    st.integers(1, 40),
)
def test_majority_over_any_ids_and_dtype_matches_counting_each_window(values, dtype, length, step):
    labels = np.array(values, dtype=dtype)  # with -1 and 70,000: too far apart to count, sorted
    assert label_values(labels).tolist() == sorted(set(values))
    assert label_values(labels).dtype == dtype
    starts = window_starts(len(labels), length, step)
    if starts.size == 0:
        return
    major, share = majority_labels(labels, starts, length)
    for s, m, p in zip(starts, major, share, strict=True):
        ids, counts = np.unique(labels[s : s + length], return_counts=True)
        assert m == ids[counts.argmax()] and p == counts.max() / length


@pytest.mark.parametrize("row_chunk", [5, 1 << 16])  # 5: windows span many blocks of samples
def test_window_mean_std_equals_the_stacked_windows_figures(monkeypatch, row_chunk):
    from data_prep import windowing

    monkeypatch.setattr(windowing, "ROW_CHUNK", row_chunk)
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((300, 3)) * [1.0, 0.1, 5.0] + [0.5, 1000.0, -2.0]).astype(np.float32)
    b = rng.standard_normal((90, 3)).astype(np.float32)
    length = 16
    pieces = [
        (a, np.array([0, 4, 8, 40, 41, 200, 284])),  # overlapping, adjacent and lone windows
        (a, np.array([100, 150])),  # a second piece of the same signals
        (b, np.array([74, 10, 0])),  # unsorted starts; the last window ends the recording
    ]
    windows = np.concatenate([extract(x, s, length) for x, s in pieces]).astype(np.float64)
    mean, std = window_mean_std(pieces, length)
    np.testing.assert_allclose(mean, windows.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, windows.std(axis=(0, 2)), rtol=1e-12)


@pytest.mark.parametrize(("length", "step"), [(8, 3), (8, 8), (5, 11), (16, 4)])
def test_majority_counted_a_stretch_at_a_time_matches_counting_each_window(
    monkeypatch, length, step
):
    from data_prep import windowing

    monkeypatch.setattr(windowing, "ROW_CHUNK", 7)  # stretches cut through windows and gaps
    rng = np.random.default_rng(length * 100 + step)
    labels = np.repeat(rng.choice([-1, 1, 2, 5], 60), rng.integers(1, 9, 60)).astype(np.int32)
    starts = window_starts(len(labels), length, step)
    major, share = majority_labels(labels, starts, length)
    for s, m, p in zip(starts, major, share, strict=True):
        ids, counts = np.unique(labels[s : s + length], return_counts=True)
        assert m == ids[counts.argmax()] and p == counts.max() / length
