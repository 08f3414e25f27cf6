"""Mixup and cutmix: convex combinations whose labels mix by the same weights."""

from __future__ import annotations

import pytest
import torch

from harkd.augment.mixing import CutMix, Mixup, sample_beta

B = 32


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture()
def batch(synthetic_batch):
    """Each sample its own class (identity labels), so the labels reveal partner and weight."""
    x = synthetic_batch.x[:B]
    return x, torch.eye(B)


def test_mixup_is_a_convex_combination_with_the_same_lambda(batch):
    x, y = batch
    out, y_out = Mixup(alpha=0.4)(x, y, gen())
    torch.testing.assert_close(y_out.sum(dim=1), torch.ones(B))
    assert bool((y_out >= 0).all())
    mixed = 0
    for b in range(B):
        weights = y_out[b]
        support = torch.nonzero(weights > 0).flatten().tolist()
        assert b in support and len(support) <= 2
        expected = sum(weights[j] * x[j] for j in support)
        torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=1e-5)
        mixed += len(support) == 2
    assert mixed > B // 2


def test_mixup_probability_keeps_some_samples(batch):
    x, y = batch
    out, y_out = Mixup(p=0.3, alpha=0.4)(x, y, gen(3))
    kept = (y_out == y).all(dim=1)
    assert 0 < int(kept.sum()) < B
    assert torch.equal(out[kept], x[kept])


def test_cutmix_pastes_a_segment_and_weights_labels_by_its_length(batch):
    x, y = batch
    out, y_out = CutMix(alpha=1.0)(x, y, gen())
    torch.testing.assert_close(y_out.sum(dim=1), torch.ones(B))
    for b in range(B):
        others = [j for j in torch.nonzero(y_out[b] > 0).flatten().tolist() if j != b]
        if not others:
            assert torch.equal(out[b], x[b])
            continue
        (j,) = others
        from_partner = (out[b] == x[j]).all(dim=0) & ~(out[b] == x[b]).all(dim=0)
        steps = torch.nonzero(from_partner).flatten()
        assert len(steps) == int(steps.max() - steps.min() + 1)  # one contiguous stretch
        torch.testing.assert_close(y_out[b, j], torch.tensor(len(steps) / x.shape[-1]))
        assert bool(((out[b] == x[b]) | (out[b] == x[j])).all())


def test_mixing_needs_soft_labels(batch):
    x, _ = batch
    with pytest.raises(TypeError, match="soft labels"):
        Mixup()(x, torch.zeros(B, 3, dtype=torch.long), gen())


def test_beta_sampler_moments():
    lam = sample_beta(0.5, 20000, gen(), torch.zeros(1))
    assert abs(float(lam.mean()) - 0.5) < 0.01
    assert abs(float(lam.var()) - 1 / (4 * 2.0)) < 0.01  # var of Beta(a, a) = 1 / (4 (2a + 1))
    assert float(lam.min()) >= 0 and float(lam.max()) <= 1
