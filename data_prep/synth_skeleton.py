"""SYNTHETIC paired skeleton + wrist IMU data (no real person recorded any of it).

Made for skeleton-to-sensor distillation (PSKD, Ni, Ngu & Yan, ACM MM 2022, arXiv 2208.08090)
where no paired data ships with the project. Everything it produces is synthetic and must be
labelled so wherever it is reported.

Model: a 20-joint kinematic tree (the Kinect v1 joint set in UTD-MHAD's order,
`data_prep.skeleton_topology.KINECT_V1_JOINTS`) with per-subject height, arm, leg and shoulder
proportions, tempo and amplitude. Body frame: x to the subject's left, y up, z forward (right
handed; gravity is -y). Every joint j has a rotation L_j = Rz(γ) Ry(β) Rx(α) relative to its
parent; G_j = G_parent L_j and a child c sits at p_j + G_j @ offset_c (rest pose: upright, arms
hanging). Each activity is a smooth function of time giving the root position and every joint's
angles, with per-trial phase and amplitude/tempo jitter.

Virtual IMU on the right wrist, its frame that of the forearm (G of the right elbow):
  acc  = G^T (d²p_wrist/dt² - g) / 9.80665   (specific force in g: a still sensor reads 1 g)
  gyro = vee(G^T dG/dt) in deg/s              (body-frame angular velocity)
The derivatives are 4th-order central differences with step `fd_step_s` (1 ms by default, an
internal rate of 1 kHz) around every output sample: the pose is smooth, so this is the
noise-free signal sampled at the output rate (truncation error below 1e-6 g). Then a per-trial
bias and white noise are added (accelerometer and gyroscope), and white jitter to the skeleton.

The activity set is designed so that the wrist accelerometer alone cannot separate some classes
the skeleton separates (`ACC_AMBIGUOUS`): `stand` and `sit` move the right arm identically (the
legs differ), `wave_right` and `wave_both` wave the right hand identically (the left arm differs;
a 0.1 deg trunk sway, about 0.02 g, is the only trace at the wrist). That is what makes
skeleton-to-sensor distillation meaningful here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from data_prep.skeleton_topology import KINECT_V1_JOINTS, KINECT_V1_PARENTS

G0 = 9.80665  # standard gravity, m/s^2
GRAVITY = np.array([0.0, -G0, 0.0])
ACTIVITIES: tuple[str, ...] = (
    "walk",
    "jog",
    "wave_right",
    "wave_both",
    "clap",
    "punch",
    "squat",
    "arm_circle",
    "stand",
    "sit",
)
#: class pairs the right-wrist accelerometer cannot (or can barely) tell apart
ACC_AMBIGUOUS: tuple[tuple[str, str], ...] = (("stand", "sit"), ("wave_right", "wave_both"))
J = {name: i for i, name in enumerate(KINECT_V1_JOINTS)}
SENSOR_JOINT = J["right_wrist"]
SENSOR_SEGMENT = J["right_elbow"]  # the forearm's orientation is the sensor frame
X, Y, Z = 0, 1, 2


@dataclass(frozen=True)
class Pose:
    """Root position [n, 3] (m) and joint angles [n, 20, 3] (rad; α, β, γ about x, y, z)."""

    root: np.ndarray
    angles: np.ndarray


PoseFn = Callable[[np.ndarray], Pose]


@dataclass(frozen=True)
class Subject:
    """Body proportions and movement style of one synthetic subject."""

    height: float = 1.75
    arm: float = 1.0
    leg: float = 1.0
    shoulder: float = 1.0
    tempo: float = 1.0
    amplitude: float = 1.0

    def offsets(self) -> np.ndarray:
        """Bone offsets [20, 3] of each joint from its parent, in the parent's frame (m)."""
        h, off = self.height, np.zeros((len(KINECT_V1_JOINTS), 3))
        sw = 0.10 * h * self.shoulder
        bones = {
            "spine": (0, 0.12 * h, 0),
            "shoulder_center": (0, 0.17 * h, 0),
            "head": (0, 0.10 * h, 0),
            "left_shoulder": (sw, -0.02 * h, 0),
            "right_shoulder": (-sw, -0.02 * h, 0),
            "left_hip": (0.05 * h, -0.03 * h, 0),
            "right_hip": (-0.05 * h, -0.03 * h, 0),
        }
        for side in ("left", "right"):
            bones[f"{side}_elbow"] = (0, -0.17 * h * self.arm, 0)
            bones[f"{side}_wrist"] = (0, -0.15 * h * self.arm, 0)
            bones[f"{side}_hand"] = (0, -0.05 * h * self.arm, 0)
            bones[f"{side}_knee"] = (0, -0.245 * h * self.leg, 0)
            bones[f"{side}_ankle"] = (0, -0.245 * h * self.leg, 0)
            bones[f"{side}_foot"] = (0, -0.03 * h, 0.06 * h)
        for name, v in bones.items():
            off[J[name]] = v
        return off

    def hip_height(self) -> float:
        """Height of the root (hip centre) above the floor when standing (feet on y = 0)."""
        off = self.offsets()
        return -sum(off[J[n], 1] for n in ("right_hip", "right_knee", "right_ankle", "right_foot"))


def _topological_order() -> list[int]:
    order = [KINECT_V1_PARENTS.index(-1)]
    for j in order:
        order += [c for c, p in enumerate(KINECT_V1_PARENTS) if p == j]
    return order


TOPOLOGICAL_ORDER = _topological_order()


def euler_matrices(angles: np.ndarray) -> np.ndarray:
    """Rz(γ) Ry(β) Rx(α) for angles [..., 3] = (α, β, γ): rotation matrices [..., 3, 3]."""
    ca, cb, cg = np.moveaxis(np.cos(angles), -1, 0)
    sa, sb, sg = np.moveaxis(np.sin(angles), -1, 0)
    R = np.empty((*angles.shape[:-1], 3, 3))
    R[..., 0, 0] = cg * cb
    R[..., 0, 1] = cg * sb * sa - sg * ca
    R[..., 0, 2] = cg * sb * ca + sg * sa
    R[..., 1, 0] = sg * cb
    R[..., 1, 1] = sg * sb * sa + cg * ca
    R[..., 1, 2] = sg * sb * ca - cg * sa
    R[..., 2, 0] = -sb
    R[..., 2, 1] = cb * sa
    R[..., 2, 2] = cb * ca
    return R


def chain_to(joint: int) -> list[int]:
    """The joints from the root down to `joint`, in order."""
    chain = [joint]
    while KINECT_V1_PARENTS[chain[-1]] >= 0:
        chain.append(KINECT_V1_PARENTS[chain[-1]])
    return chain[::-1]


def forward_kinematics(
    offsets: np.ndarray, pose: Pose, joints: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions [n, 20, 3] and global joint rotations [n, 20, 3, 3].

    `joints` (closed under parents, in topological order) limits the work to those joints;
    the others are left NaN.
    """
    joints = TOPOLOGICAL_ORDER if joints is None else list(joints)
    n, k = pose.angles.shape[:2]
    pos, rot = np.full((n, k, 3), np.nan), np.full((n, k, 3, 3), np.nan)
    local = euler_matrices(pose.angles[:, joints])
    for i, j in enumerate(joints):
        parent = KINECT_V1_PARENTS[j]
        if parent < 0:
            pos[:, j], rot[:, j] = pose.root, local[:, i]
        else:
            pos[:, j] = pos[:, parent] + rot[:, parent] @ offsets[j]
            rot[:, j] = rot[:, parent] @ local[:, i]
    return pos, rot


def virtual_imu(
    pose_fn: PoseFn, offsets: np.ndarray, t: np.ndarray, fd_step_s: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free skeleton [n, 20, 3] (m), wrist acc [n, 3] (g) and gyro [n, 3] (deg/s) at `t`."""
    h, chain = fd_step_s, chain_to(SENSOR_JOINT)
    skeleton, rot = forward_kinematics(offsets, pose_fn(t))
    p, R = {0: skeleton[:, SENSOR_JOINT]}, {0: rot[:, SENSOR_SEGMENT]}
    for k in (-2, -1, 1, 2):  # the stencil needs the root-to-wrist chain only
        pos_k, rot_k = forward_kinematics(offsets, pose_fn(t + k * h), chain)
        p[k], R[k] = pos_k[:, SENSOR_JOINT], rot_k[:, SENSOR_SEGMENT]
    accel = (-p[2] + 16 * p[1] - 30 * p[0] + 16 * p[-1] - p[-2]) / (12 * h * h)
    r_dot = (-R[2] + 8 * R[1] - 8 * R[-1] + R[-2]) / (12 * h)
    frame_t = np.swapaxes(R[0], -1, -2)
    acc = np.einsum("nij,nj->ni", frame_t, accel - GRAVITY) / G0
    w = frame_t @ r_dot  # skew-symmetric [ω]x in the sensor frame
    gyro = np.degrees(np.stack([w[:, 2, 1], w[:, 0, 2], w[:, 1, 0]], axis=1))
    return skeleton, acc, gyro


# ---------------------------------------------------------------- activities (joint angles)


@dataclass(frozen=True)
class Style:
    """Per-trial movement parameters: tempo and amplitude (subject × trial jitter), phase, rest."""

    tempo: float
    amplitude: float
    phase: float
    rest_abduction: float  # rad, arms hanging slightly away from the body
    sway_phase: float


def _sin(f: float, t: np.ndarray, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * f * t + phase)


def _base(t: np.ndarray, body: Subject, s: Style) -> tuple[np.ndarray, np.ndarray]:
    """Standing, arms hanging, elbows slightly bent, a few millimetres of postural sway."""
    root = np.zeros((len(t), 3))
    root[:, X] = 0.004 * _sin(0.23, t, s.sway_phase)
    root[:, Y] = body.hip_height()
    root[:, Z] = 0.003 * _sin(0.31, t, 2 * s.sway_phase)
    ang = np.zeros((len(t), len(KINECT_V1_JOINTS), 3))
    ang[:, J["right_shoulder"], Z] = -s.rest_abduction
    ang[:, J["left_shoulder"], Z] = s.rest_abduction
    ang[:, [J["right_elbow"], J["left_elbow"]], X] = -np.radians(10)
    return root, ang


def _set_flex(ang: np.ndarray, joint: str, degrees: np.ndarray | float) -> None:
    """Flexion of a shoulder/hip/elbow (forward: -x rotation) or a knee (backward: +x)."""
    sign = 1.0 if joint.endswith("knee") else -1.0
    ang[:, J[joint], X] = sign * np.radians(degrees)


def _gait(t: np.ndarray, body: Subject, s: Style, freq: float, k: dict[str, float]) -> Pose:
    root, ang = _base(t, body, s)
    a, f = s.amplitude, freq * s.tempo
    phi = 2 * np.pi * f * t + s.phase
    for side, sign in (("left", 1.0), ("right", -1.0)):
        _set_flex(ang, f"{side}_hip", sign * a * k["hip"] * np.sin(phi))
        _set_flex(
            ang, f"{side}_knee", k["knee0"] + a * k["knee"] * (1 + np.sin(phi + sign * 2)) / 2
        )
        _set_flex(ang, f"{side}_shoulder", -sign * a * k["shoulder"] * np.sin(phi))
        _set_flex(ang, f"{side}_elbow", k["elbow0"] + a * 8 * np.sin(phi))
    ang[:, J["spine"], X] = np.radians(k["lean"])
    ang[:, J["spine"], Y] = np.radians(4 * a) * np.sin(phi)
    root[:, Y] += k["bounce"] * a * np.cos(2 * phi)
    root[:, X] += 0.015 * a * np.sin(phi)
    return Pose(root, ang)


def _wave(t: np.ndarray, body: Subject, s: Style, both: bool) -> Pose:
    root, ang = _base(t, body, s)
    f = 2.0 * s.tempo
    swing = np.radians(20 + 25 * s.amplitude * _sin(f, t, s.phase))
    ang[:, J["right_shoulder"], Z] = -np.radians(140)
    ang[:, J["right_elbow"], X] = 0.0
    ang[:, J["right_elbow"], Z] = -swing
    if both:
        ang[:, J["left_shoulder"], Z] = np.radians(140)
        ang[:, J["left_elbow"], X] = 0.0
        ang[:, J["left_elbow"], Z] = np.radians(20 + 25 * s.amplitude * _sin(f, t, 2 * s.phase))
        ang[:, J["spine"], Z] = np.radians(0.1) * _sin(f, t, 2 * s.phase)
    return Pose(root, ang)


def _clap(t: np.ndarray, body: Subject, s: Style) -> Pose:
    root, ang = _base(t, body, s)
    close = 10 + 12 * s.amplitude * (1 + _sin(2.2 * s.tempo, t, s.phase))
    for side, sign in (("left", -1.0), ("right", 1.0)):
        _set_flex(ang, f"{side}_shoulder", 75)
        ang[:, J[f"{side}_shoulder"], Y] = sign * np.radians(close)
        ang[:, J[f"{side}_shoulder"], Z] = 0.0
        _set_flex(ang, f"{side}_elbow", 30)
    return Pose(root, ang)


def _punch(t: np.ndarray, body: Subject, s: Style) -> Pose:
    root, ang = _base(t, body, s)
    u = ((1 - np.cos(2 * np.pi * 1.1 * s.tempo * t + s.phase)) / 2) ** 3
    _set_flex(ang, "right_shoulder", 30 + 55 * s.amplitude * u)
    _set_flex(ang, "right_elbow", 110 - 105 * u)
    _set_flex(ang, "left_shoulder", 40)
    _set_flex(ang, "left_elbow", 110)
    ang[:, J["spine"], Y] = np.radians(10) * u
    return Pose(root, ang)


def _squat(t: np.ndarray, body: Subject, s: Style) -> Pose:
    root, ang = _base(t, body, s)
    u = (1 - np.cos(2 * np.pi * t * s.tempo / 3.0 + s.phase)) / 2
    hip = np.radians(80 * min(s.amplitude, 1.1)) * u
    for side in ("left", "right"):
        ang[:, J[f"{side}_hip"], X] = -hip
        ang[:, J[f"{side}_knee"], X] = 2 * hip
        ang[:, J[f"{side}_ankle"], X] = -hip  # the foot stays flat
        _set_flex(ang, f"{side}_shoulder", 80)
        ang[:, J[f"{side}_shoulder"], Z] = 0.0
        _set_flex(ang, f"{side}_elbow", 5)
    ang[:, J["spine"], X] = 0.4 * hip
    off = body.offsets()
    leg = -(off[J["right_knee"], 1] + off[J["right_ankle"], 1])
    root[:, Y] -= leg * (1 - np.cos(hip))  # knee = 2 * hip keeps the foot under the hip
    return Pose(root, ang)


def _arm_circle(t: np.ndarray, body: Subject, s: Style) -> Pose:
    root, ang = _base(t, body, s)
    ang[:, J["right_shoulder"], X] = -(2 * np.pi * 0.8 * s.tempo * t + s.phase)
    ang[:, J["right_shoulder"], Z] = -np.radians(15)
    _set_flex(ang, "right_elbow", 5)
    return Pose(root, ang)


def _sit(t: np.ndarray, body: Subject, s: Style) -> Pose:
    root, ang = _base(t, body, s)  # the arms hang exactly as in `stand`
    for side in ("left", "right"):
        _set_flex(ang, f"{side}_hip", 90)
        _set_flex(ang, f"{side}_knee", 90)
    root[:, Y] -= -body.offsets()[J["right_knee"], 1]  # the thighs are horizontal
    return Pose(root, ang)


_ACTIVITY_FNS: dict[str, Callable[[np.ndarray, Subject, Style], Pose]] = {
    "walk": lambda t, b, s: _gait(
        t, b, s, 0.9, dict(hip=25, knee0=5, knee=35, shoulder=20, elbow0=15, lean=0, bounce=0.02)
    ),
    "jog": lambda t, b, s: _gait(
        t, b, s, 1.35, dict(hip=35, knee0=20, knee=50, shoulder=30, elbow0=85, lean=8, bounce=0.05)
    ),
    "wave_right": lambda t, b, s: _wave(t, b, s, both=False),
    "wave_both": lambda t, b, s: _wave(t, b, s, both=True),
    "clap": _clap,
    "punch": _punch,
    "squat": _squat,
    "arm_circle": _arm_circle,
    "stand": lambda t, b, s: Pose(*_base(t, b, s)),
    "sit": _sit,
}


def activity_pose(activity: str, body: Subject, style: Style) -> PoseFn:
    """The pose of `body` doing `activity` in `style`, as a function of time (s)."""
    if activity not in _ACTIVITY_FNS:
        raise ValueError(f"unknown synthetic activity {activity!r}; known: {list(ACTIVITIES)}")
    fn = _ACTIVITY_FNS[activity]
    return lambda t: fn(np.asarray(t, dtype=np.float64), body, style)


# ---------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Noise:
    """Sensor imperfections (0 everywhere gives the exact physics)."""

    acc_noise_g: float = 0.02
    acc_bias_g: float = 0.03
    gyro_noise_dps: float = 1.5
    gyro_bias_dps: float = 1.0
    skeleton_noise_m: float = 0.005


@dataclass
class SynthTrial:
    """One SYNTHETIC trial: paired skeleton and wrist IMU at `rate_hz`."""

    subject: int
    activity: str
    trial: int
    rate_hz: float
    skeleton: np.ndarray  # [T, 20, 3] m
    acc: np.ndarray  # [T, 3] g
    gyro: np.ndarray  # [T, 3] deg/s


def make_subject(rng: np.random.Generator) -> Subject:
    """A random adult: height 1.55-1.90 m, limb proportions ±7 %, tempo ±15 %, amplitude ±20 %."""
    return Subject(
        height=rng.uniform(1.55, 1.90),
        arm=rng.uniform(0.93, 1.07),
        leg=rng.uniform(0.93, 1.07),
        shoulder=rng.uniform(0.9, 1.1),
        tempo=rng.uniform(0.85, 1.15),
        amplitude=rng.uniform(0.8, 1.2),
    )


def make_style(body: Subject, rng: np.random.Generator) -> Style:
    """Trial-level jitter around the subject's style."""
    return Style(
        tempo=body.tempo * rng.uniform(0.95, 1.05),
        amplitude=body.amplitude * rng.uniform(0.9, 1.1),
        phase=rng.uniform(0, 2 * np.pi),
        rest_abduction=np.radians(rng.uniform(5, 12)),
        sway_phase=rng.uniform(0, 2 * np.pi),
    )


def generate(
    n_subjects: int = 12,
    trials: int = 3,
    seed: int = 0,
    duration_s: float = 12.0,
    rate_hz: float = 50.0,
    activities: Sequence[str] = ACTIVITIES,
    noise: Noise | None = None,
) -> list[SynthTrial]:
    """SYNTHETIC paired trials: every subject does every activity `trials` times.

    Deterministic for a given seed: subject k's body comes from (seed, k), each trial's style
    and noise from (seed, k, activity, trial), so adding subjects leaves the others unchanged.
    """
    unknown = [a for a in activities if a not in ACTIVITIES]
    if unknown or not activities:
        raise ValueError(f"synthetic activities {list(activities)}: choose from {list(ACTIVITIES)}")
    if n_subjects < 1 or trials < 1 or not duration_s > 0 or not rate_hz > 0:
        raise ValueError(
            f"need n_subjects >= 1, trials >= 1, duration_s > 0, rate_hz > 0; got {n_subjects}, "
            f"{trials}, {duration_s}, {rate_hz}"
        )
    noise = Noise() if noise is None else noise
    t = np.arange(int(round(duration_s * rate_hz))) / rate_hz
    out = []
    for k in range(n_subjects):
        body = make_subject(np.random.default_rng([seed, k]))
        offsets = body.offsets()
        for a, activity in enumerate(ACTIVITIES):
            if activity not in activities:
                continue
            for trial in range(trials):
                rng = np.random.default_rng([seed, k, a, trial, 1])
                pose_fn = activity_pose(activity, body, make_style(body, rng))
                skel, acc, gyro = virtual_imu(pose_fn, offsets, t)
                n = len(t)
                acc += rng.normal(0, noise.acc_bias_g, 3) + rng.normal(0, noise.acc_noise_g, (n, 3))
                gyro += rng.normal(0, noise.gyro_bias_dps, 3)
                gyro += rng.normal(0, noise.gyro_noise_dps, (n, 3))
                skel += rng.normal(0, noise.skeleton_noise_m, skel.shape)
                out.append(SynthTrial(k + 1, activity, trial + 1, rate_hz, skel, acc, gyro))
    return out
