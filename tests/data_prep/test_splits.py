"""Subject splits: fixed, k-fold and leave-one-subject-out; validation carved from training."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.config import SplitConfig
from data_prep.splits import assign_splits
from harkd.config import ConfigError

SUBJECTS = [str(s) for s in range(1, 31)]


def test_fixed_hapt_quick_lists():
    out = assign_splits(
        SUBJECTS, SplitConfig(kind="fixed", test_subjects=[2, 4, 9, 10, 12, 13, 18, 20, 24])
    )
    assert out["test"] == ["2", "4", "9", "10", "12", "13", "18", "20", "24"]
    assert len(out["val"]) == 3 and len(out["train"]) == 18
    again = assign_splits(
        reversed(SUBJECTS),
        SplitConfig(
            kind="fixed", test_subjects=["24", "2", "4", "9", "10", "12", "13", "18", "20"]
        ),
    )
    assert again == out  # order of input does not matter; the seed fixes the draw


def test_kfold_uses_consecutive_groups_in_natural_order():
    folds = [
        assign_splits(SUBJECTS, SplitConfig(kind="kfold_subjects", k=10, fold=f)) for f in range(10)
    ]
    assert folds[0]["test"] == ["1", "2", "3"] and folds[9]["test"] == ["28", "29", "30"]
    assert sorted(s for f in folds for s in f["test"]) == sorted(SUBJECTS)


def test_loso_and_explicit_validation():
    out = assign_splits(SUBJECTS, SplitConfig(kind="loso", fold=4, val_subjects=[1, 30]))
    assert out["test"] == ["5"] and out["val"] == ["1", "30"] and len(out["train"]) == 27


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(1, 60), min_size=4, max_size=40),
    st.sampled_from(["kfold_subjects", "loso"]),
    st.integers(0, 3),
    st.integers(0, 2),
    st.integers(0, 10_000),
)
def test_every_subject_in_exactly_one_split(ids, kind, fold, n_val, seed):
    subjects = [f"s{i}" if i % 3 else str(i) for i in ids]
    cfg = SplitConfig(
        kind=kind, k=min(4, len(subjects)), fold=fold, n_val_subjects=n_val, seed=seed
    )
    out = assign_splits(subjects, cfg)
    flat = [s for part in out.values() for s in part]
    assert sorted(flat) == sorted(subjects) and len(flat) == len(set(flat))
    assert out["train"] and out["test"] and len(out["val"]) == n_val


@pytest.mark.parametrize(
    ("cfg", "error"),
    [
        (
            SplitConfig(kind="fixed", test_subjects=[2, 99]),
            r"test_subjects \['99'\] are not in the data",
        ),
        (SplitConfig(kind="loso", fold=30), "loso has only 30 subjects"),
        (SplitConfig(kind="kfold_subjects", k=31, fold=0), "k=31 folds but only 30 subjects"),
        (
            SplitConfig(kind="loso", fold=0, val_subjects=[1]),
            r"val_subjects \['1'\] are not training",
        ),
        (SplitConfig(kind="loso", n_val_subjects=29), "leaves no training subject"),
    ],
)
def test_errors_name_the_key(cfg, error):
    with pytest.raises(ConfigError, match=error):
        assign_splits(SUBJECTS, cfg)


def test_config_checks():
    with pytest.raises(ValueError, match="fixed needs test_subjects"):
        SplitConfig(kind="fixed")
    with pytest.raises(ValueError, match="chooses test subjects itself"):
        SplitConfig(kind="loso", test_subjects=[1])
