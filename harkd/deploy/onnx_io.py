"""What an exported file holds and how to feed it: tensor names, metadata, input transform.

An exported graph takes raw sensor windows `windows` [batch, channels, time] and returns
`logits` [batch, classes]; everything a deployment needs travels in its `metadata_props`
(JSON values), among them the normalisation under `harkd.normalization`, folded into the graph
or left for the caller to apply (`input_transform`). Files are written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from harkd.deploy.session import make_session
from harkd.train.rundir import atomic_write_bytes

INPUT_NAME = "windows"
OUTPUT_NAME = "logits"
#: metadata key holding the normalisation: {"mean": [C], "std": [C], "folded": bool}
NORM_KEY = "harkd.normalization"


def set_metadata(proto: onnx.ModelProto, props: dict[str, Any]) -> None:
    """Replace `metadata_props` by `props` (non-string values JSON-encoded, keys sorted)."""
    del proto.metadata_props[:]
    for key in sorted(props):
        value = props[key]
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)


def read_metadata(proto: onnx.ModelProto) -> dict[str, Any]:
    """`metadata_props` as a dict, JSON values decoded (plain strings stay strings)."""
    out: dict[str, Any] = {}
    for entry in proto.metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except json.JSONDecodeError:
            out[entry.key] = entry.value
    return out


def save_onnx(proto: onnx.ModelProto, path: str | Path) -> Path:
    """Write `proto` to `path` atomically (creating its folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, proto.SerializeToString())
    return path


def input_transform(metadata: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """What to do to raw windows before feeding an exported file: normalise them when its
    normalisation is recorded but not folded in, else nothing."""
    norm = metadata.get(NORM_KEY)
    if not norm or norm.get("folded", True):
        return lambda x: np.ascontiguousarray(x, dtype=np.float32)
    mean = np.asarray(norm["mean"], dtype=np.float32).reshape(1, -1, 1)
    std = np.asarray(norm["std"], dtype=np.float32).reshape(1, -1, 1)
    return lambda x: np.ascontiguousarray((x - mean) / std, dtype=np.float32)


def onnx_logits(path: str | Path, windows: np.ndarray, batch: int = 512) -> np.ndarray:
    """Logits of an exported file on raw windows [N, C, T] (its input transform applied)."""
    session = make_session(path)
    prepare = input_transform(read_metadata(onnx.load(str(path), load_external_data=False)))
    out = [
        session.run([OUTPUT_NAME], {INPUT_NAME: prepare(windows[i : i + batch])})[0]
        for i in range(0, len(windows), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def file_size(path: str | Path) -> int:
    """Bytes of an ONNX file plus any external-data files next to it that it names."""
    path = Path(path)
    total = path.stat().st_size
    proto = onnx.load(str(path), load_external_data=False)
    seen = set()
    for init in proto.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location" and entry.value not in seen:
                seen.add(entry.value)
                total += (path.parent / entry.value).stat().st_size
    return total
