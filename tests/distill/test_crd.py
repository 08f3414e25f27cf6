"""CRD: the NCE objective on hand-computed values, the critic's fixed Z, negatives that never
include the positive, the memory bank's momentum update, and the composed loss."""

from __future__ import annotations

import math

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
from harkd.distill.contrast_memory import ContrastMemory, nce_loss
from harkd.distill.losses import kd_kl
from harkd.models import build_model

GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}


def test_nce_loss_on_hand_computed_values() -> None:
    # K = 2 negatives, N = 4 windows: the noise term K / N = 0.5
    p = torch.tensor([[0.5, 0.1, 0.2], [0.25, 0.3, 0.05]])
    row0 = math.log(0.5 / 1.0) + math.log(0.5 / 0.6) + math.log(0.5 / 0.7)
    row1 = math.log(0.25 / 0.75) + math.log(0.5 / 0.8) + math.log(0.5 / 0.55)
    assert nce_loss(p, 4).item() == pytest.approx(-(row0 + row1) / 2, rel=1e-5)
    # a critic that rates the positive far above the negatives costs almost nothing
    assert nce_loss(torch.tensor([[1e6, 1e-9, 1e-9]]), 4).item() == pytest.approx(0, abs=1e-5)


def test_critic_is_exp_of_scaled_dot_over_a_z_fixed_at_the_first_call() -> None:
    memory = ContrastMemory(3, 2, momentum=0.5)
    memory.teacher.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]))
    anchor = torch.tensor([[1.0, 0.0]])
    rows = torch.tensor([[0, 1, 2]])
    raw = [math.exp(1 / 0.5), math.exp(0 / 0.5), math.exp(0.6 / 0.5)]
    z = sum(raw) / 3 * 3  # the mean of this first call times N
    got = memory.critic(anchor, 1, rows, tau=0.5)
    assert got.tolist()[0] == pytest.approx([r / z for r in raw], rel=1e-6)
    assert memory.z.tolist() == pytest.approx([-1.0, z], rel=1e-6)  # the student bank's Z unset
    again = memory.critic(torch.tensor([[0.0, 1.0]]), 1, rows, tau=0.5)  # Z stays
    assert again.tolist()[0][1] == pytest.approx(math.exp(2) / z, rel=1e-6)


def test_negatives_exclude_the_positive_and_cover_every_other_window() -> None:
    torch.manual_seed(0)
    memory = ContrastMemory(5, 4, momentum=0.5)
    index = torch.tensor([0, 3, 4, 2])
    rows = memory.contrast_index(index, 2000)
    assert rows.shape == (4, 2001)
    assert torch.equal(rows[:, 0], index)
    for i, pos in enumerate(index.tolist()):
        negatives = rows[i, 1:]
        assert not (negatives == pos).any()
        counts = torch.bincount(negatives, minlength=5).tolist()
        assert counts[pos] == 0 and all(350 < c < 650 for j, c in enumerate(counts) if j != pos)


def test_memory_update_moves_only_the_batch_rows_by_momentum() -> None:
    memory = ContrastMemory(4, 2, momentum=0.25)
    before_s, before_t = memory.student.clone(), memory.teacher.clone()
    s = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    memory.update(torch.tensor([2, 0]), s, t)
    for bank, before, new in ((memory.student, before_s, s), (memory.teacher, before_t, t)):
        for row, j in ((2, 0), (0, 1)):
            mixed = 0.25 * before[row] + 0.75 * new[j]
            torch.testing.assert_close(bank[row], mixed / mixed.norm())
        torch.testing.assert_close(bank[[1, 3]], before[[1, 3]])


def make_crd(train_windows: int = 20, **params: object) -> Distiller:
    torch.manual_seed(0)
    student = ViewModel(build_model("tiny_xs", 3, 4, 32), GROUPS["acc"])
    model = build_model("cnn1d", 6, 4, 32, widths=[8, 16], kernel=3)
    teacher = FrozenTeacher(model, GROUPS["acc"] + GROUPS["gyro"])
    ctx = DistillContext(4, 32, GROUPS, list("abcd"), train_windows=train_windows)
    base = {"negatives": 8, "embed_dim": 4}
    return build_distiller("crd", student, {"t": teacher}, ctx, {**base, **params})


def test_distiller_composes_ce_kd_and_both_contrast_directions() -> None:
    d = make_crd(alpha=0.5, beta=2.0, temperature=3.0).eval()
    x, y = torch.randn(6, 6, 32), torch.tensor([0, 1, 2, 3, 0, 1])
    index = torch.tensor([4, 9, 0, 19, 7, 12])
    batch = Batch(x=x, y=y, y_soft=F.one_hot(y, 4).float(), index=index)
    banks = (d.memory.student.clone(), d.memory.teacher.clone())
    torch.manual_seed(1)
    logits, losses = d.forward_train(batch, 0)
    # the same step by hand: the draws, the embeddings, both critics, the NCE losses
    torch.manual_seed(1)
    rows = d.memory.contrast_index(index, 8)
    s_out, t_out = d.student(x), d.teachers["t"](x)
    s = F.normalize(d.embed_s(s_out.features["embedding"]), dim=1)
    t = F.normalize(d.embed_t(t_out.features["embedding"]), dim=1)

    def nce_by_hand(anchor: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        raw = (anchor @ bank.t()).gather(1, rows).div(0.07).exp()
        return nce_loss(raw / (raw.mean() * 20), 20)

    crd = nce_by_hand(s, banks[1]) + nce_by_hand(t, banks[0])
    assert losses["crd"].item() == pytest.approx(2.0 * crd.item(), rel=1e-4)
    assert losses["kd"].item() == pytest.approx(0.5 * kd_kl(logits, t_out.logits, 3.0).item())
    assert losses["ce"].item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    # the bank rows of the batch's windows moved, the others did not
    moved = ~torch.isclose(d.memory.student, banks[0]).all(dim=1)
    assert moved.nonzero().flatten().tolist() == sorted(index.tolist())


def test_crd_needs_window_indices_and_their_count() -> None:
    with pytest.raises(ValueError, match="training windows' count"):
        make_crd(train_windows=0)
    d = make_crd()
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="needs each window's index"):
        d.forward_train(Batch(x=torch.randn(2, 6, 32), y=y, y_soft=F.one_hot(y, 4).float()), 0)


def test_pair_names_a_missing_feature_in_one_line() -> None:
    with pytest.raises(ValueError, match=r"distill.params.pair: the student has no feature 'x'"):
        make_crd(pair=["embedding", "x"])
