"""The configuration base every layer shares: `ConfigError`, YAML reading and `key=value` overrides.

It lives in `data_prep`, the lowest layer, so that data protocols and run configs report bad keys
the same way without `data_prep` importing `harkd`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and what is allowed."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value`; the value is read as YAML (numbers, lists, booleans, null)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key part")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def merge_keys(raw: dict[str, Any], items: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """A copy of `raw` with each (dotted key -> value) of `items` merged in.

    The one merge behind CLI overrides, grid axes and profiles, data overrides and `defaults:`.
    A top-level key may be dotted (`split.fold`; keys inside a mapping value are taken
    literally); a non-empty mapping merges into the mapping
    already there (so `{"split": {"fold": 3}}` keeps the other split keys); any other value,
    and an empty mapping, replaces what was there (`teachers: {}` clears the teachers).
    """
    out = json.loads(json.dumps(raw))
    for key, value in items.items():
        *parents, leaf = str(key).split(".")
        if not leaf or any(not p for p in parents):
            raise ConfigError(f"{where}{key!r} has an empty key part")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{where}{key}: {part!r} is not a mapping")
            node = child
        _merge_into(node, leaf, value)
    return out


def _merge_into(node: dict[str, Any], key: str, value: Any) -> None:
    """Set `node[key]`, merging a non-empty mapping into a mapping (nested keys are literal)."""
    if isinstance(value, Mapping) and value and isinstance(node.get(key), dict):
        for k, v in value.items():
            _merge_into(node[key], str(k), v)
    else:
        node[key] = json.loads(json.dumps(value))


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with every `key=value` override merged in (see `merge_keys`)."""
    out = raw
    for text in overrides:
        path, value = parse_override(text)
        out = merge_keys(out, {".".join(path): value}, where=f"override {text!r}: ")
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
    except yaml.YAMLError as err:  # one line: file:line:column and the problem
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(
    path: str | Path, path_keys: tuple[str, ...] = (), _chain: tuple[Path, ...] = ()
) -> dict[str, Any]:
    """Read a config YAML with its `defaults:` (files merged under it, in order).

    `defaults` is a path or a list of paths, relative to the file that names them; each may
    have defaults of its own. The file's own keys merge over its defaults (`merge_keys`), so
    shared settings such as `train: {epochs: 30, batch_size: 128}` are written once. The
    top-level keys in `path_keys` hold file paths: a relative one is made absolute against the
    folder of the file that sets it.
    """
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, path))
        raise ConfigError(f"{path}: defaults include themselves ({cycle})")
    raw = load_yaml(path)
    for key in path_keys:
        if isinstance(raw.get(key), str):
            raw[key] = str(resolve_path(raw[key], path.parent))
    names = raw.pop("defaults", [])
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: defaults must be a file path or a list of file paths")
    merged: dict[str, Any] = {}
    for name in names:
        parent = load_config(resolve_path(name, path.parent), path_keys, (*_chain, path))
        merged = merge_keys(merged, parent)
    return merge_keys(merged, raw, where=f"{path}: ")


def resolve_path(value: str | Path, base_dir: Path) -> Path:
    """`value` as an absolute path: a relative one is taken relative to `base_dir` (the folder
    of the config file that names it)."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base_dir / p).resolve()

