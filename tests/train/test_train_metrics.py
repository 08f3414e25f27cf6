"""Metrics on hand-computed cases: ECE bins, macro-F1 with a missing class, confusion."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score

from harkd.train.metrics import (
    classification_metrics,
    expected_calibration_error,
    macro_f1,
    to_probs,
)

LABELS = ["a", "b", "c"]


def test_ece_by_hand() -> None:
    # confidences 0.9, 0.9 (one right, one wrong) fall in bin (0.8667, 0.9333]: |0.5 - 0.9| = 0.4
    # confidences 0.5, 0.5 (both right) fall in bin (0.4667, 0.5333]:          |1.0 - 0.5| = 0.5
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.5, 0.25, 0.25], [0.25, 0.5, 0.25]])
    y = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.5)


def test_ece_of_perfectly_calibrated_one_hot_is_zero() -> None:
    probs = np.eye(3)[[0, 1, 2, 2]]
    assert expected_calibration_error(probs, np.array([0, 1, 2, 2])) == 0.0


def test_confidence_one_falls_in_the_last_bin_and_one_fifteenth_in_the_first() -> None:
    # bins are (lo, hi]: 1/15 exactly belongs to the first bin, 1.0 to the last
    probs = np.array([[1.0, 0.0], [1 / 15, 14 / 15]])
    # sample 0: conf 1, right -> 0; sample 1: predicts class 1 with conf 14/15, wrong -> 14/15
    assert expected_calibration_error(probs, np.array([0, 0])) == pytest.approx(0.5 * 14 / 15)


def test_macro_f1_with_a_class_absent_from_labels_and_predictions() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 0])
    m = classification_metrics(y_true, np.eye(3)[y_pred], LABELS)
    # class a: P 2/3, R 1 -> F1 0.8; class b: P 1, R 1/2 -> 2/3; class c absent: not counted
    assert m["per_class_f1"] == pytest.approx({"a": 0.8, "b": 2 / 3, "c": None})
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["accuracy"] == 0.75
    # weighted by support (2 and 2)
    assert m["weighted_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert m["confusion"] == [[2, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_a_predicted_but_absent_class_counts_with_f1_zero() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 2])
    m = classification_metrics(y_true, np.eye(3)[y_pred], LABELS)
    assert m["per_class_f1"]["c"] == 0.0
    assert m["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
    # weighted F1 uses support: c has none
    assert m["weighted_f1"] == pytest.approx((2 * 1.0 + 2 * 2 / 3) / 4)


def test_logits_and_probabilities_give_the_same_metrics() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3))
    probs = to_probs(logits)
    y = rng.integers(0, 3, 50)
    a, b = classification_metrics(y, logits, LABELS), classification_metrics(y, probs, LABELS)
    assert a["confusion"] == b["confusion"]
    for key in ("accuracy", "macro_f1", "weighted_f1", "ece", "nll"):
        assert a[key] == pytest.approx(b[key])
    assert probs.sum(axis=1) == pytest.approx(np.ones(50))


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="do not match"):
        classification_metrics(np.array([0, 1]), np.zeros((3, 3)), LABELS)
    with pytest.raises(ValueError, match="outside 0..2"):
        classification_metrics(np.array([0, 5]), np.zeros((2, 3)), LABELS)


def har_split(seed: int, absent: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions shaped like a HAPT-12 test subject: the six basic activities
    common, the six postural transitions rare, the classes in `absent` never performed; the
    classifier confuses sitting with standing and each transition with its neighbours."""
    rng = np.random.default_rng(seed)
    freq = np.array([17, 15, 14, 18, 19, 19, 0.6, 0.5, 0.8, 0.7, 0.9, 0.6])
    freq[list(absent)] = 0
    y_true = rng.choice(12, size=400, p=freq / freq.sum())
    y_pred = y_true.copy()
    sit, stand = y_true == 3, y_true == 4
    y_pred[sit & (rng.random(400) < 0.15)] = 4
    y_pred[stand & (rng.random(400) < 0.10)] = 3
    transition = (y_true >= 6) & (rng.random(400) < 0.4)
    y_pred[transition] = np.clip(y_true[transition] + rng.choice([-1, 1], transition.sum()),
                                 6, 11)
    into_absent = np.isin(y_pred, absent)  # never predicted either: those stay correct
    y_pred[into_absent] = y_true[into_absent]
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_macro_f1_is_sklearn_macro_over_the_classes_present(seed: int) -> None:
    y_true, y_pred = har_split(seed, absent=(9,))
    assert 9 not in y_true and 9 not in y_pred  # a transition this subject never did
    expected = f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert macro_f1(y_true, y_pred) == pytest.approx(expected, abs=1e-12)
    # the absent class does not enter the average: counting it as 0 would lower the score
    all_twelve = f1_score(y_true, y_pred, average="macro", labels=range(12), zero_division=0)
    assert macro_f1(y_true, y_pred) == pytest.approx(all_twelve * 12 / 11, abs=1e-12)
    # classification_metrics reports the same number and leaves the absent class unscored
    m = classification_metrics(y_true, np.eye(12)[y_pred], [f"c{i}" for i in range(12)])
    assert m["macro_f1"] == macro_f1(y_true, y_pred) and m["per_class_f1"]["c9"] is None
    assert m["weighted_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0), abs=1e-12)
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=range(12)).tolist()


def test_macro_f1_counts_a_class_seen_on_one_side_only_as_zero() -> None:
    y_true = np.array([0, 0, 1, 1, 2])
    never_predicted = np.array([0, 0, 1, 1, 1])  # class 2 true but never predicted: F1 0
    assert macro_f1(y_true, never_predicted) == pytest.approx((1 + 0.8 + 0) / 3)
    assert macro_f1(y_true, never_predicted) == pytest.approx(
        f1_score(y_true, never_predicted, average="macro", zero_division=0))
    never_true = np.array([0, 0, 1, 3, 2])  # class 3 predicted but never true: F1 0
    assert macro_f1(y_true, never_true) == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)


def test_macro_f1_names_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same length"):
        macro_f1(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="no windows to score"):
        macro_f1(np.array([], dtype=int), np.array([], dtype=int))


def test_per_subject_macro_f1_scores_each_subjects_windows_alone():
    # subject "a": labels 0 0 1, predictions 0 1 1 -> F1(0) = 2/3, F1(1) = 2/3
    # subject "b": labels 1 2, predictions 1 1 -> F1(1) = 2/3, F1(2) = 0
    y_true = np.array([0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 1])
    subjects = np.array(["a", "a", "a", "b", "b"])
    m = classification_metrics(y_true, np.eye(3)[y_pred], LABELS, subjects)
    assert m["per_subject_macro_f1"] == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert "per_subject_macro_f1" not in classification_metrics(y_true, np.eye(3)[y_pred], LABELS)
