"""The files of a run directory and atomic writes (temporary file, fsync, rename).

config.yaml (resolved config), model.safetensors + model.json (the deployable model and its run
card, `harkd.train.runcard`), last.safetensors + last.json (resumable state), metrics.json
(written last: a run is finished when it exists), curve.png, confusion_test.csv,
confusion_test.png; a generative method adds generated.npz and generated.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    config = property(lambda self: self.root / "config.yaml")
    model = property(lambda self: self.root / "model.safetensors")
    card = property(lambda self: self.root / "model.json")
    last = property(lambda self: self.root / "last.safetensors")
    last_meta = property(lambda self: self.root / "last.json")
    metrics = property(lambda self: self.root / "metrics.json")
    curve = property(lambda self: self.root / "curve.png")
    confusion_csv = property(lambda self: self.root / "confusion_test.csv")
    confusion_png = property(lambda self: self.root / "confusion_test.png")
    generated_npz = property(lambda self: self.root / "generated.npz")  # generative methods
    generated_png = property(lambda self: self.root / "generated.png")

    def make(self) -> RunDir:
        self.root.mkdir(parents=True, exist_ok=True)
        return self


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old file or the new one, never a part.

    The temporary file is unique to the writer (concurrent writers never share it) and removed
    when the write fails; every failure, a full disk included, is an OSError naming `path`. A
    path that exists but is not a regular file (a device such as /dev/null) is written in place.
    """
    path = Path(path)
    in_place = path.exists() and not path.is_file()
    tmp = path if in_place else path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb" if in_place else "xb") as f:
            f.write(data)
            f.flush()
            if not in_place:
                os.fsync(f.fileno())
        if not in_place:
            os.replace(tmp, path)
    except OSError as err:  # a failed write() names no file, a failed open() the temporary one
        if err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        if not in_place:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=True) + "\n").encode())


def atomic_write_yaml(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, yaml.safe_dump(obj, sort_keys=False).encode())


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None when it is missing."""
    return json.loads(path.read_text()) if path.is_file() else None
