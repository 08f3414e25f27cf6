"""The ACS loss on hand-computed cases and PSKD's progressive teacher schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.pskd import acs_loss, acs_targets
from harkd.models import build_model

T = 2.0


def softened(logits: list[float]) -> torch.Tensor:
    return torch.tensor(logits).div(T).softmax(dim=0)


def kl_t2(p: torch.Tensor, student: torch.Tensor) -> float:
    q = (student / T).softmax(dim=0)
    return T * T * float((p * (p / q).log()).sum())


def test_hard_picks_the_most_confident_correct_teacher() -> None:
    # true class 0: A correct (p0 = 0.79), B correct and more confident (p0 = 0.91), C wrong
    teachers = torch.tensor([[[2.0, 0.0, 0.0]], [[3.0, 0.0, 0.0]], [[1.0, 1.1, -5.0]]])
    y = torch.tensor([0])
    target, has = acs_targets(teachers, y, T, "hard", 1.0)
    assert has.tolist() == [True]
    torch.testing.assert_close(target[0], softened([3.0, 0.0, 0.0]))
    student = torch.tensor([0.5, 0.2, -0.1])
    expected = kl_t2(softened([3.0, 0.0, 0.0]), student)
    loss = acs_loss(student[None], teachers, F.one_hot(y, 3).float(), T, "hard")
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_a_wrong_teacher_is_never_chosen_even_when_more_confident_on_the_truth() -> None:
    # C: argmax is class 1 (wrong) but p(class 0) = 0.47; D: correct with p(class 0) = 0.39
    teachers = torch.tensor([[[1.0, 1.1, -5.0]], [[0.5, 0.0, 0.4]]])
    target, has = acs_targets(teachers, torch.tensor([0]), T, "hard", 1.0)
    assert has.item()
    torch.testing.assert_close(target[0], softened([0.5, 0.0, 0.4]))


def test_without_a_correct_teacher_the_loss_is_cross_entropy() -> None:
    teachers = torch.tensor(
        [[[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 3.0, 0.0], [1.0, 0.0, 2.0]]]
    )
    student = torch.tensor([[0.3, -0.2, 0.1], [1.0, 0.5, -1.0]])
    y_soft = F.one_hot(torch.tensor([0, 1]), 3).float()
    for variant in ("hard", "soft"):
        loss = acs_loss(student, teachers, y_soft, T, variant)
        assert loss.item() == pytest.approx(F.cross_entropy(student, torch.tensor([0, 1])).item())


def test_soft_weights_candidates_by_softmax_of_confidence() -> None:
    teachers = torch.tensor([[[2.0, 0.0, 0.0]], [[3.0, 0.0, 0.0]], [[0.0, 4.0, 0.0]]])
    c_a, c_b = math.e**2 / (math.e**2 + 2), math.e**3 / (math.e**3 + 2)
    tau = 0.1
    w_a = math.exp(c_a / tau) / (math.exp(c_a / tau) + math.exp(c_b / tau))
    target, _ = acs_targets(teachers, torch.tensor([0]), T, "soft", tau)
    expected = w_a * softened([2.0, 0.0, 0.0]) + (1 - w_a) * softened([3.0, 0.0, 0.0])
    torch.testing.assert_close(target[0], expected)  # the wrong teacher has no weight
    hard, _ = acs_targets(teachers, torch.tensor([0]), T, "hard", tau)
    sharp, _ = acs_targets(teachers, torch.tensor([0]), T, "soft", 1e-4)
    torch.testing.assert_close(sharp, hard)  # tau -> 0 is the hard variant


def test_mixed_labels_take_their_dominant_class_as_the_truth() -> None:
    teachers = torch.tensor([[[3.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]]])
    y_soft = torch.tensor([[0.3, 0.7, 0.0]])
    student = torch.tensor([[0.1, 0.2, 0.3]])
    loss = acs_loss(student, teachers, y_soft, T, "hard")
    assert loss.item() == pytest.approx(kl_t2(softened([0.0, 2.0, 0.0]), student[0]), rel=1e-6)


# ---------------------------------------------------------------- schedule

GROUPS = {"skeleton": list(range(6)), "acc": [6, 7, 8]}
CTX = DistillContext(num_classes=4, window=64, groups=GROUPS, label_names=list("abcd"))


def pskd(**params: object) -> torch.nn.Module:
    torch.manual_seed(0)

    def teacher(view: list[str]) -> FrozenTeacher:
        idx = [i for g in view for i in GROUPS[g]]
        return FrozenTeacher(build_model("tiny_xs", len(idx), 4, 64), idx)

    teachers = {  # given farthest first: the default order must sort them
        "skeleton": teacher(["skeleton"]),
        "fusion": teacher(["skeleton", "acc"]),
        "acc": teacher(["acc"]),
    }
    student = ViewModel(build_model("tiny_xs", 3, 4, 64), GROUPS["acc"])
    return build_distiller("pskd", student, teachers, CTX, dict(params))


def test_default_order_is_nearest_to_the_student_first_and_stages_switch() -> None:
    d = pskd(boundaries=[3, 5])
    assert d.order == ["acc", "fusion", "skeleton"]
    active = {e: d.active_teachers(e) for e in range(7)}
    assert active[0] == active[2] == ["acc"]
    assert active[3] == active[4] == ["acc", "fusion"]
    assert active[5] == active[6] == ["acc", "fusion", "skeleton"]
    single = pskd(boundaries=[3, 5], mode="single", order=["skeleton", "fusion", "acc"])
    assert [single.active_teachers(e) for e in (2, 3, 5)] == [["skeleton"], ["fusion"], ["acc"]]


def test_forward_train_queries_only_the_active_teachers() -> None:
    d = pskd(boundaries=[1, 2], mode="single")
    calls: list[str] = []
    for name, t in d.teachers.items():
        t.register_forward_hook(lambda *_, n=name: calls.append(n))
    x, y = torch.randn(5, 9, 64), torch.tensor([0, 1, 2, 3, 0])
    batch = Batch(x=x, y=y, y_soft=F.one_hot(y, 4).float())
    for epoch in range(3):
        logits, losses = d.forward_train(batch, epoch)
        assert logits.shape == (5, 4) and set(losses) == {"ce", "acs"}
    assert calls == ["acc", "fusion", "skeleton"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"boundaries": [3]}, r"boundaries=\[3\]: need 2 strictly increasing"),
        ({"boundaries": [5, 3]}, "strictly increasing"),
        ({"boundaries": [0, 3]}, "epochs >= 1"),
        ({"boundaries": [2, 3], "order": ["acc", "fusion"]}, "must name each teacher once"),
        ({"boundaries": [2, 3], "beta": 1}, "unknown parameter 'beta'"),
    ],
)
def test_bad_schedules_are_named(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pskd(**params)
