"""The Distiller contract and the method registry (docs/architecture.md 8 and 16).

A Distiller owns the student, its frozen teachers and the method's own trainable modules.
`forward_train(batch, epoch)` returns the student's logits and a dict of named scalar losses;
the trainer sums the dict and logs each term (the mdistiller contract). Multi-stage methods
(IE-KD's auto-encoder pre-training, PSKD's progression) override `stages()` and `set_stage()`.

A new method is one file here plus one YAML under configs/distill: a `Distiller` subclass
registered with `@register_distiller(name)`, declaring its `params_model`, `teacher_count` and
`example` (see `Distiller`); importing this package registers it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn

from data_prep.windowset import WindowSet
from harkd.models.base import HARModel, ModelOutput


@dataclass
class Batch:
    """One training batch.

    x: [B, C_all, T] normalised (and possibly augmented) windows with every channel group;
    y: [B] hard labels (argmax of `y_soft` for mixed samples);
    y_soft: [B, K] label distribution (one-hot unless a mixing augmenter changed it);
    x_teacher: the input the teachers see when it differs from `x` (e.g. un-augmented);
    x_pool: [B', C_all, T] unlabelled pool windows drawn with this batch, for a method whose
    params say `pool: true` (augmented like `x`); x_pool_teacher: what the teachers see of them;
    index: [B] each window's position in the training split (0 .. `DistillContext.train_windows`
    - 1), for a method that keeps per-window state (CRD's memory bank); None where the batch
    was not cut from the training split. subject: [B] each window's subject, as its position
    in `DistillContext.train_subjects` (TASKED's subject discriminator), None likewise.
    """

    x: torch.Tensor
    y: torch.Tensor
    y_soft: torch.Tensor
    x_teacher: torch.Tensor | None = None
    x_pool: torch.Tensor | None = None
    x_pool_teacher: torch.Tensor | None = None
    index: torch.Tensor | None = None
    subject: torch.Tensor | None = None

    @property
    def teacher_x(self) -> torch.Tensor:
        return self.x if self.x_teacher is None else self.x_teacher

    @property
    def teacher_pool(self) -> torch.Tensor | None:
        return self.x_pool if self.x_pool_teacher is None else self.x_pool_teacher


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

    def with_input_grad(self, x_full: torch.Tensor) -> ModelOutput:
        """The teacher's output with gradients flowing to its input (its parameters stay
        frozen): for a method that optimises what the teacher sees, e.g. a generator."""
        return super().forward(x_full)


@dataclass(frozen=True)
class DistillContext:
    """What a method may need to build its own modules: the data's shape and channel groups,
    how many training windows `Batch.index` ranges over (0 where batches carry no index) and
    the training subjects `Batch.subject` numbers (sorted; empty where batches carry none)."""

    num_classes: int
    window: int
    groups: dict[str, list[int]]
    label_names: list[str]
    train_windows: int = 0
    train_subjects: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValidationSplit:
    """The validation windows a method may look at before training (`Distiller.prepare`).

    x: [N, C_all, T] normalised windows with every channel group; y: [N] labels; score:
    `score(y_true, y_pred)`, the macro-F1 that selects the model (the trainer's own).
    """

    x: torch.Tensor
    y: np.ndarray
    score: Callable[[np.ndarray, np.ndarray], float]

    @torch.no_grad()
    def logits(self, model: nn.Module, batch_size: int = 1024) -> torch.Tensor:
        """`model`'s logits [N, K] on every window (in batches, on the model's device)."""
        device = next(model.parameters()).device
        return torch.cat([
            model(self.x[i:i + batch_size].to(device)).logits.float().cpu()
            for i in range(0, len(self.x), batch_size)
        ])


@dataclass(frozen=True)
class GeneratedWindows:
    """Windows a generative method made, saved beside the run for inspection.

    x: [N, C_all, T] normalised windows; y: [N] the class each was made for (or the teacher's
    prediction where the generator is unconditional); kept: [N] whether the method trains on
    it (its filter); teacher_probs: [N, K] the teacher's softmax on it; counts: totals the
    method kept while training (how many it made and how many its filter kept).
    """

    x: np.ndarray
    y: np.ndarray
    kept: np.ndarray
    teacher_probs: np.ndarray
    counts: Mapping[str, int] = field(default_factory=dict)  # e.g. made / kept during training


@dataclass(frozen=True)
class Stage:
    """One training stage of a method: a name and how many epochs it runs (None: `train.epochs`)."""

    name: str
    epochs: int | None = None
    selects_model: bool = True  # model selection (val macro-F1) happens in this stage


class MethodParams(BaseModel):
    """Base of each method's YAML `distill.params` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OneTeacherParams(MethodParams):
    """Params of a method that learns from one teacher: the base resolves it as
    `Distiller.teacher_name` (`select_teacher`)."""

    teacher: str | None = Field(None, description="teacher name (default: the only teacher)")


def parse_params(
    model: type[MethodParams], params: Mapping[str, Any] | MethodParams, method: str
) -> MethodParams:
    """`params` validated by `model`, as one line naming each bad key and the allowed ones."""
    if isinstance(params, model):
        return params
    try:
        return model.model_validate(dict(params))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"])
            if e["type"] == "extra_forbidden":
                problems.append(f"unknown parameter {loc!r}")
            else:
                problems.append(f"{loc}: {e['msg']} (got {e.get('input')!r})")
        allowed = ", ".join(model.model_fields) or "none"
        raise ValueError(
            f"distill.params of method {method!r}: {'; '.join(problems)} (allowed: {allowed})"
        ) from None


@dataclass(frozen=True)
class Example:
    """A small working setting of a method, which the tests build on data that has its groups.

    teachers: teacher name -> the channel groups it sees; student_view: the student's groups;
    params: the method's `distill.params`; teacher_model: the registered model the teachers
    are built as (one with the features the method reads).
    """

    teachers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    student_view: tuple[str, ...] = ("acc",)
    teacher_model: str = "cnn1d"

    def groups(self) -> set[str]:
        """The channel groups the data must have."""
        return set(self.student_view).union(*self.teachers.values())


class Distiller(nn.Module):
    """Base class. Subclasses implement `forward_train`; `forward` runs the student alone.

    A method declares, as class attributes, its `params_model` (the base validates the YAML
    `distill.params` against it and stores the typed result as `self.params`), how many
    frozen teachers it takes (`teacher_count`: at least, at most or None) and an `example`
    setting; the first line of its class docstring describes it in `harkd distill --list`.
    """

    method: ClassVar[str] = ""
    #: a data-free method never receives a training window: its batches carry only their size
    #: (`Batch.x` is [B, C_all, 0], `y` is -1, `y_soft` zero)
    data_free: ClassVar[bool] = False
    params_model: ClassVar[type[MethodParams]] = MethodParams
    teacher_count: ClassVar[tuple[int, int | None]] = (0, None)
    example: ClassVar[Example] = Example()

    def __init__(
        self,
        student: ViewModel,
        teachers: Mapping[str, FrozenTeacher],
        context: DistillContext,
        params: Mapping[str, Any] | MethodParams,
    ) -> None:
        super().__init__()
        self.params = self.check_config(params, list(teachers))
        self.student = student
        self.teachers = nn.ModuleDict(dict(teachers))
        self.context = context
        self.stage = "main"
        if isinstance(self.params, OneTeacherParams):
            self.teacher_name = select_teacher(teachers, self.params.teacher, self.method)

    @classmethod
    def check_config(
        cls, params: Mapping[str, Any] | MethodParams, teachers: list[str]
    ) -> MethodParams:
        """The typed params; a ValueError when they or the number of teachers do not fit."""
        parsed = parse_params(cls.params_model, params, cls.method)
        low, high = cls.teacher_count
        if high is not None and len(teachers) > high:
            what = "takes no teachers" if high == 0 else f"takes at most {high} teacher(s)"
            raise ValueError(
                f"method {cls.method!r} {what}; remove teachers {sorted(teachers)} from the config"
            )
        if len(teachers) < low:
            raise ValueError(
                f"method {cls.method!r} needs at least {low} teacher(s) under `teachers:`; "
                f"the config names {sorted(teachers) or 'none'}"
            )
        return parsed

    @property
    def uses_pool(self) -> bool:
        """Whether this run trains on unlabelled pool windows too (params `pool: true`)."""
        return bool(getattr(self.params, "pool", False))

    @classmethod
    def description(cls) -> str:
        """The first line of the class docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0]

    def forward(self, x_full: torch.Tensor) -> torch.Tensor:
        """Student logits for full windows (the student slices its own view)."""
        return self.student(x_full).logits

    def forward_train(
        self, batch: Batch, epoch: int
    ) -> tuple[torch.Tensor | None, dict[str, torch.Tensor]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, val: ValidationSplit) -> dict[str, Any]:
        """Called once by the trainer before the first epoch (and again on resume) with the
        validation split, for a method that measures or fits something on it: a teacher's
        smoothness, an ensemble's weights. Returns what it found, which the run stores in
        metrics.json under `method`; a method that fits anything on these windows says so
        there (`validation_use`), as model selection reads the same windows. Default: nothing.
        """
        return {}

    @classmethod
    def training_set(cls, ws: WindowSet, params: MethodParams) -> WindowSet:  # noqa: ARG003
        """The WindowSet whose train split the batches are cut from, given the typed params
        (the normalisation stays the full training split's). Default: `ws`; single-recording
        KD keeps one recording's windows."""
        return ws

    def generated_windows(self) -> GeneratedWindows | None:
        """Windows to save with the run (`generated.npz`, plotted beside real ones in
        `generated.png`) by a method that makes them. Default: None."""
        return None

    def stages(self) -> list[Stage]:
        return [Stage("main")]

    def set_stage(self, name: str) -> None:
        self.stage = name

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimiser updates in the current stage (never a teacher's)."""
        teacher_ids = {id(p) for p in self.teachers.parameters()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in teacher_ids]


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


_METHODS: dict[str, type[Distiller]] = {}


def register_distiller(name: str) -> Callable[[type[Distiller]], type[Distiller]]:
    """Register a Distiller class under `name` (also sets its `method` attribute)."""

    def wrap(cls: type[Distiller]) -> type[Distiller]:
        cls.method = name
        _METHODS[name] = cls
        return cls

    return wrap


def distiller_classes() -> dict[str, type[Distiller]]:
    """Every registered method, by name (importing the package registers them all)."""
    from harkd import distill  # noqa: F401

    return dict(sorted(_METHODS.items()))


def build_distiller(
    method: str,
    student: ViewModel,
    teachers: Mapping[str, FrozenTeacher],
    context: DistillContext,
    params: Mapping[str, Any],
) -> Distiller:
    """Build method `method` with its YAML `params` (unknown params are errors)."""
    return distiller_class(method)(student, teachers, context, params)


def distiller_class(method: str) -> type[Distiller]:
    """The class registered as `method` (a KeyError lists the known ones)."""
    methods = distiller_classes()
    if method not in methods:
        raise KeyError(f"unknown distillation method {method!r}; known methods: {sorted(methods)}")
    return methods[method]


def list_distillers() -> list[str]:
    return list(distiller_classes())
