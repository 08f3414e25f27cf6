"""A restricted unpickler for legacy (protocol 2, pandas 0.x) DataFrame pickles.

`pickle.load` runs any callable a file names, so a pickle is only decoded here through an
allow-list: `find_class` resolves exactly the globals such a file uses (numpy array
reconstruction and dtype, `_codecs.encode` for latin-1 byte strings, `copy_reg._reconstructor`,
`__builtin__.object` / `slice`) and maps the pandas classes (DataFrame, BlockManager, Index,
RangeIndex) to inert stand-ins that only store their state. Anything else raises
`UnsafePickleError` before it is called, so a malicious pickle (e.g. `os.system` through
`__reduce__`) is refused without running anything. The stand-ins are then turned into plain
column arrays by `frame_columns`.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list, or misused an allowed one."""


class _Inert:
    """Base of the pandas stand-ins: keeps whatever state the pickle sets, runs nothing."""

    state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class LegacyDataFrame(_Inert):
    """Stand-in for `pandas.core.frame.DataFrame`; state {"_data": LegacyBlockManager, ...}."""


class LegacyBlockManager(_Inert):
    """Stand-in for `pandas.core.internals.managers.BlockManager`.

    Its state is `(axes, block_values, block_items, {"0.14.1": {"axes", "blocks"}})`, each
    block a dict {"values": ndarray [n_cols, n_rows], "mgr_locs": slice of column positions}.
    """


class LegacyIndex(_Inert):
    """Stand-in for `pandas.core.indexes.base.Index` (state {"data": ndarray, "name": ...})."""


class LegacyRangeIndex(_Inert):
    """Stand-in for `pandas.core.indexes.range.RangeIndex` (state {"start", "stop", "step"})."""


_STAND_INS = (LegacyDataFrame, LegacyBlockManager, LegacyIndex, LegacyRangeIndex)
_DTYPE_KINDS = frozenset("biufO")


def _reconstructor(cls: type, base: type, state: Any) -> _Inert:
    """`copy_reg._reconstructor`, limited to creating an empty stand-in."""
    if cls not in _STAND_INS or base is not object or state is not None:
        raise UnsafePickleError(f"copy_reg._reconstructor refused for {cls!r}, {base!r}")
    return cls()


def _new_index(cls: type, data: dict) -> _Inert:
    """`pandas.core.indexes.base._new_Index`, limited to the Index stand-ins."""
    if cls not in (LegacyIndex, LegacyRangeIndex) or not isinstance(data, dict):
        raise UnsafePickleError(f"_new_Index refused for {cls!r}")
    out = cls()
    out.state = data
    return out


def _array_reconstruct(subtype: type, shape: Any, dtype_code: Any) -> np.ndarray:
    """`numpy.core.multiarray._reconstruct`, limited to plain ndarrays."""
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"numpy _reconstruct refused for subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(dtype_code))


def _dtype(spec: Any, align: Any = 0, copy: Any = 0) -> np.dtype:
    """`numpy.dtype`, limited to scalar bool/int/float/object types (no structured dtypes)."""
    if not isinstance(spec, str):
        raise UnsafePickleError(f"numpy.dtype refused for non-string spec {spec!r}")
    dt = np.dtype(spec, align=bool(align), copy=bool(copy))
    if dt.kind not in _DTYPE_KINDS or dt.fields is not None:
        raise UnsafePickleError(f"numpy.dtype {spec!r} is not an allowed scalar type")
    return dt


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """`_codecs.encode`, limited to the latin-1 byte strings of Python 2 pickles."""
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickleError(f"_codecs.encode refused for encoding {encoding!r}")
    return text.encode("latin1")


#: (module, name) as written in the pickle -> the object it resolves to
ALLOWED_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("__builtin__", "slice"): slice,
    ("_codecs", "encode"): _latin1_encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("numpy.core.multiarray", "_reconstruct"): _array_reconstruct,
    ("pandas.core.frame", "DataFrame"): LegacyDataFrame,
    ("pandas.core.internals.managers", "BlockManager"): LegacyBlockManager,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): LegacyIndex,
    ("pandas.core.indexes.range", "RangeIndex"): LegacyRangeIndex,
}


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` only resolves `ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: not in the allow-list of "
                f"legacy DataFrame pickles ({len(ALLOWED_GLOBALS)} globals)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing persistent id {pid!r}")


def safe_loads(data: bytes) -> Any:
    """Decode `data` with `RestrictedUnpickler` (raises `UnsafePickleError` on a foreign global)."""
    return safe_load(io.BytesIO(data))


def safe_load(stream: BinaryIO) -> Any:
    """Decode one pickle from a binary stream with `RestrictedUnpickler`."""
    return RestrictedUnpickler(stream, encoding="latin1").load()


def frame_columns(frame: Any, where: str) -> dict[str, np.ndarray]:
    """Column name -> 1-D array of a decoded `LegacyDataFrame`, read from its block manager.

    Raises `UnsafePickleError` (naming `where`) when the object is not shaped like one.
    """
    if not isinstance(frame, LegacyDataFrame) or not isinstance(frame.state, dict):
        raise UnsafePickleError(f"{where}: expected a pandas DataFrame, got {type(frame).__name__}")
    mgr = frame.state.get("_data")
    if not isinstance(mgr, LegacyBlockManager) or not isinstance(mgr.state, tuple):
        raise UnsafePickleError(f"{where}: DataFrame without a block manager")
    try:
        axes = mgr.state[3]["0.14.1"]["axes"]
        blocks = mgr.state[3]["0.14.1"]["blocks"]
        names = [str(c) for c in axes[0].state["data"]]
        n_rows = _index_length(axes[1])
    except (IndexError, KeyError, TypeError, AttributeError) as err:
        raise UnsafePickleError(f"{where}: unexpected block-manager layout ({err!r})") from None
    columns: dict[str, np.ndarray] = {}
    for block in blocks:
        values, locs = block.get("values"), block.get("mgr_locs")
        if not isinstance(values, np.ndarray) or values.ndim != 2 or not isinstance(locs, slice):
            raise UnsafePickleError(f"{where}: malformed block {type(values).__name__}")
        positions = range(*locs.indices(len(names)))
        if len(positions) != values.shape[0] or values.shape[1] != n_rows:
            raise UnsafePickleError(
                f"{where}: block of shape {values.shape} does not match columns "
                f"{list(positions)} and {n_rows} rows"
            )
        for row, pos in zip(values, positions, strict=True):
            columns[names[pos]] = row
    missing = [n for n in names if n not in columns]
    if missing:
        raise UnsafePickleError(f"{where}: columns {missing} have no data block")
    return {n: columns[n] for n in names}


def _index_length(index: Any) -> int:
    if isinstance(index, LegacyRangeIndex):
        s = index.state
        return len(range(s["start"], s["stop"], s["step"]))
    if isinstance(index, LegacyIndex):
        return len(index.state["data"])
    raise TypeError(f"row index of type {type(index).__name__}")
