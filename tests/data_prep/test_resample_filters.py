"""Resampling (polyphase, from irregular time stamps) and Butterworth filtering."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from data_prep.config import FilterConfig, GravityConfig, LowpassConfig
from data_prep.filters import apply_filters, gravity_split, lowpass
from data_prep.recording import RecordingError
from data_prep.resample import resample


def _sine(make_recording, rate=100.0, seconds=10.0, freq=2.0):
    t = np.arange(int(rate * seconds)) / rate
    rec = make_recording(np.where(t < seconds / 2, 1, 2))
    signals = np.repeat(np.sin(2 * np.pi * freq * t)[:, None], 6, axis=1).astype(np.float32)
    return dataclasses.replace(rec, signals=signals, rate_hz=rate), t


def _dominant_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x - x.mean()))
    return np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()]


def test_polyphase_keeps_frequency_amplitude_and_label_timing(make_recording):
    rec, _ = _sine(make_recording, rate=100.0)
    out = resample(rec, 50.0)
    assert out.rate_hz == 50.0 and out.n_samples == 500 and out.signals.dtype == np.float32
    assert _dominant_hz(out.signals[:, 0], 50.0) == pytest.approx(2.0, abs=0.1)
    assert np.abs(out.signals[50:-50, 0]).max() == pytest.approx(1.0, abs=0.02)
    assert np.flatnonzero(out.labels == 2)[0] == 250  # the label change stays at t = 5 s
    assert resample(out, 50.0) is out


def test_irregular_time_stamps_are_interpolated(make_recording):
    rec, t = _sine(make_recording, rate=50.0)
    jitter = np.random.default_rng(0).uniform(-0.008, 0.008, len(t))
    jitter[::7] = 0.012  # some samples arrive late: steps up to 0.6 of a period off
    stamps = t + jitter
    signals = np.repeat(np.sin(2 * np.pi * 2.0 * stamps)[:, None], 6, axis=1).astype(np.float32)
    rec = dataclasses.replace(rec, signals=signals, timestamps=stamps)
    out = resample(rec, 25.0)
    assert out.rate_hz == 25.0
    grid = stamps[0] + np.arange(out.n_samples) * 2 / 50.0
    clean = np.sin(2 * np.pi * 2.0 * grid)
    assert np.abs(out.signals[10:-10, 0] - clean[10:-10]).max() < 0.05


def test_declared_rate_contradicted_by_time_stamps(make_recording):
    rec, t = _sine(make_recording, rate=50.0)
    rec = dataclasses.replace(rec, timestamps=t * 2)  # really 25 Hz
    with pytest.raises(RecordingError, match=r"declared rate 50.0 Hz but the median .* \(25 Hz\)"):
        resample(rec, 50.0)


def test_lowpass_removes_high_frequency_noise(make_recording):
    rec, t = _sine(make_recording, rate=50.0, freq=1.0)
    noisy = rec.signals + 0.5 * np.sin(2 * np.pi * 22.0 * t)[:, None].astype(np.float32)
    out = lowpass(
        dataclasses.replace(rec, signals=noisy), LowpassConfig(cutoff_hz=10, groups=["acc"])
    )
    assert np.abs(out.signals[25:-25, 0] - rec.signals[25:-25, 0]).max() < 0.02
    np.testing.assert_array_equal(out.signals[:, 3:], noisy[:, 3:])  # gyro untouched
    with pytest.raises(RecordingError, match="cutoff 30.0 Hz must be below the Nyquist"):
        lowpass(rec, LowpassConfig(cutoff_hz=30))


def test_gravity_split_add_and_replace(make_recording):
    rec, t = _sine(make_recording, rate=50.0, freq=3.0)
    rec.signals[:, 2] += 1.0  # gravity on z
    add = gravity_split(rec, GravityConfig(mode="add"))
    assert add.groups == {
        "acc": [0, 1, 2],
        "gyro": [3, 4, 5],
        "body_acc": [6, 7, 8],
        "gravity_acc": [9, 10, 11],
    }
    assert add.channels[6] == "body_acc_x" and add.units[9] == "g"
    np.testing.assert_allclose(
        add.signals[:, 6:9] + add.signals[:, 9:12], rec.signals[:, :3], atol=1e-5
    )
    assert add.signals[100:-100, 11].mean() == pytest.approx(1.0, abs=0.02)
    replace = apply_filters(rec, FilterConfig(gravity=GravityConfig(mode="replace")))
    assert replace.groups == {"gyro": [3, 4, 5], "body_acc": [0, 1, 2], "gravity_acc": [6, 7, 8]}
    np.testing.assert_array_equal(replace.signals[:, :3], add.signals[:, 6:9])
    assert apply_filters(rec, FilterConfig()) is rec


def test_a_long_irregular_recording_is_resampled_chunk_by_chunk_without_seams(make_recording):
    """Seven hours at 100 Hz cross the chunks of the interpolation and of the label lookup."""
    rate, seconds = 100.0, 7 * 3600
    t = np.arange(int(rate * seconds)) / rate
    stamps = t + np.random.default_rng(1).uniform(-0.004, 0.004, len(t))
    stamps[::9] += 0.003  # steps up to 0.7 of a period off: irregular
    labels = (t // 1000).astype(np.int64) % 3 + 1  # a new label every 1000 s
    signals = np.stack([np.sin(2 * np.pi * 0.5 * stamps)] * 3, axis=1).astype(np.float32)
    rec = dataclasses.replace(
        make_recording(labels), signals=signals, rate_hz=rate, timestamps=stamps,
        channels=["x", "y", "z"], units=["g"] * 3, groups={"acc": [0, 1, 2]},
    )
    out = resample(rec, 50.0)
    grid = stamps[0] + np.arange(out.n_samples) / 50.0
    assert out.n_samples > 1 << 20 and out.signals.dtype == np.float32
    clean = np.sin(2 * np.pi * 0.5 * grid[20:-20, None])
    assert np.abs(out.signals[20:-20] - clean).max() < 0.01
    expected = (np.round(grid * 100) / 100 // 1000).astype(np.int64) % 3 + 1
    assert np.mean(out.labels != expected) < 1e-5  # only samples within jitter of a change
    changes = np.flatnonzero(np.diff(out.labels)) + 1
    assert len(changes) == seconds // 1000  # one change each 1000 s, at its time
    assert np.abs(changes - np.arange(1, len(changes) + 1) * 50_000).max() <= 1


@pytest.mark.parametrize("block", [1, 1 << 10, 1 << 16])  # 1: one row of periods a block
@pytest.mark.parametrize(
    ("up", "down"), [(1, 2), (2, 1), (1, 3), (3, 2), (2, 3), (25, 16), (16, 25), (33, 100)]
)
def test_polyphase_equals_scipy_resample_poly(monkeypatch, block, up, down):
    """scipy's filter, up to float32 rounding: BLAS sums the products in its own order, not
    upfirdn's; 2e-6 on signals of a few g is ~2000 times below the 3.9 mg step of a 12-bit
    +-8 g accelerometer. Written over x (going down, where the blocks leave room) or not, the
    result is the same."""
    from scipy.signal import resample_poly

    from data_prep import resample as resample_module

    monkeypatch.setattr(resample_module, "POLYPHASE_BLOCK", block)
    rng = np.random.default_rng(up * 1000 + down)
    for n in (1, 2, 5, 40, 41, 257, 3001):
        x = (rng.standard_normal((n, 3)) * 0.5 + [0.2, -0.9, 0.4]).astype(np.float32)
        x[n // 2 :, 1] = 0.0  # a flat stretch
        expected = np.stack(
            [resample_poly(x[:, c], up, down, padtype="line") for c in range(3)], axis=1
        )
        got = resample_module.polyphase(x, up, down)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)  # n == 1: NaN, as scipy
        mine = x.copy()
        over = resample_module.polyphase(mine, up, down, overwrite_x=True)
        np.testing.assert_array_equal(over, got)
        # over x only going down; with blocks of one row only where outputs stay behind inputs
        if up >= down or block > 1:
            assert np.shares_memory(over, mine) == (up < down)


def test_integer_downsampling_labels_take_every_kth_sample(make_recording):
    rec, _ = _sine(make_recording, rate=100.0, seconds=1.01)  # 101 samples
    rec = dataclasses.replace(rec, labels=np.arange(101, dtype=np.int32))
    out = resample(rec, 50.0)
    assert out.labels.dtype == np.int32 and out.labels.flags.c_contiguous
    np.testing.assert_array_equal(out.labels, np.arange(0, 101, 2))


def test_regular_time_stamps_within_the_rate_tolerance_are_not_resampled_onto_a_grid(
    make_recording,
):
    rec, t = _sine(make_recording, rate=50.0)
    stamps = t + np.random.default_rng(2).uniform(-0.0004, 0.0004, len(t))  # 2 % jitter
    rec = dataclasses.replace(rec, timestamps=stamps)
    assert resample(rec, 50.0) is rec
