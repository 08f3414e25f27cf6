"""Skeleton (`stgcn`) and fusion teachers on their intended inputs: graph, features, ONNX."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from data_prep.skeleton_topology import KINECT_V1_JOINTS, KINECT_V1_PARENTS
from harkd.models import LogitsOnly, build_model
from harkd.models.skeleton import graph_partitions


def test_kinect_partitions_follow_the_bone_tree() -> None:
    A = graph_partitions("auto", 20)
    assert A.shape == (3, 20, 20)
    torch.testing.assert_close(A[0], torch.eye(20))
    elbow, wrist = KINECT_V1_JOINTS.index("right_elbow"), KINECT_V1_JOINTS.index("right_wrist")
    assert A[1, elbow, wrist] == 1.0  # the wrist hears its parent
    assert A[2, wrist, elbow] == 1.0  # the elbow hears its child
    # every joint but the root hears exactly its parent; column sums are 1 or 0
    assert A[1].sum(dim=0).tolist() == [0.0 if p < 0 else 1.0 for p in KINECT_V1_PARENTS]
    assert set(A[2].sum(dim=0).tolist()) == {0.0, 1.0}
    assert graph_partitions("auto", 2).shape == (2, 2, 2)
    with pytest.raises(ValueError, match="needs 20 joints"):
        graph_partitions("kinect20", 5)


def test_stgcn_mixes_information_only_along_bones_in_its_first_block() -> None:
    """One block of graph conv sees a joint and its neighbours: perturbing the left foot cannot
    change the right hand's map after block 1 (a path of more than one bone)."""
    torch.manual_seed(0)
    model = build_model("stgcn", 60, 5, 64, widths=[8], strides=[1]).eval()
    x = torch.randn(1, 60, 64)
    y = x.clone()
    foot = KINECT_V1_JOINTS.index("left_foot")
    y[:, 3 * foot : 3 * foot + 3] += 1.0
    with torch.no_grad():
        a, b = model.trunk(x)[0], model.trunk(y)[0]
    changed = (a - b).abs().amax(dim=(0, 1, 2)) > 1e-6  # per joint
    ankle, hand = KINECT_V1_JOINTS.index("left_ankle"), KINECT_V1_JOINTS.index("right_hand")
    assert changed[foot] and changed[ankle] and not changed[hand]


@pytest.mark.parametrize(("name", "channels"), [("stgcn", 60), ("fusion", 63)])
def test_intended_inputs_features_and_onnx(name: str, channels: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, channels, 10, 128).eval()
    out = model(torch.randn(2, channels, 128))
    assert out.logits.shape == (2, 10)
    assert [tuple(out.features[f"stage{i}"].shape[1:]) for i in (1, 2, 3)] == [
        (16 * (2 if name == "fusion" else 1), 64),
        (32 * (2 if name == "fusion" else 1), 32),
        (64 * (2 if name == "fusion" else 1), 16),
    ]
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogitsOnly(model),
            torch.randn(1, channels, 128),
            buf,
            opset_version=17,
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        )
    x = torch.randn(3, channels, 128)
    got = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()}
    )[0]
    with torch.no_grad():
        assert np.abs(got - model(x).logits.numpy()).max() <= 1e-5


def test_fusion_reads_the_sensor_from_the_last_channels() -> None:
    torch.manual_seed(0)
    model = build_model("fusion", 63, 4, 64).eval()
    x = torch.randn(2, 63, 64)
    y = x.clone()
    y[:, 60:] += 1.0
    with torch.no_grad():
        fx, fy = model(x).features["stage1"], model(y).features["stage1"]
    skeleton_half = fx.shape[1] // 2
    torch.testing.assert_close(fx[:, :skeleton_half], fy[:, :skeleton_half])
    assert (fx[:, skeleton_half:] - fy[:, skeleton_half:]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="sensor_channels=63"):
        build_model("fusion", 63, 4, 64, sensor_channels=63)
