"""The augmentation analysis on constructed tables with known answers: Holm's adjustment, the
paired bootstrap interval, pairing by seed, Holm families, per-class effects and the files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from harkd.report.aug_study import StudyAxes, write_augmentation_study
from harkd.report.paired_effects import Reference, paired_effects, per_class_effects
from harkd.report.stats import bootstrap_ci, holm

SEEDS = range(6)
#: paired differences with exact two-sided Wilcoxon p-values counted by hand (n = 6, 2^6 sign
#: patterns): every sign alike -> 2/64; the smallest rank opposite -> 2 * 2/64; ranks 1, 3, 5
#: against 2, 4, 6 (W = 9: 27 of the 64 patterns have a sum <= 9) -> 54/64
RISING = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
ONE_BELOW = [-0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
FALLING = [-d for d in RISING]
ALTERNATING = [0.01, -0.02, 0.03, -0.04, 0.05, -0.06]
#: the kd family against kd without augmentation: p = 2/64, 4/64, 2/64, 54/64; Holm (m = 4):
#: sorted 2/64 * 4, max(2/64 * 3, that), 4/64 * 2, 54/64 * 1
KD_CELLS = {("jitter", "same"): (RISING, 0.03125, 0.125),
            ("jitter", "clean"): (ONE_BELOW, 0.0625, 0.125),
            ("mixup", "same"): (FALLING, 0.03125, 0.125),
            ("mixup", "clean"): (ALTERNATING, 0.84375, 0.84375)}
LONE_SPIKE = [0.0, 0.0, 0.0, 0.0, 0.0, 0.06]


def test_holm_known_answer():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(1*0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([np.nan, 0.02, 0.5, 0.9])  # NaN: no test, not counted in m = 3
    assert np.isnan(adjusted[0]) and adjusted[1:] == pytest.approx([0.06, 1.0, 1.0])
    assert holm([]).size == 0 and np.isnan(holm([np.nan])).all()


def test_bootstrap_interval_known_answer():
    # the mean of 6 draws from {0 x5, x} is k x / 6, k ~ Binomial(6, 1/6): P(k = 0) = 0.33 and
    # P(k >= 4) = 0.009 < 2.5 % < P(k >= 3) = 0.062, so the 95 % interval is [0, x / 2]
    assert bootstrap_ci(LONE_SPIKE) == pytest.approx((0.0, 0.03))
    assert bootstrap_ci([0.02] * 5) == pytest.approx((0.02, 0.02))


def f1_of(augment: str, method: str, teacher_input: str, seed: int) -> float:
    """A seed effect every paired difference cancels, plus the designed differences."""
    base = 0.80 + 0.01 * seed
    if method == "none":
        return base + {"none": 0.0, "jitter": LONE_SPIKE[seed], "mixup": 0.02}[augment]
    kd = base + RISING[seed]
    return kd if augment == "none" else kd + KD_CELLS[augment, teacher_input][0][seed]


def constructed_table() -> pd.DataFrame:
    rows = []
    for augment in ("none", "jitter", "mixup"):
        for method in ("none", "kd"):
            for teacher_input in ("same", "clean"):
                if teacher_input == "clean" and "none" in (augment, method):
                    continue
                for seed in SEEDS:
                    f1 = f1_of(augment, method, teacher_input, seed)
                    rows.append({"run_id": f"{augment}-{method}-{teacher_input}-{seed}",
                                 "status": "done", "augment": augment, "method": method,
                                 "teacher_input": teacher_input, "seed": str(seed),
                                 "test.macro_f1": f1,
                                 "test.per_class_f1.WALKING": f1 + 0.1 * (augment == "mixup"),
                                 "test.per_class_f1.LAYING": 1.0})
    # a failed run is not a pair; the order of the rows does not matter
    rows.append({**rows[0], "run_id": "failed", "status": "failed", "test.macro_f1": np.nan})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


AXES = StudyAxes(augment="augment", method="method", seed="seed",
                 cells=("augment", "method", "teacher_input"), loose=("teacher_input",))
ALONE, NO_AUG = AXES.references()


def done_runs() -> pd.DataFrame:
    table = constructed_table()
    return table[table["status"] == "done"]


def effects_of(reference: Reference) -> pd.DataFrame:
    out = paired_effects(done_runs(), list(AXES.cells), "seed", reference, "test.macro_f1",
                         loose=AXES.loose, family=AXES.family)
    return out.set_index(list(AXES.cells))


def test_paired_differences_against_each_reference():
    alone = effects_of(ALONE)
    assert ("none", "none", "same") not in alone.index  # the reference itself
    spike = alone.loc["jitter", "none", "same"]
    assert (spike["n"], spike["diff_mean"]) == (6, pytest.approx(0.01))
    assert (spike["ci_low"], spike["ci_high"]) == pytest.approx((0.0, 0.03))
    constant = alone.loc["mixup", "none", "same"]
    assert constant["test"] == "none (identical differences)" and np.isnan(constant["p"])
    assert (constant["ci_low"], constant["ci_high"]) == pytest.approx((0.02, 0.02))
    kd_alone = alone.loc["none", "kd", "same"]
    assert kd_alone["test"] == "wilcoxon" and kd_alone["p"] == pytest.approx(0.03125)

    no_aug = effects_of(NO_AUG)
    assert not (no_aug.reset_index()["augment"] == "none").any()
    for (augment, teacher_input), (diffs, p, p_holm) in KD_CELLS.items():
        row = no_aug.loc[augment, "kd", teacher_input]
        assert row["n"] == 6 and row["diff_mean"] == pytest.approx(np.mean(diffs))
        assert row["diff_std"] == pytest.approx(np.std(diffs, ddof=1))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(bootstrap_ci(diffs))
        assert row["p"] == pytest.approx(p) and row["p_holm"] == pytest.approx(p_holm)
        assert row["m"] == 4 and row["family"] == "kd" and not row["significant"]
    # the method none family holds the unaugmented student's two policies; one has no test
    assert no_aug.loc["jitter", "none", "same"]["m"] == 1


def test_a_reference_with_two_runs_per_seed_is_refused():
    with pytest.raises(ValueError, match="share their labels"):
        paired_effects(done_runs(), list(AXES.cells), "seed",
                       Reference("r", "r", {"augment": "jitter"}), "test.macro_f1",
                       loose=("teacher_input",))


def test_per_class_effects_of_the_top_cells():
    effects = effects_of(NO_AUG).reset_index()
    per_class = per_class_effects(done_runs(), list(AXES.cells), "seed", NO_AUG, effects,
                                  top=2, loose=AXES.loose)
    top = effects.nlargest(2, "diff_mean")
    cells = list(dict.fromkeys(zip(per_class["augment"], per_class["method"],
                                   per_class["teacher_input"], strict=True)))
    assert cells == list(zip(top["augment"], top["method"], top["teacher_input"], strict=True))
    by = per_class.set_index(["augment", "teacher_input", "class"])
    assert by.loc[("jitter", "same", "LAYING"), "diff_mean"] == pytest.approx(0.0)
    walking = by.loc[("jitter", "same", "WALKING")]
    assert walking["diff_mean"] == pytest.approx(np.mean(RISING)) and walking["n"] == 6


def test_files_hold_the_numbers(tmp_path):
    files = write_augmentation_study(constructed_table(), AXES, tmp_path)
    record = json.loads(files.json.read_text())
    assert [r["name"] for r in record["references"]] == ["alone", "no_augmentation"]
    no_aug = record["references"][1]
    got = {(e["augment"], e["teacher_input"]): e for e in no_aug["effects"] if e["method"] == "kd"}
    for key, (diffs, p, p_holm) in KD_CELLS.items():
        assert got[key]["diff_mean"] == pytest.approx(np.mean(diffs))
        assert (got[key]["p"], got[key]["p_holm"]) == pytest.approx((p, p_holm))
    families = {f["family"]: f for f in no_aug["families"]}
    assert families["kd"]["m"] == 4 and families["kd"]["significant"] == 0
    assert families["kd"]["smallest_attainable_holm_p"] == pytest.approx(4 * 2 / 64)
    md = files.markdown.read_text()
    assert "![heat map](augmentation_vs_alone.png)" in md and "0.8438" in md
    assert [p.name for p in files.pngs] == ["augmentation_vs_alone.png",
                                            "augmentation_vs_no_augmentation.png"]
    assert all(p.stat().st_size > 1000 for p in files.pngs)
    csv = pd.read_csv(files.csv)
    assert set(csv["reference"]) == {"alone", "no_augmentation"}


def test_no_baseline_is_one_clear_error(tmp_path):
    table = constructed_table()
    with pytest.raises(ValueError, match="augment=none"):
        write_augmentation_study(table[table["augment"] != "none"], AXES, tmp_path)


def test_only_the_references_finished_writes_tables_without_heat_maps(tmp_path):
    table = constructed_table()
    refs = table[(table["augment"] == "none") & (table["method"] == "none")]
    files = write_augmentation_study(refs, AXES, tmp_path)
    assert files.pngs == [] and "No cell has a paired run yet" in files.markdown.read_text()
