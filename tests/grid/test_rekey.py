"""Run keys that do not depend on where the data protocol lies, and stores keyed the old way
(the protocol's absolute path in every hash) re-keyed instead of trained again."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

from grid_helpers import HAPT_QUICK, SMALL_DATA, TRAIN, chain_spec

from harkd.commands.grid import dry_run
from harkd.config import validate_run_config
from harkd.grid.spec import GridRun, GridSpec, spec_from_dict
from harkd.grid.store import RunStore


def checkout(root: Path) -> Path:
    """A copy of the shipped hapt-quick protocol in `root`, as another clone would have it."""
    path = root / "configs" / "data" / "hapt-quick.yaml"
    path.parent.mkdir(parents=True)
    shutil.copy(HAPT_QUICK, path)
    return path


def spec_at(protocol: Path, tmp_path: Path) -> GridSpec:
    """The chain grid (2 nodes, 4 cells) on the protocol file `protocol`."""
    raw = chain_spec(tmp_path / "grid")
    raw["base"]["data"] = str(protocol)
    for node in raw["nodes"].values():
        node["config"] = {**node["config"], "data": str(protocol)}
    return spec_from_dict(raw)


def expand_at(protocol: Path, tmp_path: Path) -> list[GridRun]:
    return spec_at(protocol, tmp_path).expand().runs


def legacy_keyed(runs: list[GridRun]) -> list[GridRun]:
    """`runs` as the earlier harkd keyed them: the hash of the config with the protocol's path,
    the teachers naming their nodes by those hashes."""
    old: dict[str, str] = {}
    out = []
    for run in runs:
        config = run.config.model_dump(mode="json")
        for teacher in config["teachers"].values():
            if teacher.get("node"):
                teacher["node"] = old[teacher["node"]]
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        old[run.hash] = key
        out.append(dataclasses.replace(run, hash=key, config=validate_run_config(config),
                                       deps=tuple(old[d] for d in run.deps)))
    return out


def finish_all(store: RunStore, runs_dir: Path) -> None:
    host, pid = socket.gethostname(), os.getpid()
    while (row := store.claim(None, host, pid)) is not None:
        (runs_dir / row.hash).mkdir(parents=True)
        (runs_dir / row.hash / "metrics.json").write_text(json.dumps({"hash": row.hash}))
        store.complete(row.hash, host, pid, {"test": {"macro_f1": row.index / 10}}, {}, 1, 1.0)


def test_the_key_follows_the_protocols_content_not_its_path(tmp_path):
    a, b = checkout(tmp_path / "a"), checkout(tmp_path / "b")
    base = {"model": {"name": "tiny"}, "train": TRAIN, "data_overrides": SMALL_DATA}
    at_a = validate_run_config({**base, "data": str(a)})
    at_b = validate_run_config({**base, "data": str(b)})
    assert at_a.data != at_b.data and at_a.config_hash() == at_b.config_hash()
    b.write_text(b.read_text().replace("n_val_subjects: 3", "n_val_subjects: 4"))
    assert validate_run_config({**base, "data": str(b)}).config_hash() != at_a.config_hash()
    assert expand_at(a, tmp_path) == expand_at(a, tmp_path)


def test_a_store_keyed_by_another_checkouts_path_is_rekeyed_not_retrained(tmp_path):
    here, elsewhere = checkout(tmp_path / "here"), checkout(tmp_path / "elsewhere")
    runs = expand_at(here, tmp_path)
    stored = legacy_keyed(expand_at(elsewhere, tmp_path))
    assert {r.hash for r in stored}.isdisjoint(r.hash for r in runs)
    runs_dir = tmp_path / "grid" / "runs"
    with RunStore(tmp_path / "grid" / "runs.sqlite") as store:
        store.register(stored)
        finish_all(store, runs_dir)
        before = {r.hash: r.metrics for r in store.rows()}
        shown = dry_run(spec_at(here, tmp_path), None, tmp_path / "grid")
        assert shown.count("  done ") == 6 and "6 done (reused), 0 new" in shown
        # nodes first, cells in a later call: the store remembers which node became which
        nodes = [r for r in runs if r.kind == "node"]
        assert store.adopt(nodes, runs_dir) == 2
        assert store.adopt(runs, runs_dir) == 4
        assert store.adopt(runs, runs_dir) == 0
        assert store.register(runs) == 0  # nothing left to train
        rows = {r.hash: r for r in store.rows()}
        assert set(rows) == {r.hash for r in runs}
        assert all(r.status == "done" for r in rows.values())
        for new, old in zip(runs, stored, strict=True):
            assert rows[new.hash].metrics == before[old.hash]
            assert rows[new.hash].deps == list(new.deps)
            assert rows[new.hash].config["data"] == str(here)
            metrics = json.loads((runs_dir / new.hash / "metrics.json").read_text())
            assert metrics["hash"] == old.hash and not (runs_dir / new.hash).is_symlink()
            # paths written by the runs it taught still lead to it
            assert (runs_dir / old.hash).is_symlink()
            assert (runs_dir / old.hash).resolve() == (runs_dir / new.hash).resolve()
        # a folder a crash left under its old name is moved on the next call
        first = stored[0].hash
        (runs_dir / first).unlink()
        (runs_dir / runs[0].hash).rename(runs_dir / first)
        assert store.adopt(runs, runs_dir) == 0 and not (runs_dir / runs[0].hash).is_symlink()
        assert (runs_dir / first).resolve() == (runs_dir / runs[0].hash).resolve()


def test_a_row_of_another_run_is_never_adopted(tmp_path):
    here, other = checkout(tmp_path / "here"), checkout(tmp_path / "other")
    runs = expand_at(here, tmp_path)
    # the stored protocol still exists and says something else: a different run
    other.write_text(other.read_text().replace("seed: 0", "seed: 1"))
    changed_data = legacy_keyed(expand_at(other, tmp_path))
    # the same protocol, but the cells trained longer: a different run too
    raw = chain_spec(tmp_path / "grid")
    raw["base"]["train"] = {**TRAIN, "epochs": 3}
    longer = legacy_keyed(spec_from_dict(raw).expand().runs)
    runs_dir = tmp_path / "grid" / "runs"
    with RunStore(tmp_path / "grid" / "runs.sqlite") as store:
        store.register(changed_data)
        store.register([r for r in longer if r.kind == "cell"])
        finish_all(store, runs_dir)
        assert store.adopt(runs, runs_dir) == 0
        assert store.register(runs) == len(runs)
    # a stored path that no longer exists is matched by the protocol's file name
    gone = legacy_keyed(expand_at(checkout(tmp_path / "gone"), tmp_path))
    shutil.rmtree(tmp_path / "gone")
    with RunStore(tmp_path / "g2" / "runs.sqlite") as store:
        store.register(gone)
        assert store.adopt(runs, tmp_path / "g2" / "runs") == len(runs)
