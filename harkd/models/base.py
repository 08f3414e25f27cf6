"""Model contract and registry (docs/architecture.md 7).

Every model returns `ModelOutput(logits, features)`; `features` holds named intermediate maps
([B, C', T'] or [B, D]) that distillers read without forward hooks. `LogitsOnly` wraps any
model for ONNX export.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn


class ModelOutput(NamedTuple):
    logits: torch.Tensor
    features: dict[str, torch.Tensor]


class HARModel(nn.Module):
    """Base class: subclasses set `feature_names` and implement `forward(x [B, C, T])`."""

    #: names of the entries of `ModelOutput.features`, shallow to deep
    feature_names: tuple[str, ...] = ()
    #: (low, high) parameter count of the default configuration for its intended input
    #: (teachers and peers: acc+gyro, 6 channels; students: acc, 3 channels); checked by tests
    param_range: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class LogitsOnly(nn.Module):
    """Wrap a HARModel so it returns logits only (for ONNX export and latency timing)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        # take the model's mode: torch.onnx.export restores the wrapper's mode afterwards, and a
        # wrapper left in training mode would switch an eval-mode model back to training
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).logits


def deployment_form(model: nn.Module) -> nn.Module:
    """The model as it is deployed: a copy with its training-time branches merged by
    `reparameterize()` where the model has one (the tiny students' RepVGG-style branches,
    Ding et al., CVPR 2021), otherwise `model` itself. `model` is never changed. Parameter and
    MAC counts of what runs on the device are taken from this form."""
    if not hasattr(model, "reparameterize"):
        return model
    deployed = copy.deepcopy(model).eval()
    deployed.reparameterize()
    return deployed


ModelFactory = Callable[..., HARModel]
_MODELS: dict[str, ModelFactory] = {}
_ROLES: dict[str, str] = {}


def register_model(name: str, role: str) -> Callable[[ModelFactory], ModelFactory]:
    """Register a model class/factory under `name`; role is "teacher", "student" or "peer"."""

    def wrap(factory: ModelFactory) -> ModelFactory:
        _MODELS[name] = factory
        _ROLES[name] = role
        return factory

    return wrap


def _load_all() -> None:
    from harkd import models  # noqa: F401  (importing the package registers every model)


def build_model(name: str, in_channels: int, num_classes: int, window: int, **kwargs) -> HARModel:
    """Build the registered model `name` for input [B, in_channels, window]."""
    _load_all()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {sorted(_MODELS)}")
    return _MODELS[name](in_channels=in_channels, num_classes=num_classes, window=window, **kwargs)


def list_models() -> dict[str, str]:
    """Model name -> role."""
    _load_all()
    return dict(sorted(_ROLES.items()))
