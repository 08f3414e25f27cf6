"""The augmentation analysis of `harkd report` on a store built by a real smoke run of the shipped
study spec (configs/grids/hapt_aug_ablation.yaml, profile `smoke`, on 8 real HAPT subjects):
every number it writes is recomputed here from the store's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.configio import load_config
from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.grid.runner import run_grid, store_path
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore

SPEC = Path(__file__).resolve().parents[2] / "configs" / "grids" / "hapt_aug_ablation.yaml"
SMALL_DATA = {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
              "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}}


@pytest.mark.slow
def test_report_of_a_real_smoke_run(hapt_quick_small: WindowSet, tmp_path):
    raw = load_config(SPEC)
    raw["profiles"]["smoke"].update({"data_overrides": SMALL_DATA, "train.threads": 1})
    spec = spec_from_dict(raw, source=str(SPEC), spec_dir=SPEC.parent).select(
        {"augment": ["none", "jitter"]})
    grid = tmp_path / "grid"
    summary = run_grid(spec, "smoke", grid_dir=grid, workers=2, threads=1,
                       windowset=hapt_quick_small, progress=False)
    assert (summary.total, summary.done, summary.failed) == (11, 11, 0)
    assert main(["report", str(grid)]) == 0
    out = grid / "report"
    for name in ("report.md", "augmentation.md", "augmentation_effects.csv",
                 "augmentation_vs_alone.png", "augmentation_vs_no_augmentation.png"):
        assert (out / name).stat().st_size > 0, name

    with RunStore(store_path(grid)) as store:
        cells = [r for r in store.rows() if r.kind == "cell"]
    f1 = {tuple(r.axes[a] for a in ("augment", "method", "teacher_input", "seed")):
          r.metrics["test"] for r in cells}
    record = json.loads((out / "augmentation.json").read_text())
    refs = {r["name"]: r for r in record["references"]}
    no_aug = {(e["augment"], e["method"], e["teacher_input"]): e
              for e in refs["no_augmentation"]["effects"]}
    assert set(no_aug) == {("jitter", "none", "same"), ("jitter", "kd", "same"),
                           ("jitter", "kd", "clean")}
    for (augment, method, teacher_input), effect in no_aug.items():
        diffs = [f1[augment, method, teacher_input, s]["macro_f1"]
                 - f1["none", method, "same", s]["macro_f1"] for s in ("0", "1")]
        assert effect["n"] == 2 and effect["diff_mean"] == pytest.approx(np.mean(diffs))
        assert effect["test"] in ("paired t", "none (identical differences)")
    alone = {(e["augment"], e["method"], e["teacher_input"]): e for e in refs["alone"]["effects"]}
    assert ("none", "kd", "same") in alone and ("none", "none", "same") not in alone
    kd_alone = alone["none", "kd", "same"]
    diffs = [f1["none", "kd", "same", s]["macro_f1"] - f1["none", "none", "same", s]["macro_f1"]
             for s in ("0", "1")]
    assert kd_alone["diff_mean"] == pytest.approx(np.mean(diffs))
    # per-class F1 of the top cells, from the runs' per_class_f1
    top = refs["no_augmentation"]["per_class_top"]
    classes = set(f1["none", "none", "same", "0"]["per_class_f1"])
    assert {e["class"] for e in top} == classes and len(classes) == 6
    walking = next(e for e in top if e["class"] == "WALKING")
    cell = (walking["augment"], walking["method"], walking["teacher_input"])
    diffs = [f1[(*cell, s)]["per_class_f1"]["WALKING"]
             - f1["none", cell[1], "same", s]["per_class_f1"]["WALKING"] for s in ("0", "1")]
    assert walking["diff_mean"] == pytest.approx(np.mean(diffs))
