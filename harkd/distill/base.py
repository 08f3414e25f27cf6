"""The Distiller contract and the method registry (ARCHITECTURE.md 3 and 5).

A Distiller owns the student, its frozen teachers and the method's own trainable modules.
`forward_train(batch, epoch)` returns the student's logits and a dict of named scalar losses;
the trainer sums the dict and logs each term (the mdistiller contract). Multi-stage methods
(IE-KD's auto-encoder pre-training, PSKD's progression) override `stages()` and `set_stage()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from torch import nn

from harkd.models.base import HARModel, ModelOutput


@dataclass
class Batch:
    """One training batch.

    x: [B, C_all, T] normalised (and possibly augmented) windows with every channel group;
    y: [B] hard labels (argmax of `y_soft` for mixed samples);
    y_soft: [B, K] label distribution (one-hot unless a mixing augmenter changed it);
    x_teacher: the input the teachers see when it differs from `x` (e.g. un-augmented).
    """

    x: torch.Tensor
    y: torch.Tensor
    y_soft: torch.Tensor
    x_teacher: torch.Tensor | None = None

    @property
    def teacher_x(self) -> torch.Tensor:
        return self.x if self.x_teacher is None else self.x_teacher


class ViewModel(nn.Module):
    """A model together with the channel indices (its view) it reads from the full window."""

    def __init__(self, model: HARModel, channels: list[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("channels", torch.tensor(channels, dtype=torch.long), persistent=False)

    def forward(self, x_full: torch.Tensor) -> ModelOutput:
        return self.model(x_full.index_select(1, self.channels))


class FrozenTeacher(ViewModel):
    """A teacher: always in eval mode, no parameter ever receives a gradient."""

    def __init__(self, model: HARModel, channels: list[int]) -> None:
        super().__init__(model, channels)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()

    def train(self, mode: bool = True) -> FrozenTeacher:  # noqa: ARG002 - teachers stay frozen
        return super().train(False)

    @torch.no_grad()
    def forward(self, x_full: torch.Tensor) -> ModelOutput:
        return super().forward(x_full)


@dataclass(frozen=True)
class DistillContext:
    """What a method may need to build its own modules: the data's shape and channel groups."""

    num_classes: int
    window: int
    groups: dict[str, list[int]]
    label_names: list[str]


@dataclass(frozen=True)
class Stage:
    """One training stage of a method: a name and how many epochs it runs (None: `train.epochs`)."""

    name: str
    epochs: int | None = None
    selects_model: bool = True  # model selection (val macro-F1) happens in this stage


class Distiller(nn.Module):
    """Base class. Subclasses implement `forward_train`; `forward` runs the student alone."""

    method: ClassVar[str] = ""

    def __init__(
        self, student: ViewModel, teachers: dict[str, FrozenTeacher], context: DistillContext
    ) -> None:
        super().__init__()
        self.student = student
        self.teachers = nn.ModuleDict(teachers)
        self.context = context
        self.stage = "main"

    def forward(self, x_full: torch.Tensor) -> torch.Tensor:
        """Student logits for full windows (the student slices its own view)."""
        return self.student(x_full).logits

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        return [Stage("main")]

    def set_stage(self, name: str) -> None:
        self.stage = name

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser updates in the current stage (never a teacher's)."""
        teacher_ids = {id(p) for p in self.teachers.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in teacher_ids]


class MethodParams(BaseModel):
    """Base of each method's YAML `distill.params` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_params(model: type[MethodParams], params: dict[str, Any], method: str) -> MethodParams:
    """Validate `params` for `method`; errors name each bad key and list the allowed ones."""
    try:
        return model.model_validate(params)
    except ValidationError as err:
        allowed = sorted(model.model_fields)
        lines = [f"distill.params for method {method!r} are invalid (allowed keys: {allowed})"]
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                lines.append(f"  unknown parameter {loc!r}")
            else:
                lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
        raise ValueError("\n".join(lines)) from None


def select_teacher(teachers: Mapping[str, FrozenTeacher], name: str | None, method: str) -> str:
    """The name of the teacher a one-teacher method uses: `name`, or the only teacher's."""
    if name is None:
        if len(teachers) != 1:
            raise ValueError(
                f"method {method!r} needs exactly one teacher, or distill.params.teacher "
                f"naming one; teachers given: {sorted(teachers)}"
            )
        return next(iter(teachers))
    if name not in teachers:
        raise ValueError(
            f"method {method!r}: distill.params.teacher={name!r} is not among the teachers "
            f"{sorted(teachers)}"
        )
    return name


DistillerFactory = Callable[..., Distiller]
_METHODS: dict[str, DistillerFactory] = {}


def register_distiller(name: str) -> Callable[[DistillerFactory], DistillerFactory]:
    """Register a Distiller class under `name` (also sets its `method` attribute)."""

    def wrap(cls: DistillerFactory) -> DistillerFactory:
        cls.method = name
        _METHODS[name] = cls
        return cls

    return wrap


def build_distiller(
    method: str,
    student: ViewModel,
    teachers: dict[str, FrozenTeacher],
    context: DistillContext,
    params: dict[str, Any],
) -> Distiller:
    """Build method `method` with its YAML `params` (unknown params are errors)."""
    from harkd import distill  # noqa: F401  (importing the package registers every method)

    if method not in _METHODS:
        raise KeyError(f"unknown distillation method {method!r}; known methods: {sorted(_METHODS)}")
    return _METHODS[method](student=student, teachers=teachers, context=context, **params)


def list_distillers() -> list[str]:
    from harkd import distill  # noqa: F401

    return sorted(_METHODS)
