"""Classification metrics of one split, and evaluation of a model or Distiller on a split.

accuracy, macro-F1, weighted F1, per-class F1 and the confusion matrix (scikit-learn's
definitions, computed here with numpy; the tests check them against scikit-learn), and the
expected calibration error of Guo et al., "On Calibration of Modern Neural Networks" (ICML
2017): 15 equal-width confidence bins (lo, hi], ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|.

Macro-F1 (`macro_f1`, the one definition every part of harkd uses) averages the per-class F1
over the classes present in the split's labels or predictions, as scikit-learn's
`f1_score(average="macro")` does when not given `labels`: a class absent from both (a subject
who never did that activity, in a subject split) has no F1 (null in `per_class_f1`) and does
not enter the average; a class predicted but never true counts with F1 0, and so does a class
true but never predicted.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from data_prep.windowset import WindowSet
from harkd.data import Normalizer

ECE_BINS = 15


def to_probs(logits_or_probs: np.ndarray) -> np.ndarray:
    """Rows already non-negative and summing to 1 are taken as probabilities, else softmax."""
    z = np.asarray(logits_or_probs, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"expected scores [N, K], got shape {list(z.shape)}")
    if (z >= 0).all() and np.allclose(z.sum(axis=1), 1.0, atol=1e-4):
        return z
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def expected_calibration_error(
    probs: np.ndarray, y_true: np.ndarray, n_bins: int = ECE_BINS
) -> float:
    """ECE of probabilities [N, K] against integer labels [N] (bins (i/n, (i+1)/n])."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        m = bins == b
        ece += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(ece)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """The [k, k] confusion matrix of integer labels and predictions in 0..k-1: row = true
    class, column = predicted class."""
    return np.bincount(np.asarray(y_true) * k + np.asarray(y_pred), minlength=k * k).reshape(k, k)


def per_class_f1(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The classes present in `y_true` or `y_pred` (sorted) and the F1 of each,
    2 TP / (true count + predicted count): 0 where a class has no true positive."""
    present = np.union1d(y_true, y_pred)
    counts = confusion(np.searchsorted(present, y_true), np.searchsorted(present, y_pred),
                       len(present))
    return present, 2.0 * np.diag(counts) / (counts.sum(axis=1) + counts.sum(axis=0))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 of integer predictions against integer labels: the mean F1 over the classes
    present in `y_true` or `y_pred` (see the module docstring)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"labels {list(y_true.shape)} and predictions {list(y_pred.shape)} "
                         "must be 1-D and of the same length")
    if y_true.size == 0:
        raise ValueError("no windows to score")
    return float(per_class_f1(y_true, y_pred)[1].mean())


def classification_metrics(
    y_true: np.ndarray,
    logits_or_probs: np.ndarray,
    label_names: Sequence[str],
    subjects: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of one split from integer labels [N] and logits or probabilities [N, K];
    with the windows' `subjects` [N], also each subject's macro-F1 (`per_subject_macro_f1`)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = to_probs(logits_or_probs)
    k = len(label_names)
    if probs.shape != (len(y_true), k):
        raise ValueError(
            f"scores {list(probs.shape)} do not match {len(y_true)} labels x {k} classes"
        )
    if len(y_true) == 0:
        raise ValueError("no windows to score")
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"labels outside 0..{k - 1}: {sorted(set(y_true.tolist()))}")
    y_pred = probs.argmax(axis=1)
    present, f1_present = per_class_f1(y_true, y_pred)
    counts = confusion(y_true, y_pred, k)
    support = counts.sum(axis=1)
    per_class: dict[str, float | None] = dict.fromkeys(label_names)
    for c, f in zip(present, f1_present, strict=True):
        per_class[label_names[c]] = float(f)
    out = {
        "n": len(y_true),
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": macro_f1(y_true, y_pred),
        "weighted_f1": float(np.average(f1_present, weights=support[present])),
        "per_class_f1": per_class,
        "confusion": counts.tolist(),
        "ece": expected_calibration_error(probs, y_true),
        "nll": float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, None)).mean()),
    }
    if subjects is not None:
        out["per_subject_macro_f1"] = per_subject_macro_f1(y_true, y_pred, subjects)
    return out


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Logits [N, K] of a Distiller, ViewModel or HARModel on windows `x`, in eval mode, on
    the model's device (each batch of `x` is moved there)."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    out = []
    for i in range(0, len(x), batch_size):
        y = model(x[i : i + batch_size].to(device))
        out.append(y if torch.is_tensor(y) else y.logits)
    model.train(was_training)
    return torch.cat(out).cpu().numpy()


def module_device(model: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU when it has none)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def evaluate(
    model: nn.Module,
    ws: WindowSet,
    split: str,
    normalizer: Normalizer | None = None,
    batch_size: int = 1024,
    channels: Sequence[int] | None = None,
) -> dict[str, Any]:
    """`classification_metrics` of `model` on one split of `ws`.

    A Distiller or ViewModel reads every channel and picks its own view. For a bare HARModel
    give `channels` (its view): the windows are cut to them before `normalizer`, which must
    then hold the statistics of those channels (a run's model.json `norm`). The default
    normalizer is the WindowSet's training-split statistics (of `channels` when given).
    """
    m = ws.mask(split)
    x = ws.X[m] if channels is None else ws.X[m][:, list(channels)]
    if normalizer is None:
        normalizer = Normalizer.from_windowset(ws)
        if channels is not None:
            normalizer = normalizer.select(channels)
    logits = predict(model, normalizer(x), batch_size)
    return classification_metrics(ws.y[m], logits, ws.label_names, ws.subject[m])


def per_subject_macro_f1(y_true: np.ndarray, y_pred: np.ndarray,
                         subjects: np.ndarray) -> dict[str, float]:
    """Macro-F1 of each subject's windows (`macro_f1` over that subject's classes), keyed by
    subject id in sorted order: the spread across unseen people that one pooled figure hides."""
    subjects = np.asarray(subjects).astype(str)
    return {str(s): macro_f1(y_true[subjects == s], y_pred[subjects == s])
            for s in np.unique(subjects)}
