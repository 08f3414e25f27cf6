"""Run configuration: pydantic models for every YAML section and `key=value` overrides.

A run config composes a data protocol (a `configs/data/*.yaml` file plus overrides), the
model being trained (`model`, the student when distilling), optional teachers, the
distillation method, the augmentation policy and the optimisation settings. Unknown keys are
errors that name the key and list the allowed ones.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from data_prep.configio import (  # noqa: F401  (re-exported: the harkd layers import them here)
    ConfigError,
    apply_overrides,
    format_validation_error,
    load_config,
    load_yaml,
    parse_override,
)


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
    node: str | None = Field(
        default=None,
        description="config hash of the grid training node that trains this teacher (set by the "
        "grid engine, which fills run_dir with that node's run directory)",
    )


class DistillConfig(Section):
    method: str = "none"
    params: dict[str, Any] = Field(default_factory=dict)


class AugmentConfig(Section):
    policy: str = "none"
    teacher_input: Literal["same", "clean"] = "same"


#: the values `train.device` accepts (harkd.train.device)
DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    patience: int | None = Field(10, ge=1, description="early stopping on val macro-F1")
    selection: Literal["best_val", "last"] = Field(
        "best_val",
        description="the model kept: the epoch of best validation macro-F1, or the last epoch "
        "(a fixed epoch budget; use with patience: null)",
    )
    grad_clip: float | None = Field(5.0, gt=0)
    class_weights: bool = False
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (None: leave)")
    eval_batch_size: int = Field(1024, ge=1)
    device: str = Field(
        "auto",
        pattern=DEVICE_PATTERN,
        description="auto (CUDA when torch sees a GPU, else the CPU), cpu, cuda or cuda:N "
        "(harkd.train.device); export and latency always run on the CPU",
    )
    amp: bool = Field(
        False, description="mixed precision: training forward passes in bfloat16 autocast"
    )
    deterministic: bool = Field(
        True,
        description="torch's deterministic algorithms (and cuDNN's); free on the CPU, on a GPU "
        "it turns off cuDNN autotuning and may cost speed (benchmarks/bench_device.py)",
    )

    #: fields left out of the dump while at their default, so configs written before they
    #: existed keep their hashes (and their finished runs)
    OMITTED_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("selection", "device", "amp", "deterministic")

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave out the `OMITTED_AT_DEFAULT` fields that hold their default."""
        out = handler(self)
        for name in self.OMITTED_AT_DEFAULT:
            if getattr(self, name) == type(self).model_fields[name].default:
                del out[name]
        return out


class LatencyConfig(Section):
    """onnxruntime CPU timing settings (harkd.deploy.latency.benchmark)."""

    threads: int = Field(1, ge=1, description="intra-op threads (1: device-like)")
    runs: int = Field(2000, ge=10, description="timed batch-1 calls")
    warmup: int = Field(200, ge=0)
    batch: int = Field(256, ge=1, description="the large batch for per-window time")
    int8: bool = Field(False, description="also quantize to int8 and time and score that")


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
        """Stable hash of the resolved config (independent of key order). The data protocol
        enters by its content (`data_protocol_digest`), not its path, so the same config read
        from another checkout or folder has the same hash, and editing the protocol changes it."""
        dump = self.model_dump(mode="json")
        dump["data"] = data_protocol_digest(self.data)
        blob = json.dumps(dump, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def data_protocol_digest(path: str | Path) -> str:
    """Hash of a data protocol YAML as written, its `defaults:` merged in (relative paths
    inside stay as written); the path itself when the file cannot be read (a config that names
    a missing protocol fails later, when the run loads its data, with that file named)."""
    p = Path(path).expanduser()
    try:
        st = p.resolve().stat()
    except OSError:
        return str(path)
    return _digest(str(p.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    """`data_protocol_digest` of one version of a file (the key carries its mtime and size)."""
    try:
        content = load_config(path)
    except ConfigError:
        return path
    return "protocol:" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def read_run_config(path: str | Path) -> dict[str, Any]:
    """A run config file as a mapping: its `defaults:` merged under it and a relative `data`
    path made absolute against the file's folder (run directories and `output_dir` stay
    relative to the working directory, where outputs go)."""
    return load_config(path, path_keys=("data",))


def load_run_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load a run config YAML (`read_run_config`), apply `key=value` overrides and validate it.

    A relative `data` path given as an override is taken relative to the working directory.
    """
    raw = apply_overrides(read_run_config(path), overrides or [])
    if isinstance(raw.get("data"), str):
        raw["data"] = str(Path(raw["data"]).resolve())
    return validate_run_config(raw, source=str(path))


def validate_run_config(raw: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, RunConfig, source)) from None
