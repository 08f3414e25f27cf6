"""Reader registry: one module per source format, each registering a reader and its options.

A reader is `read(path, options) -> list[Recording]` registered with
`@register_reader(name, OptionsModel)`, where `OptionsModel` subclasses `ReaderOptions` and
declares every option with its type, default and description. `get_reader(name)` gives a
`Reader`, called as `reader(path, **options)`: the options are validated against the model
first, so an unknown or ill-typed option is a one-line error naming it. `harkd prep
--list-readers` prints every reader's options from these declarations. Modules are imported on
first use, so one format's dependencies never slow down another.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from data_prep.configio import ConfigError, format_validation_error
from data_prep.recording import Recording

#: a reader's function: `read(path, options)`, the options an instance of its `ReaderOptions`
ReadFn = Callable[[Any, Any], list[Recording]]


class ReadResult(list):
    """A reader's recordings (a plain `list[Recording]`) plus what it repaired or skipped.

    `counts`: reason -> number of records; `examples`: reason -> a few locations ("file:line")
    so that every repaired or skipped record can be found; `details`: source file -> what the
    reader did to it (JSON values, e.g. a calibration's error before and after), shown in the
    prep report. Readers with nothing to report return a plain list.
    """

    def __init__(
        self,
        recordings: Iterable[Recording] = (),
        counts: dict[str, int] | None = None,
        examples: dict[str, list[str]] | None = None,
        details: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(recordings)
        self.counts = dict(counts or {})
        self.examples = dict(examples or {})
        self.details = dict(details or {})


class OptionInfo(NamedTuple):
    """One declared reader option, as `harkd prep --list-readers` prints it."""

    name: str
    type: str
    default: str | None  # repr of the default; None: the option is required
    description: str


class ReaderOptions(BaseModel):
    """A reader's options: one field per option, each with a type, a default (or none: the
    option is required) and a `Field(description=...)`. Unknown options are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def describe(cls) -> list[OptionInfo]:
        """Every option in declaration order."""
        return [
            OptionInfo(
                name,
                _type_text(field.annotation),
                None if field.is_required() else repr(field.get_default(call_default_factory=True)),
                field.description or "",
            )
            for name, field in cls.model_fields.items()
        ]


def _type_text(annotation: Any) -> str:
    """`bool`, `list[str]`, `float | None`, `Literal['error', 'skip']`."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


@dataclass(frozen=True)
class Reader:
    """A registered reader: `reader(path, **options)` validates the options against its
    `options` model, then runs `read(path, options)`."""

    name: str
    read: ReadFn
    options: type[ReaderOptions]

    def __call__(self, path: str | Path | None = None, **options: Any) -> list[Recording]:
        return self.read(path, self.parse_options(options))

    def parse_options(self, options: Mapping[str, Any]) -> ReaderOptions:
        """The validated options; a `ConfigError` (one line) names each bad option."""
        try:
            return self.options.model_validate(dict(options))
        except ValidationError as err:
            text = format_validation_error(err, self.options, f"reader {self.name!r} options")
            raise ConfigError("; ".join(line.strip() for line in text.splitlines())) from None

    @property
    def summary(self) -> str:
        """The first line of the reader's docstring."""
        lines = (self.read.__doc__ or "").strip().splitlines()
        return lines[0] if lines else ""

    @property
    def doc(self) -> str:
        """The reader module's docstring: the format it reads, in full."""
        return (sys.modules[self.read.__module__].__doc__ or "").strip()


#: reader name -> module that defines it (imported on first use)
READER_MODULES: dict[str, str] = {
    "hapt": "data_prep.readers.hapt_pickle",
    "device": "data_prep.readers.device",
    "uci_hapt_raw": "data_prep.readers.uci_hapt_raw",
    "uci_har": "data_prep.readers.uci_har",
    "wisdm": "data_prep.readers.wisdm",
    "pamap2": "data_prep.readers.pamap2",
    "table": "data_prep.readers.table",
    "utd_mhad": "data_prep.readers.utd_mhad",
    "synth_skeleton": "data_prep.readers.synth_skeleton",
}

_READERS: dict[str, Reader] = {}


def register_reader(name: str, options: type[ReaderOptions]) -> Callable[[ReadFn], ReadFn]:
    """Register `read(path, options)` as the reader `name`, its options declared by `options`
    (`ReaderOptions` itself for a reader that takes none)."""

    def wrap(fn: ReadFn) -> ReadFn:
        _READERS[name] = Reader(name, fn, options)
        return fn

    return wrap


def get_reader(name: str) -> Reader:
    """The reader registered as `name`, or a `KeyError` listing the known names."""
    if name not in _READERS:
        if name not in READER_MODULES:
            raise KeyError(f"unknown reader {name!r}; known readers: {sorted(READER_MODULES)}")
        importlib.import_module(READER_MODULES[name])
    return _READERS[name]


def list_readers() -> dict[str, Reader]:
    """Every reader by name (each module is imported)."""
    return {name: get_reader(name) for name in sorted(READER_MODULES)}
