"""TASKED: gradient reversal, MMD, the method's losses on hand-computed tensors, the subject ids
the trainer's batches carry, and a run of the sensor-token transformer on real windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from data_prep.windowset import WindowSet
from harkd.distill.base import Batch, DistillContext, ViewModel, build_distiller
from harkd.distill.domain_alignment import BANDWIDTHS, GradientReversal, mmd, subject_mmd
from harkd.models.base import ModelOutput
from tests.distill.distill_helpers import run_config

CTX = DistillContext(2, 8, {"acc": [0]}, ["a", "b"], 6, ("s1", "s2", "s3"))


@pytest.mark.parametrize("scale", [1.0, 0.25, 3.0])
def test_gradient_reversal_flips_the_gradient_sign_exactly(scale: float) -> None:
    x = torch.randn(4, 5, requires_grad=True)
    upstream = torch.randn(4, 5)
    out = GradientReversal(scale)(x)
    assert torch.equal(out, x)  # the identity forward
    (out * upstream).sum().backward()
    assert torch.equal(x.grad, -scale * upstream)


def test_mmd_is_zero_for_identical_sets_and_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 4, generator=g)
    assert mmd(a, a.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert mmd(a, a[torch.randperm(20, generator=g)]).item() == pytest.approx(0.0, abs=1e-6)
    shifted, other = mmd(a, a + 1.0).item(), mmd(a, torch.randn(20, 4, generator=g)).item()
    assert shifted > 0 and other > 0 and shifted > other  # a shift is a larger difference
    assert mmd(a, a + 1.0).item() == pytest.approx(mmd(a + 1.0, a).item(), rel=1e-6)


def test_mmd_by_hand() -> None:
    """X = {0}, Y = {1} in one dimension: h = mean d^2 of the pooled set = 1/2, so
    MMD^2 = k(0,0) + k(1,1) - 2 k(0,1) = 2 * 5 - 2 * sum_s exp(-1 / (s / 2))."""
    x, y = torch.zeros(1, 1), torch.ones(1, 1)
    expected = 10 - 2 * sum(math.exp(-2 / s) for s in BANDWIDTHS)
    assert mmd(x, y).item() == pytest.approx(expected, rel=1e-6)


def test_subject_mmd_over_the_batch_subjects() -> None:
    g = torch.Generator().manual_seed(1)
    e = torch.randn(8, 3, generator=g)
    one = torch.zeros(8, dtype=torch.long)
    assert subject_mmd(e, one).item() == 0.0  # one subject: nothing to align
    two = torch.tensor([0, 1] * 4)
    assert subject_mmd(e, two).item() == pytest.approx(mmd(e[0::2], e[1::2]).item(), rel=1e-6)
    three = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    by_hand = np.mean([mmd(e[three == s], e[three != s]).item() for s in range(3)])
    assert subject_mmd(e, three).item() == pytest.approx(by_hand, rel=1e-6)


class FixedEmbedding(nn.Module):
    """Logits [0, 0] and the embedding table `emb` [B, 2] (row i for window i), with a head."""

    def __init__(self, emb: torch.Tensor) -> None:
        super().__init__()
        self.emb = nn.Parameter(emb)
        self.head = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        logits = torch.zeros(len(x), 2) + 0 * self.emb.sum()
        return ModelOutput(logits, {"embedding": self.emb + 0 * x.sum()})


def test_losses_on_hand_computed_tensors() -> None:
    """Logits [0, 0], label 0, alpha 1/2, T 1, correct_prob 0.9: CE = ln 2, the virtual
    teacher is softmax([0.9, 0.1]); the subjects' embeddings {(0,0), (0,0)} and {(1,0), (1,0)}."""
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    student = ViewModel(FixedEmbedding(emb), [0])
    params = {"alpha": 0.5, "temperature": 1.0, "correct_prob": 0.9, "adversarial": 0.2,
              "mmd": 3.0}
    d = build_distiller("tasked", student, {}, CTX, params)
    y = torch.zeros(4, dtype=torch.long)
    subject = torch.tensor([0, 0, 1, 1])
    batch = Batch(torch.zeros(4, 1, 8), y, F.one_hot(y, 2).float(), subject=subject)
    _, losses = d.forward_train(batch, 0)
    q = math.exp(0.9) / (math.exp(0.9) + math.exp(0.1))
    kl = q * math.log(q / 0.5) + (1 - q) * math.log((1 - q) / 0.5)
    assert losses["ce"].item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    assert losses["self_kd"].item() == pytest.approx(0.5 * kl, rel=1e-6)
    # two subjects, each a point mass: h = 1/2, MMD^2 as in test_mmd_by_hand
    expected_mmd = 10 - 2 * sum(math.exp(-2 / s) for s in BANDWIDTHS)
    assert losses["mmd"].item() == pytest.approx(3.0 * expected_mmd, rel=1e-5)
    disc = F.cross_entropy(d.discriminator(emb), subject)
    assert losses["adversarial"].item() == pytest.approx(0.2 * disc.item(), rel=1e-6)


def test_the_encoder_gets_the_reversed_discriminator_gradient() -> None:
    """The adversarial term's gradient at the embedding is minus the one that would train the
    embedding to help the discriminator; the discriminator itself learns to tell subjects."""
    torch.manual_seed(0)
    emb = torch.randn(4, 2)
    params = {"alpha": 0.0, "mmd": 0.0, "adversarial": 1.0}
    d = build_distiller("tasked", ViewModel(FixedEmbedding(emb), [0]), {}, CTX, params)
    y = torch.zeros(4, dtype=torch.long)
    batch = Batch(torch.zeros(4, 1, 8), y, F.one_hot(y, 2).float(),
                  subject=torch.tensor([0, 1, 2, 0]))
    d.forward_train(batch, 0)[1]["adversarial"].backward()
    reversed_grad = d.student.model.emb.grad.clone()
    plain = emb.clone().requires_grad_(True)
    F.cross_entropy(d.discriminator(plain), batch.subject).backward()
    assert torch.allclose(reversed_grad, -plain.grad)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.discriminator.parameters())


def test_needs_subjects() -> None:
    student = ViewModel(FixedEmbedding(torch.zeros(2, 2)), [0])
    one = DistillContext(2, 8, {"acc": [0]}, ["a", "b"], 2, ("s1",))
    with pytest.raises(ValueError, match="needs at least 2; the run has 1"):
        build_distiller("tasked", student, {}, one, {})
    d = build_distiller("tasked", student, {}, CTX, {})
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"Batch\.subject"):
        d.forward_train(Batch(torch.zeros(2, 1, 8), y, F.one_hot(y, 2).float()), 0)


def test_trainer_batches_carry_each_window_subject(hapt_quick_small: WindowSet,
                                                   tmp_path: Path) -> None:
    """Every batch `assemble` cuts names, by `Batch.subject` and `DistillContext.train_subjects`,
    the subject the WindowSet records for the window at `Batch.index` of the training split."""
    from harkd.train.assemble import assemble

    ws = hapt_quick_small
    run = assemble(run_config(tmp_path, "tasked", {}), ws, torch.device("cpu"))
    names = np.array(run.distiller.context.train_subjects)
    train_subjects = ws.subject[ws.mask("train")].astype(str)
    assert sorted(names) == sorted(set(train_subjects)) and len(names) >= 2
    seen = []
    for batch in run.batches.epoch(0):
        index = batch.index.numpy()
        assert np.array_equal(names[batch.subject.numpy()], train_subjects[index])
        seen.extend(index.tolist())
    assert sorted(seen) == list(range(len(train_subjects)))


@pytest.mark.slow
def test_the_tasked_student_trains_on_real_windows(hapt_quick_small: WindowSet,
                                                   tmp_path: Path) -> None:
    from harkd.train.loop import fit

    cfg = run_config(tmp_path, "tasked", {}, model={"name": "tasked_s", "view": ["acc"]})
    result = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "run", progress=False)
    terms = result.history[-1]["losses"]
    assert set(terms) == {"ce", "self_kd", "adversarial", "mmd"}
    assert all(math.isfinite(v) for v in terms.values()) and terms["mmd"] > 0
    assert result.n_params == 2_902 and 0.0 <= result.metrics["test"]["macro_f1"] <= 1.0
