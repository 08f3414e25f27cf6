"""Reader `utd_mhad`: UTD-MHAD paired Kinect skeleton and wrist/thigh inertial `.mat` files.

Chen, Jafari & Kehtarnavaz, "UTD-MHAD: A Multimodal Dataset for Human Action Recognition
Utilizing a Depth Camera and a Wearable Inertial Sensor", ICIP 2015: 27 actions, 8 subjects,
4 trials each. Per trial `aA_sS_tT_skeleton.mat` holds `d_skel` [20 joints, 3, frames] (Kinect v1,
30 Hz, metres, joint order `data_prep.skeleton_topology.KINECT_V1_JOINTS`) and
`aA_sS_tT_inertial.mat` holds `d_iner` [samples, 6] (acc x/y/z in g, gyro x/y/z in deg/s,
50 Hz; the sensor is on the right wrist for actions 1-21 and on the right thigh for 22-27).
Files are found anywhere under `path` (the release puts them in `Skeleton/` and `Inertial/`).

The two files of a trial are paired by action, subject and trial. Both streams start at t = 0;
the skeleton is interpolated (a cubic spline, `scipy.interpolate.CubicSpline`) onto the inertial
time base k / 50 s. Inertial samples after the last skeleton frame cannot be interpolated: they
are cut and counted (`inertial_samples_after_skeleton_end`); skeleton frames after the last
inertial sample are counted too (`skeleton_frames_after_inertial_end`). One Recording per trial,
the whole trial labelled with its action id, groups `skeleton` (60 channels, joint-major
x, y, z), `acc` and `gyro`.

Option `missing_partner`: "error" (default) raises naming the file whose partner is missing;
"skip" leaves that trial out and counts it (`trials_missing_skeleton` / `..._inertial`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from data_prep.readers import ReaderOptions, ReadResult, register_reader
from data_prep.recording import Recording, RecordingError
from data_prep.skeleton_topology import KINECT_V1_JOINTS, skeleton_channels

SKELETON_RATE_HZ = 30.0
INERTIAL_RATE_HZ = 50.0
LABEL_NAMES: dict[int, str] = {
    1: "right arm swipe to the left",
    2: "right arm swipe to the right",
    3: "right hand wave",
    4: "two hand front clap",
    5: "right arm throw",
    6: "cross arms in the chest",
    7: "basketball shoot",
    8: "right hand draw x",
    9: "right hand draw circle (clockwise)",
    10: "right hand draw circle (counter clockwise)",
    11: "draw triangle",
    12: "bowling (right hand)",
    13: "front boxing",
    14: "baseball swing from right",
    15: "tennis right hand forehand swing",
    16: "arm curl (two arms)",
    17: "tennis serve",
    18: "two hand push",
    19: "right hand knock on door",
    20: "right hand catch an object",
    21: "right hand pick up and throw",
    22: "jogging in place",
    23: "walking in place",
    24: "sit to stand",
    25: "stand to sit",
    26: "forward lunge (left foot forward)",
    27: "squat (two arms stretch out)",
}
_FILE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_(skeleton|inertial)\.mat$")
_KEYS = {"skeleton": "d_skel", "inertial": "d_iner"}


class UtdMhadOptions(ReaderOptions):
    missing_partner: Literal["error", "skip"] = Field(
        "error",
        description="a trial with only one of its two .mat files: stop naming the missing "
        "file, or skip the trial and count it",
    )


@register_reader("utd_mhad", UtdMhadOptions)
def read(path: str | Path, options: UtdMhadOptions) -> ReadResult:
    """UTD-MHAD skeleton + inertial .mat pairs (one Recording per trial, 50 Hz)."""
    missing_partner = options.missing_partner
    counts: Counter = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    recordings = []
    for (a, s, t), files in sorted(_find_pairs(Path(path)).items()):
        missing = [m for m in ("skeleton", "inertial") if m not in files]
        if missing:
            present = next(iter(files.values()))
            expected = f"a{a}_s{s}_t{t}_{missing[0]}.mat"
            if missing_partner == "error":
                raise RecordingError(
                    f"{present}: partner file {expected} (key {_KEYS[missing[0]]!r}) not found "
                    f"under {path}; pass missing_partner='skip' to leave such trials out"
                )
            counts[f"trials_missing_{missing[0]}"] += 1
            examples[f"trials_missing_{missing[0]}"].append(str(present))
            continue
        recordings.append(_pair(a, s, t, files["skeleton"], files["inertial"], counts))
    if not recordings:
        raise FileNotFoundError(f"{path}: no complete aA_sS_tT_skeleton/inertial .mat pair")
    return ReadResult(
        recordings,
        {k: v for k, v in sorted(counts.items()) if v},
        {k: v[:5] for k, v in examples.items()},
    )


def _find_pairs(root: Path) -> dict[tuple[int, int, int], dict[str, Path]]:
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected the UTD-MHAD release folder)")
    out: dict[tuple[int, int, int], dict[str, Path]] = defaultdict(dict)
    for file in sorted(root.rglob("*.mat")):
        m = _FILE.match(file.name)
        if m is None:
            continue
        key, modality = (int(m[1]), int(m[2]), int(m[3])), m[4]
        if modality in out[key]:
            raise RecordingError(f"{file}: duplicate of {out[key][modality]}")
        out[key][modality] = file
    return out


def load_array(file: Path, key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Array `key` of a MAT (v4-v7) file, checked against `shape` (None: any length >= 2)."""
    from scipy.io import loadmat  # deferred: only this reader needs scipy.io

    try:
        mat = loadmat(file)
    except (NotImplementedError, ValueError, OSError) as err:  # v7.3 (HDF5) or corrupt files
        raise RecordingError(f"{file}: cannot read as a MAT file: {err}") from err
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise RecordingError(f"{file}: key {key!r} not found; keys present: {found}")
    arr = np.asarray(mat[key])
    want = "x".join("N" if d is None else str(d) for d in shape)
    ok = arr.ndim == len(shape) and all(
        (d is None and n >= 2) or n == d for n, d in zip(arr.shape, shape, strict=False)
    )
    if not ok or not np.issubdtype(arr.dtype, np.number):
        raise RecordingError(
            f"{file}: key {key!r} has shape {arr.shape} ({arr.dtype}); expected numeric [{want}] "
            "with N >= 2"
        )
    return arr.astype(np.float64)


def _pair(a: int, s: int, t: int, skel_file: Path, iner_file: Path, counts: Counter) -> Recording:
    from scipy.interpolate import CubicSpline

    skel = load_array(skel_file, "d_skel", (len(KINECT_V1_JOINTS), 3, None))  # [20, 3, F]
    iner = load_array(iner_file, "d_iner", (None, 6))  # [N, 6]
    if a not in LABEL_NAMES:
        raise RecordingError(f"{iner_file}: action a{a} outside UTD-MHAD's 1-27")
    frames = skel.transpose(2, 0, 1).reshape(skel.shape[2], -1)  # [F, 60] joint-major
    t_skel = np.arange(len(frames)) / SKELETON_RATE_HZ
    t_iner = np.arange(len(iner)) / INERTIAL_RATE_HZ
    keep = t_iner <= t_skel[-1] + 1e-9
    counts["inertial_samples_after_skeleton_end"] += int((~keep).sum())
    counts["skeleton_frames_after_inertial_end"] += int((t_skel > t_iner[-1] + 1e-9).sum())
    skeleton = CubicSpline(t_skel, frames, axis=0)(t_iner[keep])
    signals = np.concatenate([skeleton, iner[keep]], axis=1).astype(np.float32)
    n_skel = frames.shape[1]
    return Recording(
        signals=signals,
        channels=[*skeleton_channels(), "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"],
        units=["m"] * n_skel + ["g"] * 3 + ["deg/s"] * 3,
        rate_hz=INERTIAL_RATE_HZ,
        labels=np.full(len(signals), a, dtype=np.int64),
        subject=str(s),
        session=f"a{a}_t{t}",
        groups={
            "skeleton": list(range(n_skel)),
            "acc": list(range(n_skel, n_skel + 3)),
            "gyro": list(range(n_skel + 3, n_skel + 6)),
        },
        source=f"{iner_file} + {skel_file.name}",
        label_names=dict(LABEL_NAMES),
    )
