"""On-disk cache of prepared WindowSets, keyed by a hash of source + config.

The source's fingerprint is the relative path, size and modification time of every file under
it (a single file or a folder) and of files named by reader options, so editing a recording, an
annotation table or the config gives a new key, while an unchanged rerun loads
`<cache_dir>/<name>-<key>.npz/.json` (no pickle; see `WindowSet.load`).

An entry carries a checksum (`CHECKSUM_KEY` in its .json: sha256 over every array and the
metadata). An entry that does not load or whose checksum disagrees (a truncated .npz, a
corrupt .json) is reported in one line naming the file, deleted and rebuilt; an entry written
before checksums is used when it loads whole. Entries are
written through temporary files unique to each writer and renamed, so processes preparing
the same protocol on a cold cache at once all succeed and leave no temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from data_prep.config import DataConfig
from data_prep.windowset import WindowSet

#: bump when the pipeline's output changes for the same source and config
PIPELINE_VERSION = 1
ENV_VAR = "HARKD_CACHE"
DEFAULT_DIR = Path(".cache/harkd")
#: the .json key holding an entry's checksum (left out of the loaded metadata)
CHECKSUM_KEY = "cache_checksum"


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


def windowset_checksum(ws: WindowSet) -> str:
    """sha256 over each array's name, dtype, shape and bytes (read in place, no copy), then the
    metadata as JSON (without `CHECKSUM_KEY`): the same for a WindowSet and its reloaded copy."""
    digest = hashlib.sha256()
    for name in (f.name for f in fields(WindowSet) if f.name != "meta"):
        array = np.ascontiguousarray(getattr(ws, name))
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array))
    meta = {k: v for k, v in ws.meta.items() if k != CHECKSUM_KEY}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    return digest.hexdigest()


def save_cached(ws: WindowSet, stem: Path) -> None:
    """Write `ws` to the cache at `stem` with its checksum (each file atomically)."""
    ws.meta[CHECKSUM_KEY] = windowset_checksum(ws)
    try:
        ws.save(stem)
    finally:
        del ws.meta[CHECKSUM_KEY]


def load_cached(stem: Path) -> WindowSet | None:
    """The cached WindowSet at `stem`, or None when either file is missing, or when the entry
    is corrupt: then one line on stderr names the file and the entry is deleted (the caller
    rebuilds it)."""
    npz, meta = stem.with_suffix(".npz"), stem.with_suffix(".json")
    if not (npz.is_file() and meta.is_file()):
        return None
    try:
        ws = WindowSet.load(stem)
    except (ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        # a truncated npz is a BadZipFile or an EOFError, a cut JSON a ValueError; name the file
        bad = meta if isinstance(err, json.JSONDecodeError | UnicodeDecodeError) else npz
        return _discard(stem, f"{bad}: not readable ({type(err).__name__}: {err})")
    if not isinstance(ws.meta, dict):
        return _discard(stem, f"{meta}: not a JSON object")
    stored = ws.meta.pop(CHECKSUM_KEY, None)
    if stored is not None and stored != windowset_checksum(ws):
        return _discard(stem, f"{npz}: its data disagrees with the checksum in {meta.name}")
    return ws


def _discard(stem: Path, problem: str) -> None:
    """Report a corrupt entry in one line and delete both of its files."""
    print(f"cache entry corrupt: {problem}; deleted, rebuilding it", file=sys.stderr)
    for path in (stem.with_suffix(".npz"), stem.with_suffix(".json")):
        path.unlink(missing_ok=True)
    return None
