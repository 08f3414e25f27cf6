"""Self-distillation: the virtual teacher and both variants' losses against hand arithmetic, the
pre-trained-self check, the flatness measure against numerical integration, the born-again
grid's graph, and a born-again chain run by the engine on real HAPT windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from distill_helpers import REPO, FixedLogits, chain_spec, node
from torch import nn

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.flatness import flatness
from harkd.distill.losses import virtual_teacher
from harkd.models import build_model
from harkd.models.base import ModelOutput

CTX = DistillContext(4, 8, {"acc": [0]}, list("abcd"))
BORN_AGAIN = {"method": "selfkd", "params": {"variant": "self", "alpha": 1.0, "temperature": 1.0}}


def softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def batch(labels: list[int]) -> Batch:
    y = torch.tensor(labels)
    return Batch(x=torch.randn(len(labels), 1, 8), y=y,
                 y_soft=torch.nn.functional.one_hot(y, 4).float())


def test_virtual_teacher_by_hand() -> None:
    rest = 0.1 / 3
    y = torch.tensor([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 2.0, 0]])  # one-hot, mixed, weighted
    got = virtual_teacher(y, 0.9).tolist()
    assert got[0] == pytest.approx([0.9, rest, rest, rest])
    assert got[1] == pytest.approx([0.45 + rest / 2, 0.45 + rest / 2, rest, rest])
    assert got[2] == pytest.approx([rest, rest, 0.9, rest])


def test_virtual_variant_loss_by_hand() -> None:
    student = ViewModel(FixedLogits([1.0, 0.0, 0.0, 0.0]), [0])
    params = {"variant": "virtual", "alpha": 0.5, "temperature": 2.0, "correct_prob": 0.9}
    d = build_distiller("selfkd", student, {}, CTX, params)
    _, losses = d.forward_train(batch([0]), 0)
    target = softmax([0.9 / 2] + [0.1 / 3 / 2] * 3)
    p_s = softmax([0.5, 0.0, 0.0, 0.0])
    kl = sum(t * math.log(t / s) for t, s in zip(target, p_s, strict=True))
    assert losses["ce"].item() == pytest.approx(0.5 * -math.log(softmax([1, 0, 0, 0])[0]))
    assert losses["reg"].item() == pytest.approx(0.5 * kl, abs=1e-6)


def test_self_variant_loss_by_hand() -> None:
    student = ViewModel(FixedLogits([0.0, 0.0, 0.0, 0.0]), [0])
    teacher = FrozenTeacher(FixedLogits([math.log(3), 0.0, 0.0, 0.0]), [0])
    d = build_distiller("selfkd", student, {"self": teacher}, CTX,
                        {"variant": "self", "alpha": 0.25, "temperature": 1.0})
    _, losses = d.forward_train(batch([1]), 0)
    kl = 0.5 * math.log(0.5 / 0.25) + 3 * (1 / 6) * math.log((1 / 6) / 0.25)
    assert losses["ce"].item() == pytest.approx(0.75 * math.log(4))
    assert losses["kd"].item() == pytest.approx(0.25 * kl, abs=1e-6)


def test_variants_take_the_teachers_they_need() -> None:
    student = ViewModel(build_model("tiny_xs", 1, 4, 64), [0])
    cnn = FrozenTeacher(build_model("cnn1d", 1, 4, 64, widths=[8, 16]), [0])
    with pytest.raises(ValueError, match="variant 'virtual' takes 0 teacher"):
        build_distiller("selfkd", student, {"t": cnn}, CTX, {"variant": "virtual"})
    with pytest.raises(ValueError, match="variant 'self' takes 1 teacher"):
        build_distiller("selfkd", student, {}, CTX, {"variant": "self"})
    with pytest.raises(ValueError, match=r"teacher 't' \(CNN1D, .* parameters\) is not the "
                                         r"student's architecture \(TinyNet"):
        build_distiller("selfkd", student, {"t": cnn}, CTX, {"variant": "self"})
    wider = FrozenTeacher(build_model("tiny_s", 1, 4, 64), [0])
    with pytest.raises(ValueError, match="is not the student's architecture"):
        build_distiller("selfkd", student, {"t": wider}, CTX, {"variant": "self"})
    same = FrozenTeacher(build_model("tiny_xs", 1, 4, 64), [0])
    assert build_distiller("selfkd", student, {"t": same}, CTX, {"variant": "self"})


class Linear2(nn.Module):
    """logits = w * x[:, 0, 0] for w = [a, -a]: the class-0 margin is 2a."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([a, -a]))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(x[:, 0, :1] * self.w, {})


def test_flatness_against_numerical_integration() -> None:
    """With w = [a, -a] (||w|| = a sqrt 2, n = 2) each weight gets N(0, (sigma a)^2) noise, so
    the margin 2a + d has d ~ N(0, 2 sigma^2 a^2); the expected loss log(1 + exp(-(2a + d)))
    is integrated here by Gauss-Hermite quadrature."""
    a, sigma = 1.0, 0.5
    x, y = torch.ones(1, 1, 1), torch.tensor([0])
    model = Linear2(a).train()
    got = flatness(model, x, y, sigma, draws=4000, seed=0)
    nodes, weights = np.polynomial.hermite.hermgauss(60)
    sd = math.sqrt(2) * sigma * a
    expected = sum(w * math.log1p(math.exp(-(2 * a + math.sqrt(2) * sd * t)))
                   for t, w in zip(nodes, weights, strict=True)) / math.sqrt(math.pi)
    assert got.base == pytest.approx(math.log1p(math.exp(-2 * a)), abs=1e-6)
    assert got.perturbed == pytest.approx(expected, rel=0.03)
    assert got.increase > 0 and got.spread > 0
    assert model.w.tolist() == [a, -a] and model.training  # weights and mode restored
    still = flatness(model, x, y, 0.0, draws=3)
    assert still.increase == 0.0 and still.spread == 0.0
    assert flatness(model, x, y, 1.0, draws=500).increase > got.increase


def test_shipped_grid_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", str(REPO / "configs" / "grids" / "born_again.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "node gen1  needs gen0" in out and "node gen2  needs gen1" in out
    assert "3 training nodes, 70 cells" in out
    assert "method=ls seed=0\n" in out  # the teacher-free control needs no node
    for gen, parent in [("gen1", "gen0"), ("gen2", "gen1"), ("gen3", "gen2")]:
        assert f"method={gen} seed=0  needs {parent}" in out


def test_born_again_chain_through_the_engine(hapt_quick_small: WindowSet, tmp_path: Path) -> None:
    """gen0 (the tiny student alone) -> gen1 -> gen2 (each taught by the one before), and the
    virtual teacher, as training nodes and cells of one grid."""
    from harkd.grid.runner import run_grid
    from harkd.grid.spec import spec_from_dict
    from harkd.grid.store import RunStore
    from harkd.train.checkpoint import load_run_model

    student = {"name": "tiny_xs", "view": ["acc"]}
    nodes = {"gen0": node(student),
             "gen1": node(student, **BORN_AGAIN, teachers={"self": {"from": "gen0"}})}
    methods = [{"label": "gen2", "set": {"distill": BORN_AGAIN,
                                         "teachers": {"self": {"from": "gen1"}}}},
               {"label": "virtual", "set": {"distill.method": "selfkd"}}]
    spec = spec_from_dict(chain_spec(tmp_path / "g", nodes, methods), source="born_again.yaml")
    summary = run_grid(spec, workers=1, threads=1, windowset=hapt_quick_small, progress=False)
    assert (summary.done, summary.failed, summary.blocked) == (4, 0, 0)
    with RunStore(summary.grid_dir / "runs.sqlite") as store:
        rows = {r.axes.get("node") or r.axes["method"]: r for r in store.rows()}
    assert list(rows["gen1"].deps) == [rows["gen0"].hash]
    assert list(rows["gen2"].deps) == [rows["gen1"].hash]
    gen2, gen1 = (load_run_model(summary.grid_dir / "runs" / rows[g].hash)[0]
                  for g in ("gen2", "gen1"))
    assert [p.shape for p in gen2.parameters()] == [p.shape for p in gen1.parameters()]
    assert not torch.equal(next(gen2.parameters()), next(gen1.parameters()))
