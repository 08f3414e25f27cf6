"""The restricted unpickler decodes legacy DataFrame pickles and refuses everything else."""

from __future__ import annotations

import os
import pickle
import pickletools

import numpy as np
import pytest

from data_prep.safe_pickle import (
    ALLOWED_GLOBALS,
    LegacyDataFrame,
    UnsafePickleError,
    frame_columns,
    safe_loads,
)


class _RunsShell:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Evaluates:
    def __reduce__(self):
        return eval, ("1 + 1",)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_reduce_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_RunsShell(str(marker)), protocol=protocol)
    assert b"system" in blob  # the payload really is a shell call
    with pytest.raises(UnsafePickleError, match="system"):
        safe_loads(blob)
    assert not marker.exists()


def test_malicious_object_inside_a_legacy_frame_is_refused(tmp_path, legacy_dumper, frame_maker):
    marker = tmp_path / "pwned"
    frame = frame_maker({"acc-x": np.zeros(4), "label": np.zeros(4, dtype=np.int64)})
    frame.state["attrs"] = {"payload": _RunsShell(str(marker))}
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        safe_loads(legacy_dumper({1: [frame]}))
    assert not marker.exists()
    with pytest.raises(UnsafePickleError, match="eval"):
        safe_loads(legacy_dumper({1: [_Evaluates()]}))


def test_allowed_globals_cannot_be_misused():
    # copy_reg._reconstructor on a class outside the stand-ins
    forged = (
        b"\x80\x02ccopy_reg\n_reconstructor\nq\x00cnumpy\nndarray\nq\x01c__builtin__\nobject\n"
        b"q\x02N\x87q\x03Rq\x04."
    )
    with pytest.raises(UnsafePickleError, match="_reconstructor refused"):
        safe_loads(forged)
    # _codecs.encode with an encoding other than latin1
    forged = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00utf-7\x86R."
    with pytest.raises(UnsafePickleError, match="utf-7"):
        safe_loads(forged)
    # a structured numpy dtype
    forged = b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00V8K\x00K\x01\x87R."
    with pytest.raises(UnsafePickleError, match="not an allowed scalar type"):
        safe_loads(forged)


def test_decodes_the_legacy_layout_to_columns(legacy_dumper, frame_maker):
    cols = {
        "acc-x": np.linspace(0, 1, 7),
        "gyro-z": np.linspace(-1, 0, 7),
        "sequence": np.arange(7),
        "label": np.array([-1, 1, 1, 2, 2, 12, -1]),
    }
    blob = legacy_dumper({3: [frame_maker(cols)]})
    used = {arg for op, arg, _ in pickletools.genops(blob) if op.name == "GLOBAL"}
    assert {tuple(g.split(" ")) for g in used} <= set(ALLOWED_GLOBALS)
    decoded = safe_loads(blob)
    assert isinstance(decoded[3][0], LegacyDataFrame)
    out = frame_columns(decoded[3][0], "fixture")
    assert list(out) == ["acc-x", "gyro-z", "sequence", "label"]
    for name, values in cols.items():
        np.testing.assert_array_equal(out[name], values)


def test_frame_columns_rejects_other_objects():
    with pytest.raises(UnsafePickleError, match="fixture: expected a pandas DataFrame"):
        frame_columns({"not": "a frame"}, "fixture")
