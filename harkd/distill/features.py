"""Reading named feature maps from models and aligning teacher and student maps.

Models return `ModelOutput.features`: named maps [B, C, T] ("stage1".., "final") or vectors
[B, D] ("embedding"). Feature-based methods pick a (teacher name, student name) pair in YAML;
("final", "final") exists for every model in the registry.

Alignment rule (used wherever two maps are compared element by element, e.g. IE-KD's factors):
channel counts are each method's business (encoders, Gram matrices); temporal lengths are made
equal by adaptive average pooling of the longer map down to the shorter length. Pooling only
ever shrinks, so no values are invented; when one length divides the other, each output step is
the plain mean of an equal block of input steps (cnn1d's "final" has T=32 and transformer's
T=32 too: no pooling); otherwise the blocks are PyTorch's adaptive bins,
floor(i*L/T)..ceil((i+1)*L/T), which may overlap by one step (the tiny students' T=7 for
128-sample windows meets bins of 5-6 of cnn1d's 32 steps).
A vector [B, D] is read as a map with one time step, [B, D, 1].
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

#: the feature pair every teacher/student pair of the registry provides
DEFAULT_PAIR: tuple[str, str] = ("final", "final")


def as_map(f: torch.Tensor) -> torch.Tensor:
    """[B, C, T] unchanged; a vector [B, D] becomes [B, D, 1]."""
    if f.dim() == 2:
        return f.unsqueeze(-1)
    if f.dim() != 3:
        raise ValueError(f"expected a [B, C, T] map or a [B, D] vector, got shape {tuple(f.shape)}")
    return f


def align_time(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bring two maps [B, *, Ta] and [B, *, Tb] to length min(Ta, Tb) (adaptive mean pooling)."""
    a, b = as_map(a), as_map(b)
    length = min(a.shape[-1], b.shape[-1])
    if a.shape[-1] != length:
        a = F.adaptive_avg_pool1d(a, length)
    if b.shape[-1] != length:
        b = F.adaptive_avg_pool1d(b, length)
    return a, b


def input_channels(groups: Mapping[str, list[int]]) -> int:
    """Number of channels of the full window: one more than the largest group index."""
    return 1 + max(i for idx in groups.values() for i in idx)


@torch.no_grad()
def probe_features(model: nn.Module, channels: int, window: int) -> dict[str, tuple[int, ...]]:
    """Feature name -> shape without the batch axis, from one forward pass on zeros.

    The model runs in eval mode (BatchNorm statistics untouched) and gets its mode back.
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        out = model(torch.zeros(2, channels, window, device=device))
    finally:
        model.train(was_training)
    return {name: tuple(f.shape[1:]) for name, f in out.features.items()}


def check_feature_names(
    shapes: Mapping[str, tuple[int, ...]], name: str, who: str, param: str
) -> tuple[int, ...]:
    """Shape of feature `name` of `who`; a clear error naming the YAML parameter otherwise."""
    if name not in shapes:
        raise ValueError(
            f"distill.params.{param}: {who} has no feature {name!r}; available: {sorted(shapes)}"
        )
    return shapes[name]
