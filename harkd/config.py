"""Run configuration: pydantic models for every YAML section and `key=value` overrides.

A run config composes a data protocol (a `configs/data/*.yaml` file plus overrides), the
model being trained (`model`, the student when distilling), optional teachers, the
distillation method, the augmentation policy and the optimisation settings. Unknown keys are
errors that name the key and list the allowed ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and what is allowed."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(Section):
    name: str = Field(description="registered model name (harkd.models.list_models())")
    view: list[str] = Field(default_factory=lambda: ["acc"], description="channel groups it sees")
    params: dict[str, Any] = Field(
        default_factory=dict, description="constructor keyword arguments"
    )


class TeacherConfig(ModelConfig):
    run_dir: str | None = Field(
        default=None, description="run directory of `harkd train` holding the teacher checkpoint"
    )


class DistillConfig(Section):
    method: str = "none"
    params: dict[str, Any] = Field(default_factory=dict)


class AugmentConfig(Section):
    policy: str = "none"
    teacher_input: Literal["same", "clean"] = "same"


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    patience: int | None = Field(10, ge=1, description="early stopping on val macro-F1")
    grad_clip: float | None = Field(5.0, gt=0)
    class_weights: bool = False
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (None: leave)")
    eval_batch_size: int = Field(1024, ge=1)


class LatencyConfig(Section):
    """onnxruntime CPU timing settings (harkd.deploy.latency.benchmark)."""

    threads: int = Field(1, ge=1, description="intra-op threads (1: device-like)")
    runs: int = Field(2000, ge=10, description="timed batch-1 calls")
    warmup: int = Field(200, ge=0)
    batch: int = Field(256, ge=1, description="the large batch for per-window time")


class RunConfig(Section):
    name: str = "run"
    data: str = Field(description="path of a data protocol YAML (configs/data/*.yaml)")
    data_overrides: dict[str, Any] = Field(default_factory=dict)
    model: ModelConfig
    teachers: dict[str, TeacherConfig] = Field(default_factory=dict)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output_dir: str = "runs"

    @model_validator(mode="after")
    def _teachers_have_views(self) -> RunConfig:
        for name, t in self.teachers.items():
            if not t.view:
                raise ValueError(f"teachers.{name}.view must name at least one channel group")
        return self

    def config_hash(self) -> str:
        """Stable hash of the resolved config (independent of key order)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value`; the value is read as YAML (numbers, lists, booleans, null)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with every `key=value` override set (dotted keys nest)."""
    out = json.loads(json.dumps(raw))
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a mapping")
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    """Turn a pydantic error into lines naming each bad key and the allowed keys or values."""
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parent = _resolve_model(model, e["loc"][:-1])
            allowed = sorted(parent.model_fields) if parent else []
            lines.append(f"  unknown key {loc!r}; allowed keys here: {allowed}")
        elif e["type"] == "literal_error":
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
        else:
            lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def _resolve_model(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return current


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader, with a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a run config YAML, apply `key=value` overrides and validate it.

    A relative `data` path is resolved against the current directory first, then against the
    config file's folder.
    """
    raw = apply_overrides(load_yaml(path), overrides or [])
    return validate_run_config(raw, source=str(path))


def validate_run_config(raw: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, RunConfig, source)) from None
