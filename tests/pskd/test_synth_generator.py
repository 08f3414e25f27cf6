"""Physics and design of the SYNTHETIC paired skeleton + wrist IMU generator."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.readers import get_reader
from data_prep.synth_skeleton import (
    ACC_AMBIGUOUS,
    ACTIVITIES,
    J,
    Noise,
    Pose,
    Subject,
    activity_pose,
    euler_matrices,
    generate,
    make_style,
    virtual_imu,
)

T = np.arange(200) / 50.0
BODY = Subject(height=1.7)


def static_pose(angles: np.ndarray) -> Pose:
    def fn(t: np.ndarray) -> Pose:
        n = len(t)
        return Pose(np.tile([0.1, 0.9, 2.0], (n, 1)), np.tile(angles, (n, 1, 1)))

    return fn


def test_euler_matrices_are_rotations_in_z_y_x_order() -> None:
    a = np.random.default_rng(0).uniform(-3, 3, (7, 3))
    R = euler_matrices(a)
    np.testing.assert_allclose(
        R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12
    )
    alpha, beta, gamma = 0.3, 0.0, 0.0  # rotation about x turns +y towards +z
    np.testing.assert_allclose(
        euler_matrices(np.array([alpha, beta, gamma])) @ [0, 1, 0],
        [0, np.cos(alpha), np.sin(alpha)],
        atol=1e-12,
    )


def test_a_stationary_pose_reads_one_g_and_no_rotation() -> None:
    angles = np.random.default_rng(1).uniform(-2, 2, (20, 3))
    _, acc, gyro = virtual_imu(static_pose(angles), BODY.offsets(), T)
    np.testing.assert_allclose(np.linalg.norm(acc, axis=1), 1.0, atol=1e-7)
    np.testing.assert_allclose(gyro, 0.0, atol=1e-6)
    _, acc_rest, _ = virtual_imu(static_pose(np.zeros((20, 3))), BODY.offsets(), T)
    np.testing.assert_allclose(acc_rest, np.tile([0.0, 1.0, 0.0], (len(T), 1)), atol=1e-7)


def test_sinusoidal_elbow_gives_the_analytic_acceleration() -> None:
    """Upper arm hanging still, elbow angle θ = A sin(ωt): in the forearm's frame the wrist,
    at (0, -L, 0), has centripetal L θ'^2 along +y and tangential L θ'' along +z; gravity reads
    (0, cos θ, sin θ) g. Gyro: ω = (-θ', 0, 0)."""
    amp, w = 0.8, 2 * np.pi * 1.5

    def pose(t: np.ndarray) -> Pose:
        ang = np.zeros((len(t), 20, 3))
        ang[:, J["right_elbow"], 0] = -amp * np.sin(w * t)  # flexion θ is a -x rotation
        return Pose(np.tile([0.0, 1.0, 0.0], (len(t), 1)), ang)

    _, acc, gyro = virtual_imu(pose, BODY.offsets(), T)
    L = -BODY.offsets()[J["right_wrist"], 1]
    th = amp * np.sin(w * T)
    th_d = amp * w * np.cos(w * T)
    th_dd = -amp * w * w * np.sin(w * T)
    expected = np.stack(
        [np.zeros_like(T), np.cos(th) + L * th_d**2 / 9.80665, np.sin(th) + L * th_dd / 9.80665],
        axis=1,
    )
    np.testing.assert_allclose(acc, expected, atol=1e-6)
    np.testing.assert_allclose(gyro[:, 0], -np.degrees(th_d), atol=1e-4)
    np.testing.assert_allclose(gyro[:, 1:], 0.0, atol=1e-6)


@pytest.mark.parametrize("pair", ACC_AMBIGUOUS)
def test_ambiguous_pairs_share_the_wrist_signal_but_not_the_skeleton(pair: tuple[str, str]) -> None:
    style = make_style(BODY, np.random.default_rng(3))
    (skel_a, acc_a, _), (skel_b, acc_b, _) = (
        virtual_imu(activity_pose(a, BODY, style), BODY.offsets(), T) for a in pair
    )
    assert np.abs(acc_a - acc_b).max() < 0.05  # g: near-identical at the wrist
    assert np.abs(skel_a - skel_b).max() > 0.2  # m: a different body posture


def test_activities_differ_and_every_trial_is_physical() -> None:
    trials = generate(n_subjects=2, trials=1, seed=0, duration_s=4.0, noise=Noise(0, 0, 0, 0, 0))
    assert len(ACTIVITIES) >= 8 and len(trials) == 2 * len(ACTIVITIES)
    for tr in trials:
        assert tr.skeleton.shape == (200, 20, 3) and tr.acc.shape == (200, 3)
        assert np.isfinite(tr.acc).all() and np.linalg.norm(tr.acc, axis=1).max() < 8
        assert tr.skeleton[..., 1].min() > -0.1  # nothing far below the floor
    means = {tr.activity: np.linalg.norm(tr.acc, axis=1).std() for tr in trials if tr.subject == 1}
    assert means["stand"] < 0.05 < means["jog"]


def test_seeded_and_subject_stable() -> None:
    a = generate(n_subjects=2, trials=1, seed=5, duration_s=2.0, activities=["clap"])
    b = generate(n_subjects=3, trials=1, seed=5, duration_s=2.0, activities=["clap"])
    c = generate(n_subjects=2, trials=1, seed=6, duration_s=2.0, activities=["clap"])
    np.testing.assert_array_equal(a[1].acc, b[1].acc)  # adding subjects changes no one else
    assert not np.allclose(a[1].acc, c[1].acc)
    with pytest.raises(ValueError, match="'fly'.*choose from"):
        generate(activities=["fly"])


def test_reader_wraps_the_generator_as_synthetic_recordings() -> None:
    recs = get_reader("synth_skeleton")(None, n_subjects=2, trials=2, duration_s=3.0)
    assert len(recs) == 2 * 2 * len(ACTIVITIES)
    rec = recs[0].validate()
    assert rec.signals.shape == (150, 66) and rec.rate_hz == 50.0
    assert rec.groups["acc"] == [60, 61, 62] and rec.units[60] == "g" and rec.units[0] == "m"
    assert rec.label_names[1] == "walk" and set(rec.labels.tolist()) == {1}
    assert all("synthetic" in r.source and "synthetic" in r.session for r in recs)
