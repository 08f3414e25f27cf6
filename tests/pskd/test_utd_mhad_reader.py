"""The `utd_mhad` reader on .mat files written by the test in UTD-MHAD's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from data_prep.config import load_data_config
from data_prep.readers import get_reader
from data_prep.recording import RecordingError
from data_prep.skeleton_topology import KINECT_V1_JOINTS

REPO = Path(__file__).resolve().parents[2]


def joint_track(t: np.ndarray) -> np.ndarray:
    """A smooth known trajectory [20, 3, len(t)]: joint j, axis a at time t."""
    j = np.arange(20).reshape(20, 1, 1)
    a = np.arange(3).reshape(1, 3, 1)
    return 0.1 * j + 0.5 * a + 0.2 * np.sin(2 * np.pi * 0.5 * t + j + a)


def write_trial(
    root: Path, a: int, s: int, t: int, frames: int = 60, samples: int = 110
) -> tuple[Path, Path]:
    """Skeleton/ and Inertial/ .mat files of one trial (30 Hz skeleton, 50 Hz inertial)."""
    (root / "Skeleton").mkdir(parents=True, exist_ok=True)
    (root / "Inertial").mkdir(parents=True, exist_ok=True)
    skel = root / "Skeleton" / f"a{a}_s{s}_t{t}_skeleton.mat"
    iner = root / "Inertial" / f"a{a}_s{s}_t{t}_inertial.mat"
    savemat(skel, {"d_skel": joint_track(np.arange(frames) / 30.0)})
    n = np.arange(samples, dtype=np.float64)
    d_iner = np.stack([n, n + 1, n + 2, -n, 10 * n, 100 + n], axis=1) / 100.0
    savemat(iner, {"d_iner": d_iner})
    return skel, iner


@pytest.fixture
def release(tmp_path: Path) -> Path:
    for s in (1, 2, 3, 4):
        for a in (3, 22):
            write_trial(tmp_path, a, s, 1)
    return tmp_path


def test_pairs_resamples_and_labels(release: Path) -> None:
    recs = get_reader("utd_mhad")(release)
    assert len(recs) == 8 and recs.counts == {"inertial_samples_after_skeleton_end": 8 * 11}
    rec = next(r for r in recs if r.subject == "2" and r.session == "a22_t1")
    rec.validate()
    # the last skeleton frame is at 59/30 s: inertial samples 0..98 can be interpolated
    assert rec.rate_hz == 50.0 and rec.signals.shape == (99, 66)
    assert rec.channels[:3] == ["head_x", "head_y", "head_z"] and rec.channels[60] == "acc_x"
    assert rec.groups == {
        "skeleton": list(range(60)),
        "acc": [60, 61, 62],
        "gyro": [63, 64, 65],
    }
    assert rec.units[59] == "m" and rec.units[60] == "g" and rec.units[63] == "deg/s"
    assert (rec.labels == 22).all() and rec.label_names[22] == "jogging in place"
    # the skeleton interpolated onto the inertial time base follows the known trajectory
    expected = joint_track(np.arange(99) / 50.0).transpose(2, 0, 1).reshape(99, 60)
    assert np.abs(rec.signals[:, :60] - expected).max() < 2e-3
    np.testing.assert_allclose(rec.signals[:, 60], np.arange(99) / 100.0, atol=1e-6)
    assert KINECT_V1_JOINTS[3] == "hip_center" and rec.channels[9] == "hip_center_x"


def test_missing_partner_is_named_or_skipped_and_counted(release: Path) -> None:
    (release / "Skeleton" / "a3_s2_t1_skeleton.mat").unlink()
    with pytest.raises(RecordingError, match=r"a3_s2_t1_inertial\.mat.*a3_s2_t1_skeleton\.mat"):
        get_reader("utd_mhad")(release)
    recs = get_reader("utd_mhad")(release, missing_partner="skip")
    assert len(recs) == 7 and recs.counts["trials_missing_skeleton"] == 1
    assert "a3_s2_t1_inertial.mat" in recs.examples["trials_missing_skeleton"][0]


def test_missing_key_and_wrong_shape_name_file_key_and_shape(tmp_path: Path) -> None:
    skel, iner = write_trial(tmp_path, 1, 1, 1)
    savemat(iner, {"inertial": np.zeros((10, 6))})
    with pytest.raises(
        RecordingError,
        match=r"a1_s1_t1_inertial\.mat: key 'd_iner' not found.*"
        r"'inertial'",
    ):
        get_reader("utd_mhad")(tmp_path)
    savemat(iner, {"d_iner": np.zeros((10, 6))})
    savemat(skel, {"d_skel": np.zeros((25, 3, 40))})  # a Kinect v2 skeleton
    with pytest.raises(
        RecordingError,
        match=r"a1_s1_t1_skeleton\.mat: key 'd_skel' has shape "
        r"\(25, 3, 40\).*expected numeric \[20x3xN\]",
    ):
        get_reader("utd_mhad")(tmp_path)


def test_protocol_config_prepares_windows(release: Path, tmp_path: Path) -> None:
    from data_prep.pipeline import prepare

    cfg = load_data_config(
        REPO / "configs" / "data" / "utd-mhad.yaml",
        [f"path={release}", "split.test_subjects=[2, 4]", "split.val_subjects=[3]"],
    )
    ws = prepare(cfg, cache_dir=tmp_path / "cache", progress=False)
    assert ws.X.shape[1:] == (66, 96) and set(ws.y.tolist()) == {2, 21}  # class indices
    assert ws.meta["split_subjects"] == {"train": ["1"], "val": ["3"], "test": ["2", "4"]}
    assert ws.meta["repair"]["reader_inertial_samples_after_skeleton_end"] == 88
