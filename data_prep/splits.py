"""Subject-wise train / validation / test splits.

Splitting by subject, never by window, keeps a person's data out of the set that evaluates a
model trained on them (the subject-independent protocol of e.g. Hammerla, Halloran & Ploetz,
"Deep, Convolutional, and Recurrent Models for HAR Using Wearables", IJCAI 2016). Kinds:
`fixed` (named test subjects), `kfold_subjects` (subjects in natural order, cut into k
consecutive groups, one of which is the test set) and `loso` (one subject out). Validation
subjects are carved from the remaining training subjects: named, or drawn with a seed. A label
budget then keeps the labels of only k of the training subjects, drawn with a seed of its own
(so every budget draw shares the same validation subjects); the others are `hidden`. A subject
subset (RoS-KD's per-teacher data) keeps one of several overlapping subsets of the training
subjects for training; the others are `outside_subset`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from data_prep.config import SplitConfig, SubjectSubsetConfig
from data_prep.configio import ConfigError

#: the training subjects a subject subset leaves out (`assign_splits`)
OUTSIDE_SUBSET = "outside_subset"


def natural_key(subject: str) -> tuple[int, int | str]:
    """Sort numbers numerically ("2" before "10"), then other names alphabetically."""
    return (0, int(subject)) if subject.isdigit() else (1, subject)


def choose_test_subjects(subjects: list[str], cfg: SplitConfig) -> list[str]:
    """The test subjects of `cfg` among `subjects` (sorted naturally)."""
    if cfg.kind == "fixed":
        missing = [s for s in cfg.test_subjects if s not in subjects]
        if missing:
            raise ConfigError(
                f"split.test_subjects {missing} are not in the data; subjects: {subjects}"
            )
        return sorted(cfg.test_subjects, key=natural_key)
    if cfg.kind == "loso":
        if cfg.fold >= len(subjects):
            raise ConfigError(f"split.fold={cfg.fold} but loso has only {len(subjects)} subjects")
        return [subjects[cfg.fold]]
    if cfg.k > len(subjects):
        raise ConfigError(f"split.k={cfg.k} folds but only {len(subjects)} subjects")
    return [str(s) for s in np.array_split(np.array(subjects, dtype=object), cfg.k)[cfg.fold]]


def assign_splits(subjects: Iterable[str], cfg: SplitConfig) -> dict[str, list[str]]:
    """Split name ("train", "val", "test") -> its subjects; every subject in exactly one.

    With a label budget, "train" holds the labelled training subjects and "hidden" the
    training subjects whose labels are hidden; with a subject subset, "train" holds the subset
    and "outside_subset" the other training subjects."""
    subjects = sorted(set(subjects), key=natural_key)
    test = choose_test_subjects(subjects, cfg)
    rest = [s for s in subjects if s not in test]
    if cfg.val_subjects is not None:
        wrong = [s for s in cfg.val_subjects if s not in rest]
        if wrong:
            raise ConfigError(
                f"split.val_subjects {wrong} are not training subjects; choose from {rest}"
            )
        val = sorted(cfg.val_subjects, key=natural_key)
    else:
        if cfg.n_val_subjects >= len(rest):
            raise ConfigError(
                f"split.n_val_subjects={cfg.n_val_subjects} leaves no training subject "
                f"({len(rest)} subjects outside the test set)"
            )
        drawn = np.random.default_rng(cfg.seed).choice(len(rest), cfg.n_val_subjects, replace=False)
        val = sorted((rest[i] for i in drawn), key=natural_key)
    train = [s for s in rest if s not in val]
    if not train:
        raise ConfigError("the split leaves no training subject")
    if cfg.subset is not None:
        subset = subject_subset(train, cfg.subset)
        outside = [s for s in train if s not in subset]
        return {"train": subset, "val": val, "test": test, OUTSIDE_SUBSET: outside}
    labelled, hidden = draw_label_budget(train, cfg)
    out = {"train": labelled, "val": val, "test": test}
    return out if cfg.label_budget is None else {**out, "hidden": hidden}


def subject_subset(train: list[str], cfg: SubjectSubsetConfig) -> list[str]:
    """Subset `cfg.index` of `cfg.count` overlapping subsets of the training subjects (in the
    order of `train`). The subjects, shuffled with `cfg.seed`, are cut into `count` blocks at
    `round(i * n / count)` and laid on a circle; a subset is its own block and the next
    `round(n / count * overlap / (1 - overlap))` subjects after it, which the next subset
    starts with: consecutive subsets share `overlap` of their subjects (rounded), and together
    the subsets cover every training subject."""
    n = len(train)
    if n < cfg.count:
        raise ConfigError(
            f"split.subset.count={cfg.count} subsets but only {n} training subjects are left "
            f"after the test and validation subjects: {train}"
        )
    order = np.random.default_rng(cfg.seed).permutation(n)
    stride = n / cfg.count
    first, end = round(cfg.index * stride), round((cfg.index + 1) * stride)
    extra = min(n - (end - first), round(stride * cfg.overlap / (1 - cfg.overlap)))
    chosen = {int(order[j % n]) for j in range(first, end + extra)}
    return [s for i, s in enumerate(train) if i in chosen]


def draw_label_budget(train: list[str], cfg: SplitConfig) -> tuple[list[str], list[str]]:
    """(labelled, hidden) training subjects: `cfg.label_budget` of them, drawn with
    `cfg.label_budget_seed`, keep their labels (both lists in the order of `train`)."""
    k = cfg.label_budget
    if k is None:
        return list(train), []
    if k > len(train):
        raise ConfigError(
            f"split.label_budget={k} but only {len(train)} training subjects are left after the "
            f"test and validation subjects: {train}"
        )
    drawn = set(np.random.default_rng(cfg.label_budget_seed).choice(len(train), k, replace=False))
    labelled = [s for i, s in enumerate(train) if i in drawn]
    return labelled, [s for i, s in enumerate(train) if i not in drawn]
