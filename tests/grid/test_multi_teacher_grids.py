"""The shipped RoS-KD and teacher-sweet-spot grids: their graphs (dry run), a tiny real run of
each on the small HAPT subset, and the sweet-spot analysis (benchmarks/bench_sweet_spot.py):
its measures by hand, and on the tiny grid against an independent recomputation."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from grid_helpers import SMALL_DATA

from data_prep.configio import load_config
from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.grid.runner import run_dir_of, run_grid
from harkd.grid.spec import load_spec, spec_from_dict
from harkd.grid.store import RunStore
from harkd.train.checkpoint import load_run_model
from harkd.train.runcard import read_card

REPO = Path(__file__).resolve().parents[2]
GRIDS = REPO / "configs" / "grids"
TINY = {"data_overrides": SMALL_DATA, "model.name": "tiny_xs", "train.epochs": 1,
        "train.threads": 1, "nodes": {"model.params": {"widths": [8, 16], "kernel": 3},
                                      "train.threads": 1}}


def bench():
    """benchmarks/bench_sweet_spot.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_sweet_spot",
                                                  REPO / "benchmarks" / "bench_sweet_spot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny(name: str, grid_dir: Path, axes: dict[str, list[str]], profile: dict[str, Any]):
    """A shipped grid cut to the labels in `axes`, with a `tiny` profile on the 8-subject set."""
    raw = load_config(GRIDS / f"{name}.yaml")
    raw["output_dir"] = str(grid_dir)
    for axis, labels in axes.items():
        raw["axes"][axis] = [v for v in raw["axes"][axis]
                             if (v["label"] if isinstance(v, dict) else str(v)) in labels]
    raw["profiles"] = {"tiny": {**profile, **TINY}}
    return spec_from_dict(raw, source=f"{name}.yaml (tiny)", spec_dir=GRIDS)


def test_roskd_grid_graph():
    exp = load_spec(GRIDS / "roskd.yaml").expand()
    assert (len(exp.nodes), len(exp.cells)) == (40, 300)
    assert {c.axes["method"] for c in exp.cells} == {"none", "ls", "kd", "roskd", "kd-acc",
                                                     "roskd-acc"}
    nodes = {n.hash: n for n in exp.nodes}
    for cell in exp.cells:
        method = cell.axes["method"]
        noise = cell.config.data_overrides.get("split", {}).get("label_noise")
        assert (noise is None) == (cell.axes["noise"] == "clean")
        teachers = [nodes[h] for h in cell.deps]
        assert len(teachers) == {"none": 0, "ls": 0, "kd": 1, "roskd": 3}[method.removesuffix(
            "-acc")]
        for t in teachers:  # every teacher trains on the cell's noisy labels
            split = t.config.data_overrides["split"]
            assert split.get("label_noise") == noise
            # the controls' teachers see the student's sensors only
            assert t.config.model.view == (["acc"] if method.endswith("-acc") else ["acc", "gyro"])
        if method.removesuffix("-acc") == "roskd":
            subsets = [t.config.data_overrides["split"]["subset"] for t in teachers]
            assert [s["index"] for s in subsets] == [0, 1, 2]
            assert {(s["count"], s["overlap"]) for s in subsets} == {(3, 0.5)}
            assert cell.config.distill.method == "roskd"
        if method.removesuffix("-acc") == "kd":
            assert "subset" not in teachers[0].config.data_overrides["split"]


def test_sweet_spot_grid_graph(capsys):
    exp = load_spec(GRIDS / "teacher_sweet_spot.yaml").expand()
    grid = {(n.config.train.batch_size, n.config.train.epochs) for n in exp.nodes}
    assert grid == {(b, e) for b in (32, 128, 512) for e in (3, 10, 30)}
    assert all((n.config.train.selection, n.config.train.patience) == ("last", None)
               for n in exp.nodes)
    kd = [c for c in exp.cells if c.axes["teacher_batch"] != "none"]
    assert len(kd) == 27 and {c.config.distill.method for c in kd} == {"kd"}
    for c in kd:  # the same student from each teacher
        (node,) = [n for n in exp.nodes if n.hash in c.deps]
        assert (node.config.train.batch_size, node.config.train.epochs) == (
            int(c.axes["teacher_batch"]), int(c.axes["teacher_epochs"]))
        assert c.config.model == kd[0].config.model
    alone = [c for c in exp.cells if c.axes["teacher_batch"] == "none"]
    assert len(alone) == 3 and all(c.config.distill.method == "none" and not c.deps
                                   for c in alone)
    assert main(["grid", str(GRIDS / "teacher_sweet_spot.yaml"), "--dry-run"]) == 0
    assert "39 runs: 9 training nodes, 30 cells" in capsys.readouterr().out


def test_non_target_entropy_and_agreement_by_hand():
    m = bench()
    ln3 = math.log(3)
    logits = np.array([[5.0, 0.0, ln3],  # true 0: others [1, 3] / 4
                       [0.0, 7.0, 0.0],  # true 1: others equal -> ln 2
                       [0.0, ln3, -9.0]])  # true 2: others [1, 3] / 4, whatever the true logit
    y = np.array([0, 1, 2])
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert m.non_target_entropy(logits, y).tolist() == pytest.approx([h, math.log(2), h])
    assert m.top1_agreement(logits, np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])) == (
        pytest.approx(2 / 3))


@pytest.mark.slow
def test_tiny_sweet_spot_grid_and_its_analysis(hapt_quick_small: WindowSet, cache_dir: Path,
                                               tmp_path: Path):
    spec = tiny("teacher_sweet_spot", tmp_path / "grid",
                {"teacher_batch": ["32", "512"], "teacher_epochs": ["3"], "seed": ["0", "1"]},
                {"train.patience": None})
    summary = run_grid(spec, "tiny", grid_dir=tmp_path / "grid", executor="local", workers=1,
                       threads=1, windowset=hapt_quick_small, progress=False)
    assert summary.done == summary.total == 2 + 6
    out = tmp_path / "out"
    m = bench()
    assert m.main([str(tmp_path / "grid"), "--out", str(out), "--cache-dir", str(cache_dir)]) == 0
    result = json.loads((out / "sweet_spot.json").read_text())
    assert [(t["batch_size"], t["epochs"]) for t in result["teachers"]] == [(32, 3), (512, 3)]
    assert result["student_alone"]["n"] == 2
    assert result["max_non_target_entropy"] == pytest.approx(math.log(5))
    with RunStore(tmp_path / "grid" / "runs.sqlite") as store:
        rows = {r.hash: r for r in store.rows("done")}
    ws = hapt_quick_small
    norm = {k: torch.tensor(v, dtype=torch.float32) for k, v in ws.meta["norm"].items()}

    def logits(run: str, split: str) -> torch.Tensor:
        """Recomputed apart from the script: the data's own statistics, the model's view."""
        model, card = load_run_model(run_dir_of(tmp_path / "grid", run))
        idx = card.channel_indices
        x = (torch.from_numpy(ws.X[ws.mask(split)][:, idx]) - norm["mean"][idx, None]) \
            / norm["std"][idx, None]
        with torch.no_grad():
            return model(x).logits

    for t in result["teachers"]:
        node = rows[t["node"]]
        assert t["teacher_test_macro_f1"] == node.metrics["test"]["macro_f1"]
        z = logits(t["node"], "val")
        y = torch.from_numpy(ws.y[ws.mask("val")])
        others = z.masked_fill(torch.nn.functional.one_hot(y, z.shape[1]).bool(), -math.inf)
        log_q = others.log_softmax(dim=1)
        h = -(log_q.exp() * log_q.nan_to_num(neginf=0.0)).sum(dim=1).mean().item()
        assert t["teacher_val_non_target_entropy"] == pytest.approx(h, rel=1e-4)
        students = [r for r in rows.values()
                    if r.kind == "cell" and t["node"] in r.deps]
        agree = [float((logits(t["node"], "test").argmax(1) == logits(s.hash, "test").argmax(1))
                       .float().mean()) for s in students]
        assert t["agreement_test"]["mean"] == pytest.approx(float(np.mean(agree)), abs=1e-9)
        f1 = [s.metrics["test"]["macro_f1"] for s in students]
        assert t["student_test_macro_f1"]["mean"] == pytest.approx(float(np.mean(f1)))
    md = (out / "sweet_spot.md").read_text()
    assert "| 32 | 3 |" in md and "| 512 | 3 |" in md and "Student alone:" in md
    assert (out / "sweet_spot.png").stat().st_size > 0


def test_the_analysis_refuses_a_folder_without_a_store(tmp_path, capsys):
    assert bench().main([str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run store here" in err[0]


@pytest.mark.slow
def test_tiny_roskd_grid(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Subset teachers on noisy labels as training nodes, then RoS-KD: each node's run card
    holds only its subset's subjects, never a test subject."""
    monkeypatch.setenv("HARKD_CACHE", str(cache_dir))
    spec = tiny("roskd", tmp_path / "grid", {"noise": ["symmetric-30"],
                                             "method": ["roskd"], "seed": ["0"]}, {})
    summary = run_grid(spec, "tiny", grid_dir=tmp_path / "grid", executor="local", workers=1,
                       threads=1, progress=False)
    assert summary.done == summary.total == 3 + 1
    exp = spec.expand("tiny")
    (cell,) = exp.cells
    subsets = []
    for node in exp.nodes:
        card = read_card(run_dir_of(tmp_path / "grid", node.hash))
        subsets.append(set(card.split_subjects.train))
        assert not subsets[-1] & {"2", "4", "3", "5"}  # test and validation subjects
    assert set().union(*subsets) == {"1", "6", "7", "8"} and all(len(s) < 4 for s in subsets)
    metrics = json.loads((run_dir_of(tmp_path / "grid", cell.hash) / "metrics.json").read_text())
    assert 0 <= metrics["metrics"]["test"]["macro_f1"] <= 1
