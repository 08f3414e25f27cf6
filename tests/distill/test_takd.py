"""TAKD: differential-evolution weights beat uniform ones on a constructed validation set, the
ensemble loss against hand arithmetic, the run's record of using validation, the shipped chain
grid's graph, and a teacher -> assistant chain plus the ensemble run by the engine."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import REPO, SMALL_CNN, FixedLogits, chain_spec, node

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.distill.base import (
    Batch,
    DistillContext,
    FrozenTeacher,
    ValidationSplit,
    ViewModel,
    build_distiller,
)
from harkd.distill.takd import ensemble_predictions, fit_ensemble_weights, normalised
from harkd.train.metrics import macro_f1

CTX = DistillContext(2, 8, {"acc": [0]}, ["a", "b"])


def constructed_validation(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Member probabilities [3, n, 3] and labels: member 0 is right but unsure (0.5 on the true
    class), members 1 and 2 confidently wrong (0.9 on the next, or the one after): uniform
    weights put 0.2 on the true class and 0.4 on each wrong one."""
    y = np.arange(n) % 3
    probs = np.zeros((3, n, 3))
    for m, (shift, p) in enumerate([(0, 0.5), (1, 0.9), (2, 0.9)]):
        probs[m] = (1 - p) / 2
        probs[m, np.arange(n), (y + shift) % 3] = p
    return probs, y


def test_differential_evolution_beats_uniform_weights() -> None:
    probs, y = constructed_validation()
    uniform = macro_f1(y, ensemble_predictions(probs, np.ones(3)))
    w, fitted = fit_ensemble_weights(probs, y, macro_f1, seed=0, maxiter=30)
    assert uniform == 0.0 and fitted == 1.0
    assert w.sum() == pytest.approx(1.0) and w[0] > 0.77  # 0.25 w0 > 0.85 (1 - w0) is needed
    by_hand = (w[:, None, None] * probs).sum(axis=0).argmax(axis=1)
    assert macro_f1(y, by_hand) == fitted
    again, _ = fit_ensemble_weights(probs, y, macro_f1, seed=0, maxiter=30)
    assert np.array_equal(again, w)  # seeded


def test_weights_are_normalised_and_combine_probabilities() -> None:
    assert normalised(np.array([1.0, 3.0])).tolist() == [0.25, 0.75]
    assert normalised(np.array([0.0, -1.0])).tolist() == [0.5, 0.5]
    probs = np.array([[[0.6, 0.4]], [[0.2, 0.8]]])  # 0.25 * 0.6 + 0.75 * 0.2 = 0.3 < 0.7
    assert ensemble_predictions(probs, np.array([0.25, 0.75])).tolist() == [1]
    assert ensemble_predictions(probs, np.array([0.9, 0.1])).tolist() == [0]


def make(**params: object) -> torch.nn.Module:
    teachers = {"sure": FrozenTeacher(FixedLogits([math.log(3), 0.0]), [0]),
                "unsure": FrozenTeacher(FixedLogits([0.0, 0.0]), [0])}
    return build_distiller("takd", ViewModel(FixedLogits([0.0, 0.0]), [0]), teachers, CTX,
                           {"alpha": 0.5, "temperature": 1.0, **params})


def test_ensemble_loss_by_hand() -> None:
    d = make()
    d.weights.copy_(torch.tensor([0.25, 0.75]))
    y = torch.tensor([1])
    _, losses = d.forward_train(Batch(x=torch.zeros(1, 1, 8), y=y,
                                      y_soft=torch.nn.functional.one_hot(y, 2).float()), 0)
    p_ens = [0.25 * 0.75 + 0.75 * 0.5, 0.25 * 0.25 + 0.75 * 0.5]  # [0.5625, 0.4375]
    kl = sum(p * math.log(p / 0.5) for p in p_ens)
    assert losses["ce"].item() == pytest.approx(0.5 * math.log(2))
    assert losses["kd"].item() == pytest.approx(0.5 * kl, abs=1e-6)
    assert "weights" in d.state_dict()  # saved with the run's resumable state


def test_prepare_fits_on_validation_and_says_so() -> None:
    d = make(maxiter=10)
    val = ValidationSplit(torch.zeros(4, 1, 8), np.array([0, 0, 0, 1]), macro_f1)
    report = d.prepare(val)
    assert report["validation_use"].startswith("ensemble weights fitted on the validation split")
    assert report["val_macro_f1_fitted"] >= report["val_macro_f1_uniform"]
    assert sum(report["weights"].values()) == pytest.approx(1.0)
    assert d.weights.tolist() == pytest.approx(list(report["weights"].values()))
    plain = make(weights="uniform").prepare(val)
    assert "validation_use" not in plain and plain["weights"] == {"sure": 0.5, "unsure": 0.5}


def test_takd_needs_several_assistants() -> None:
    one = {"a": FrozenTeacher(FixedLogits([0.0, 0.0]), [0])}
    with pytest.raises(ValueError, match="method 'takd' needs at least 2 teacher"):
        build_distiller("takd", ViewModel(FixedLogits([0.0, 0.0]), [0]), one, CTX, {})


def test_shipped_chain_grid_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", str(REPO / "configs" / "grids" / "takd_chain.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "node assistant  needs teacher" in out and "node assistant2  needs assistant" in out
    assert "3 training nodes, 15 cells" in out
    assert out.count("needs assistant, assistant2") == 3  # the ensemble cells
    assert "method=takd3 seed=0  needs assistant2" in out


def test_chain_and_ensemble_through_the_engine(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    """teacher -> assistant by kd (training nodes); cells: kd from the assistant (a two-step
    chain) and the ensemble of teacher and assistant with weights fitted on validation."""
    from harkd.grid.runner import run_grid
    from harkd.grid.spec import spec_from_dict
    from harkd.grid.store import RunStore
    from harkd.grid.table import grid_table

    kd = {"alpha": 0.5, "temperature": 2.0}
    nodes = {"teacher": node(SMALL_CNN),
             "assistant": node({"name": "tiny_s", "view": ["acc", "gyro"]}, "kd", kd,
                               {"t": {"from": "teacher"}})}
    methods = [
        {"label": "takd2", "set": {"distill": {"method": "kd", "params": kd},
                                   "teachers": {"a": {"from": "assistant"}}}},
        {"label": "ensemble", "set": {"distill": {"method": "takd", "params": {"maxiter": 10}},
                                      "teachers": {"t": {"from": "teacher"},
                                                   "a": {"from": "assistant"}}}},
    ]
    spec = spec_from_dict(chain_spec(tmp_path / "g", nodes, methods), source="takd.yaml")
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.done, summary.failed, summary.blocked) == (4, 0, 0)
    with RunStore(summary.grid_dir / "runs.sqlite") as store:
        rows = {r.axes.get("node") or r.axes["method"]: r for r in store.rows()}
    assert list(rows["assistant"].deps) == [rows["teacher"].hash]
    method = rows["ensemble"].metrics["method"]
    assert "validation" in method["validation_use"]
    assert sum(method["weights"].values()) == pytest.approx(1.0)
    assert method["val_macro_f1_fitted"] >= method["val_macro_f1_uniform"]
    table = grid_table(summary.grid_dir).runs.set_index("method")
    assert table.loc["ensemble", "method.weights.t"] == pytest.approx(method["weights"]["t"])
