"""The tiny student family: presets, widths, re-parameterisation and the graph onnxruntime gets."""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import onnx
import pytest
import torch

from harkd.deploy.export import check_export, export_onnx, logits_module
from harkd.deploy.flops import count_params, deployed_cost
from harkd.models import build_model
from harkd.models.tiny import SIZE_PRESETS, TINY_PRESETS, RepConvBNAct


def settled(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in eval mode after a few training batches moved its BN statistics."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(64, 3, 128) * 2.0 + 0.5)
    return model.eval()


def test_presets_grow_from_about_1k_to_about_30k_params() -> None:
    sizes = [count_params(build_model(name, 3, 6, 128)) for name in TINY_PRESETS]
    assert sizes == sorted(sizes)
    assert 1_000 <= sizes[0] <= 2_500
    assert 20_000 <= sizes[-1] <= 30_000
    assert 3_000 <= count_params(build_model("tiny", 3, 6, 128)) <= 10_000


@pytest.mark.parametrize("name", sorted([*TINY_PRESETS, *SIZE_PRESETS]))
def test_channel_counts_are_multiples_of_8(name: str) -> None:
    model = build_model(name, 3, 6, 128)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.out_channels % 8 == 0 for c in convs)


def test_width_and_depth_options() -> None:
    model = build_model(
        "tiny", 3, 6, 128, widths=[8, 16, 32], strides=[2, 2, 2], width=2.0, stem_kernel=7,
        pointwise=True, branches=[3],
    )
    feats = model(torch.randn(2, 3, 128)).features
    # stem, then (depthwise, pointwise) per block
    shapes = [(16, 61), (16, 31), (32, 31), (32, 16), (64, 16)]  # stem unpadded: (128 - 7) // 2 + 1
    assert [tuple(feats[f"stage{i + 1}"].shape[1:]) for i in range(5)] == shapes
    assert tuple(feats) == model.feature_names[:5] + ("final", "embedding")
    assert feats["embedding"].shape == (2, 64)
    depthwise_only = build_model("tiny", 3, 6, 128, widths=[16, 16, 16], strides=[4, 2, 2],
                                 pointwise=False)
    assert depthwise_only.feature_names == ("stage1", "stage2", "stage3", "final", "embedding")
    with pytest.raises(ValueError, match="one stride per entry of widths"):
        build_model("tiny", 3, 6, 128, widths=[8, 16, 32], strides=[4, 2])
    with pytest.raises(ValueError, match="width must be > 0"):
        build_model("tiny", 3, 6, 128, width=0)
    with pytest.raises(ValueError, match="without pointwise convolutions every block keeps"):
        build_model("tiny", 3, 6, 128, widths=[16, 32], pointwise=False)
    with pytest.raises(ValueError, match="differ from it by an even number; got 4"):
        build_model("tiny", 3, 6, 128, branches=[4])


@pytest.mark.parametrize(
    "options",
    [{}, {"widths": [16, 32], "strides": [4, 2], "stem_kernel": 7, "pointwise": True,
          "branches": [5, 1]}],
)
def test_reparameterize_merges_branches_exactly(options: dict) -> None:
    model = settled(build_model("tiny", 3, 6, 128, **options))
    x = torch.randn(8, 3, 128)
    with torch.no_grad():
        expected = model(x)
        merged = copy.deepcopy(model)
        merged.reparameterize()
        got = merged(x)
    assert not any(m.extra for m in merged.modules() if isinstance(m, RepConvBNAct))
    assert count_params(merged) < count_params(model)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)
    for name in model.feature_names:
        torch.testing.assert_close(got.features[name], expected.features[name], atol=1e-5,
                                   rtol=1e-5)


def test_exported_graph_is_two_convolutions_pool_and_gemm() -> None:
    """Branches merge and BN folds into the convolutions at export, and the default's graph
    stays the fewest nodes a conv net takes here (onnxruntime spends about half a microsecond
    per node at batch 1, more than the default's arithmetic)."""
    model = settled(build_model("tiny", 3, 6, 128))
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            logits_module(model, None, deploy=True),
            torch.randn(1, 3, 128),
            buf,
            opset_version=17,
            dynamo=False,
            input_names=["x"],
        )
    graph = onnx.load_from_string(buf.getvalue()).graph
    # Constant / Identity nodes only hold constants (the Unsqueeze axis): onnxruntime folds
    # them away when it loads the graph
    ops = [n.op_type for n in graph.node if n.op_type not in {"Constant", "Identity"}]
    assert ops == [
        "Unsqueeze",
        "Conv",
        "Relu",
        "Conv",
        "Relu",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
    ]


@pytest.mark.parametrize("train", [False, True])
def test_folded_normalization_takes_raw_windows(train: bool) -> None:
    model = settled(build_model("tiny", 3, 6, 128))
    model.train(train)
    mean, std = torch.tensor([0.8, -0.1, 0.05]), torch.tensor([0.4, 0.35, 0.3])
    raw = torch.randn(4, 3, 128) * std[:, None] + mean[:, None]
    with torch.no_grad():
        expected = model((raw - mean[:, None]) / std[:, None])
        model.fold_input_normalization(mean.tolist(), std.tolist())
        got = model(raw)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="2 means and 2 stds, the model 3 input channels"):
        model.fold_input_normalization([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="std must be > 0"):
        model.fold_input_normalization([0.0, 0.0, 0.0], [1.0, 0.0, 1.0])


def test_size_presets_deploy_within_15_percent_of_their_names() -> None:
    deployed = {}
    for name, (nominal, _) in SIZE_PRESETS.items():
        cost = deployed_cost(build_model(name, 3, 6, 128), (1, 3, 128))
        assert abs(cost["params"] - nominal) <= 0.15 * nominal, (name, cost)
        assert cost["params"] < cost["train_params"], name  # the branches merged away
        deployed[name] = cost["params"]
    default = deployed_cost(build_model("tiny", 3, 6, 128), (1, 3, 128))["params"]
    assert sorted(deployed.values()) == list(deployed.values()) and max(deployed.values()) < default


@pytest.mark.parametrize("name", sorted(SIZE_PRESETS))
def test_size_preset_trains_a_step_and_exports(name, hapt_quick_small, tmp_path) -> None:
    ws = hapt_quick_small
    idx = ws.channel_indices(["acc"])
    norm = ([ws.meta["norm"]["mean"][i] for i in idx], [ws.meta["norm"]["std"][i] for i in idx])
    train = ws.mask("train")
    mean, std = (torch.tensor(v)[:, None] for v in norm)
    x = (torch.from_numpy(ws.X[train][:64, idx]) - mean) / std
    y = torch.from_numpy(ws.y[train][:64]).long()
    torch.manual_seed(0)
    model = build_model(name, 3, ws.num_classes, 128).train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(x).logits, y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
    model.eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", 3, 128, {"harkd.model": name}, norm)
    check = check_export(model, path, np.ascontiguousarray(ws.X[ws.mask("test")][:300, idx]), norm)
    assert check.passed, check
