"""The configuration base every layer shares: `ConfigError`, YAML reading and `key=value` overrides.

It lives in `data_prep`, the lowest layer, so that data protocols and run configs report bad keys
the same way without `data_prep` importing `harkd`.
"""

from __future__ import annotations

import json
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
