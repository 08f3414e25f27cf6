"""Grid specs: a graph of runs — training nodes and the cells that depend on them.

A spec YAML (configs/grids/*.yaml) reads::

    name: hapt_aug_ablation
    base: ../distill/none.yaml           # a run config file, or an inline run config mapping
    output_dir: runs/grids/hapt_aug_ablation
    nodes:                               # training nodes: teachers, assistants, generations
      teacher: {config: ../train/teacher_cnn1d.yaml, set: {train.epochs: 40}}
      assistant:
        config: ../train/student_tiny.yaml
        set: {model.params: {channels: 32}, distill.method: kd,
              teachers: {t: {from: teacher}}}      # a chain: teacher -> assistant
    axes:
      augment: [none, jitter, jitter+scaling]        # alias of augment.policy
      method:                                         # alias of distill.method
        - {label: none, set: {teachers: {}}}
        - {label: kd, from: ../distill/kd.yaml}       # inherits the file's `distill` section
        - {label: kd-big, set: {distill.method: kd}}  # a bundle of dotted keys
      seed: [0, 1, 2]                                 # alias of train.seed
    exclude: [{augment: jitter, method: kd}]
    include: [{augment: mixup, method: none}]
    profiles:
      quick:
        train.epochs: 3
        method=iekd: {distill.params.ae_epochs: 1}   # only for cells with method iekd
        nodes: {train.epochs: 2}                     # every training node
        node=teacher: {train.patience: null}         # one training node
        select: {seed: ["0"], augment: [none]}       # keep only these labels (fewer cells)
        exclude: [{augment: none, seed: "1"}]         # more cells left out, spec's rules kept
    latency: {threads: 1, runs: 500}     # optional: export each cell to ONNX and time it

**Cells.** An axis is a dotted RunConfig key or one of `ALIASES`. A value is either the value
set at that key, or a *bundle*: a mapping with `set` (dotted key -> value, several keys at
once), `from` (a run config file whose section for this axis — `distill` for the method axis,
`augment` for the augment axis — the value inherits) and a `label`. An axis whose name is no
config key (e.g. `budget`, `draw`) holds bundles only: its labels name what their `set` does.
Labels identify values in the store, in include/exclude rules and in the report. Expansion: the
product of the axes (last axis varies fastest), minus the cells matching any `exclude` rule,
plus the cells of each `include` rule (a partial assignment whose missing axes range over all
their values; values may lie outside the axis). In a rule, a list means "any of these values"
(write `[[a, b]]` for the list value `[a, b]`). Cells whose resolved configs are identical are
merged (counted). A profile (`--profile NAME`) sets dotted keys on every cell after the axes;
`axis=label: {...}` only on the cells with that label; `select: {axis: [label, ...]}` keeps only
those labels of an axis (as `--select` does), and `exclude` adds rules to the spec's, so a
profile can be a smaller study.

**Training nodes.** Wherever a config names a teacher's finished run directory, the teacher
may instead be a training node: `{from: NAME}` (an entry of `nodes:`, optionally with more
`set`) or `{node: {config: FILE, set: {...}}}` inline. A node is a run config (a file, or an
inline mapping) with `set` merged over it; it inherits the dotted keys listed in `inherit`
(default `data` and `data_overrides`) from the config that names it, so a per-fold or
per-subject-draw teacher follows its cell. Nodes may name nodes as teachers (chains of any
depth). The teacher entry becomes `{name, view, params, node: HASH}` from the node's model
(replacing any of these, or a `run_dir`, that a config merged under it had), so
a cell's hash covers its whole chain; each distinct resolved node (config, data, fold and seed
included) is one run, keyed by its hash and shared by every cell that needs it. Cycles and
names missing from `nodes:` are refused when the spec loads. Relative paths in a spec (`base`,
`from`, node `config`, `data`) are taken relative to the file that names them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from data_prep.configio import merge_keys, resolve_path
from harkd.config import (
    ConfigError,
    LatencyConfig,
    RunConfig,
    format_validation_error,
    load_config,
    read_run_config,
    validate_run_config,
)
from harkd.train.compat import check_runnable

#: friendly axis names -> dotted RunConfig keys
ALIASES: dict[str, str] = {
    "augment": "augment.policy",
    "teacher_input": "augment.teacher_input",
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
#: what a training node inherits from the config that names it, unless it says otherwise
DEFAULT_INHERIT = ("data", "data_overrides")
#: teacher keys a node reference replaces with its node's (left from a config merged under it)
REPLACED_BY_NODE = {"name", "view", "params", "run_dir"}
#: profile keys that address training nodes instead of cells
NODES_KEY, NODE_PREFIX = "nodes", "node="
#: the profile keys that keep only some labels of some axes, and that leave out more cells
SELECT_KEY, EXCLUDE_KEY = "select", "exclude"


class _SpecFile(BaseModel):
    """The top level of a spec YAML (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str = ""
    base: str | dict[str, Any]
    output_dir: str | None = None
    nodes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    axes: dict[str, list[Any]] = Field(min_length=1)
    include: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    latency: LatencyConfig | None = None


class NodeDef(BaseModel):
    """A training node: a run config (file or inline mapping) with keys set over it."""

    model_config = ConfigDict(extra="forbid")
    config: str | dict[str, Any] = Field(description="run config file, or an inline run config")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted key -> value")
    inherit: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INHERIT),
        description="dotted keys taken from the config that names this node",
    )


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
    """One run of the graph: a cell (axis labels) or a training node (`axes` {"node": name}),
    its resolved config, hash, and the hashes of the nodes it needs (`deps`)."""

    index: int
    axes: dict[str, str]
    config: RunConfig
    hash: str
    kind: str = "cell"
    deps: tuple[str, ...] = ()


@dataclass
class Expansion:
    """The runs of a spec under one profile (training nodes first, each after the nodes it
    needs, then the cells), with the counts of what the rules did to the cells."""

    runs: list[GridRun]
    product: int
    excluded: int
    included: int
    merged: int
    profile: str | None

    @property
    def cells(self) -> list[GridRun]:
        return [r for r in self.runs if r.kind == "cell"]

    @property
    def nodes(self) -> list[GridRun]:
        return [r for r in self.runs if r.kind == "node"]


@dataclass
class _Profile:
    cells: list[tuple[tuple[int, str] | None, str, Any]] = field(default_factory=list)
    nodes: dict[str | None, dict[str, Any]] = field(default_factory=dict)
    select: dict[str, list[str]] = field(default_factory=dict)
    exclude: list[dict[str, Any]] = field(default_factory=list)


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
    nodes: dict[str, NodeDef] = field(default_factory=dict)
    spec_dir: Path = field(default_factory=Path)

    def grid_dir(self, profile: str | None = None, output_dir: str | Path | None = None) -> Path:
        """Where the store and run dirs live: `output_dir`, suffixed `-<profile>` for a profile."""
        root = Path(output_dir) if output_dir is not None else Path(self.output_dir)
        return root.with_name(f"{root.name}-{profile}") if profile else root

    def select(self, choices: Mapping[str, list[str]]) -> GridSpec:
        """A copy whose named axes keep only the listed labels (e.g. {"draw": ["0", "1"]})."""
        axes = list(self.axes)
        for name, labels in choices.items():
            axis = self.axis(name)
            missing = [lb for lb in labels if axis.find(lb) is None]
            if missing or not labels:
                raise ConfigError(f"{self.source}: --select {name}: no value(s) {missing or labels}"
                                  f"; axis {name!r} has {[v.label for v in axis.values]}")
            axes[axes.index(axis)] = Axis(axis.name, axis.key,
                                          tuple(v for v in axis.values if v.label in labels))
        return dataclasses.replace(self, axes=axes)

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise ConfigError(f"{self.source}: no axis {name!r}; axes: {[a.name for a in self.axes]}")

    def expand(self, profile: str | None = None) -> Expansion:
        """All runs of the graph under `profile` (None: the spec's settings as written)."""
        settings = self._profile(profile)
        if settings.select:  # axis positions are kept, so the profile's conditions still hold
            # labels a --select already removed are left out (each was checked at load time)
            kept = {name: [lb for lb in labels if self.axis(name).find(lb)] or labels
                    for name, labels in settings.select.items()}
            return dataclasses.replace(self.select(kept), profiles={})._expand(settings, profile)
        return self._expand(settings, profile)

    def _expand(self, settings: _Profile, profile: str | None) -> Expansion:
        for name in self.nodes:  # every node resolves (no cycle, no dangling name) even unused
            self._node({"from": name}, self.base, settings, f"nodes.{name}", (), {})
        product = list(itertools.product(*(a.values for a in self.axes)))
        rules = [*((r, f"exclude[{i}]") for i, r in enumerate(self.exclude)),
                 *((r, f"profiles.{profile}.exclude[{i}]")
                   for i, r in enumerate(settings.exclude))]
        kept = [c for c in product if not any(self._matches(c, r, where) for r, where in rules)]
        extra = [c for i, rule in enumerate(self.include) for c in self._include_combos(rule, i)]
        nodes: dict[str, GridRun] = {}
        cells: list[GridRun] = []
        seen: set[str] = set()
        for combo in kept + extra:
            cfg, deps = self._resolve(combo, settings, nodes)
            h = cfg.config_hash()
            if h in seen:
                continue
            seen.add(h)
            labels = {a.name: v.label for a, v in zip(self.axes, combo, strict=True)}
            cells.append(GridRun(index=0, axes=labels, config=cfg, hash=h, deps=deps))
        runs = [
            GridRun(index=i, axes=r.axes, config=r.config, hash=r.hash, kind=r.kind, deps=r.deps)
            for i, r in enumerate([*nodes.values(), *cells])
        ]
        check_runnable([r.config for r in runs], self.source)  # what training would refuse
        return Expansion(
            runs=runs,
            product=len(product),
            excluded=len(product) - len(kept),
            included=len(extra),
            merged=len(kept) + len(extra) - len(cells),
            profile=profile,
        )

    # -- internals -------------------------------------------------------------------------

    def _profile(self, profile: str | None) -> _Profile:
        """A profile as cell items (condition (axis position, label) or None, dotted key,
        value) and node settings (node name or None for every node -> dotted keys)."""
        out = _Profile()
        if profile is None:
            return out
        if profile not in self.profiles:
            raise ConfigError(
                f"{self.source}: unknown profile {profile!r}; profiles: {sorted(self.profiles)}"
            )
        for key, value in self.profiles[profile].items():
            where = f"profiles.{profile}.{key}"
            if key == SELECT_KEY:
                if not isinstance(value, Mapping) or not all(
                        isinstance(v, list) for v in value.values()):
                    raise ConfigError(f"{self.source}: {where} must map axis names to lists of "
                                      "labels")
                out.select = {str(k): [_label_of(v) for v in labels]
                              for k, labels in value.items()}
                continue
            if key == EXCLUDE_KEY:
                if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
                    raise ConfigError(f"{self.source}: {where} must be a list of rules "
                                      "(axis name -> label or list of labels)")
                out.exclude = [dict(r) for r in value]
                continue
            if key == NODES_KEY or key.startswith(NODE_PREFIX):
                name = key[len(NODE_PREFIX):] if key.startswith(NODE_PREFIX) else None
                if name is not None and name not in self.nodes:
                    raise ConfigError(f"{self.source}: {where}: no node {name!r}; nodes: "
                                      f"{sorted(self.nodes)}")
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{self.source}: {where} must map dotted keys to values")
                out.nodes[name] = dict(value)
                continue
            if "=" not in key:
                (k, v), = _with_data_path({resolve_axis_key(key): value}, self.spec_dir).items()
                out.cells.append((None, k, v))
                continue
            name, label = key.split("=", 1)
            pos = self._axis_pos(name, where)
            if self.axes[pos].find(label) is None:
                raise ConfigError(f"{self.source}: {where}: axis {name!r} has no value {label!r}")
            if not isinstance(value, Mapping):
                raise ConfigError(f"{self.source}: {where} must map dotted keys to values")
            items = _with_data_path({resolve_axis_key(k): v for k, v in value.items()},
                                    self.spec_dir)
            out.cells += [((pos, label), k, v) for k, v in items.items()]
        return out

    def _resolve(
        self, combo: tuple[AxisValue, ...], settings: _Profile, nodes: dict[str, GridRun]
    ) -> tuple[RunConfig, tuple[str, ...]]:
        chosen = [
            (k, v) for when, k, v in settings.cells
            if when is None or combo[when[0]].label == when[1]
        ]
        raw = self.base
        for key, value in [kv for v in combo for kv in v.assignments] + chosen:
            raw = merge_keys(raw, {key: value})
        # sorted by axis, so the order axes are written in does not change the hash
        labels = sorted(f"{a.name}={v.label}" for a, v in zip(self.axes, combo, strict=True))
        raw["name"] = "-".join([self.name, *labels])
        where = ", ".join(f"{a.name}={v.label}" for a, v in zip(self.axes, combo, strict=True))
        raw, deps = self._teacher_nodes(raw, settings, f"run {where}", (), nodes)
        return validate_run_config(raw, source=f"{self.source} (run {where})"), deps

    def _teacher_nodes(
        self, raw: dict[str, Any], settings: _Profile, where: str, stack: tuple[str, ...],
        nodes: dict[str, GridRun],
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """`raw` with each teacher that names a training node replaced by that node's model
        and hash; the nodes are added to `nodes` (each after the nodes it needs)."""
        teachers = raw.get("teachers") or {}
        if not isinstance(teachers, Mapping):
            return raw, ()
        resolved, deps = {}, []
        for tname, entry in teachers.items():
            if isinstance(entry, Mapping) and ("from" in entry or "node" in entry):
                node = self._node(entry, raw, settings, f"{where}: teachers.{tname}", stack, nodes)
                model = node.config.model
                resolved[tname] = {"name": model.name, "view": list(model.view),
                                   "params": model.params, "node": node.hash}
                deps.append(node.hash)
            else:
                resolved[tname] = entry
        return {**raw, "teachers": resolved}, tuple(deps)

    def _node(
        self, entry: Mapping[str, Any], parent: dict[str, Any], settings: _Profile, where: str,
        stack: tuple[str, ...], nodes: dict[str, GridRun],
    ) -> GridRun:
        """The training node a teacher entry names, resolved against the config naming it."""
        allowed = {"from", "set"} if "from" in entry else {"node"}
        unknown = sorted(set(entry) - allowed - REPLACED_BY_NODE)
        if unknown or ("from" in entry and "node" in entry):
            raise ConfigError(f"{self.source}: {where}: a teacher node is {{from: NAME, set: "
                              f"{{...}}}} or {{node: {{config, set, inherit}}}}; got keys "
                              f"{sorted(entry)}")
        extra: dict[str, Any] = {}
        if "from" in entry:
            name = str(entry["from"])
            if name not in self.nodes:
                raise ConfigError(f"{self.source}: {where}: from {name!r} names no node; "
                                  f"nodes: {sorted(self.nodes)}")
            definition, extra = self.nodes[name], dict(entry.get("set") or {})
        else:
            definition = _node_def(entry["node"], f"{self.source}: {where}.node")
            config = definition.config
            name = Path(config).stem if isinstance(config, str) else "inline"
        if name in stack:
            raise ConfigError(f"{self.source}: {where}: training nodes form a cycle: "
                              f"{' -> '.join((*stack, name))}")
        raw = self._node_config(definition.config, where)
        for key in definition.inherit:  # inherited values replace the node's own
            found, value = _get_dotted(parent, key)
            if found:
                raw = _replace_dotted(raw, key, value)
        raw = merge_keys(raw, _with_data_path({**definition.set, **extra}, self.spec_dir))
        for key, value in {**settings.nodes.get(None, {}), **settings.nodes.get(name, {})}.items():
            raw = merge_keys(raw, {key: value})
        raw["name"] = f"{self.name}-{name}"
        raw, deps = self._teacher_nodes(raw, settings, f"{where} (node {name})", (*stack, name),
                                        nodes)
        cfg = validate_run_config(raw, source=f"{self.source}: node {name} ({where})")
        h = cfg.config_hash()
        if h not in nodes:
            nodes[h] = GridRun(index=0, axes={"node": name}, config=cfg, hash=h, kind="node",
                               deps=deps)
        return nodes[h]

    def _node_config(self, config: str | dict[str, Any], where: str) -> dict[str, Any]:
        if isinstance(config, dict):
            return _resolve_data(config, self.spec_dir)
        path = resolve_path(config, self.spec_dir)
        if not path.is_file():
            raise ConfigError(f"{self.source}: {where}: node config {config!r} not found "
                              f"(looked for {path})")
        return read_run_config(path)

    def _matches(self, combo: tuple[AxisValue, ...], rule: dict[str, Any], where: str) -> bool:
        for name, wanted in rule.items():
            pos = self._axis_pos(name, where)
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
                axis.find(_label_of(v))
                or parse_value(axis.key, v, f"{self.source}: include[{i}]", self.spec_dir)
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


def _get_dotted(raw: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    node: Any = raw
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _replace_dotted(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    *parents, leaf = key.split(".")
    out = json.loads(json.dumps(raw))
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = json.loads(json.dumps(value))
    return out


def _node_def(raw: Any, where: str) -> NodeDef:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a training node is a mapping with config, set, inherit")
    try:
        return NodeDef.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, NodeDef, where)) from None


def _with_data_path(items: dict[str, Any], spec_dir: Path | None) -> dict[str, Any]:
    """Dotted keys to set, with a relative `data` path made absolute against `spec_dir`."""
    if spec_dir is not None and isinstance(items.get("data"), str):
        return {**items, "data": str(resolve_path(items["data"], spec_dir))}
    return items


def _resolve_data(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """An inline run config with a relative `data` path made absolute against `base_dir`."""
    if isinstance(raw.get("data"), str):
        return {**raw, "data": str(resolve_path(raw["data"], base_dir))}
    return dict(raw)


def resolve_axis_key(name: str) -> str:
    """An axis name to its dotted config key (aliases first, else the name itself)."""
    return ALIASES.get(name, name)


def _is_bundle(value: Any) -> bool:
    return isinstance(value, Mapping) and ("set" in value or "from" in value)


def _label_of(value: Any) -> str:
    if _is_bundle(value):
        if "label" in value:
            return str(value["label"])
        raise ConfigError(f"bundle {value!r} has no label")
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _any_of(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def parse_value(key: str, value: Any, where: str, spec_dir: Path | None = None) -> AxisValue:
    """An axis value (plain or bundle) to its label and assignments.

    A bundle's `from: FILE` (relative to `spec_dir`) contributes the file's top-level section
    that holds `key` (e.g. `distill` for `distill.method`), before the bundle's `set`.
    """
    if not _is_bundle(value):
        return AxisValue(_label_of(value), tuple(_with_data_path({key: value}, spec_dir).items()))
    unknown = sorted(set(value) - {"label", "set", "from"})
    if unknown:
        raise ConfigError(f"{where}: bundle has unknown keys {unknown}; allowed: "
                          "['from', 'label', 'set']")
    sets = value.get("set", {})
    if not isinstance(sets, Mapping) or ("set" in value and not sets):
        raise ConfigError(f"{where}: bundle `set` must be a non-empty mapping of dotted keys")
    sets = _with_data_path({resolve_axis_key(k): v for k, v in sets.items()}, spec_dir)
    inherited: dict[str, Any] = {}
    if "from" in value:
        section = key.split(".")[0]
        path = resolve_path(str(value["from"]), spec_dir or Path("."))
        found = load_config(path, path_keys=("data",)) if path.is_file() else None
        if found is None:
            raise ConfigError(f"{where}: from {value['from']!r} not found (looked for {path})")
        if section not in found:
            raise ConfigError(f"{where}: {path} has no {section!r} section to inherit")
        inherited = {section: found[section]}
    if "label" not in value and key not in sets:
        raise ConfigError(f"{where}: bundle needs a `label` or a value for {key!r} in `set`")
    label = str(value["label"]) if "label" in value else _label_of(sets[key])
    items = {**inherited, **sets}
    if key not in sets and not inherited and key.split(".")[0] in RunConfig.model_fields:
        items = {key: label, **sets}  # a config key's axis gets the label as its value
    return AxisValue(label, tuple(items.items()))


def _parse_axes(axes: dict[str, list[Any]], source: str, spec_dir: Path) -> list[Axis]:
    out = []
    for name, values in axes.items():
        key = resolve_axis_key(name)
        if not values:
            raise ConfigError(f"{source}: axes.{name} has no values")
        parsed = tuple(
            parse_value(key, v, f"{source}: axes.{name}[{i}]", spec_dir)
            for i, v in enumerate(values)
        )
        labels = [v.label for v in parsed]
        dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
        if dupes:
            raise ConfigError(f"{source}: axes.{name} repeats the labels {dupes}")
        out.append(Axis(name=name, key=key, values=parsed))
    return out


def _load_base(base: str | dict[str, Any], spec_dir: Path, source: str) -> dict[str, Any]:
    if isinstance(base, dict):
        return _resolve_data(base, spec_dir)
    path = resolve_path(base, spec_dir)
    if not path.is_file():
        raise ConfigError(f"{source}: base {base!r} not found (looked for {path})")
    return read_run_config(path)


def spec_from_dict(
    raw: dict[str, Any], source: str = "<grid spec>", spec_dir: Path | None = None
) -> GridSpec:
    """Validate a spec mapping; relative paths in it are taken relative to `spec_dir` (default:
    the working directory)."""
    try:
        parsed = _SpecFile.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, _SpecFile, source)) from None
    name = parsed.name or Path(source).stem
    spec_dir = (spec_dir or Path(".")).resolve()
    base = _load_base(parsed.base, spec_dir, source)
    validate_run_config(base, source=f"{source}: base")
    spec = GridSpec(
        name=name,
        source=source,
        base=base,
        axes=_parse_axes(parsed.axes, source, spec_dir),
        include=parsed.include,
        exclude=parsed.exclude,
        profiles=parsed.profiles,
        output_dir=parsed.output_dir or f"runs/grids/{name}",
        description=parsed.description,
        latency=parsed.latency.model_dump() if parsed.latency else None,
        nodes={k: _node_def(v, f"{source}: nodes.{k}") for k, v in parsed.nodes.items()},
        spec_dir=spec_dir,
    )
    spec.expand()  # every rule, node and run config is checked now, not mid-grid
    for profile in spec.profiles:
        spec.expand(profile)
    return spec


def load_spec(path: str | Path) -> GridSpec:
    """Read and validate a grid spec YAML (every run config is validated too)."""
    path = Path(path)
    return spec_from_dict(load_config(path), source=str(path), spec_dir=path.parent)
