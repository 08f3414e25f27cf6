"""Invariants of the label-preserving ops on real-shaped [B, 6, 128] batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import tsaug

from harkd.augment import AugmentContext, get_op, list_policies, segments
from harkd.augment.noise_scale import Jitter, Scaling
from harkd.augment.resolution import Convolve, Pool, Quantize
from harkd.augment.segments import ChannelDropout, Permutation, Reverse, TimeDropout
from harkd.augment.warps import MagnitudeWarp, TimeWarp, WindowSlice, WindowWarp

GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}
#: ops whose shipped parameters leave nothing random once p = 1
DETERMINISTIC_AT_P1 = {
    "reverse",
    "tsaug_reverse",
    "tsaug_convolve",
    "tsaug_pool",
    "tsaug_quantize",
    "tsaug_resize",
}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def every_op_spec() -> list[dict]:
    """One parameter set per registered op, taken from the shipped policies."""
    specs = {}
    for ops in list_policies().values():
        for spec in ops:
            specs.setdefault(spec["op"], spec)
    return list(specs.values())


def build(spec: dict, **overrides) -> object:
    params = {k: v for k, v in spec.items() if k != "op"} | overrides
    return get_op(spec["op"]).from_params(params, AugmentContext(groups=GROUPS))


@pytest.mark.parametrize(
    "op", [TimeWarp(sigma=0.5), WindowWarp(ratio=0.3), WindowSlice(ratio=[0.6, 0.9])]
)
def test_time_maps_are_monotone_and_stay_in_range(real_batch, op):
    out, y = op(real_batch.x, real_batch.y_soft, gen())
    assert y is real_batch.y_soft
    lo, hi = real_batch.x.amin(-1, keepdim=True), real_batch.x.amax(-1, keepdim=True)
    assert bool(((out >= lo - 1e-5) & (out <= hi + 1e-5)).all())
    ramp = torch.arange(128.0).expand(16, 6, 128).contiguous()
    warped, _ = op(ramp, torch.zeros(16, 6), gen())
    assert bool((warped.diff(dim=-1) > 0).all())  # a strictly increasing time map
    assert warped[..., 0].min() >= 0 and warped[..., -1].max() <= 127
    assert not torch.allclose(warped[0], warped[1])  # parameters are per sample


@pytest.mark.parametrize("op", [TimeWarp(sigma=0.5), WindowWarp(ratio=0.3)])
def test_warps_keep_first_and_last_sample(real_batch, op):
    out, _ = op(real_batch.x, real_batch.y_soft, gen(1))
    assert torch.equal(out[..., 0], real_batch.x[..., 0])
    assert torch.equal(out[..., -1], real_batch.x[..., -1])
    assert not torch.allclose(out, real_batch.x)


@pytest.mark.parametrize(
    "op", [MagnitudeWarp(sigma=0.5), Scaling(sigma=0.5), Scaling(per_channel=False)]
)
def test_gains_keep_zero_crossings(real_batch, op):
    out, _ = op(real_batch.x, real_batch.y_soft, gen())
    assert torch.equal(torch.sign(out), torch.sign(real_batch.x))
    assert not torch.allclose(out, real_batch.x)


def test_scaling_is_per_sample_and_per_channel(synthetic_batch):
    out, _ = Scaling(sigma=0.3)(synthetic_batch.x, synthetic_batch.y_soft, gen())
    ratio = (out / synthetic_batch.x)[..., 0]
    torch.testing.assert_close((out / synthetic_batch.x)[..., 5], ratio)  # constant over time
    assert ratio.std(dim=0).min() > 0.05 and ratio.std(dim=1).min() > 0.01


def test_jitter_absolute_and_relative(synthetic_batch):
    x = synthetic_batch.x
    noise = Jitter(sigma=0.1)(x, synthetic_batch.y_soft, gen())[0] - x
    assert abs(float(noise.std()) - 0.1) < 0.005 and abs(float(noise.mean())) < 0.005
    rel = Jitter(sigma=0.1, relative=True)(2 * x, synthetic_batch.y_soft, gen())[0] - 2 * x
    assert abs(float(rel.std() / (2 * x).std(dim=-1).mean()) - 0.1) < 0.01


def test_probability_gates_whole_samples(synthetic_batch):
    out, _ = Jitter(p=0.5, sigma=0.1)(synthetic_batch.x, synthetic_batch.y_soft, gen())
    same = (out == synthetic_batch.x).all(dim=(1, 2))
    assert 0 < int(same.sum()) < len(same)
    assert not bool((out == synthetic_batch.x).all(dim=2)[~same].any())


@pytest.mark.parametrize("spec", every_op_spec(), ids=lambda s: s["op"])
def test_p_zero_is_the_identity(synthetic_batch, spec):
    x, y = synthetic_batch.x, synthetic_batch.y_soft
    out, y_out = build(spec, p=0.0)(x, y, gen())
    assert out is x and y_out is y


@pytest.mark.parametrize("spec", every_op_spec(), ids=lambda s: s["op"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises(synthetic_batch, spec, bad):
    x = synthetic_batch.x.clone()
    x[3, 1, 17] = bad
    with pytest.raises(ValueError, match="NaN/inf"):
        build(spec)(x, synthetic_batch.y_soft, gen())


@pytest.mark.parametrize("spec", every_op_spec(), ids=lambda s: s["op"])
def test_same_seed_same_batch_other_seed_other_batch(synthetic_batch, spec):
    op = build(spec, p=1.0) if spec["op"] != "channel_dropout" else build(spec, p=1.0, rate=0.5)
    x, y = synthetic_batch.x, synthetic_batch.y_soft
    a, ya = op(x, y, gen(7))
    b, yb = op(x, y, gen(7))
    assert torch.equal(a, b) and torch.equal(ya, yb)
    if spec["op"] not in DETERMINISTIC_AT_P1:
        c, _ = op(x, y, gen(8))
        assert not torch.equal(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_reverse_flips_time(synthetic_batch):
    out, _ = Reverse(p=1.0)(synthetic_batch.x, synthetic_batch.y_soft, gen())
    assert torch.equal(out, synthetic_batch.x.flip(-1))


@pytest.mark.parametrize("equal", [True, False])
def test_permutation_reorders_whole_segments(synthetic_batch, equal):
    x = torch.arange(128.0).expand(32, 6, 128).contiguous()
    out, _ = Permutation(n_segments=4, equal=equal)(x, synthetic_batch.y_soft, gen())
    assert torch.equal(out.sort(dim=-1).values, x)  # every step exactly once
    jumps = (out.diff(dim=-1) != 1).sum(dim=-1)
    assert int(jumps.max()) <= 3  # at most 3 seams between 4 segments
    assert torch.equal(out[:, 0], out[:, 5])  # channels move together


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("rate", [0.05, 0.2])
@pytest.mark.parametrize("gaps_fall_short", [False, True])
def test_time_dropout_holds_previous_values(
    synthetic_batch, per_channel, size, rate, gaps_fall_short, monkeypatch
):
    if gaps_fall_short:  # 2 gaps per row cannot cover a window: the rest is drawn step by step
        monkeypatch.setattr(segments, "_gap_count", lambda T, q: 2)
    x = synthetic_batch.x
    gaps = segments._gap_positions(x.shape[0], x.shape[-1], rate / size, gen(), x)
    assert segments._covers(gaps, x.shape[-1]) != gaps_fall_short
    op = TimeDropout(rate=rate, size=size, per_channel=per_channel)
    out, _ = op(x, synthetic_batch.y_soft, gen())
    kept = out == x
    assert torch.equal(out[..., 0], x[..., 0])
    assert bool((kept[..., 1:] | (out[..., 1:] == out[..., :-1])).all())
    assert abs(1 - float(kept.float().mean()) - rate) < 0.4 * rate
    shared = bool((kept == kept[:, :1]).all())
    assert shared != per_channel  # shared by the channels unless per_channel
    filled, _ = TimeDropout(rate=rate, size=size, fill=-9.0, per_channel=per_channel)(
        x, synthetic_batch.y_soft, gen()
    )
    assert torch.equal(filled == -9.0, ~kept)  # the same steps with the same seed


def test_channel_dropout_drops_whole_channels(synthetic_batch):
    out, _ = ChannelDropout(rate=0.5, fill=0.0)(synthetic_batch.x, synthetic_batch.y_soft, gen())
    dropped = (out == 0).all(dim=-1)
    untouched = (out == synthetic_batch.x).all(dim=-1)
    assert bool((dropped | untouched).all()) and 0.3 < float(dropped.float().mean()) < 0.7


@pytest.mark.parametrize("kind", ["ave", "max", "min"])
@pytest.mark.parametrize("size", [2, 3, 5])
def test_pool_matches_tsaug(synthetic_batch, kind, size):
    x = synthetic_batch.x.double()
    ours = Pool(kind=kind, size=size)(x, synthetic_batch.y_soft, gen())[0]
    theirs = tsaug.Pool(kind=kind, size=size).augment(x.numpy().transpose(0, 2, 1))
    np.testing.assert_allclose(ours.numpy().transpose(0, 2, 1), theirs, atol=1e-12)


@pytest.mark.parametrize("window", ["hann", "boxcar"])
@pytest.mark.parametrize("size", [4, 7])
def test_convolve_matches_tsaug(synthetic_batch, window, size):
    x = synthetic_batch.x.double()
    ours = Convolve(window=window, size=size)(x, synthetic_batch.y_soft, gen())[0]
    theirs = tsaug.Convolve(window=window, size=size).augment(x.numpy().transpose(0, 2, 1))
    np.testing.assert_allclose(ours.numpy().transpose(0, 2, 1), theirs, atol=1e-6)


def test_quantize_uses_at_most_n_levels_within_range(real_batch):
    out, _ = Quantize(n_levels=8)(real_batch.x, real_batch.y_soft, gen())
    for b in range(4):
        for c in range(6):
            assert len(torch.unique(out[b, c])) <= 8
    assert bool((out >= real_batch.x.amin(-1, keepdim=True)).all())
    assert bool((out <= real_batch.x.amax(-1, keepdim=True)).all())
    assert (
        float((out - real_batch.x).abs().max())
        <= float((real_batch.x.amax(-1) - real_batch.x.amin(-1)).max()) / 16 + 1e-5
    )


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="p must be in"):
        Jitter(p=1.5)
    with pytest.raises(ValueError, match="n_knots"):
        TimeWarp(n_knots=1)
    with pytest.raises(ValueError, match="unknown parameter"):
        get_op("timewarp").from_params({"sigmaa": 0.1}, AugmentContext())
    with pytest.raises(TypeError, match=r"\[B, C, T\]"):
        Jitter()(torch.zeros(4, 128), torch.zeros(4, 6), gen())


def test_dropout_steps_stay_independent_where_the_gaps_fall_short(monkeypatch):
    # 3 gaps per row end inside the window; the steps after them are drawn one by one, so
    # every step but the first is dropped with the same probability
    monkeypatch.setattr(segments, "_gap_count", lambda T, q: 3)
    rows, T, q = 20_000, 64, 0.1
    like = torch.zeros(1)
    gaps = segments._gap_positions(rows, T, q, gen(), like)
    assert not segments._covers(gaps, T)
    steps = segments._steps_mask(rows, T, q, gaps, gen(), like)
    freq = steps.float().mean(dim=0)
    assert float(freq[0]) == 0.0
    tolerance = 4 * math.sqrt(q * (1 - q) / rows)
    assert float((freq[1:] - q).abs().max()) < tolerance
