"""cnn1d and transformer options, and the transformer's export under torch.no_grad()."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from harkd.models import LogitsOnly, build_model


@pytest.mark.parametrize(
    ("params", "stage_shapes"),
    [
        ({}, [(32, 64), (64, 32), (128, 16)]),
        ({"widths": [16, 32], "blocks_per_stage": [2, 1], "kernel": 3}, [(16, 64), (32, 32)]),
    ],
)
def test_cnn1d_stages_halve_time(params: dict, stage_shapes: list[tuple[int, int]]) -> None:
    model = build_model("cnn1d", 6, 5, 64, **params).eval()
    feats = model(torch.randn(2, 6, 64)).features
    assert [
        tuple(feats[f"stage{i + 1}"].shape[1:]) for i in range(len(stage_shapes))
    ] == stage_shapes
    torch.testing.assert_close(feats["embedding"], feats["final"].mean(-1))


def test_cnn1d_rejects_mismatched_depths() -> None:
    with pytest.raises(ValueError, match="blocks_per_stage"):
        build_model("cnn1d", 6, 5, 64, widths=[8, 16], blocks_per_stage=[1, 1, 1])


@pytest.mark.parametrize(
    "params",
    [
        {"stem": "patch", "patch": 8, "positional": "learned", "pooling": "cls"},
        {"stem": "conv", "positional": "sinusoidal", "pooling": "cls", "depth": 2},
    ],
)
def test_transformer_variants_export_under_no_grad(params: dict) -> None:
    """In eval mode without grad, nn.TransformerEncoderLayer takes its fused fast path, which
    has no ONNX export; the model turns it off while tracing and then restores the flag."""
    torch.manual_seed(0)
    model = build_model("transformer", 6, 4, 64, d_model=32, ffn=64, **params).eval()
    x = torch.randn(3, 6, 64)
    out = model(x)
    tokens = 8 if params["stem"] == "patch" else 16
    assert out.features["final"].shape == (3, 32, tokens)  # CLS token excluded
    assert len([k for k in out.features if k.startswith("stage")]) == params.get("depth", 4)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogitsOnly(model),
            x,
            buf,
            opset_version=17,
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
        )
        expected = model(x).logits.numpy()  # eager, fast path on again
    assert torch.backends.mha.get_fastpath_enabled()
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"x": x.numpy()})[0] - expected).max() <= 1e-5


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pooling": "max"}, r"pooling must be one of \['mean', 'cls'\], got 'max'"),
        ({"stem": "lstm"}, r"stem must be one of \['conv', 'patch'\]"),
        ({"d_model": 30, "heads": 4}, r"d_model \(30\) must be divisible by heads \(4\)"),
        ({"depth": 0}, "depth must be > 0"),
    ],
)
def test_transformer_bad_options_are_named(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model("transformer", 6, 4, 64, **params)
