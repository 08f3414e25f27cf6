"""Reader `synth_skeleton`: SYNTHETIC paired skeleton + right-wrist IMU recordings.

Wraps the generator `data_prep.synth_skeleton` (read its docstring: none of this data was
recorded from a person). One Recording per trial (the whole trial labelled with its activity,
ids 1..10 in `ACTIVITIES` order), groups `skeleton` (60 channels, joint-major x, y, z in m, the
UTD-MHAD joint order), `acc` (g) and `gyro` (deg/s), like the `utd_mhad` reader. Sessions and
sources say "synthetic".

`path` is not read: the data pipeline passes the generator's own module file as the source, so
that a change to the generator gives a new cache key. Options: n_subjects, trials, seed,
duration_s, rate_hz, activities, and the noise levels of `synth_skeleton.Noise`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.readers import register_reader
from data_prep.readers.utd_mhad import skeleton_channels
from data_prep.recording import Recording
from data_prep.synth_skeleton import ACTIVITIES, Noise, generate

LABEL_NAMES: dict[int, str] = {i + 1: name for i, name in enumerate(ACTIVITIES)}


@register_reader("synth_skeleton")
def read(
    path: str | Path | None = None,  # not read: see the module docstring
    n_subjects: int = 12,
    trials: int = 3,
    seed: int = 0,
    duration_s: float = 12.0,
    rate_hz: float = 50.0,
    activities: Sequence[str] = ACTIVITIES,
    acc_noise_g: float = 0.02,
    acc_bias_g: float = 0.03,
    gyro_noise_dps: float = 1.5,
    gyro_bias_dps: float = 1.0,
    skeleton_noise_m: float = 0.005,
) -> list[Recording]:
    """SYNTHETIC paired skeleton + wrist acc/gyro (generated, no file read)."""
    noise = Noise(acc_noise_g, acc_bias_g, gyro_noise_dps, gyro_bias_dps, skeleton_noise_m)
    generated = generate(n_subjects, trials, seed, duration_s, rate_hz, list(activities), noise)
    n_skel = len(skeleton_channels())
    groups = {
        "skeleton": list(range(n_skel)),
        "acc": list(range(n_skel, n_skel + 3)),
        "gyro": list(range(n_skel + 3, n_skel + 6)),
    }
    channels = [*skeleton_channels(), "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    units = ["m"] * n_skel + ["g"] * 3 + ["deg/s"] * 3
    label_of = {name: i for i, name in LABEL_NAMES.items()}
    out = []
    for tr in generated:
        signals = np.concatenate([tr.skeleton.reshape(len(tr.acc), -1), tr.acc, tr.gyro], axis=1)
        out.append(
            Recording(
                signals=signals.astype(np.float32),
                channels=list(channels),
                units=list(units),
                rate_hz=tr.rate_hz,
                labels=np.full(len(signals), label_of[tr.activity], dtype=np.int64),
                subject=str(tr.subject),
                session=f"synthetic-{tr.activity}-t{tr.trial}",
                groups={g: list(i) for g, i in groups.items()},
                source=f"synthetic:synth_skeleton(seed={seed}) subject {tr.subject} "
                f"{tr.activity} trial {tr.trial}",
                label_names=dict(LABEL_NAMES),
            )
        )
    return out
