"""The report: statistics, formatting, tables, and files whose numbers match the run store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harkd.cli import main
from harkd.grid.runner import _grid_meta, store_path
from harkd.grid.spec import spec_from_dict
from harkd.grid.store import RunStore
from harkd.report import write_report
from harkd.report.stats import MeanStd, format_mean_std, mean_std, paired_test
from harkd.report.tables import markdown_table

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
    by_hash = runs.set_index("run_id")
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
        assert format_mean_std(MeanStd(np.mean(vals), std, len(vals))) in md
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


def test_a_chosen_baseline_is_what_every_label_is_compared_with(grid_dir, capsys):
    out = grid_dir / "vs_jitter"
    assert main(["report", str(grid_dir), "--out", str(out), "--baseline", "augment=jitter"]) == 0
    comp = pd.read_csv(out / "comparisons.csv")
    aug = comp[comp["compared_axis"] == "augment"]
    assert set(aug["baseline"]) == {"jitter"} and set(aug["augment"]) == {"none", "mixup"}
    none_kd = aug[(aug["augment"] == "none") & (aug["method"] == "kd")].iloc[0]
    assert none_kd["n"] == 3 and none_kd["diff_mean"] == pytest.approx(-0.02)
    mix_kd = aug[(aug["augment"] == "mixup") & (aug["method"] == "kd")].iloc[0]
    assert mix_kd["n"] == 2 and mix_kd["diff_mean"] == pytest.approx(-0.03)
    # the other axis keeps its default baseline
    assert set(comp[comp["compared_axis"] == "method"]["baseline"]) == {"none"}
    assert "### augment vs augment=jitter" in (out / "report.md").read_text()
    for bad, said in (("augment=cutmix", "no run has augment=cutmix; labels: ['jitter', "
                                         "'mixup', 'none']"),
                      ("seed=1", "'seed' is not a compared axis of the grid"),
                      ("augment", "expected AXIS=LABEL")):
        assert main(["report", str(grid_dir), "--baseline", bad]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1


def test_report_of_a_missing_grid_says_what_to_do(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 3
    assert "run `harkd grid SPEC` first" in capsys.readouterr().err


def test_mean_std_is_the_sample_statistics_of_the_finite_values():
    values = [0.91, 0.93, float("nan"), 0.89]
    stat = mean_std(values)
    assert stat.n == 3
    assert stat.mean == pytest.approx(np.mean([0.91, 0.93, 0.89]))
    assert stat.std == pytest.approx(np.std([0.91, 0.93, 0.89], ddof=1))
    one = mean_std([0.9295])
    assert (one.mean, one.n) == (0.9295, 1) and np.isnan(one.std)
    assert mean_std([]).n == 0
    assert one.to_dict() == {"mean": 0.9295, "std": None, "n": 1}  # JSON has no NaN


def test_format_mean_std_shows_one_value_without_a_spread():
    assert format_mean_std(mean_std([0.9, 0.92])) == "0.910 ± 0.014"
    assert format_mean_std(mean_std([0.9295]), 4) == "0.9295 (n = 1)"
    assert "±" not in format_mean_std(mean_std([0.9295]), 4)
    assert format_mean_std(mean_std([0.0018, 0.0048, -0.0012]), 4, signed=True) == (
        "+0.0018 ± 0.0030")
    assert format_mean_std(mean_std([-0.003]), 4, signed=True) == "-0.0030 (n = 1)"
    assert format_mean_std(mean_std([])) == ""
    # a summary read back from JSON (std null) formats the same
    assert format_mean_std(MeanStd(**mean_std([0.5]).to_dict())) == "0.500 (n = 1)"


def test_markdown_table_cells_stay_in_their_columns():
    md = markdown_table(["run", "error", "f1"],
                        [("a", "ValueError: x | y\nmore", 0.5), ("b", None, float("nan"))])
    assert md.splitlines() == ["| run | error | f1 |", "|---|---|---|",
                               "| a | ValueError: x \\| y more | 0.5 |", "| b |  |  |"]
    assert md.endswith("\n")
    with pytest.raises(ValueError, match="row 0 has 2 cells, the header 3"):
        markdown_table(["a", "b", "c"], [("x", "y")])


def test_report_of_a_plain_table_of_runs(tmp_path):
    """The report reads any table of runs: here two models x three seeds, one seed missing a
    run, with no grid behind it."""
    rows = [{"run_id": f"{m}-{s}", "model": m, "seed": s, "test.macro_f1": f1}
            for m, f1s in {"small": [0.80, 0.82, 0.81], "big": [0.90, 0.91]}.items()
            for s, f1 in enumerate(f1s)]
    files = write_report(pd.DataFrame(rows), ["model", "seed"], tmp_path, seed="seed",
                         baselines={"model": "small"}, title="Two models")
    md = files.report_md.read_text()
    assert md.startswith("# Two models") and "6 done" not in md and "5 done" in md
    assert format_mean_std(mean_std([0.80, 0.82, 0.81])) in md
    comp = pd.read_csv(files.comparisons_csv).iloc[0]
    assert comp["model"] == "big" and comp["n"] == 2  # paired on the seeds both have
    assert comp["diff_mean"] == pytest.approx(np.mean([0.90 - 0.80, 0.91 - 0.82]))
    one = write_report(pd.DataFrame(rows[:1]), ["model", "seed"], tmp_path / "one", seed="seed")
    assert "0.800 (n = 1)" in one.report_md.read_text()


def test_what_a_method_measured_is_set_beside_its_cells(tmp_path):
    """`method.*` values (here a teacher's entropy that only the kd cells record) get their own
    table of the cells that have them, mean ± std over seeds."""
    entropy = {0: 0.30, 1: 0.34}
    rows = [{"run_id": f"{m}-{s}", "method": m, "seed": s, "test.macro_f1": 0.8 + 0.01 * s,
             **({"method.teacher_entropy": entropy[s]} if m == "kd" else {})}
            for m in ("none", "kd") for s in (0, 1)]
    md = write_report(pd.DataFrame(rows), ["method", "seed"], tmp_path, seed="seed",
                      baselines={"method": "none"}).report_md.read_text()
    section = md.split("### What the methods measured")[1].split("##")[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    assert table[0] == "| method | method.teacher_entropy |"
    assert len(table) == 2 and table[1].startswith("| kd | " + format_mean_std(
        mean_std(list(entropy.values()))))
    plain = write_report(pd.DataFrame([r for r in rows if r["method"] == "none"]),
                         ["method", "seed"], tmp_path / "plain", seed="seed")
    assert "What the methods measured" not in plain.report_md.read_text()


def test_report_names_what_a_table_lacks(tmp_path):
    runs = pd.DataFrame([{"run_id": "a", "model": "tiny", "test.macro_f1": 0.9}])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['seed'\]"):
        write_report(runs, ["model", "seed"], tmp_path)
    with pytest.raises(ValueError, match="axis 'method' .* is not one of the axes"):
        write_report(runs, ["model"], tmp_path, baselines={"method": "none"})


def test_bootstrap_interval_of_paired_differences():
    from scipy import stats as sps

    from harkd.report.stats import bootstrap_ci

    d = np.array([0.031, 0.012, 0.045, -0.004, 0.027, 0.019, 0.038, 0.008, 0.022, 0.050])
    low, high = bootstrap_ci(d)
    assert low < d.mean() < high and d.min() < low and high < d.max()
    assert bootstrap_ci(d) == (low, high)  # seeded: the same pairs give the same interval
    ref = sps.bootstrap((d,), np.mean, confidence_level=0.95, method="percentile",
                        n_resamples=20_000, random_state=1).confidence_interval
    assert low == pytest.approx(ref.low, abs=0.003) and high == pytest.approx(ref.high, abs=0.003)
    t = paired_test(d)
    assert (t.ci_low, t.ci_high) == (low, high) and t.ci_low > 0  # this lift excludes 0
    noisy = paired_test(d - d.mean())
    assert noisy.ci_low < 0 < noisy.ci_high
