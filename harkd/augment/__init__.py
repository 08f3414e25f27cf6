"""Batched, reproducible time-series augmentation (docs/architecture.md 6).

Importing the package registers every op; `build_policy` turns a policy name into a callable
`(x [B, C, T], y_soft [B, K], generator) -> (x, y_soft)`.
"""

from harkd.augment import mixing, noise_scale, resolution, rotation, segments, tsaug_ops, warps
from harkd.augment.base import AugmentContext, Augmenter, get_op, list_ops
from harkd.augment.policies import Policy, build_policy, list_policies

__all__ = [
    "AugmentContext",
    "Augmenter",
    "Policy",
    "build_policy",
    "get_op",
    "list_ops",
    "list_policies",
    "mixing",
    "noise_scale",
    "resolution",
    "rotation",
    "segments",
    "tsaug_ops",
    "warps",
]
