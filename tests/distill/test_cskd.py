"""Curriculum expert selection: the thresholds by hand, the lower-capacity teacher for easy
windows early on and the largest for all once the ramp is over, the ladder by capacity, and the
loss against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch
from distill_helpers import FixedLogits

from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.cskd import curriculum_choice
from harkd.models import build_model

LN3, LN9 = math.log(3), math.log(9)
GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
CTX = DistillContext(num_classes=2, window=16, groups=GROUPS, label_names=["a", "b"])


def test_thresholds_by_hand():
    difficulty = torch.tensor([0.1, 0.5, 0.9, 0.3])  # ranks 0, 2, 3, 1 -> q = 0, .5, .75, .25
    assert curriculum_choice(difficulty, 2, 0.0).tolist() == [0, 1, 1, 0]  # t_1 = 1/2
    assert curriculum_choice(difficulty, 2, 0.5).tolist() == [0, 1, 1, 1]  # t_1 = 1/4
    assert curriculum_choice(difficulty, 2, 1.0).tolist() == [1, 1, 1, 1]  # t_1 = 0
    # three teachers, six windows (q = rank / 6): t = 1/3, 2/3 -> two windows per teacher
    six = torch.tensor([6.0, 1.0, 5.0, 2.0, 4.0, 3.0])
    assert curriculum_choice(six, 3, 0.0).tolist() == [2, 0, 2, 0, 1, 1]
    # halfway: t = 1/6, 1/3 -> q 0 stays, q 1/6 moves up one, the rest on the largest
    assert curriculum_choice(six, 3, 0.5).tolist() == [2, 0, 2, 1, 2, 2]


def two_teachers(order=None, ramp_epochs=4):
    """A uniform student and two fixed-logit teachers on 4 windows of labels [0, 0, 1, 1]:
    "small" is right on windows 0 and 2 (p 3/4) and unsure elsewhere, "large" right on all
    (p 9/10): windows 0 and 2 are the easy ones (the lower mean CE on the label)."""
    small = [[LN3, 0.0], [0.0, 0.0], [0.0, LN3], [0.0, 0.0]]
    large = [[LN9, 0.0], [LN9, 0.0], [0.0, LN9], [0.0, LN9]]
    student = ViewModel(FixedLogits([[0.0, 0.0]] * 4), GROUPS["acc"])
    teachers = {"large": FrozenTeacher(FixedLogits(large), GROUPS["acc"] + GROUPS["gyro"]),
                "small": FrozenTeacher(FixedLogits(small), GROUPS["acc"])}
    params = {"alpha": 1.0, "temperature": 1.0, "ramp_epochs": ramp_epochs,
              "order": order or ["small", "large"]}
    return build_distiller("cskd", student, teachers, CTX, params)


def batch() -> Batch:
    y = torch.tensor([0, 0, 1, 1])
    x = torch.randn(4, 6, 16, generator=torch.Generator().manual_seed(0))
    return Batch(x=x, y=y, y_soft=torch.nn.functional.one_hot(y, 2).float())


def chosen(d, epoch: int) -> list[int]:
    t_logits = torch.stack([d.teachers[n](batch().x).logits for n in d.ladder])
    return d.choose(t_logits, batch().y, epoch).tolist()


def test_easy_windows_learn_from_the_lower_capacity_teacher_early_on():
    d = two_teachers()
    assert d.ladder == ["small", "large"]
    assert chosen(d, 0) == [0, 1, 0, 1]  # easy windows 0 and 2 -> small, hard ones -> large
    assert chosen(d, 2) == [0, 1, 1, 1]  # halfway through the ramp: t_1 = 1/4
    assert chosen(d, 4) == [1, 1, 1, 1] == chosen(d, 9)  # the ramp is over: all on "large"


def test_loss_by_hand():
    d = two_teachers()
    d.eval()
    _, losses = d.forward_train(batch(), epoch=0)
    # windows 0, 2 learn p_t = [3/4, 1/4]-like from "small", 1, 3 p_t = 9/10 from "large";
    # the student is uniform: KL = sum p ln(2 p)
    kl_small = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    kl_large = 0.9 * math.log(1.8) + 0.1 * math.log(0.2)
    assert losses["kd"].item() == pytest.approx((2 * kl_small + 2 * kl_large) / 4, abs=1e-6)
    assert losses["ce"].item() == 0.0  # alpha 1: CE weighted by 0
    _, late = d.forward_train(batch(), epoch=4)
    assert late["kd"].item() == pytest.approx(kl_large, abs=1e-6)


def test_the_default_ladder_rises_by_parameter_count():
    def cnn(widths, view):
        model = build_model("cnn1d", 3 * len(view), 2, 16, widths=widths, kernel=3)
        return FrozenTeacher(model, [i for g in view for i in GROUPS[g]])

    student = ViewModel(build_model("tiny_xs", 3, 2, 16), GROUPS["acc"])
    teachers = {"big": cnn([16, 32], ["acc", "gyro"]), "mid": cnn([8, 16], ["acc", "gyro"]),
                "tiny": cnn([4], ["acc"])}
    d = build_distiller("cskd", student, teachers, CTX, {})
    assert d.ladder == ["tiny", "mid", "big"]
    sizes = [sum(p.numel() for p in teachers[n].parameters()) for n in d.ladder]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


@pytest.mark.parametrize("order", [["small"], ["small", "small"], ["small", "large", "other"]])
def test_an_order_must_name_each_teacher_once(order):
    with pytest.raises(ValueError, match=r"distill.params.order=.* must name each teacher once"):
        two_teachers(order=order)
