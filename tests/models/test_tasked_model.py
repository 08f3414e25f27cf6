"""The `tasked` sensor-token transformer: sensors embedded on their own, their magnitude channel,
sizes against the tiny budget, and the inputs it refuses (the registry-wide contract tests cover
shapes, features, ONNX export and gradients)."""

from __future__ import annotations

import pytest
import torch

from harkd.deploy.flops import count_params
from harkd.models import build_model, list_models
from harkd.models.tasked import TASKEDNet

#: the tiny students' parameter budget (docs/architecture.md 15: tiny deploys 4,486)
TINY_BUDGET = 5_000


def test_registered_as_teacher_and_student() -> None:
    roles = list_models()
    assert roles["tasked"] == "teacher" and roles["tasked_s"] == "student"


def test_sizes_and_the_tiny_budget() -> None:
    sizes = {(name, c): count_params(build_model(name, c, 6, 128))
             for name in ("tasked", "tasked_s") for c in (3, 6)}
    print(sizes)
    assert sizes == {("tasked", 3): 103_110, ("tasked", 6): 105_286,
                     ("tasked_s", 3): 2_902, ("tasked_s", 6): 3_446}
    assert sizes["tasked_s", 3] <= TINY_BUDGET < sizes["tasked", 3]


def test_each_sensor_is_embedded_on_its_own() -> None:
    """Before attention (feature "stage1", [B, sensors * d_model, T']) a sensor's tokens depend
    on its own three channels only; after it, every sensor sees the others."""
    torch.manual_seed(0)
    model = build_model("tasked", 6, 6, 128, d_model=16, heads=2, depth=1, ffn=16).eval()
    x = torch.randn(2, 6, 128)
    gyro_changed = x.clone()
    gyro_changed[:, 3:] += 1.0
    with torch.no_grad():
        a, b = model(x).features, model(gyro_changed).features
    assert torch.equal(a["stage1"][:, :16], b["stage1"][:, :16])  # the acc sensor's tokens
    assert not torch.allclose(a["stage1"][:, 16:], b["stage1"][:, 16:])
    assert not torch.allclose(a["stage2"][:, :16], b["stage2"][:, :16])  # attention mixes


def test_the_magnitude_channel_reads_the_sensor_norm() -> None:
    """A sensor's embedding sees its axes and their Euclidean norm: with the axis weights
    zeroed, a rotation of the axes (which keeps the norm) leaves the tokens unchanged."""
    torch.manual_seed(0)
    model = TASKEDNet(3, 6, 128, d_model=16, heads=2, depth=1, ffn=16).eval()
    with torch.no_grad():
        model.embed.weight[:, :3] = 0.0  # only the magnitude input remains
        x = torch.randn(2, 3, 128)
        rotated = torch.stack([-x[:, 1], x[:, 0], x[:, 2]], dim=1)  # 90 degrees about z
        tokens, turned = model(x).features["stage1"], model(rotated).features["stage1"]
    assert torch.allclose(tokens, turned, atol=1e-6)


@pytest.mark.parametrize(
    ("channels", "options", "message"),
    [
        (4, {}, "in_channels \\(4\\) must be tri-axial sensors, a multiple of 3"),
        (3, {"d_model": 30, "heads": 4}, "d_model \\(30\\) must be divisible by heads \\(4\\)"),
        (3, {"patch": 256}, "window \\(128\\) is shorter than patch \\(256\\)"),
    ],
)
def test_bad_options_are_named(channels: int, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"tasked: {message}"):
        build_model("tasked", channels, 6, 128, **options)


def test_a_window_not_a_multiple_of_the_patch() -> None:
    """The last window % patch samples are left out; the shapes stay consistent."""
    out = build_model("tasked_s", 3, 6, 100).eval()(torch.randn(2, 3, 100))
    assert out.logits.shape == (2, 6) and out.features["final"].shape == (2, 16, 12)
