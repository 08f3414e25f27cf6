"""Multiply-accumulate (MAC) and parameter counts of a module, by shape propagation.

`count_macs` runs one forward pass on zeros of `input_shape` with forward hooks on every
module and adds, per call:

- Conv1d/Conv2d (any `groups`): out.numel() * (in_channels / groups) * prod(kernel);
- Linear: out.numel() * in_features;
- LSTM / GRU / RNN: per layer, direction and time step, B * gates * (in * H + H * H) with 4, 3
  and 1 gates (the gate projections; element-wise cell updates and biases are not MACs);
- MultiheadAttention: Q, K, V and output projections plus Q·Kᵀ and attention·V
  (B * L * S * E each);
- BatchNorm, LayerNorm, activations, pooling, dropout: 0 (BN folds into the preceding conv at
  export, the others are element-wise);
- any module defining `own_macs(args, output) -> int`: that number, for the work its forward
  does outside its child modules (e.g. a hand-written attention's matmuls).

A parameterised leaf module without a rule raises ValueError instead of being counted as 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from harkd.models.base import deployment_form

_ZERO_MAC = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.Embedding,
)
_GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once), trainable or not."""
    return sum(p.numel() for p in model.parameters())


def deployed_cost(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Parameters and MACs of the model as deployed (`harkd.models.base.deployment_form`:
    training-time branches merged), and its parameter count in training, `train_params`."""
    deployed = deployment_form(model)
    return {
        "params": count_params(deployed),
        "macs": count_macs(deployed, input_shape),
        "train_params": count_params(model),
    }


def _conv_macs(m: nn.modules.conv._ConvNd, args: tuple, out: torch.Tensor) -> int:
    return out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)


def _linear_macs(m: nn.Linear, args: tuple, out: torch.Tensor) -> int:
    return out.numel() * m.in_features


def _rnn_macs(m: nn.RNNBase, args: tuple, out: Any) -> int:
    if m.proj_size:
        raise ValueError(f"count_macs: {type(m).__name__} with proj_size > 0 is not supported")
    x = args[0]
    if x.dim() == 2:  # unbatched [T, I]
        steps, batch = x.shape[0], 1
    elif m.batch_first:
        batch, steps = x.shape[0], x.shape[1]
    else:
        steps, batch = x.shape[0], x.shape[1]
    gates = _GATES[type(m)]
    dirs = 2 if m.bidirectional else 1
    H = m.hidden_size
    total = 0
    for layer in range(m.num_layers):
        in_size = m.input_size if layer == 0 else H * dirs
        total += dirs * gates * (in_size * H + H * H)
    return total * steps * batch


def _mha_macs(m: nn.MultiheadAttention, args: tuple, out: Any) -> int:
    q, k = args[0], args[1]
    if q.dim() == 2:  # unbatched [L, E]
        batch, L, S = 1, q.shape[0], k.shape[0]
    elif m.batch_first:
        batch, L, S = q.shape[0], q.shape[1], k.shape[1]
    else:
        batch, L, S = q.shape[1], q.shape[0], k.shape[0]
    E = m.embed_dim
    projections = L * E * E + S * m.kdim * E + S * m.vdim * E + L * E * E
    attention = 2 * L * S * E
    return batch * (projections + attention)


_RULES: list[tuple[type | tuple[type, ...], Callable[..., int]]] = [
    (nn.modules.conv._ConvNd, _conv_macs),
    (nn.Linear, _linear_macs),
    (nn.RNNBase, _rnn_macs),
    (nn.MultiheadAttention, _mha_macs),
]


def _rule_for(m: nn.Module) -> Callable[..., int] | None:
    for kind, rule in _RULES:
        if isinstance(m, kind):
            return rule
    own = getattr(m, "own_macs", None)
    if callable(own):
        return lambda _m, args, out: own(args, out)
    if isinstance(m, _ZERO_MAC):
        return None
    is_leaf = next(m.children(), None) is None
    if is_leaf and next(m.parameters(recurse=False), None) is not None:
        raise ValueError(
            f"count_macs: no MAC rule for parameterised module {type(m).__name__}; "
            "add a rule in harkd/deploy/flops.py or give it an own_macs(args, output) method"
        )
    return None


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs of one forward pass of `model` on an input of `input_shape` (batch included)."""
    total = 0
    handles = []

    def make_hook(rule: Callable[..., int]) -> Callable[..., None]:
        def hook(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
            nonlocal total
            total += int(rule(m, args, out))

        return hook

    for m in model.modules():
        rule = _rule_for(m)
        if rule is not None:
            handles.append(m.register_forward_hook(make_hook(rule), with_kwargs=True))
    was_training = model.training
    param = next(model.parameters(), None)
    x = torch.zeros(
        input_shape,
        dtype=param.dtype if param is not None else torch.float32,
        device=param.device if param is not None else None,
    )
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
