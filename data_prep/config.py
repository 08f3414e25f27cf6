"""Data protocol configuration (`configs/data/*.yaml`): pydantic models and loading.

A protocol names a reader and its source, the channel groups kept, the target rate, the
filters, the windowing, the label map and the subject split. Unknown keys are errors that name
the key and list the allowed ones; `key=value` overrides use `harkd.config.apply_overrides`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from data_prep.configio import ConfigError, apply_overrides, format_validation_error, load_config


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _subject_ids(value: Any) -> Any:
    """Subjects are strings; YAML integers (`[2, 4, 9]`) are accepted and converted."""
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


class WindowConfig(_Section):
    length: float = Field(128, gt=0, description="window length")
    step: float = Field(64, gt=0, description="step between training/validation windows")
    test_step: float | None = Field(
        None, gt=0, description="step between test windows (None: step)"
    )
    unit: Literal["s", "samples"] = "samples"

    def in_samples(self, rate_hz: float) -> tuple[int, int, int]:
        """(length, step, test_step) in samples at `rate_hz`."""
        scale = rate_hz if self.unit == "s" else 1.0
        test_step = self.step if self.test_step is None else self.test_step
        out = tuple(int(round(v * scale)) for v in (self.length, self.step, test_step))
        if min(out) < 1:
            raise ConfigError(
                f"window {self.model_dump()} is shorter than one sample at {rate_hz} Hz"
            )
        return out  # type: ignore[return-value]


class LowpassConfig(_Section):
    cutoff_hz: float = Field(20.0, gt=0)
    order: int = Field(3, ge=1, le=10)
    groups: list[str] | None = Field(None, description="channel groups filtered (None: all)")


class GravityConfig(_Section):
    cutoff_hz: float = Field(0.3, gt=0)
    order: int = Field(3, ge=1, le=10)
    group: str = Field("acc", description="the accelerometer group split into body + gravity")
    mode: Literal["add", "replace"] = Field(
        "add", description="add body_/gravity_ groups, or replace the group by them"
    )


class FilterConfig(_Section):
    lowpass: LowpassConfig | None = None
    gravity: GravityConfig | None = None


class SubjectSubsetConfig(_Section):
    """One of `count` overlapping subsets of the training subjects (RoS-KD's per-teacher data).

    The n training subjects (after the test and validation subjects are taken out) are shuffled
    with `seed`, cut into `count` blocks and laid on a circle; subset `index` is its block and
    the next `round(n / count * overlap / (1 - overlap))` subjects, so consecutive subsets share
    `overlap` of their subjects (rounded) and the subsets together cover every training
    subject. `overlap: 0` cuts the training subjects into `count` disjoint parts.
    """

    count: int = Field(ge=2, description="number of subsets (teachers)")
    index: int = Field(ge=0, description="which subset this protocol trains on (0-based)")
    overlap: float = Field(0.5, ge=0, lt=1, description="share of a subset also in the next one")
    seed: int = Field(0, description="seed of the subjects' shuffle")

    @model_validator(mode="after")
    def _check(self) -> SubjectSubsetConfig:
        if self.index >= self.count:
            raise ValueError(f"split.subset.index={self.index} must be below count={self.count}")
        return self


class LabelNoiseConfig(_Section):
    """Seeded label noise on the training windows (validation, test and pool never touched).

    `symmetric`: round(rate * n) training windows, drawn with `seed`, each get a class drawn
    uniformly from the other classes. `boundary` (the HAR annotation error): the round(rate * n)
    training windows nearest in time to a window of another class in their recording (ties in a
    seeded order) get that nearest other class, as a label boundary drawn at the wrong moment.
    """

    rate: float = Field(gt=0, le=1, description="share of the training windows relabelled")
    kind: Literal["symmetric", "boundary"] = "symmetric"
    seed: int = Field(0, description="seed of the draw")


class SplitConfig(_Section):
    kind: Literal["fixed", "kfold_subjects", "loso"] = "fixed"
    test_subjects: list[str] = Field(default_factory=list, description="kind=fixed")
    k: int = Field(10, ge=2, description="kind=kfold_subjects: number of folds")
    fold: int = Field(0, ge=0, description="kfold_subjects / loso: which fold is the test set")
    val_subjects: list[str] | None = Field(None, description="explicit validation subjects")
    n_val_subjects: int = Field(3, ge=0, description="else this many, drawn from training subjects")
    seed: int = 0
    label_budget: int | None = Field(
        None,
        ge=1,
        description="keep labels for this many training subjects, drawn with label_budget_seed "
        "(None: every training subject labelled)",
    )
    label_budget_seed: int = Field(0, description="seed of the label-budget draw")
    pool: bool = Field(
        False,
        description="put the training subjects' unlabelled windows (outside the label budget, "
        "null, other classes, impure) into a `pool` split with y = -1, instead of dropping them",
    )
    subset: SubjectSubsetConfig | None = Field(
        None,
        description="train on one of several overlapping subsets of the training subjects "
        "(normalisation statistics stay those of every training subject)",
    )
    label_noise: LabelNoiseConfig | None = Field(
        None, description="seeded noise on the training labels (None: the labels as recorded)"
    )

    @field_validator("test_subjects", "val_subjects", mode="before")
    @classmethod
    def _subject_strings(cls, value: Any) -> Any:
        return _subject_ids(value)

    @model_serializer(mode="wrap")
    def _omit_unused_options(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave out the label budget, pool, subject subset and label noise when unused, so
        that a protocol without them dumps (and hashes, and caches) exactly as before these
        options existed."""
        out = handler(self)
        if self.label_budget is None:
            del out["label_budget"], out["label_budget_seed"]
        if not self.pool:
            del out["pool"]
        for option in ("subset", "label_noise"):
            if getattr(self, option) is None:
                del out[option]
        return out

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.kind == "fixed" and not self.test_subjects:
            raise ValueError("split.kind=fixed needs test_subjects")
        if self.kind != "fixed" and self.test_subjects:
            raise ValueError(
                f"split.kind={self.kind} chooses test subjects itself; drop test_subjects"
            )
        if self.kind == "kfold_subjects" and self.fold >= self.k:
            raise ValueError(f"split.fold={self.fold} must be below k={self.k}")
        if self.subset is not None and (self.label_budget is not None or self.pool):
            raise ValueError(
                "split.subset trains on some training subjects with every label; it cannot be "
                "combined with split.label_budget or split.pool"
            )
        return self


class DataConfig(_Section):
    name: str = Field("data", description="protocol name (used in cache file names)")
    reader: str = Field(description="registered reader (data_prep.readers.list_readers())")
    path: str | None = Field(None, description="source path (None: the reader's packaged data)")
    reader_options: dict[str, Any] = Field(default_factory=dict)
    subjects: list[str] | None = Field(None, description="keep only these subjects")
    max_gap_s: float = Field(0.1, ge=0, description="NaN/inf gaps up to this long are interpolated")
    groups: list[str] = Field(
        default_factory=lambda: ["acc", "gyro"], description="channel groups kept"
    )
    rate_hz: float | None = Field(
        None, gt=0, description="target rate (None: keep the source rate)"
    )
    filter: FilterConfig = Field(default_factory=FilterConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    purity: float = Field(0.8, gt=0, le=1, description="minimum share of the majority label")
    labels: dict[int, str] = Field(description="source label id -> class name, in class order")
    null_class: Literal["drop", "keep"] = "drop"
    split: SplitConfig

    @field_validator("subjects", mode="before")
    @classmethod
    def _subject_strings(cls, value: Any) -> Any:
        return _subject_ids(value)

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if not self.labels:
            raise ValueError("labels must name at least one class")
        if -1 in self.labels:
            raise ValueError("labels must not map -1 (unlabelled); use null_class: keep")
        if not self.groups:
            raise ValueError("groups must name at least one channel group")
        return self

    def class_names(self) -> list[str]:
        """Class names in index order (the null class last when kept)."""
        names = list(self.labels.values())
        return [*names, "null"] if self.null_class == "keep" else names

    def config_hash(self) -> str:
        """Stable hash of the resolved config (independent of key order)."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_data_config(path: str | Path, overrides: list[str] | None = None) -> DataConfig:
    """Load a data protocol YAML, apply `key=value` overrides and validate it."""
    raw = absolute_source(apply_overrides(load_config(path, path_keys=("path",)), overrides or []))
    return validate_data_config(raw, source=str(path))


def validate_data_config(raw: dict[str, Any], source: str = "<data config>") -> DataConfig:
    """Validate a raw mapping as a `DataConfig`, raising `ConfigError` naming every bad key."""
    try:
        return DataConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, DataConfig, source)) from None


def absolute_source(raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` with a relative recordings `path` made absolute against the working directory.

    A `path` written in a data config file is already absolute (taken relative to that file by
    `load_config`); one that is still relative came from an override typed by the user.
    """
    if isinstance(raw.get("path"), str):
        return {**raw, "path": str(Path(raw["path"]).expanduser().resolve())}
    return raw

