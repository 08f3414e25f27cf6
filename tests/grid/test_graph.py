"""Grids as graphs of runs: training nodes shared by cells, chains, blocking, cycles, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from grid_helpers import ASSISTANT, SMALL_DATA, TEACHER, TRAIN, chain_spec, write_spec

from harkd.cli import main
from harkd.config import ConfigError
from harkd.grid.runner import run_grid
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore

REPO = Path(__file__).resolve().parents[2]


def test_nodes_are_shared_and_chains_resolve(tmp_path):
    exp = spec_from_dict(chain_spec(tmp_path), source="chain.yaml").expand()
    assert [r.kind for r in exp.runs] == ["node", "node", "cell", "cell", "cell", "cell"]
    teacher, assistant = exp.nodes
    assert (teacher.axes, assistant.axes) == ({"node": "teacher"}, {"node": "assistant"})
    assert assistant.deps == (teacher.hash,) and teacher.deps == ()
    assert assistant.config.teachers["t"].node == teacher.hash
    # nodes inherit the cell's data protocol: the teacher trains on the cells' 8 subjects
    assert teacher.config.data_overrides == SMALL_DATA
    for cell in exp.cells:
        wanted = teacher if cell.axes["teachers"] == "teacher" else assistant
        assert cell.deps == (wanted.hash,)
        t = cell.config.teachers["t"]
        assert (t.node, t.name, t.view) == (wanted.hash, wanted.config.model.name,
                                             wanted.config.model.view)
    # the node's hash is part of the cell's: another teacher gives other cells
    other = spec_from_dict(chain_spec(tmp_path, {**TEACHER, "train": {**TRAIN, "epochs": 2}}),
                           source="chain.yaml").expand()
    assert {r.hash for r in other.cells}.isdisjoint({r.hash for r in exp.cells})


def test_a_node_follows_each_cells_data_draw(tmp_path):
    raw = chain_spec(tmp_path)
    raw["axes"] = {"teachers": raw["axes"]["teachers"][:1],
                   "fold": [0, 1], "seed": [0, 1]}
    raw["base"]["data_overrides"] = {"split": {"kind": "kfold_subjects", "k": 5,
                                               "test_subjects": []}}
    exp = spec_from_dict(raw, source="folds.yaml").expand()
    assert len(exp.nodes) == 2 and len(exp.cells) == 4  # one teacher per fold
    for cell in exp.cells:
        (dep,) = cell.deps
        node = next(n for n in exp.nodes if n.hash == dep)
        assert node.config.data_overrides["split"]["fold"] == int(cell.axes["fold"])


def test_cycles_and_dangling_names_are_refused_before_anything_runs(tmp_path):
    raw = chain_spec(tmp_path)
    raw["nodes"]["teacher"] = {"config": {**TEACHER, "teachers": {"t": {"from": "assistant"}},
                                          "distill": {"method": "kd"}}}
    with pytest.raises(ConfigError, match="cycle: .*teacher -> assistant -> teacher|"
                                          "cycle: .*assistant -> teacher -> assistant"):
        spec_from_dict(raw, source="cycle.yaml")
    raw = chain_spec(tmp_path)
    raw["nodes"]["assistant"]["config"] = {**ASSISTANT, "teachers": {"t": {"from": "nobody"}}}
    with pytest.raises(ConfigError, match=r"from 'nobody' names no node; nodes: \['assistant', "
                                          r"'teacher'\]"):
        spec_from_dict(raw, source="dangling.yaml")
    assert not (tmp_path / "runs.sqlite").exists()
    # the command says so in one line and exits non-zero
    path = write_spec(tmp_path / "dangling.yaml", raw)
    assert main(["grid", str(path), "--dry-run"]) == 2


def test_axis_values_inherit_a_config_files_section(tmp_path):
    method = {"distill": {"method": "kd", "params": {"alpha": 0.7, "temperature": 2.0}},
              "augment": {"policy": "rotation"}}
    (tmp_path / "kd.yaml").write_text(yaml.safe_dump(method))
    raw = chain_spec(tmp_path)
    raw["axes"]["method"] = [{"label": "kd", "from": "kd.yaml"},
                             {"label": "kd-hot", "from": "kd.yaml",
                              "set": {"distill.params.temperature": 8.0}}]
    spec = spec_from_dict(raw, source=str(tmp_path / "s.yaml"), spec_dir=tmp_path)
    cells = spec.expand().cells
    kd = next(c for c in cells if c.axes["method"] == "kd")
    hot = next(c for c in cells if c.axes["method"] == "kd-hot")
    assert kd.config.distill.params == {"alpha": 0.7, "temperature": 2.0}
    assert hot.config.distill.params == {"alpha": 0.7, "temperature": 8.0}
    assert kd.config.augment.policy == "none"  # only the method axis's section is inherited


def test_dry_run_prints_the_graph(tmp_path, capsys):
    path = write_spec(tmp_path / "chain.yaml", chain_spec(tmp_path / "g"))
    assert main(["grid", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "node teacher" in out and "node assistant" in out
    assert "needs assistant" in out and "needs teacher" in out
    assert "2 training nodes, 4 cells" in out


def test_chain_trains_each_node_once_and_shares_it(hapt_quick_small, tmp_path):
    spec = spec_from_dict(chain_spec(tmp_path / "g"), source="chain.yaml")
    summary = run_grid(spec, workers=2, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.total, summary.done, summary.failed, summary.blocked) == (6, 6, 0, 0)
    with RunStore(summary.grid_dir / "runs.sqlite") as store:
        rows = store.rows()
    nodes = {r.axes["node"]: r for r in rows if r.kind == "node"}
    assert sorted(nodes) == ["assistant", "teacher"]
    assert all(r.attempts == 1 and r.status == "done" for r in rows)
    # every cell and the assistant read the teacher node's own run directory
    for r in rows:
        if r.deps:
            cfg = yaml.safe_load((summary.grid_dir / "runs" / r.hash / "config.yaml").read_text())
            dirs = {Path(t["run_dir"]).name for t in cfg["teachers"].values()}
            assert dirs == set(r.deps)
    again = run_grid(spec, workers=2, threads=1, windowset=hapt_quick_small, progress=False)
    assert (again.ran, again.done) == (0, 6)


def test_a_failing_node_blocks_its_dependants_by_name(hapt_quick_small, tmp_path):
    broken = {**TEACHER, "model": {**TEACHER["model"], "params": {"no_such_param": 1}}}
    spec = spec_from_dict(chain_spec(tmp_path / "g", broken), source="broken.yaml")
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.done, summary.failed, summary.blocked) == (0, 1, 5)
    with RunStore(summary.grid_dir / "runs.sqlite") as store:
        rows = store.rows()
    (failed,) = [r for r in rows if r.status == "failed"]
    assert failed.axes == {"node": "teacher"} and "no_such_param" in failed.error
    for r in rows:
        if r is not failed:
            assert r.status == "blocked" and r.attempts == 0
            assert f"node teacher ({failed.hash}) failed" in r.error


def _node_mid_run(grid_dir: Path) -> bool:
    if not (grid_dir / "runs.sqlite").is_file():
        return False
    with RunStore(grid_dir / "runs.sqlite") as store:
        running = [r for r in store.rows("running") if r.kind == "node"]
    return any((grid_dir / "runs" / r.hash / "last.json").is_file() for r in running)


@pytest.mark.slow
def test_sigkill_while_a_teacher_node_trains_then_resume(hapt_quick_small, cache_dir, tmp_path):
    grid_dir = tmp_path / "g"
    raw = chain_spec(grid_dir, {**TEACHER, "train": {**TRAIN, "epochs": 6}})
    path = write_spec(tmp_path / "kill.yaml", raw)
    env = {**os.environ, "HARKD_CACHE": str(cache_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harkd.cli", "grid", str(path), "--workers", "1", "--threads", "1",
         "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while not _node_mid_run(grid_dir):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the teacher node never got mid-run"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGSTOP)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # driver and worker at once
        proc.wait()
        proc.stderr.close()
    spec = spec_from_dict(raw, source=str(path))
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.recovered, summary.done, summary.failed) == (1, 6, 0)
    with RunStore(grid_dir / "runs.sqlite") as store:
        rows = store.rows()
    teacher = next(r for r in rows if r.axes.get("node") == "teacher")
    assert teacher.attempts == 2  # killed once, resumed from its checkpoint, finished once
    assert all(r.status == "done" and r.attempts == 1 for r in rows if r is not teacher)
    history = (grid_dir / "runs" / teacher.hash / "metrics.json").read_text()
    assert '"epochs_run": 6' in history
