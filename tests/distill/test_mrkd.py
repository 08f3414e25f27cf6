"""mrkd: the per-window modality Gram matrix and its loss on hand-computed values, zero for
identical embeddings and blind to their scale, and the distiller's terms on a per-modality
teacher (and its one-line refusal of a teacher without per-modality embeddings)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    FrozenTeacher,
    ViewModel,
    build_distiller,
)
from harkd.distill.losses import kd_kl
from harkd.distill.mrkd import gram_loss, modality_gram
from harkd.models import build_model

GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}


def columns(*vectors: list[float]) -> torch.Tensor:
    """One window whose modality embeddings are `vectors`: [1, D, M]."""
    return torch.tensor(vectors).t().unsqueeze(0)


def test_gram_on_hand_computed_embeddings() -> None:
    # acc (3, 4) and gyro (1, 0): unit vectors (0.6, 0.8) and (1, 0), cosine 0.6
    gram = modality_gram(columns([3.0, 4.0], [1.0, 0.0]))
    torch.testing.assert_close(gram, torch.tensor([[[1.0, 0.6], [0.6, 1.0]]]))
    # a student whose two embeddings are orthogonal: the off-diagonal entries differ by 0.6
    student = columns([0.0, 5.0, 0.0], [2.0, 0.0, 0.0])
    expected = (0.6**2 + 0.6**2) / 4  # mean over the 2 x 2 entries
    assert gram_loss(student, columns([3.0, 4.0], [1.0, 0.0])).item() == pytest.approx(expected)


def test_gram_term_is_zero_for_identical_embeddings_and_blind_to_scale() -> None:
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(5, 16, 3, generator=g)
    assert gram_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    scale = torch.tensor([0.01, 3.0, 250.0]).view(1, 1, 3)  # a positive scale per modality
    assert gram_loss(teacher * scale, teacher).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.randn(5, 8, 3, generator=g)
    reference = gram_loss(student, teacher).item()
    assert reference > 0.05
    assert gram_loss(student * 7.5, teacher * 0.2).item() == pytest.approx(reference, rel=1e-5)


def make(teacher_model: str = "cnn1d_branches", **params: object) -> Distiller:
    torch.manual_seed(0)
    student = ViewModel(build_model("tiny_xs", 3, 4, 32), GROUPS["acc"])
    model = build_model(teacher_model, 6, 4, 32, widths=[8, 16], kernel=3)
    teacher = FrozenTeacher(model, GROUPS["acc"] + GROUPS["gyro"])
    ctx = DistillContext(4, 32, GROUPS, list("abcd"))
    return build_distiller("mrkd", student, {"t": teacher}, ctx, {"head_dim": 5, **params})


def test_distiller_terms_on_a_per_modality_teacher() -> None:
    d = make(alpha=0.25, beta=3.0, temperature=2.0).eval()
    x, y = torch.randn(6, 6, 32), torch.tensor([0, 1, 2, 3, 0, 1])
    logits, losses = d.forward_train(Batch(x=x, y=y, y_soft=F.one_hot(y, 4).float()), 0)
    s_out, t_out = d.student(x), d.teachers["t"](x)
    predicted = d.predicted_modalities(s_out.features["embedding"])
    assert predicted.shape == (6, 5, 2) and t_out.features["modalities"].shape == (6, 16, 2)
    # one linear head per modality: column m is rows m*5..m*5+4 of the joint linear map
    w, b = d.heads.weight, d.heads.bias
    emb = s_out.features["embedding"]
    torch.testing.assert_close(predicted[..., 1], emb @ w[5:].t() + b[5:])
    gram = gram_loss(predicted, t_out.features["modalities"])
    assert losses["gram"].item() == pytest.approx(3.0 * gram.item(), rel=1e-5)
    assert losses["kd"].item() == pytest.approx(0.25 * kd_kl(logits, t_out.logits, 2.0).item())
    assert losses["ce"].item() == pytest.approx(0.75 * F.cross_entropy(logits, y).item())


def test_the_gram_term_trains_the_heads_towards_the_teacher() -> None:
    d = make(alpha=0.0, beta=1.0)
    x = torch.randn(32, 6, 32)
    y = torch.arange(32) % 4
    batch = Batch(x=x, y=y, y_soft=F.one_hot(y, 4).float())
    opt = torch.optim.Adam(d.trainable_parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        losses = d.forward_train(batch, 0)[1]
        first = losses["gram"].item() if first is None else first
        opt.zero_grad()
        losses["gram"].backward()
        opt.step()
    assert d.forward_train(batch, 0)[1]["gram"].item() < 0.5 * first


def test_a_teacher_without_per_modality_embeddings_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError) as err:
        make(teacher_model="cnn1d")
    message = str(err.value)
    assert "distill.params.modalities: the teacher has no feature 'modalities'" in message
    assert "\n" not in message
    with pytest.raises(ValueError, match=r"has shape \(16,\); expected \[D, M\]"):
        make(teacher_model="cnn1d", modalities="embedding")
