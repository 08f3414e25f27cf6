"""The WindowSet cache under damage and concurrency: a corrupt entry is reported in one line
naming its file, deleted and rebuilt; writers on a cold cache never collide."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_prep.cache import CHECKSUM_KEY, load_cached, save_cached
from data_prep.config import load_data_config
from data_prep.pipeline import prepare
from data_prep.windowset import WindowSet

REPO = Path(__file__).resolve().parents[2]
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
WRITERS = 4
ROUNDS = 10


@pytest.fixture
def rawdata(tmp_path, rawdata_writer, make_recording) -> Path:
    recs = [make_recording([1] * 300 + [4] * 300, user=1, exp=1),
            make_recording([2] * 400 + [5] * 200, user=2, exp=2, seed=1),
            make_recording([3] * 300 + [6] * 300, user=3, exp=3, seed=2)]
    return rawdata_writer(tmp_path / "UCI_HAPT", recs).parent


def overrides(root: Path) -> list[str]:
    return ["reader=uci_hapt_raw", f"path={root}", "split.test_subjects=[3]",
            "split.val_subjects=[2]"]


def prepared(root: Path, cache: Path) -> WindowSet:
    return prepare(load_data_config(HAPT_QUICK, overrides(root)), cache, progress=False)


def same_windows(a: WindowSet, b: WindowSet) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k))
               for k in ("X", "y", "subject", "recording", "start", "split"))


def damage_npz_truncate(stem: Path) -> Path:
    npz = stem.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    return npz


def damage_json_truncate(stem: Path) -> Path:
    meta = stem.with_suffix(".json")
    meta.write_text(meta.read_text()[:100])
    return meta


def damage_json_value(stem: Path) -> Path:
    """Valid JSON, one metadata value changed: only the checksum can tell."""
    meta = stem.with_suffix(".json")
    raw = json.loads(meta.read_text())
    raw["rate_hz"] = 25.0
    meta.write_text(json.dumps(raw))
    return stem.with_suffix(".npz")


def damage_npz_values(stem: Path) -> Path:
    """A whole, loadable npz whose windows changed: only the checksum can tell."""
    npz = stem.with_suffix(".npz")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["X"][0, 0, 0] += 1.0
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    return npz


@pytest.mark.parametrize("damage", [damage_npz_truncate, damage_json_truncate,
                                    damage_json_value, damage_npz_values])
def test_a_corrupt_entry_is_reported_deleted_and_rebuilt(rawdata, tmp_path, capfd, damage):
    first = prepared(rawdata, tmp_path / "c")
    stem = Path(first.meta["cache_path"])
    assert json.loads(stem.with_suffix(".json").read_text())[CHECKSUM_KEY]
    named = damage(stem)
    capfd.readouterr()
    rebuilt = prepared(rawdata, tmp_path / "c")
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"cache entry corrupt: {named}")
    assert err[0].endswith("deleted, rebuilding it")
    assert rebuilt.meta["from_cache"] is False and same_windows(first, rebuilt)
    again = prepared(rawdata, tmp_path / "c")  # the rebuilt entry is whole
    assert again.meta["from_cache"] is True and same_windows(first, again)
    assert capfd.readouterr().err == ""
    assert CHECKSUM_KEY not in again.meta


def test_an_entry_written_before_checksums_is_used(rawdata, tmp_path):
    first = prepared(rawdata, tmp_path / "c")
    stem = Path(first.meta["cache_path"])
    meta = json.loads(stem.with_suffix(".json").read_text())
    del meta[CHECKSUM_KEY]
    stem.with_suffix(".json").write_text(json.dumps(meta))
    assert same_windows(load_cached(stem), first)


def test_harkd_prep_rebuilds_a_truncated_entry(rawdata, tmp_path, capsys):
    from harkd.cli import main

    argv = ["prep", str(HAPT_QUICK), *overrides(rawdata), "--cache-dir", str(tmp_path / "c"),
            "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    npz = Path(out.split("cache     ")[1].split(" (")[0])
    npz.write_bytes(npz.read_bytes()[:64])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"cache entry corrupt: {npz}: not readable (BadZipFile: File is not a zip file); "
        "deleted, rebuilding it"]
    assert f"cache     {npz} (written)" in captured.out


def _save_at_once(ws: WindowSet, stem: str, barrier) -> None:
    for _ in range(ROUNDS):
        barrier.wait(timeout=60)
        save_cached(ws, Path(stem))


def test_concurrent_writers_of_one_entry_never_collide(rawdata, tmp_path):
    ws = prepared(rawdata, tmp_path / "source")
    stem = tmp_path / "c" / "entry"
    stem.parent.mkdir()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_save_at_once, args=(ws, str(stem), barrier))
             for _ in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert sorted(os.listdir(stem.parent)) == ["entry.json", "entry.npz"]  # no stray temp file
    assert same_windows(load_cached(stem), ws)


def test_two_prep_processes_on_a_cold_cache_both_succeed(rawdata, tmp_path):
    cache = tmp_path / "cold"
    argv = [sys.executable, "-m", "harkd.cli", "prep", str(HAPT_QUICK), *overrides(rawdata),
            "--cache-dir", str(cache), "--no-progress"]
    for _ in range(3):
        procs = [subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0, err
            assert err == "" and "cache     " in out
        files = sorted(os.listdir(cache))
        assert len(files) == 2 and {Path(f).suffix for f in files} == {".npz", ".json"}
        stem = cache / Path(files[0]).stem
        assert load_cached(stem) is not None
        for f in files:  # cold again for the next attempt
            (cache / f).unlink()
