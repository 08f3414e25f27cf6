"""Zero-phase Butterworth filtering of recordings.

Both filters follow the UCI-HAR / HAPT preprocessing (Anguita et al., "A Public Domain Dataset
for Human Activity Recognition Using Smartphones", ESANN 2013): a low-pass Butterworth filter
(3rd order, 20 Hz) against noise, and a 0.3 Hz low-pass Butterworth that separates the gravity
component of the accelerometer from body motion (body = acc - gravity). Filtering is forward-
backward (`scipy.signal.sosfiltfilt`), so windows keep their alignment with the labels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.config import FilterConfig, GravityConfig, LowpassConfig
from data_prep.recording import Recording, RecordingError


def apply_filters(rec: Recording, cfg: FilterConfig) -> Recording:
    """Low-pass first (when configured), then the gravity split (when configured)."""
    if cfg.lowpass is not None:
        rec = lowpass(rec, cfg.lowpass)
    if cfg.gravity is not None:
        rec = gravity_split(rec, cfg.gravity)
    return rec


def _zero_phase_lowpass(
    x: np.ndarray, cutoff_hz: float, order: int, rate_hz: float, where: str
) -> np.ndarray:
    if not cutoff_hz < rate_hz / 2:
        raise RecordingError(
            f"{where}: low-pass cutoff {cutoff_hz} Hz must be below the Nyquist frequency "
            f"{rate_hz / 2} Hz"
        )
    from scipy.signal import butter, sosfiltfilt  # deferred: a cache hit never needs scipy.signal

    sos = butter(order, cutoff_hz, btype="low", fs=rate_hz, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), x.shape[0] - 1)
    return sosfiltfilt(sos, x, axis=0, padlen=padlen).astype(np.float32)


def _group_indices(rec: Recording, groups: list[str]) -> list[int]:
    missing = [g for g in groups if g not in rec.groups]
    if missing:
        raise RecordingError(f"{rec.source}: filter group(s) {missing} not in {sorted(rec.groups)}")
    return [i for g in groups for i in rec.groups[g]]


def lowpass(rec: Recording, cfg: LowpassConfig) -> Recording:
    """Noise low-pass on the configured groups (all channels when none are named)."""
    idx = list(range(len(rec.channels))) if cfg.groups is None else _group_indices(rec, cfg.groups)
    signals = rec.signals.copy()
    signals[:, idx] = _zero_phase_lowpass(
        signals[:, idx], cfg.cutoff_hz, cfg.order, rec.rate_hz, rec.source
    )
    return dataclasses.replace(rec, signals=signals)


def gravity_split(rec: Recording, cfg: GravityConfig) -> Recording:
    """Split an accelerometer group into `body_<group>` and `gravity_<group>` groups.

    `mode="add"` appends both as new channels and keeps the original group; `mode="replace"`
    puts the body component in the group's place, appends gravity, and drops the group name.
    """
    idx = _group_indices(rec, [cfg.group])
    acc = rec.signals[:, idx]
    gravity = _zero_phase_lowpass(acc, cfg.cutoff_hz, cfg.order, rec.rate_hz, rec.source)
    body = acc - gravity
    names = [rec.channels[i] for i in idx]
    units = [rec.units[i] for i in idx]
    groups = {k: list(v) for k, v in rec.groups.items()}
    c = len(rec.channels)
    if cfg.mode == "add":
        signals = np.hstack([rec.signals, body, gravity])
        channels = [*rec.channels, *(f"body_{n}" for n in names), *(f"gravity_{n}" for n in names)]
        out_units = [*rec.units, *units, *units]
        groups[f"body_{cfg.group}"] = list(range(c, c + len(idx)))
        groups[f"gravity_{cfg.group}"] = list(range(c + len(idx), c + 2 * len(idx)))
    else:
        signals = np.hstack([rec.signals, gravity])
        signals[:, idx] = body
        channels = list(rec.channels)
        for i, n in zip(idx, names, strict=True):
            channels[i] = f"body_{n}"
        channels += [f"gravity_{n}" for n in names]
        out_units = [*rec.units, *units]
        del groups[cfg.group]
        groups[f"body_{cfg.group}"] = list(idx)
        groups[f"gravity_{cfg.group}"] = list(range(c, c + len(idx)))
    return dataclasses.replace(
        rec, signals=signals.astype(np.float32), channels=channels, units=out_units, groups=groups
    )
