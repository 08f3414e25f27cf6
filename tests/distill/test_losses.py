"""Each loss term on small tensors whose values were worked out by hand (values in comments)."""

from __future__ import annotations

import math

import pytest
import torch

from harkd.distill.features import align_time, as_map
from harkd.distill.losses import (
    abs_cosine,
    cosine_distance,
    kd_kl,
    normalized_distance,
    reconstruction_l1,
    similarity_gram,
    similarity_keeping,
    soft_cross_entropy,
)
from harkd.distill.sk import as_sequence

LN3 = math.log(3.0)


def test_soft_cross_entropy_with_mixed_label() -> None:
    # logits [0, ln 3] -> p = [1/4, 3/4]; y = [1/2, 1/2]: CE = -(ln(1/4) + ln(3/4)) / 2
    #   = ln 4 - ln(3) / 2 = 1.386294 - 0.549306 = 0.836988
    logits = torch.tensor([[0.0, LN3]])
    assert soft_cross_entropy(logits, torch.tensor([[0.5, 0.5]])).item() == pytest.approx(
        0.836988, abs=1e-6
    )
    # one-hot on class 1: -ln(3/4) = 0.287682
    assert soft_cross_entropy(logits, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(
        0.287682, abs=1e-6
    )


def test_kd_kl_two_classes_batch_mean_and_temperature() -> None:
    # p_t = [3/4, 1/4], p_s = [1/2, 1/2]:
    # KL = 0.75 ln 1.5 + 0.25 ln 0.5 = 0.304099 - 0.173287 = 0.130812
    s = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    t1 = torch.tensor([[LN3, 0.0], [1.0, 2.0]])  # second sample agrees: KL 0
    assert kd_kl(s, t1, 1.0).item() == pytest.approx(0.130812 / 2, abs=1e-6)
    # at T = 2 the teacher logits [2 ln 3, 0] soften to the same p_t; the loss is scaled by T^2
    t2 = torch.tensor([[2 * LN3, 0.0], [2.0, 4.0]])
    assert kd_kl(s * 2, t2, 2.0).item() == pytest.approx(4 * 0.130812 / 2, abs=1e-6)


def test_normalized_distance_per_sample_l2() -> None:
    # sample 1: [3, 4]/5 = [0.6, 0.8] vs [5, 0]/5 = [1, 0]: |diff| = [0.4, 0.8]
    # sample 2: [0, 2] -> [0, 1] vs [0, 1]: 0 ; mean over 4 elements = 1.2 / 4 = 0.3
    a = torch.tensor([[[3.0], [4.0]], [[0.0], [2.0]]])  # [B=2, C=2, T=1]
    b = torch.tensor([[[5.0], [0.0]], [[0.0], [1.0]]])
    assert normalized_distance(a, b).item() == pytest.approx(0.3, abs=1e-6)


def test_cosine_terms() -> None:
    a = torch.tensor([[3.0, 4.0]])
    # cos([3, 4], [1, 0]) = 0.6
    assert cosine_distance(a, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.4, abs=1e-6)
    assert abs_cosine(a, torch.tensor([[-2.0, 0.0]])).item() == pytest.approx(0.6, abs=1e-6)


def test_reconstruction_l1() -> None:
    x = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    assert reconstruction_l1(x, torch.zeros(2, 2)).item() == pytest.approx(3.5 / 4)


def test_similarity_gram_by_hand() -> None:
    # sample 1: ch1 [1, 3] -> centred [-1, 1] -> [-1, 1]/sqrt2 ; ch2 [0, 2] -> same
    # sample 2: ch1 [5, 2] -> [1, -1]/sqrt2 ; ch2 [4, 4] constant -> 0
    # G = f f^T / 2: G11 = (1 + 1)/2 = 1, G22 = (1 + 0)/2 = 0.5, G12 = (-1 + 0)/2 = -0.5
    f = torch.tensor([[[1.0, 3.0], [0.0, 2.0]], [[5.0, 2.0], [4.0, 4.0]]])
    expected = torch.tensor([[1.0, -0.5], [-0.5, 0.5]])
    torch.testing.assert_close(similarity_gram(f), expected)


def test_similarity_keeping_mse_needs_no_shape_match() -> None:
    f_t = torch.tensor([[[1.0, 3.0], [0.0, 2.0]], [[5.0, 2.0], [4.0, 4.0]]])  # G_t as above
    # student: 1 channel, 3 steps; [1, 0, -1] and [1, -2, 1] are centred and orthogonal: G_s = I
    f_s = torch.tensor([[[1.0, 0.0, -1.0]], [[1.0, -2.0, 1.0]]])
    torch.testing.assert_close(similarity_gram(f_s), torch.eye(2))
    # (G_s - G_t)^2 = [[0, .25], [.25, .25]] -> mean 0.1875
    assert similarity_keeping(f_t, f_s).item() == pytest.approx(0.1875, abs=1e-6)


def test_similarity_of_embeddings_is_pearson_correlation() -> None:
    emb = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 4.0, 6.5]])
    g = similarity_gram(as_sequence(emb))
    assert g[0, 1].item() == pytest.approx(-1.0, abs=1e-6)
    r = torch.corrcoef(emb)[0, 2].item()
    assert g[0, 2].item() == pytest.approx(r, abs=1e-6)
    with pytest.raises(ValueError, match=r"\[B, C, T\]"):
        similarity_gram(emb)


def test_align_time_pools_the_longer_map() -> None:
    long = torch.arange(8.0).view(1, 1, 8)  # [0..7] -> means of [0..3], [4..7] = 1.5, 5.5
    short = torch.zeros(1, 3, 2)
    a, b = align_time(long, short)
    torch.testing.assert_close(a, torch.tensor([[[1.5, 5.5]]]))
    assert b is short
    b2, a2 = align_time(short, long)  # order does not matter
    torch.testing.assert_close(a2, a)
    assert b2 is short
    # a vector [B, D] is a map with one step: the other map is averaged over time
    v, m = align_time(torch.ones(1, 3), long)
    assert v.shape == (1, 3, 1)
    torch.testing.assert_close(m, torch.tensor([[[3.5]]]))
    assert as_map(torch.zeros(2, 4)).shape == (2, 4, 1)
