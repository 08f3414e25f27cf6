"""A tiny real grid end to end: local executor, report, resume, Ray, and SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from grid_helpers import stored_metrics, tiny_spec_raw, write_spec

from harkd.cli import main
from harkd.commands.report import report_grid
from harkd.grid.runner import run_grid
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore
from harkd.report.stats import format_mean_std, mean_std

REPO = Path(__file__).resolve().parents[2]
#: the 4 runs without augmentation: a subset of the session grid, so the hashes are shared
SUBSET = {"exclude": [{"augment": "jitter"}]}


def test_local_grid_trains_every_run_once(local_grid):
    spec, summary = local_grid
    assert (summary.total, summary.ran, summary.done, summary.failed) == (8, 8, 8, 0)
    with RunStore(summary.grid_dir / "runs.sqlite") as store:
        rows = store.rows()
    assert [r.hash for r in rows] == [r.hash for r in spec.expand().runs]
    for r in rows:
        assert r.status == "done" and r.attempts == 1 and r.n_params > 0
        assert 1 / 6 < r.metrics["test"]["macro_f1"] <= 1.0
        on_disk = json.loads((summary.grid_dir / "runs" / r.hash / "metrics.json").read_text())
        assert on_disk["metrics"]["test"]["macro_f1"] == r.metrics["test"]["macro_f1"]
        assert r.timings["train_s"] > 0 and r.wall_s >= r.timings["train_s"]
        assert r.code_version
    # seeds differ, so their runs do
    assert len({r.metrics["test"]["macro_f1"] for r in rows}) > 1
    again = run_grid(spec, workers=2, threads=1, progress=False)
    assert (again.ran, again.done) == (0, 8)


def test_report_of_the_real_grid_matches_the_store(local_grid):
    _, summary = local_grid
    assert main(["report", str(summary.grid_dir)]) == 0
    out = summary.grid_dir / "report"
    assert {p.name for p in out.glob("*.png")} >= {
        "heatmap_augment_method.png", "axis_means.png", "delta_augment.png", "delta_method.png"}
    metrics = stored_metrics(summary.grid_dir)
    with RunStore(summary.grid_dir / "runs.sqlite") as store:
        axes = {r.hash: r.axes for r in store.rows()}
    runs = pd.read_csv(out / "runs.csv", dtype={"seed": str}).set_index("run_id")
    for h, m in metrics.items():
        assert runs.loc[h, "test.macro_f1"] == pytest.approx(m["test"]["macro_f1"], abs=1e-12)
    md = (out / "report.md").read_text()
    for _, cell in pd.read_csv(out / "summary.csv").iterrows():
        vals = pd.Series([m["test"]["macro_f1"] for h, m in metrics.items()
                          if (axes[h]["augment"], axes[h]["method"])
                          == (cell["augment"], cell["method"])])
        assert cell["test.macro_f1_mean"] == pytest.approx(vals.mean(), abs=1e-12)
        assert cell["test.macro_f1_std"] == pytest.approx(vals.std(ddof=1), abs=1e-12)
        assert format_mean_std(mean_std(vals)) in md


@pytest.mark.slow
def test_ray_gives_the_local_results(local_grid, hapt_quick_small, teacher_dir, tmp_path):
    pytest.importorskip("ray")
    spec = spec_from_dict(tiny_spec_raw(teacher_dir, tmp_path / "ray", **SUBSET), source="r")
    summary = run_grid(spec, executor="ray", workers=2, cpus_per_run=1,
                       windowset=hapt_quick_small, progress=False)
    assert (summary.done, summary.failed) == (4, 0)
    local = stored_metrics(local_grid[1].grid_dir)
    ray = stored_metrics(summary.grid_dir)
    assert set(ray) <= set(local)
    for h, m in ray.items():
        assert m == local[h]


def _running_with_checkpoint(grid_dir: Path) -> bool:
    with RunStore(grid_dir / "runs.sqlite") as store:
        counts = store.counts()
        running = store.rows("running")
    return counts["done"] >= 1 and any(
        (grid_dir / "runs" / r.hash / "last.json").is_file() for r in running)


@pytest.mark.slow
def test_sigkill_mid_run_loses_only_that_run(local_grid, hapt_quick_small, teacher_dir,
                                             cache_dir, tmp_path):
    grid_dir = tmp_path / "crash"
    raw = tiny_spec_raw(teacher_dir, grid_dir, **SUBSET)
    path = write_spec(tmp_path / "crash.yaml", raw)
    env = {**os.environ, "HARKD_CACHE": str(cache_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harkd.cli", "grid", str(path), "--workers", "1", "--threads", "1",
         "--no-progress"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)  # its own process group: the driver and its pool worker
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the grid never got mid-run"
            if (grid_dir / "runs.sqlite").is_file() and _running_with_checkpoint(grid_dir):
                # freeze the grid and look again, so that the run seen mid-way cannot finish
                # between the look and the kill (a loaded machine makes that window wide)
                os.killpg(proc.pid, signal.SIGSTOP)
                if _running_with_checkpoint(grid_dir):
                    break
                os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # power loss: driver and worker at once
        proc.wait()
        proc.stderr.close()
    with RunStore(grid_dir / "runs.sqlite") as store:
        before = {r.hash: r.status for r in store.rows()}
    assert "running" in before.values() and "done" in before.values()
    spec = spec_from_dict(raw, source=str(path))
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.recovered, summary.done, summary.failed) == (1, 4, 0)
    assert summary.ran == sum(s != "done" for s in before.values())
    with RunStore(grid_dir / "runs.sqlite") as store:
        rows = store.rows()
    for r in rows:
        assert r.status == "done"
        assert r.attempts == (2 if before[r.hash] == "running" else 1)
    local = stored_metrics(local_grid[1].grid_dir)
    for h, m in stored_metrics(grid_dir).items():
        assert m == local[h]


@pytest.mark.slow
def test_latency_option_feeds_the_report(hapt_quick_small, teacher_dir, cache_dir, tmp_path,
                                         monkeypatch):
    monkeypatch.setenv("HARKD_CACHE", str(cache_dir))  # export_run reloads the run's data
    raw = tiny_spec_raw(teacher_dir, tmp_path / "lat",
                        latency={"threads": 1, "runs": 20, "warmup": 2, "batch": 8})
    raw["axes"] = {"augment": ["none"], "method": [{"label": "none", "set": {"teachers": {}}}],
                   "seed": [0]}
    spec = spec_from_dict(raw, source="lat")
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert summary.done == 1, summary.failures
    ((run_hash, m),) = stored_metrics(summary.grid_dir).items()
    assert 0 < m["latency"]["p50_us"] <= m["latency"]["p99_us"]
    assert (summary.grid_dir / "runs" / run_hash / "model.onnx").is_file()
    files = report_grid(summary.grid_dir)
    assert files.report_md.parent.joinpath("accuracy_latency.png").is_file()
