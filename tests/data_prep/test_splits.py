"""Subject splits: fixed, k-fold and leave-one-subject-out; validation carved from training;
a label budget keeping the labels of k training subjects."""

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
    st.sampled_from([None, 1, 2]),
)
def test_every_subject_in_exactly_one_split(ids, kind, fold, n_val, seed, budget):
    subjects = [f"s{i}" if i % 3 else str(i) for i in ids]
    cfg = SplitConfig(
        kind=kind,
        k=min(4, len(subjects)),
        fold=fold,
        n_val_subjects=n_val,
        seed=seed,
        label_budget=budget,
        label_budget_seed=seed + 1,
    )
    plain = assign_splits(subjects, cfg.model_copy(update={"label_budget": None}))
    try:
        out = assign_splits(subjects, cfg)
    except ConfigError as err:  # a budget above the training subjects left
        assert budget > len(plain["train"]) and "split.label_budget" in str(err)
        return
    flat = [s for part in out.values() for s in part]
    assert sorted(flat) == sorted(subjects) and len(flat) == len(set(flat))
    assert out["train"] and out["test"] and len(out["val"]) == n_val
    assert (out["val"], out["test"]) == (plain["val"], plain["test"])
    if budget is None:
        assert "hidden" not in out
    else:
        assert len(out["train"]) == budget
        assert sorted(out["train"] + out["hidden"]) == sorted(plain["train"])


def test_label_budget_draw_is_seeded_and_keeps_validation():
    def draw(**budget):
        cfg = SplitConfig(kind="fixed", test_subjects=[2, 4, 9, 10, 12, 13, 18, 20, 24], **budget)
        return assign_splits(SUBJECTS, cfg)

    plain = draw()
    first = draw(label_budget=3, label_budget_seed=0)
    assert first == draw(label_budget=3, label_budget_seed=0)  # reproducible
    assert len(first["train"]) == 3 and len(first["hidden"]) == 15
    assert sorted(first["train"] + first["hidden"], key=int) == plain["train"]
    draws = [draw(label_budget=3, label_budget_seed=s) for s in range(5)]
    assert all((d["val"], d["test"]) == (plain["val"], plain["test"]) for d in draws)
    assert draws[0]["train"] != draws[1]["train"]  # another seed, other subjects
    assert len({tuple(d["train"]) for d in draws}) == 5
    everyone = draw(label_budget=18)
    assert everyone["hidden"] == [] and everyone["train"] == plain["train"]


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
        (
            SplitConfig(kind="loso", fold=0, label_budget=27),
            r"split.label_budget=27 but only 26 training subjects are left",
        ),
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
    with pytest.raises(ValueError, match="label_budget"):
        SplitConfig(kind="loso", label_budget=0)


def test_unused_budget_and_pool_leave_the_dump_as_before():
    """A split without a label budget or pool dumps the keys it always had, so existing
    protocols keep their config hash and cache key."""
    old_keys = ["kind", "test_subjects", "k", "fold", "val_subjects", "n_val_subjects", "seed"]
    plain = SplitConfig(kind="loso")
    assert list(plain.model_dump()) == old_keys
    assert SplitConfig(kind="loso", label_budget_seed=4, pool=False).model_dump() == (
        plain.model_dump()
    )
    used = SplitConfig(kind="loso", label_budget=2, label_budget_seed=4, pool=True)
    assert list(used.model_dump()) == [*old_keys, "label_budget", "label_budget_seed", "pool"]
    assert SplitConfig.model_validate(used.model_dump()) == used
