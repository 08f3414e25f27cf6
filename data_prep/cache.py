"""On-disk cache of prepared WindowSets, keyed by a hash of source + config.

The source's fingerprint is the relative path, size and modification time of every file under
it (a single file or a folder) and of files named by reader options, so editing a recording, an
annotation table or the config gives a new key, while an unchanged rerun loads
`<cache_dir>/<name>-<key>.npz/.json` (no pickle; see `WindowSet.load`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from data_prep.config import DataConfig
from data_prep.windowset import WindowSet

#: bump when the pipeline's output changes for the same source and config
PIPELINE_VERSION = 1
ENV_VAR = "HARKD_CACHE"
DEFAULT_DIR = Path(".cache/harkd")


def resolve_cache_dir(cache_dir: Path | str | None = None) -> Path:
    """The argument, else `$HARKD_CACHE`, else ./.cache/harkd."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def source_fingerprint(source: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of the source file or of every file under the folder."""
    source = Path(source)
    if source.is_file():
        st = source.stat()
        return [(source.name, st.st_size, st.st_mtime_ns)]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: data source not found")
    out = []
    for root, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            p = Path(root, name)
            st = p.stat()
            out.append((p.relative_to(source).as_posix(), st.st_size, st.st_mtime_ns))
    return out


def cache_key(cfg: DataConfig, source: Path) -> str:
    """16 hex digits of sha256 over the pipeline version, source fingerprint and config, plus
    the fingerprint of every file a reader option names (an annotation table, a manifest;
    relative to the source's folder)."""
    content = {
        "version": PIPELINE_VERSION,
        "source": source_fingerprint(source),
        "config": cfg.model_dump(mode="json"),
    }
    folder = source if source.is_dir() else source.parent
    named = {k: folder / Path(v).expanduser() for k, v in cfg.reader_options.items() if _text(v)}
    option_files = {k: source_fingerprint(p) for k, p in sorted(named.items()) if p.is_file()}
    if option_files:
        content["reader_files"] = option_files
    blob = json.dumps(content, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def cache_stem(cfg: DataConfig, key: str, cache_dir: Path) -> Path:
    """`<cache_dir>/<protocol name>-<key>` (the .npz and .json share it)."""
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in cfg.name)
    return cache_dir / f"{safe_name}-{key}"


def load_cached(stem: Path) -> WindowSet | None:
    """The cached WindowSet at `stem`, or None when either file is missing."""
    if not (stem.with_suffix(".npz").is_file() and stem.with_suffix(".json").is_file()):
        return None
    return WindowSet.load(stem)
