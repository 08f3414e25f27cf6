"""Rotation: tri-axial norms kept, one rotation per sensor shared by its acc and gyro."""

from __future__ import annotations

import math

import pytest
import torch

from harkd.augment import AugmentContext
from harkd.augment.rotation import Rotation, haar_angles, sensor_groups


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rotation(batch, **kw) -> Rotation:
    return Rotation(context=AugmentContext(groups=batch.groups, norm=batch.norm), **kw)


def fit_rotation(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Least-squares R [B, 3, 3] with after ~ R @ before (vectors [B, 3, N])."""
    return torch.linalg.lstsq(before.transpose(1, 2), after.transpose(1, 2)).solution.transpose(
        1, 2
    )


def test_norm_of_every_triaxial_vector_is_kept(real_batch):
    out, y = rotation(real_batch)(real_batch.x, real_batch.y_soft, gen())
    assert y is real_batch.y_soft
    raw_in, raw_out = real_batch.raw(), real_batch.raw(out)
    for idx in real_batch.groups.values():
        torch.testing.assert_close(
            raw_out[:, idx].norm(dim=1), raw_in[:, idx].norm(dim=1), atol=1e-4, rtol=1e-4
        )
    assert (raw_out - raw_in).abs().max() > 0.1


def test_acc_and_gyro_of_a_sensor_share_the_rotation(real_batch):
    """One R per sample explains acc and gyro together (with ~0 residual)."""
    out, _ = rotation(real_batch, max_angle_deg=180.0)(real_batch.x, real_batch.y_soft, gen(2))
    raw_in, raw_out = real_batch.raw().double(), real_batch.raw(out).double()
    acc, gyro = real_batch.groups["acc"], real_batch.groups["gyro"]
    before = torch.cat([raw_in[:, acc], raw_in[:, gyro]], dim=2)
    after = torch.cat([raw_out[:, acc], raw_out[:, gyro]], dim=2)
    R = fit_rotation(before, after)
    torch.testing.assert_close(R @ before, after, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(
        R @ R.transpose(1, 2), torch.eye(3, dtype=R.dtype).expand_as(R), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        torch.linalg.det(R), torch.ones(len(R), dtype=R.dtype), atol=1e-3, rtol=0
    )


def test_pairing_rule_by_sensor_prefix(synthetic_batch):
    """hand_acc/hand_gyro share a rotation, ankle_acc gets its own, skeleton is untouched."""
    v = synthetic_batch.x[:, :3]
    x = torch.cat([v, v, v, synthetic_batch.x[:, 3:5]], dim=1)  # identical vectors in three groups
    groups = {
        "hand_acc": [0, 1, 2],
        "hand_gyro": [3, 4, 5],
        "ankle_acc": [6, 7, 8],
        "skeleton": [9, 10],
    }
    assert sorted(sensor_groups(groups)) == ["ankle", "hand"]
    op = Rotation(context=AugmentContext(groups=groups))
    out, _ = op(x, synthetic_batch.y_soft, gen())
    torch.testing.assert_close(out[:, 3:6], out[:, 0:3])
    assert (out[:, 6:9] - out[:, 0:3]).abs().amax(dim=(1, 2)).min() > 1e-2
    assert torch.equal(out[:, 9:], x[:, 9:])


@pytest.mark.parametrize("max_deg", [10.0, 45.0])
def test_angle_is_bounded(real_batch, max_deg):
    out, _ = rotation(real_batch, max_angle_deg=max_deg)(real_batch.x, real_batch.y_soft, gen())
    acc, gyro = real_batch.groups["acc"], real_batch.groups["gyro"]
    raw_in, raw_out = real_batch.raw().double(), real_batch.raw(out).double()
    R = fit_rotation(
        torch.cat([raw_in[:, acc], raw_in[:, gyro]], 2),
        torch.cat([raw_out[:, acc], raw_out[:, gyro]], 2),
    )
    angle = torch.rad2deg(torch.arccos(((R.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)))
    assert float(angle.max()) <= max_deg + 0.5 and float(angle.max()) > max_deg / 3


def test_gravity_axis_keeps_the_mean_acceleration(real_batch):
    out, _ = rotation(real_batch, axis="gravity")(real_batch.x, real_batch.y_soft, gen())
    acc = real_batch.groups["acc"]
    mean_in, mean_out = real_batch.raw()[:, acc].mean(-1), real_batch.raw(out)[:, acc].mean(-1)
    torch.testing.assert_close(mean_out, mean_in, atol=1e-4, rtol=1e-4)
    assert (real_batch.raw(out) - real_batch.raw()).abs().max() > 0.05


def test_fixed_axis_keeps_that_component(synthetic_batch):
    out, _ = rotation(synthetic_batch, axis=[0, 0, 2])(
        synthetic_batch.x, synthetic_batch.y_soft, gen()
    )
    raw_in, raw_out = synthetic_batch.raw(), synthetic_batch.raw(out)
    torch.testing.assert_close(raw_out[:, [2, 5]], raw_in[:, [2, 5]], atol=1e-4, rtol=1e-4)


def test_haar_angle_distribution():
    """Uniform rotations have E[cos angle] = -1/2 (the trace of R averages 0)."""
    u = torch.rand(20000, generator=gen(), dtype=torch.float64)
    angles = haar_angles(u, math.pi)
    assert abs(float(torch.cos(angles).mean()) + 0.5) < 0.02
    assert float(haar_angles(u, math.radians(30)).max()) <= math.radians(30) + 1e-9


def test_invalid_layouts_raise():
    with pytest.raises(ValueError, match="3 channels"):
        Rotation(context=AugmentContext(groups={"acc": [0, 1]}))
    with pytest.raises(ValueError, match="no tri-axial"):
        Rotation(context=AugmentContext(groups={"skeleton": [0, 1, 2]}))
    with pytest.raises(ValueError, match="needs an acc group"):
        Rotation(axis="gravity", context=AugmentContext(groups={"wrist_gyro": [0, 1, 2]}))
    with pytest.raises(ValueError, match="out of range"):
        Rotation(context=AugmentContext(groups={"acc": [4, 5, 6]}))(
            torch.zeros(2, 3, 8), torch.zeros(2, 2), gen()
        )
