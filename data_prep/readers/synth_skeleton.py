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

from dataclasses import fields
from pathlib import Path

import numpy as np
from pydantic import Field

from data_prep.readers import ReaderOptions, register_reader
from data_prep.recording import Recording
from data_prep.skeleton_topology import skeleton_channels
from data_prep.synth_skeleton import ACTIVITIES, Noise, generate

LABEL_NAMES: dict[int, str] = {i + 1: name for i, name in enumerate(ACTIVITIES)}


class SynthSkeletonOptions(ReaderOptions):
    n_subjects: int = Field(12, ge=1, description="synthetic subjects (bodies)")
    trials: int = Field(3, ge=1, description="trials of every activity per subject")
    seed: int = Field(0, description="seed of bodies, styles and noise")
    duration_s: float = Field(12.0, gt=0, description="length of each trial (s)")
    rate_hz: float = Field(50.0, gt=0, description="sampling rate of skeleton and IMU (Hz)")
    activities: list[str] = Field(
        list(ACTIVITIES), min_length=1, description="activities generated (a subset of the default)"
    )
    acc_noise_g: float = Field(Noise.acc_noise_g, ge=0, description="accelerometer noise (g)")
    acc_bias_g: float = Field(Noise.acc_bias_g, ge=0, description="accelerometer bias (g)")
    gyro_noise_dps: float = Field(Noise.gyro_noise_dps, ge=0, description="gyroscope noise (deg/s)")
    gyro_bias_dps: float = Field(Noise.gyro_bias_dps, ge=0, description="gyroscope bias (deg/s)")
    skeleton_noise_m: float = Field(
        Noise.skeleton_noise_m, ge=0, description="joint position noise (m)"
    )


@register_reader("synth_skeleton", SynthSkeletonOptions)
def read(path: str | Path | None, options: SynthSkeletonOptions) -> list[Recording]:
    """SYNTHETIC paired skeleton + wrist acc/gyro (generated, no file read)."""
    noise = Noise(**{f.name: getattr(options, f.name) for f in fields(Noise)})
    generated = generate(
        options.n_subjects,
        options.trials,
        options.seed,
        options.duration_s,
        options.rate_hz,
        options.activities,
        noise,
    )
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
                source=f"synthetic:synth_skeleton(seed={options.seed}) subject {tr.subject} "
                f"{tr.activity} trial {tr.trial}",
                label_names=dict(LABEL_NAMES),
            )
        )
    return out
