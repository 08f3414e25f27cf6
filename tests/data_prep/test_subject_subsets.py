"""Subject subsets (`split.subset`, RoS-KD's teachers on overlapping data): the subsets overlap
as configured, cover the training subjects, never hold a validation or test subject, keep the
normalisation of every training subject, and leave protocols without them unchanged."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.config import SplitConfig, SubjectSubsetConfig, load_data_config
from data_prep.pipeline import OUTSIDE_SUBSET_WINDOWS, prepare
from data_prep.splits import OUTSIDE_SUBSET, assign_splits, subject_subset
from harkd.cli import main
from harkd.config import ConfigError

HAPT_QUICK = Path(__file__).resolve().parents[2] / "configs" / "data" / "hapt-quick.yaml"
HAPT_TEST = ["2", "4", "9", "10", "12", "13", "18", "20", "24"]
ARRAYS = ("X", "y", "subject", "recording", "start")
#: the keys a split section dumped before subsets and label noise existed
SPLIT_KEYS = {"kind", "test_subjects", "k", "fold", "val_subjects", "n_val_subjects", "seed"}


def subsets(train: list[str], count: int, overlap: float, seed: int = 0) -> list[list[str]]:
    return [
        subject_subset(train, SubjectSubsetConfig(count=count, index=i, overlap=overlap, seed=seed))
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("overlap", "size", "shared", "memberships"),
    [
        # 18 subjects, 3 subsets: a stride of 6 subjects; size = 6 / (1 - overlap)
        (0.0, 6, 0, 1),  # a partition
        (0.25, 8, 2, None),  # 8 = 6 / 0.75; the next subset starts 6 on: 2 shared = 0.25 * 8
        (0.5, 12, 6, 2),  # 12 = 6 / 0.5; 6 shared = 0.5 * 12; every subject in two subsets
    ],
)
def test_subsets_overlap_as_configured(overlap, size, shared, memberships):
    train = [str(s) for s in range(101, 119)]
    parts = subsets(train, 3, overlap)
    assert [len(p) for p in parts] == [size] * 3
    for a, b in pairwise([*parts, parts[0]]):  # consecutive on the circle, the last to the first
        assert len(set(a) & set(b)) == shared
    counts = Counter(s for p in parts for s in p)
    assert set(counts) == set(train)  # together they cover every training subject
    if memberships is not None:
        assert set(counts.values()) == {memberships}
    for p in parts:
        assert p == [s for s in train if s in p]  # in the order of the training subjects
    assert subsets(train, 3, overlap) == parts  # seeded
    assert subsets(train, 3, overlap, seed=1) != parts


@settings(max_examples=60, deadline=None)
@given(
    st.integers(12, 40),  # 4 folds, 2 validation subjects: at least 7 training subjects
    st.integers(2, 5),
    st.sampled_from([0.0, 0.2, 0.5, 0.8]),
    st.integers(0, 3),
)
def test_no_test_or_validation_subject_is_ever_in_a_subset(n_subjects, count, overlap, seed):
    subjects = [str(s) for s in range(1, n_subjects + 1)]
    base = {"kind": "kfold_subjects", "k": 4, "fold": seed % 4, "n_val_subjects": 2, "seed": seed}
    plain = assign_splits(subjects, SplitConfig(**base))
    union = set()
    for i in range(count):
        subset = {"count": count, "index": i, "overlap": overlap, "seed": seed}
        out = assign_splits(subjects, SplitConfig(**base, subset=subset))
        assert (out["val"], out["test"]) == (plain["val"], plain["test"])
        assert not set(out["train"]) & (set(out["val"]) | set(out["test"]))
        assert sorted(out["train"] + out[OUTSIDE_SUBSET]) == sorted(plain["train"])
        assert out["train"]
        union |= set(out["train"])
    assert union == set(plain["train"])


@pytest.fixture(scope="module")
def hapt(tmp_path_factory):
    """hapt-quick and its 3 subject subsets (overlap 0.5), prepared from the real data."""
    cache = tmp_path_factory.mktemp("subsets")
    full = prepare(load_data_config(HAPT_QUICK), cache, progress=False)
    parts = [
        prepare(
            load_data_config(HAPT_QUICK, [f"split.subset={{count: 3, index: {i}, overlap: 0.5}}"]),
            cache,
            progress=False,
        )
        for i in range(3)
    ]
    return full, parts


def test_a_subset_trains_on_its_subjects_with_the_full_normalisation(hapt):
    full, parts = hapt
    training = full.meta["split_subjects"]["train"]
    assert len(training) == 18
    for ws in parts:
        subjects = ws.meta["split_subjects"]
        assert len(subjects["train"]) == 12  # round(6 / 0.5)
        assert subjects["test"] == HAPT_TEST
        assert subjects["val"] == full.meta["split_subjects"]["val"]
        assert sorted(subjects["train"] + ws.meta["outside_subset_subjects"], key=int) == training
        assert ws.meta["norm"] == full.meta["norm"]  # every training subject's statistics
        mine = full.mask("train") & np.isin(full.subject, subjects["train"])
        for name in ARRAYS:  # the training windows are the full set's windows of the subset
            np.testing.assert_array_equal(getattr(ws.subset("train"), name),
                                          getattr(full, name)[mine])
            for split in ("val", "test"):
                np.testing.assert_array_equal(getattr(ws.subset(split), name),
                                              getattr(full.subset(split), name))
        left_out = int((full.mask("train") & ~mine).sum())
        assert ws.meta["dropped"][OUTSIDE_SUBSET_WINDOWS] == left_out > 0
        others = {k: v for k, v in ws.meta["dropped"].items() if k != OUTSIDE_SUBSET_WINDOWS}
        assert others == full.meta["dropped"]  # nothing else changes
    counts = Counter(s for ws in parts for s in ws.meta["split_subjects"]["train"])
    assert set(counts) == set(training) and set(counts.values()) == {2}


def test_protocols_without_the_new_options_dump_and_cache_as_before(hapt, tmp_path):
    full, _ = hapt
    cfg = load_data_config(HAPT_QUICK)
    assert set(cfg.model_dump(mode="json")["split"]) == SPLIT_KEYS
    unused = load_data_config(HAPT_QUICK, ["split.subset=null", "split.label_noise=null"])
    assert unused.config_hash() == cfg.config_hash()
    again = prepare(unused, Path(full.meta["cache_path"]).parent, progress=False)
    assert again.meta["from_cache"] and again.meta["cache_path"] == full.meta["cache_path"]
    assert "outside_subset_subjects" not in full.meta and "label_noise" not in full.meta


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["split.subset={count: 3, index: 3}"], "split.subset.index=3 must be below count=3"),
        (["split.subset={count: 19, index: 0}"],
         "split.subset.count=19 subsets but only 18 training subjects"),
        (["split.subset={count: 2, index: 0, overlap: 1.0}"], "overlap"),
        (["split.subset={count: 2, index: 0}", "split.label_budget=3"],
         "cannot be combined with split.label_budget or split.pool"),
    ],
)
def test_bad_subsets_are_one_line(overrides, message, tmp_path, capsys):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        prepare(load_data_config(HAPT_QUICK, overrides), tmp_path, progress=False)
    argv = ["prep", str(HAPT_QUICK), *overrides, "--cache-dir", str(tmp_path), "--no-progress"]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    # one line, or a validation error's heading naming the file and one line for the key
    assert len(err) <= 2 and message in err[-1] and "Traceback" not in err[0]
