"""The grid report: statistics, and files whose numbers match the run store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harkd.cli import main
from harkd.grid.runner import _grid_meta, store_path
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore
from harkd.report.stats import paired_test
from harkd.report.tables import fmt_mean_std

BASE = {"data": "configs/data/hapt-quick.yaml", "model": {"name": "tiny"},
        "teachers": {"t": {"name": "cnn1d", "view": ["acc", "gyro"]}}}
SPEC = {"name": "r", "base": BASE,
        "axes": {"augment": ["none", "jitter", "mixup"],
                 "method": [{"label": "none", "set": {"teachers": {}}}, "kd"],
                 "seed": [0, 1, 2]}}


def test_paired_test_choice():
    rng = np.random.default_rng(0)
    d3 = rng.normal(0.01, 0.01, 3)
    t = paired_test(d3)
    ref = stats.ttest_rel(d3 + 1.0, np.ones(3))
    assert t.test == "paired t" and t.n == 3
    assert t.p == pytest.approx(ref.pvalue) and t.statistic == pytest.approx(ref.statistic)
    d6 = rng.normal(0.01, 0.01, 6)
    w = paired_test(d6)
    assert w.test == "wilcoxon" and w.p == pytest.approx(stats.wilcoxon(d6).pvalue)
    assert paired_test([0.02, 0.02]).test == "none (identical differences)"
    assert paired_test([0.1]).test == "none (n < 2)"
    assert w.diff_std == pytest.approx(np.std(d6, ddof=1))


def metric_of(axes: dict[str, str]) -> float:
    """A made-up but structured macro-F1: augmentation and method effects plus seed noise."""
    aug = {"none": 0.80, "jitter": 0.82, "mixup": 0.79}[axes["augment"]]
    return aug + (0.03 if axes["method"] == "kd" else 0.0) + 0.004 * int(axes["seed"]) ** 2


@pytest.fixture
def grid_dir(tmp_path):
    spec = spec_from_dict(SPEC, source="r.yaml")
    exp = spec.expand()
    gdir = tmp_path / "grid"
    with RunStore(store_path(gdir)) as store:
        store.set_meta("grid", _grid_meta(spec, exp))
        store.register(exp.runs)
        while (row := store.claim(None, "h", 1)) is not None:
            if row.axes == {"augment": "mixup", "method": "kd", "seed": "2"}:
                store.fail(row.hash, "h", 1, "Traceback (most recent call last):\nValueError: nan")
                continue
            f1 = metric_of(row.axes)
            store.complete(row.hash, "h", 1, {"test": {"macro_f1": f1, "accuracy": f1 + 0.05},
                                              "val": {"macro_f1": f1 - 0.01},
                                              "latency": {"p50_us": 40.0 + row.index}},
                           {"train_s": 1.0}, 2000, 1.5)
    return gdir


def test_report_files_and_numbers_match_the_store(grid_dir):
    assert main(["report", str(grid_dir)]) == 0
    out = grid_dir / "report"
    for name in ("report.md", "runs.csv", "summary.csv", "comparisons.csv",
                 "heatmap_augment_method.png", "axis_means.png", "delta_augment.png",
                 "delta_method.png", "accuracy_latency.png"):
        assert (out / name).stat().st_size > 0, name
    with RunStore(store_path(grid_dir)) as store:
        rows = store.rows()
    done = [r for r in rows if r.status == "done"]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(rows) == 18 and (runs["status"] == "failed").sum() == 1
    by_hash = runs.set_index("hash")
    for r in done:
        assert by_hash.loc[r.hash, "test.macro_f1"] == pytest.approx(r.metrics["test"]["macro_f1"])
    summary = pd.read_csv(out / "summary.csv")
    md = (out / "report.md").read_text()
    for _, cell in summary.iterrows():
        vals = [r.metrics["test"]["macro_f1"] for r in done
                if (r.axes["augment"], r.axes["method"]) == (cell["augment"], cell["method"])]
        assert cell["n"] == len(vals)
        assert cell["test.macro_f1_mean"] == pytest.approx(np.mean(vals))
        std = np.std(vals, ddof=1)
        assert cell["test.macro_f1_std"] == pytest.approx(std)
        assert fmt_mean_std(np.mean(vals), std) in md
    assert summary.set_index(["augment", "method"]).loc[("mixup", "kd"), "n"] == 2
    comp = pd.read_csv(out / "comparisons.csv")
    jit = comp[(comp["compared_axis"] == "augment") & (comp["augment"] == "jitter")
               & (comp["method"] == "kd")].iloc[0]
    assert jit["n"] == 3 and jit["test"] == "none (identical differences)"
    assert jit["diff_mean"] == pytest.approx(0.02)
    # paired on seed: the failed seed-2 run leaves 2 pairs for mixup/kd against none/kd
    mix = comp[(comp["compared_axis"] == "augment") & (comp["augment"] == "mixup")
               & (comp["method"] == "kd")].iloc[0]
    assert mix["n"] == 2 and mix["diff_mean"] == pytest.approx(-0.01)
    kd = comp[(comp["compared_axis"] == "method") & (comp["augment"] == "none")].iloc[0]
    assert kd["diff_mean"] == pytest.approx(0.03) and kd["baseline"] == "none"
    assert "ValueError: nan" in md and "Wilcoxon signed-rank" in md
    assert "1 failed" in md and "17 done" in md


def test_report_of_a_missing_grid_says_what_to_do(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 1
    assert "run `harkd grid SPEC` first" in capsys.readouterr().err
