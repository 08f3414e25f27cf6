"""Reader registry: one module per source format, each registering `read(path, **options)`.

A reader returns `list[Recording]`. Readers are registered by name with `@register_reader`
and looked up with `get_reader`; modules are imported lazily so optional dependencies of one
format never slow down or break another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from data_prep.recording import Recording

ReaderFn = Callable[..., list[Recording]]


class ReadResult(list):
    """A reader's recordings (a plain `list[Recording]`) plus what it repaired or skipped.

    `counts`: reason -> number of records; `examples`: reason -> a few locations ("file:line")
    so that every repaired or skipped record can be found. Readers with nothing to report
    return a plain list.
    """

    def __init__(
        self,
        recordings: Iterable[Recording] = (),
        counts: dict[str, int] | None = None,
        examples: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(recordings)
        self.counts = dict(counts or {})
        self.examples = dict(examples or {})


#: reader name -> module that defines it (imported on first use)
READER_MODULES: dict[str, str] = {
    "hapt": "data_prep.readers.hapt_pickle",
    "uci_hapt_raw": "data_prep.readers.uci_hapt_raw",
    "uci_har": "data_prep.readers.uci_har",
    "wisdm": "data_prep.readers.wisdm",
    "pamap2": "data_prep.readers.pamap2",
    "table": "data_prep.readers.table",
    "utd_mhad": "data_prep.readers.utd_mhad",
    "synth_skeleton": "data_prep.readers.synth_skeleton",
}

_READERS: dict[str, ReaderFn] = {}


def register_reader(name: str) -> Callable[[ReaderFn], ReaderFn]:
    """Register `fn` as the reader called `name`."""

    def wrap(fn: ReaderFn) -> ReaderFn:
        _READERS[name] = fn
        return fn

    return wrap


def get_reader(name: str) -> ReaderFn:
    """Return the reader registered as `name`, or raise listing the known names."""
    if name not in _READERS:
        if name not in READER_MODULES:
            raise KeyError(f"unknown reader {name!r}; known readers: {sorted(READER_MODULES)}")
        importlib.import_module(READER_MODULES[name])
    return _READERS[name]


def list_readers() -> dict[str, str]:
    """Reader name -> first line of its docstring."""
    out = {}
    for name in sorted(READER_MODULES):
        try:
            doc = (get_reader(name).__doc__ or "").strip().splitlines()
        except ImportError as err:  # a module not written or a missing optional dependency
            doc = [f"(unavailable: {err})"]
        out[name] = doc[0] if doc else ""
    return out
