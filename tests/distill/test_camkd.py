"""CA-MKD: the confidence weights and both weighted terms against hand arithmetic; the weights
favour the teacher whose prediction is closer to the label; the feature term's warm-up."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from distill_helpers import FixedLogits

from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.camkd import confidence_weights

LN3 = math.log(3)
GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
CTX = DistillContext(num_classes=2, window=4, groups=GROUPS, label_names=["a", "b"])
Y = torch.tensor([0, 1])
#: teacher "near" gives the true class 3/4 on both windows (CE ln 4/3), "far" 1/2 (CE ln 2)
NEAR = [[LN3, 0.0], [0.0, LN3]]
FAR = [[0.0, 0.0], [0.0, 0.0]]
#: softmax over the teachers of [ln 4/3, ln 2] = [4/3, 2] / (10/3) = [0.4, 0.6]; w = 1 - that
W_NEAR, W_FAR = 0.6, 0.4


def make(**params: object):
    """CA-MKD with two fixed-logit teachers of different views and a uniform student."""
    student = ViewModel(FixedLogits(FAR), GROUPS["acc"])
    teachers = {
        "near": FrozenTeacher(FixedLogits(NEAR), GROUPS["acc"] + GROUPS["gyro"]),
        "far": FrozenTeacher(FixedLogits(FAR), GROUPS["acc"]),
    }
    return build_distiller("camkd", student, teachers, CTX, {"temperature": 1.0, **params})


def batch() -> Batch:
    x = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4) / 10
    return Batch(x=x, y=Y, y_soft=torch.nn.functional.one_hot(Y, 2).float())


def test_weights_by_hand_favour_the_teacher_closer_to_the_label():
    w = confidence_weights(torch.tensor([NEAR, FAR]), Y)
    assert w.tolist() == [pytest.approx([W_NEAR] * 2, abs=1e-6), pytest.approx([W_FAR] * 2,
                                                                               abs=1e-6)]


@pytest.mark.parametrize("seed", range(5))
def test_weights_order_the_teachers_by_their_label_cross_entropy(seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(4, 16, 5, generator=g) * 3  # 4 teachers, 16 windows, 5 classes
    y = torch.randint(0, 5, (16,), generator=g)
    w = confidence_weights(logits, y)
    ce = -torch.log_softmax(logits, dim=-1).gather(-1, y.view(1, -1, 1).expand(4, -1, 1))[..., 0]
    assert torch.allclose(w.sum(dim=0), torch.ones(16))
    for i in range(16):  # the smaller a teacher's CE on the label, the larger its weight
        assert torch.argsort(w[:, i], descending=True).tolist() == torch.argsort(ce[:, i]).tolist()


def test_weighted_kl_by_hand():
    d = make(alpha=0.5, warmup_epochs=3)
    d.eval()
    logits, losses = d.forward_train(batch(), epoch=0)
    # student [1/2, 1/2]; KL(near || s) = 3/4 ln(3/2) + 1/4 ln(1/2) on each window, KL(far || s) = 0
    kl_near = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert losses["kd"].item() == pytest.approx(0.5 * W_NEAR * kl_near, abs=1e-6)
    assert losses["ce"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert losses["feat"].item() == 0.0  # before `warmup_epochs`


def test_weighted_feature_term_by_hand():
    """Regressors set to known maps: to "near" (6 channels) acc copied and gyro zero, to "far"
    (3 channels) acc doubled; BatchNorm in eval mode divides by sqrt(1 + 1e-5)."""
    d = make(beta=2.0, warmup_epochs=0)
    with torch.no_grad():
        conv_near, conv_far = d.regressors["near"][0], d.regressors["far"][0]
        conv_near.weight.zero_()
        conv_near.weight[:3, :, 0] = torch.eye(3)
        conv_far.weight.copy_(2 * torch.eye(3).unsqueeze(-1))
        conv_near.bias.zero_()
        conv_far.bias.fill_(1.0)
    d.eval()
    b = batch()
    _, losses = d.forward_train(b, epoch=0)
    x = b.x.numpy().astype(np.float64)
    scale = 1 / math.sqrt(1 + 1e-5)
    acc = x[:, :3]
    near = np.concatenate([acc * scale, np.zeros_like(acc)], axis=1) - x  # vs acc+gyro
    far = (2 * acc + 1) * scale - acc  # vs acc
    mse_near = (near**2).reshape(2, -1).mean(axis=1)
    mse_far = (far**2).reshape(2, -1).mean(axis=1)
    expected = 2.0 * np.mean(W_NEAR * mse_near + W_FAR * mse_far)
    assert losses["feat"].item() == pytest.approx(expected, rel=1e-5)


def test_the_feature_term_trains_the_regressors_after_the_warm_up():
    d = make(warmup_epochs=1)
    d.train()
    _, early = d.forward_train(batch(), epoch=0)
    sum(early.values()).backward()
    assert all(p.grad is None for p in d.regressors.parameters())
    _, later = d.forward_train(batch(), epoch=1)
    assert later["feat"].item() > 0
    sum(later.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.regressors.parameters())
    assert all(p.grad is None for p in d.teachers.parameters())


def test_one_teacher_is_refused():
    student = ViewModel(FixedLogits(FAR), GROUPS["acc"])
    teacher = {"only": FrozenTeacher(FixedLogits(NEAR), GROUPS["acc"])}
    with pytest.raises(ValueError, match="method 'camkd' needs at least 2 teacher"):
        build_distiller("camkd", student, teacher, CTX, {})
