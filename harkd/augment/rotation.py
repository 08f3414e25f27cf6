"""Random 3-D rotation of every tri-axial sensor (Um et al., ICMI 2017, arXiv 1706.00527).

A watch sits on the wrist at a slightly different angle every day; rotating the sensor frame
simulates that. The same rotation must act on every vector quantity a sensor measures (its
accelerometer, gyroscope and magnetometer), because they share one frame.

Pairing rule. A channel group named `<sensor>_<modality>` or just `<modality>` is a vector
group when its modality starts with `acc`, `gyro` or `mag` (e.g. `acc`, `gyro`,
`hand_acc16`, `ankle_gyro`); it must hold exactly 3 channels in x, y, z order. Groups with the
same `<sensor>` prefix (the empty prefix included: `acc` pairs with `gyro`) share one rotation
per sample; different sensors get independent rotations. Other groups (skeleton, heart rate,
temperature) are left untouched.

Normalised windows. Rotation is defined in physical units: a per-channel standardisation
`(v - mean) / std` does not commute with it (gravity sits in the means). When the context
carries `norm` (the WindowSet's training-split mean/std per channel), each vector group is
un-normalised, rotated and re-normalised; without `norm` the windows are taken as raw units.

Angles. `axis="any"`: the rotation is drawn from the uniform (Haar) distribution on SO(3)
conditioned on a rotation angle <= `max_angle_deg` (axis uniform on the sphere, angle density
proportional to 1 - cos(angle)); with 180 degrees it is the uniform random rotation.
`axis="gravity"`: rotation about each sample's gravity direction (the mean of that sensor's
accelerometer over the window, in raw units), angle uniform in [-max, max]; a sensor without
an accelerometer group is an error. `axis=[x, y, z]`: rotation about that fixed axis.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from harkd.augment.base import AugmentContext, Augmenter, rand, randn, register_op

_TABLE = 4096  # points of the inverse Haar angle CDF table

_VECTOR = re.compile(r"^(acc|gyro|mag)")


def sensor_groups(groups: dict[str, list[int]]) -> dict[str, dict[str, list[int]]]:
    """Sensor prefix -> {group name: its 3 channel indices} for the vector groups (see module)."""
    out: dict[str, dict[str, list[int]]] = {}
    for name, idx in groups.items():
        sensor, _, modality = name.rpartition("_")
        if not _VECTOR.match(modality):
            continue
        if len(idx) != 3:
            raise ValueError(
                f"rotation: vector group {name!r} must have 3 channels (x, y, z), got {list(idx)}"
            )
        out.setdefault(sensor, {})[name] = [int(i) for i in idx]
    return out


@lru_cache(maxsize=16)
def _haar_table(
    max_angle: float, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Inverse CDF of the Haar rotation angle truncated to [0, max_angle], tabulated at
    `_TABLE` + 1 evenly spaced probabilities: (values, differences to the next value).

    The Haar angle has density (1 - cos a) / pi on [0, pi], CDF (a - sin a) / pi.
    """
    theta = np.linspace(0.0, max_angle, 200_001)
    cdf = theta - np.sin(theta)
    cdf /= cdf[-1]
    table = np.interp(np.linspace(0.0, 1.0, _TABLE + 1), cdf, theta)
    values = torch.from_numpy(table).to(device, dtype)
    return values, torch.diff(values, append=values[-1:])


def haar_angles(u: Tensor, max_angle: float) -> Tensor:
    """Angles for uniforms `u` in [0, 1): Haar angle distribution conditioned on <= max_angle
    (linear interpolation in the inverse-CDF table)."""
    values, steps = _haar_table(float(max_angle), u.device, u.dtype)
    pos = u * _TABLE
    i = pos.long()
    # take: a flat lookup, much lighter than advanced indexing for a few hundred values
    return torch.addcmul(values.take(i), steps.take(i), pos.sub_(i))


#: maps a unit axis a [B, 3] to the flattened cross-product matrix K(a) [B, 9]
_CROSS = torch.tensor(
    [
        [0, 0, 0, 0, 0, -1, 0, 1, 0],  # a_x
        [0, 0, 1, 0, 0, 0, -1, 0, 0],  # a_y
        [0, -1, 0, 1, 0, 0, 0, 0, 0],  # a_z
    ],
    dtype=torch.float64,
)


@lru_cache(maxsize=8)
def _constants(device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """`_CROSS` and the 3x3 identity on `device` in `dtype`."""
    return _CROSS.to(device, dtype), torch.eye(3, device=device, dtype=dtype)


def axis_angle_matrix(axis: Tensor, angle: Tensor) -> Tensor:
    """Rodrigues: rotation matrices [B, 3, 3] about unit `axis` [B, 3] by `angle` [B],
    R = cos(a) I + sin(a) K + (1 - cos(a)) axis axis^T, computed as
    axis axis^T + cos(a) (I - axis axis^T) + sin(a) K (fewer operations)."""
    B = axis.shape[0]
    cross, eye = _constants(axis.device, axis.dtype)
    c, s = torch.cos(angle).view(B, 1, 1), torch.sin(angle).view(B, 1, 1)
    outer = axis.unsqueeze(2) * axis.unsqueeze(1)
    R = torch.addcmul(outer, c, eye - outer)
    return R.addcmul_(s, (axis @ cross).view(B, 3, 3))


@register_op
class Rotation(Augmenter):
    """Rotate every tri-axial sensor by a random rotation per sample (rules in the module doc).

    Args:
        p: probability that a sample is augmented.
        max_angle_deg: largest rotation angle in degrees (0 < max <= 180).
        axis: "any", "gravity" or a fixed [x, y, z] axis.
        context: channel groups and optional normalisation of the batch.
    """

    name = "rotation"

    def __init__(
        self,
        p: float = 1.0,
        max_angle_deg: float = 180.0,
        axis: str | Sequence[float] = "any",
        context: AugmentContext | None = None,
    ) -> None:
        super().__init__(p)
        if not 0.0 < max_angle_deg <= 180.0:
            raise ValueError(f"{self.name}: max_angle_deg must be in (0, 180], got {max_angle_deg}")
        self.max_angle_deg, self.axis = float(max_angle_deg), axis
        context = context or AugmentContext()
        self.sensors = sensor_groups(context.groups)
        if not self.sensors:
            raise ValueError(
                f"{self.name}: no tri-axial acc/gyro/mag group among groups {context.groups}"
            )
        self._fixed_axis = None
        if isinstance(axis, str):
            if axis not in ("any", "gravity"):
                raise ValueError(
                    f"{self.name}: axis must be 'any', 'gravity' or [x, y, z], got {axis!r}"
                )
        else:
            vec = torch.as_tensor([float(a) for a in axis])
            if vec.shape != (3,) or not float(vec.norm()) > 0:
                raise ValueError(
                    f"{self.name}: a fixed axis must be 3 numbers, not all 0, got {axis!r}"
                )
            self._fixed_axis = vec / vec.norm()
        if axis == "gravity":
            no_acc = [s or "<no prefix>" for s, gs in self.sensors.items() if not _acc_group(gs)]
            if no_acc:
                raise ValueError(
                    f"{self.name}: axis='gravity' needs an acc group for sensor(s) {no_acc}"
                )
        self.norm = context.norm
        self._folds: dict[tuple, tuple[Tensor, Tensor]] = {}
        channels = sorted(i for gs in self.sensors.values() for idx in gs.values() for i in idx)
        self._top = channels[-1]
        # when the vector groups are consecutive blocks tiling all channels 0..C-1, the output
        # is the concatenation of the rotated blocks (no copy of the input needed)
        self._tiles = channels == list(range(len(channels))) and all(
            isinstance(_select(idx), slice) for gs in self.sensors.values() for idx in gs.values()
        )

    def _axes(self, x: Tensor, sensor: str, g: torch.Generator, stats: _Stats) -> Tensor:
        B = x.shape[0]
        if self._fixed_axis is not None:
            return self._fixed_axis.to(x.device, x.dtype).expand(B, 3)
        if self.axis == "gravity":
            idx = self.sensors[sensor][_acc_group(self.sensors[sensor])]
            direction = x[:, _select(idx)].mean(dim=-1)
            if stats is not None:  # the mean of the raw signal, from the mean of the normalised one
                sel = _select(idx)
                direction = torch.addcmul(stats[0][sel], direction, stats[1][sel])
        else:
            direction = randn(g, (B, 3), x)
        return direction / direction.norm(dim=-1, keepdim=True).clamp_min_(1e-12)

    def _angles(self, B: int, g: torch.Generator, like: Tensor) -> Tensor:
        max_rad = math.radians(self.max_angle_deg)
        u = rand(g, (B,), like)
        if self.axis == "any":
            return haar_angles(u, max_rad)
        return u.mul_(2 * max_rad).sub_(max_rad)

    def transform(self, x: Tensor, g: torch.Generator) -> Tensor:
        stats = self._norm_stats(x)
        blocks: dict[int, Tensor] = {}
        for sensor, members in self.sensors.items():
            R = axis_angle_matrix(self._axes(x, sensor, g, stats), self._angles(x.shape[0], g, x))
            for idx in members.values():
                v = x[:, _select(idx)]
                if stats is None:
                    blocks[idx[0]] = R @ v
                    continue
                # normalise(R @ raw) = M @ x + b, M = D^-1 R D, b = D^-1 (R m - m) = M mu - mu,
                # D = diag(std), mu = D^-1 m
                ratio, mu = self._fold(idx, stats)
                M = R * ratio
                b = (M @ mu).sub_(mu)
                blocks[idx[0]] = torch.baddbmm(b.unsqueeze(-1), M, v)
        if self._tiles and x.shape[1] == self._top + 1:
            if len(blocks) == 1:
                return blocks[0]
            return torch.cat([blocks[k] for k in sorted(blocks)], dim=1)
        out = x.clone()
        for members in self.sensors.values():
            for idx in members.values():
                out[:, _select(idx)] = blocks[idx[0]]
        return out

    def _fold(self, idx: list[int], stats: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """For one group under `norm`: (std_j / std_i [1, 3, 3], mean / std [3]), cached."""
        mean, std = stats
        key = (idx[0], mean.device, mean.dtype)
        if key not in self._folds:
            m, s = mean[_select(idx)], std[_select(idx)]
            self._folds[key] = (s.view(1, 1, 3) / s.view(1, 3, 1), m / s)
        return self._folds[key]

    def _norm_stats(self, x: Tensor) -> _Stats:
        """(mean [C], std [C]) on x's device, or None for raw-unit windows."""
        C = x.shape[1]
        if self._top >= C:
            raise ValueError(
                f"{self.name}: group channel {self._top} out of range for {C} channels"
            )
        if self.norm is None:
            return None
        mean, std = self.norm["mean"], self.norm["std"]
        if mean.device != x.device or mean.dtype != x.dtype:
            mean, std = mean.to(x.device, x.dtype), std.to(x.device, x.dtype)
        if mean.shape[0] != C:
            raise ValueError(f"{self.name}: norm has {mean.shape[0]} channels, the batch has {C}")
        return mean, std


_Stats = tuple[Tensor, Tensor] | None


def _select(idx: list[int]) -> slice | list[int]:
    """A slice for consecutive channels (a view, no copy), else the index list."""
    if idx == list(range(idx[0], idx[0] + len(idx))):
        return slice(idx[0], idx[0] + len(idx))
    return idx


def _acc_group(members: dict[str, list[int]]) -> str | None:
    """Name of the sensor's first accelerometer group, if any."""
    return next((n for n in members if _VECTOR.match(n.rpartition("_")[2]).group(1) == "acc"), None)
