"""Recording.validate and the chunked passes it shares with repair, resample and the readers."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from data_prep import recording
from data_prep.recording import RecordingError, first_nonfinite, time_steps


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4 rows, so that a short array crosses many chunk boundaries."""
    monkeypatch.setattr(recording, "ROW_CHUNK", 4)


@pytest.mark.parametrize("n", [0, 1, 2, 4, 5, 9, 23])
def test_time_steps_are_np_diff_chunk_by_chunk(small_chunks, n):
    t = np.cumsum(np.random.default_rng(n).uniform(0.1, 1.0, n))
    joined, offsets = [], []
    for offset, steps in time_steps(t):
        offsets.append(offset)
        joined.append(steps.copy())  # the buffer is reused by the next chunk
    steps = np.concatenate(joined) if joined else np.zeros(0)
    np.testing.assert_array_equal(steps, np.diff(t))
    assert offsets == list(range(0, max(n - 1, 0), 4))


def test_first_nonfinite_finds_the_first_bad_row_in_any_column(small_chunks):
    x = np.zeros((23, 3), dtype=np.float32)
    assert first_nonfinite(x) is None and first_nonfinite(x[:, 0]) is None
    x[17, 2], x[9, 1] = np.inf, np.nan
    assert first_nonfinite(x) == 9
    assert first_nonfinite(x[:, 2]) == 17
    assert first_nonfinite(np.zeros((0, 3))) is None


def test_validate_names_the_first_nonfinite_sample_and_counts_them(small_chunks, make_recording):
    rec = make_recording(np.ones(23, dtype=np.int64))
    rec.signals[[9, 17], [1, 4]] = [np.nan, -np.inf]
    with pytest.raises(RecordingError, match=r"2 samples hold NaN/inf \(first at sample 9\)"):
        rec.validate()


@pytest.mark.parametrize("bad", [1, 4, 5, 22])
def test_validate_names_the_first_time_stamp_that_does_not_increase(
    small_chunks, make_recording, bad
):
    rec = make_recording(np.ones(23, dtype=np.int64))
    t = np.arange(23) / 50.0
    t[bad] = t[bad - 1]
    rec = dataclasses.replace(rec, timestamps=t)
    stamp = re.escape(repr(float(t[bad])))
    with pytest.raises(RecordingError, match=rf"; sample {bad} has {stamp} after {stamp}$"):
        rec.validate()
    assert dataclasses.replace(rec, timestamps=np.arange(23) / 50.0).validate() is not None
