"""The Kinect v1 skeleton: its 20 joints in UTD-MHAD's order, the bone tree, channel names.

Shared by the `utd_mhad` reader, the synthetic skeleton generator (`data_prep.synth_skeleton`)
and the skeleton models (`harkd.models.skeleton`), so that none of them imports another.
A skeleton is flattened joint-major into 60 channels: x, y, z of joint 0, then of joint 1, ...
"""

from __future__ import annotations

#: Kinect v1 joints in UTD-MHAD's order (the synthetic generator uses the same set and order)
KINECT_V1_JOINTS: tuple[str, ...] = (
    "head",
    "shoulder_center",
    "spine",
    "hip_center",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "left_hand",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "right_hand",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_foot",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_foot",
)
#: the bone tree: joint -> parent joint (hip_center is the root)
PARENT_OF: dict[str, str] = {
    "head": "shoulder_center",
    "shoulder_center": "spine",
    "spine": "hip_center",
    "left_shoulder": "shoulder_center",
    "left_elbow": "left_shoulder",
    "left_wrist": "left_elbow",
    "left_hand": "left_wrist",
    "right_shoulder": "shoulder_center",
    "right_elbow": "right_shoulder",
    "right_wrist": "right_elbow",
    "right_hand": "right_wrist",
    "left_hip": "hip_center",
    "left_knee": "left_hip",
    "left_ankle": "left_knee",
    "left_foot": "left_ankle",
    "right_hip": "hip_center",
    "right_knee": "right_hip",
    "right_ankle": "right_knee",
    "right_foot": "right_ankle",
}
#: parent index of each joint (-1: the root)
KINECT_V1_PARENTS: tuple[int, ...] = tuple(
    KINECT_V1_JOINTS.index(PARENT_OF[j]) if j in PARENT_OF else -1 for j in KINECT_V1_JOINTS
)


def skeleton_channels() -> list[str]:
    """Channel names of the flattened skeleton: `<joint>_<axis>`, joint-major."""
    return [f"{j}_{a}" for j in KINECT_V1_JOINTS for a in "xyz"]
