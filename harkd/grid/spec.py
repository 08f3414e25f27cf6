"""Grid specs: a base run config, axes of values, include/exclude rules and profiles.

A spec YAML (configs/grids/*.yaml) reads::

    name: hapt_aug_ablation
    base: configs/distill/none.yaml      # a run config file, or an inline run config mapping
    output_dir: runs/grids/hapt_aug_ablation
    axes:
      augment: [none, jitter, jitter+scaling]        # alias of augment.policy
      method:                                         # alias of distill.method
        - none
        - {label: kd, set: {distill.params: {alpha: 0.5}, teachers: {...}}}   # a bundle
      seed: [0, 1, 2]                                 # alias of train.seed
    exclude: [{augment: jitter, method: kd}]
    include: [{augment: mixup, method: none}]
    profiles:
      quick:
        train.epochs: 3
        method=iekd: {distill.params.ae_epochs: 1}   # only for runs with method iekd
    latency: {threads: 1, runs: 500}     # optional: export to ONNX and time each run

An axis is a dotted RunConfig key or one of `ALIASES`. A value is either the value set at
that key, or a *bundle*: a mapping with `set` (dotted key -> value, several keys at once) and an
optional `label`; the axis key itself gets the label unless `set` names it. Labels identify
values in the store, in include/exclude rules and in the report.

Expansion: the product of the axes (last axis varies fastest), minus the runs matching any
`exclude` rule, plus the runs of each `include` rule (a partial assignment whose missing axes
range over all their values; values may lie outside the axis). In a rule, a list means "any of
these values" (write `[[a, b]]` for the list value `[a, b]`). Runs whose resolved configs are
identical are merged (counted). A profile (`--profile NAME`) sets dotted keys on every run
after the axes (so it overrides them); an entry `axis=label: {key: value, ...}` applies only to
the runs with that label. Each run's hash is `RunConfig.config_hash()` of its fully resolved
config.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harkd.config import (
    ConfigError,
    LatencyConfig,
    RunConfig,
    apply_overrides,
    format_validation_error,
    load_yaml,
    validate_run_config,
)

#: friendly axis names -> dotted RunConfig keys
ALIASES: dict[str, str] = {
    "augment": "augment.policy",
    "method": "distill.method",
    "student": "model.name",
    "teachers": "teachers",
    "seed": "train.seed",
    "data": "data",
    "fold": "data_overrides.split.fold",
    "epochs": "train.epochs",
    "lr": "train.lr",
    "batch_size": "train.batch_size",
}


class _SpecFile(BaseModel):
    """The top level of a spec YAML (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str = ""
    base: str | dict[str, Any]
    output_dir: str | None = None
    axes: dict[str, list[Any]] = Field(min_length=1)
    include: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    latency: LatencyConfig | None = None


@dataclass(frozen=True)
class AxisValue:
    """One value of an axis: its label and the dotted keys it sets."""

    label: str
    assignments: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Axis:
    name: str
    key: str
    values: tuple[AxisValue, ...]

    def find(self, label: str) -> AxisValue | None:
        return next((v for v in self.values if v.label == label), None)


@dataclass(frozen=True)
class GridRun:
    """One expanded run: its position, axis labels, resolved config and hash."""

    index: int
    axes: dict[str, str]
    config: RunConfig
    hash: str


@dataclass
class Expansion:
    """The runs of a spec under one profile, with the counts of what the rules did."""

    runs: list[GridRun]
    product: int
    excluded: int
    included: int
    merged: int
    profile: str | None


@dataclass
class GridSpec:
    name: str
    source: str
    base: dict[str, Any]
    axes: list[Axis]
    include: list[dict[str, Any]] = field(default_factory=list)
    exclude: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_dir: str = ""
    description: str = ""
    latency: dict[str, int] | None = None

    def grid_dir(self, profile: str | None = None, output_dir: str | Path | None = None) -> Path:
        """Where the store and run dirs live: `output_dir`, suffixed `-<profile>` for a profile."""
        root = Path(output_dir) if output_dir is not None else Path(self.output_dir)
        return root.with_name(f"{root.name}-{profile}") if profile else root

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise ConfigError(f"{self.source}: no axis {name!r}; axes: {[a.name for a in self.axes]}")

    def expand(self, profile: str | None = None) -> Expansion:
        """All runs of the grid under `profile` (None: the spec's settings as written)."""
        settings = self._profile(profile)
        product = list(itertools.product(*(a.values for a in self.axes)))
        kept = [
            c
            for c in product
            if not any(self._matches(c, r, i) for i, r in enumerate(self.exclude))
        ]
        extra = [c for i, rule in enumerate(self.include) for c in self._include_combos(rule, i)]
        runs: list[GridRun] = []
        seen: set[str] = set()
        for combo in kept + extra:
            cfg = self._resolve(combo, settings)
            h = cfg.config_hash()
            if h in seen:
                continue
            seen.add(h)
            labels = {a.name: v.label for a, v in zip(self.axes, combo, strict=True)}
            runs.append(GridRun(index=len(runs), axes=labels, config=cfg, hash=h))
        return Expansion(
            runs=runs,
            product=len(product),
            excluded=len(product) - len(kept),
            included=len(extra),
            merged=len(kept) + len(extra) - len(runs),
            profile=profile,
        )

    # -- internals -------------------------------------------------------------------------

    def _profile(self, profile: str | None) -> list[tuple[tuple[int, str] | None, str, Any]]:
        """A profile as (condition (axis position, label) or None, dotted key, value) items."""
        if profile is None:
            return []
        if profile not in self.profiles:
            raise ConfigError(
                f"{self.source}: unknown profile {profile!r}; profiles: {sorted(self.profiles)}"
            )
        items: list[tuple[tuple[int, str] | None, str, Any]] = []
        for key, value in self.profiles[profile].items():
            if "=" not in key:
                items.append((None, resolve_axis_key(key), value))
                continue
            where = f"profiles.{profile}.{key}"
            name, label = key.split("=", 1)
            pos = self._axis_pos(name, where)
            if self.axes[pos].find(label) is None:
                raise ConfigError(f"{self.source}: {where}: axis {name!r} has no value {label!r}")
            if not isinstance(value, Mapping):
                raise ConfigError(f"{self.source}: {where} must map dotted keys to values")
            items += [((pos, label), resolve_axis_key(k), v) for k, v in value.items()]
        return items

    def _resolve(
        self, combo: tuple[AxisValue, ...], settings: list[tuple[tuple[int, str] | None, str, Any]]
    ) -> RunConfig:
        chosen = [
            (k, v) for when, k, v in settings if when is None or combo[when[0]].label == when[1]
        ]
        raw = set_keys(self.base, [kv for v in combo for kv in v.assignments] + chosen)
        # sorted by axis, so the order axes are written in does not change the hash
        labels = sorted(f"{a.name}={v.label}" for a, v in zip(self.axes, combo, strict=True))
        raw["name"] = "-".join([self.name, *labels])
        where = ", ".join(f"{a.name}={v.label}" for a, v in zip(self.axes, combo, strict=True))
        return validate_run_config(raw, source=f"{self.source} (run {where})")

    def _matches(self, combo: tuple[AxisValue, ...], rule: dict[str, Any], i: int) -> bool:
        for name, wanted in rule.items():
            pos = self._axis_pos(name, f"exclude[{i}]")
            labels = {_label_of(v) for v in _any_of(wanted)}
            if combo[pos].label not in labels:
                return False
        return True

    def _include_combos(self, rule: dict[str, Any], i: int) -> list[tuple[AxisValue, ...]]:
        choices: list[list[AxisValue]] = [list(a.values) for a in self.axes]
        for name, wanted in rule.items():
            pos = self._axis_pos(name, f"include[{i}]")
            axis = self.axes[pos]
            choices[pos] = [
                axis.find(_label_of(v)) or parse_value(axis.key, v, f"{self.source}: include[{i}]")
                for v in _any_of(wanted)
            ]
        return list(itertools.product(*choices))

    def _axis_pos(self, name: str, where: str) -> int:
        for pos, a in enumerate(self.axes):
            if name in (a.name, a.key) or resolve_axis_key(name) == a.key:
                return pos
        raise ConfigError(
            f"{self.source}: {where} names axis {name!r}; axes: {[a.name for a in self.axes]}"
        )


def set_keys(raw: dict[str, Any], items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of `raw` with each (dotted key, value) set, through `harkd.config.apply_overrides`."""
    return apply_overrides(raw, [f"{k}={json.dumps(v)}" for k, v in items])


def resolve_axis_key(name: str) -> str:
    """An axis name to its dotted config key (aliases first, else the name itself)."""
    return ALIASES.get(name, name)


def _label_of(value: Any) -> str:
    if isinstance(value, Mapping) and "set" in value:
        if "label" in value:
            return str(value["label"])
        raise ConfigError(f"bundle {value!r} has no label")
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _any_of(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def parse_value(key: str, value: Any, where: str) -> AxisValue:
    """An axis value (plain or bundle) to its label and assignments."""
    if not (isinstance(value, Mapping) and "set" in value):
        return AxisValue(_label_of(value), ((key, value),))
    unknown = sorted(set(value) - {"label", "set"})
    if unknown:
        raise ConfigError(f"{where}: bundle has unknown keys {unknown}; allowed: ['label', 'set']")
    sets = value["set"]
    if not isinstance(sets, Mapping) or not sets:
        raise ConfigError(f"{where}: bundle `set` must be a non-empty mapping of dotted keys")
    sets = {resolve_axis_key(k): v for k, v in sets.items()}
    if "label" not in value and key not in sets:
        raise ConfigError(f"{where}: bundle needs a `label` or a value for {key!r} in `set`")
    label = str(value["label"]) if "label" in value else _label_of(sets[key])
    items = dict(sets) if key in sets else {key: label, **sets}
    return AxisValue(label, tuple(items.items()))


def _parse_axes(axes: dict[str, list[Any]], source: str) -> list[Axis]:
    out = []
    for name, values in axes.items():
        key = resolve_axis_key(name)
        if not values:
            raise ConfigError(f"{source}: axes.{name} has no values")
        parsed = tuple(
            parse_value(key, v, f"{source}: axes.{name}[{i}]") for i, v in enumerate(values)
        )
        labels = [v.label for v in parsed]
        dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
        if dupes:
            raise ConfigError(f"{source}: axes.{name} repeats the labels {dupes}")
        out.append(Axis(name=name, key=key, values=parsed))
    return out


def _load_base(base: str | dict[str, Any], spec_dir: Path, source: str) -> dict[str, Any]:
    if isinstance(base, dict):
        return base
    for candidate in (Path(base), spec_dir / base):
        if candidate.is_file():
            return load_yaml(candidate)
    raise ConfigError(f"{source}: base {base!r} not found (looked in . and {spec_dir})")


def spec_from_dict(
    raw: dict[str, Any], source: str = "<grid spec>", spec_dir: Path | None = None
) -> GridSpec:
    """Validate a spec mapping; relative `base` paths are looked up in . then `spec_dir`."""
    try:
        parsed = _SpecFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, _SpecFile, source)) from None
    name = parsed.name or Path(source).stem
    base = _load_base(parsed.base, spec_dir or Path("."), source)
    validate_run_config(base, source=f"{source}: base")
    spec = GridSpec(
        name=name,
        source=source,
        base=base,
        axes=_parse_axes(parsed.axes, source),
        include=parsed.include,
        exclude=parsed.exclude,
        profiles=parsed.profiles,
        output_dir=parsed.output_dir or f"runs/grids/{name}",
        description=parsed.description,
        latency=parsed.latency.model_dump() if parsed.latency else None,
    )
    spec.expand()  # every rule and every run config is checked now, not mid-grid
    for profile in spec.profiles:
        spec.expand(profile)
    return spec


def load_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid spec YAML (every run config is validated too)."""
    path = Path(path)
    return spec_from_dict(load_yaml(path), source=str(path), spec_dir=path.parent)
