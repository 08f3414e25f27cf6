"""`data_prep.repair` on hand-made recordings: exact interpolation, cuts, time-stamp checks."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.recording import Recording, RecordingError
from data_prep.repair import repair

NAN, INF = np.nan, np.inf


def rec(signals: list[list[float]], rate_hz: float = 10.0, timestamps=None) -> Recording:
    x = np.array(signals, dtype=np.float32)
    return Recording(
        signals=x,
        channels=[f"c{i}" for i in range(x.shape[1])],
        units=["g"] * x.shape[1],
        rate_hz=rate_hz,
        labels=np.arange(len(x), dtype=np.int64),
        subject="7",
        session="s1",
        groups={"acc": list(range(x.shape[1]))},
        source="hand-made.csv",
        timestamps=None if timestamps is None else np.asarray(timestamps, dtype=np.float64),
    )


def test_clean_recording_is_returned_as_is():
    r = rec([[1, 2], [3, 4]])
    parts, counts = repair(r, 0.1)
    assert parts == [r] and parts[0] is r and counts == {}


def test_short_gaps_are_interpolated_per_channel_exactly():
    # 10 Hz, max_gap 0.2 s = 2 samples: channel 0 has a 2-sample NaN run, channel 1 one inf
    r = rec([[0, 10], [NAN, 20], [NAN, INF], [3, 40], [4, 50]])
    parts, counts = repair(r, 0.2)
    assert counts == {"samples_interpolated": 2}
    (p,) = parts
    np.testing.assert_array_equal(p.signals, [[0, 10], [1, 20], [2, 30], [3, 40], [4, 50]])
    np.testing.assert_array_equal(p.labels, np.arange(5))
    assert p.session == "s1"
    assert np.isnan(r.signals[1, 0])  # the input is not modified
    p.validate()


def test_interpolation_follows_the_time_stamps():
    r = rec([[0], [NAN], [30]], timestamps=[0.0, 0.1, 0.3])
    (p,), counts = repair(r, 0.1)
    assert p.signals[1, 0] == pytest.approx(10.0)
    assert counts == {"samples_interpolated": 1}


def test_long_gap_cuts_the_recording_and_edges_are_trimmed():
    # max_gap 1 sample; channel 1 has a 3-sample run (cut); a NaN at the start is trimmed;
    # channel 0's single NaN next to the cut is at the edge of part 0 and is trimmed too
    r = rec(
        [
            [NAN, 0],
            [1, 1],
            [2, 2],
            [NAN, 3],
            [4, NAN],
            [5, NAN],
            [6, NAN],
            [7, 7],
            [NAN, 8],
            [9, 9],
        ]
    )
    parts, counts = repair(r, 0.1)
    assert counts == {"samples_cut_nan": 5, "recording_splits": 1, "samples_interpolated": 1}
    assert [p.session for p in parts] == ["s1/part0", "s1/part1"]
    np.testing.assert_array_equal(parts[0].signals, [[1, 1], [2, 2]])
    np.testing.assert_array_equal(parts[1].signals, [[7, 7], [8, 8], [9, 9]])
    np.testing.assert_array_equal(parts[1].labels, [7, 8, 9])
    assert all(p.subject == "7" for p in parts)


def test_zero_max_gap_cuts_every_nan():
    parts, counts = repair(rec([[1], [NAN], [3]]), 0.0)
    assert [p.signals[:, 0].tolist() for p in parts] == [[1.0], [3.0]]
    assert counts == {"samples_cut_nan": 1, "recording_splits": 1}


def test_all_nan_recording_gives_no_parts():
    parts, counts = repair(rec([[NAN], [NAN]]), 1.0)
    assert parts == [] and counts == {"samples_cut_nan": 2, "recordings_all_nan": 1}


def test_duplicate_time_stamps_keep_the_first():
    r = rec([[1], [2], [3], [4]], timestamps=[0.0, 0.1, 0.1, 0.2])
    (p,), counts = repair(r, 0.1)
    assert counts == {"duplicate_timestamps_dropped": 1}
    np.testing.assert_array_equal(p.signals[:, 0], [1, 2, 4])
    np.testing.assert_array_equal(p.timestamps, [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(p.labels, [0, 1, 3])


def test_backwards_time_stamp_names_source_and_sample():
    r = rec([[1], [2], [3]], timestamps=[0.0, 0.2, 0.1])
    with pytest.raises(
        RecordingError, match=r"hand-made\.csv.*backwards at sample 2: 0.1 s after 0.2 s"
    ):
        repair(r, 0.1)


def test_nan_time_stamp_is_an_error():
    with pytest.raises(
        RecordingError,
        match=r"hand-made\.csv \(subject 7, session s1\): sample 1 has time stamp nan",
    ):
        repair(rec([[1], [2]], timestamps=[0.0, NAN]), 0.1)
