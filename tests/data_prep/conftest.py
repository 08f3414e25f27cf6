"""Fixture writers for data_prep tests: legacy HAPT pickles and UCI HAPT RawData/ folders.

`write_legacy_pickle` emits the exact layout of the PyPI package's HAPT.pkl.gz (protocol 2,
pandas 0.x block manager, the same twelve globals), so the `hapt` reader is tested on small
files in the real format. `write_rawdata` writes the original UCI HAPT text layout.
"""

from __future__ import annotations

import gzip
import io
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from data_prep import safe_pickle as sp
from data_prep.recording import Recording

_ARRAY_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's _reconstruct, whatever its module

#: objects written under the names the legacy file uses
_LEGACY_NAMES = {
    id(sp._reconstructor): ("copy_reg", "_reconstructor"),
    id(sp._new_index): ("pandas.core.indexes.base", "_new_Index"),
    id(sp.LegacyDataFrame): ("pandas.core.frame", "DataFrame"),
    id(sp.LegacyBlockManager): ("pandas.core.internals.managers", "BlockManager"),
    id(sp.LegacyIndex): ("pandas.core.indexes.base", "Index"),
    id(sp.LegacyRangeIndex): ("pandas.core.indexes.range", "RangeIndex"),
    id(_ARRAY_RECONSTRUCT): ("numpy.core.multiarray", "_reconstruct"),
}


class _LegacyPickler(pickle._Pickler):
    """Pure-Python pickler writing the stand-ins under their pandas 0.x names."""

    def save(self, obj: object, save_persistent_id: bool = True) -> None:
        if id(obj) not in _LEGACY_NAMES:
            super().save(obj, save_persistent_id)
        elif id(obj) in self.memo:
            self.write(self.get(self.memo[id(obj)][0]))
        else:
            module, qualname = _LEGACY_NAMES[id(obj)]
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
            self.memoize(obj)

    def reducer_override(self, obj: object) -> object:
        if isinstance(obj, (sp.LegacyDataFrame, sp.LegacyBlockManager)):
            return sp._reconstructor, (type(obj), object, None), obj.state
        if isinstance(obj, (sp.LegacyIndex, sp.LegacyRangeIndex)):
            return sp._new_index, (type(obj), obj.state)
        return NotImplemented


def _index(names: list[str]) -> sp.LegacyIndex:
    idx = sp.LegacyIndex()
    idx.state = {"data": np.array(names, dtype=object), "name": None}
    return idx


def legacy_frame(columns: dict[str, np.ndarray]) -> sp.LegacyDataFrame:
    """A DataFrame stand-in with a float block then an int block, as pandas 0.x stored it."""
    names = list(columns)
    floats = [n for n in names if columns[n].dtype.kind == "f"]
    ints = [n for n in names if columns[n].dtype.kind != "f"]
    names = floats + ints
    n_rows = len(columns[names[0]])
    rows = sp.LegacyRangeIndex()
    rows.state = {"name": None, "start": 0, "stop": n_rows, "step": 1}
    axes = [_index(names), rows]
    blocks, values, items = [], [], []
    for start, group in ((0, floats), (len(floats), ints)):
        if group:
            block = np.stack([columns[n] for n in group])
            blocks.append({"values": block, "mgr_locs": slice(start, start + len(group), 1)})
            values.append(block)
            items.append(_index(group))
    mgr = sp.LegacyBlockManager()
    mgr.state = (axes, values, items, {"0.14.1": {"axes": axes, "blocks": blocks}})
    frame = sp.LegacyDataFrame()
    frame.state = {"_data": mgr, "_typ": "dataframe", "_metadata": [], "attrs": {}}
    return frame


def legacy_dumps(obj: object) -> bytes:
    buf = io.BytesIO()
    _LegacyPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_legacy_pickle(path: Path, recordings: dict[int, list[Recording]]) -> Path:
    """Write {user: [Recording]} as a gzipped legacy HAPT pickle."""
    data = {}
    for user, recs in recordings.items():
        frames = []
        for rec in recs:
            cols = {
                name: rec.signals[:, i].astype(np.float64)
                for i, name in enumerate(["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z"])
            }
            cols["sequence"] = np.arange(rec.n_samples, dtype=np.int64)
            cols["label"] = rec.labels.astype(np.int64)
            frames.append(legacy_frame(cols))
        data[user] = frames
    path.write_bytes(gzip.compress(legacy_dumps(data), compresslevel=1))
    return path


def label_rows(rec: Recording, exp: int) -> list[str]:
    """labels.txt rows `exp user activity start end` for the labelled runs of `rec`."""
    change = np.flatnonzero(np.diff(rec.labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [rec.n_samples]]) - 1
    return [
        f"{exp} {rec.subject} {rec.labels[s]} {s} {e}"
        for s, e in zip(starts, ends, strict=True)
        if rec.labels[s] != -1
    ]


def write_rawdata(root: Path, recordings: list[Recording]) -> Path:
    """Write recordings (sessions "expNN") in the UCI HAPT RawData/ layout under `root`."""
    raw = root / "RawData"
    raw.mkdir(parents=True, exist_ok=True)
    rows = []
    for rec in recordings:
        exp, user = int(rec.session.removeprefix("exp")), int(rec.subject)
        for name, cols in (("acc", slice(0, 3)), ("gyro", slice(3, 6))):
            np.savetxt(
                raw / f"{name}_exp{exp:02d}_user{user:02d}.txt", rec.signals[:, cols], fmt="%.9g"
            )
        rows += label_rows(rec, exp)
    (raw / "labels.txt").write_text("\n".join(rows) + "\n")
    return raw


@pytest.fixture(scope="session")
def legacy_pickle_writer() -> Callable[[Path, dict[int, list[Recording]]], Path]:
    return write_legacy_pickle


@pytest.fixture(scope="session")
def rawdata_writer() -> Callable[[Path, list[Recording]], Path]:
    return write_rawdata


@pytest.fixture(scope="session")
def frame_maker() -> Callable[[dict[str, np.ndarray]], sp.LegacyDataFrame]:
    return legacy_frame


@pytest.fixture(scope="session")
def legacy_dumper() -> Callable[[object], bytes]:
    return legacy_dumps


@pytest.fixture(scope="session")
def make_recording() -> Callable[..., Recording]:
    """A HAPT-shaped synthetic Recording (6 channels, 50 Hz) with the given labels."""
    from data_prep.readers.uci_hapt_raw import hapt_recording

    def make(
        labels: list[int] | np.ndarray, user: int = 1, exp: int = 1, seed: int = 0
    ) -> Recording:
        labels = np.asarray(labels, dtype=np.int64)
        signals = np.random.default_rng(seed).normal(size=(len(labels), 6)).astype(np.float32)
        return hapt_recording(signals, labels, user, exp, f"synthetic user {user} exp {exp}")

    return make
