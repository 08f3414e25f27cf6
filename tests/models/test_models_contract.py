"""Contract tests run on every registered model: shapes, features, size, ONNX export, gradients."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch

from harkd.deploy.flops import count_params
from harkd.models import LogitsOnly, ModelOutput, build_model, list_models

WINDOW = 128
CLASSES = 6
#: the input each role is built for (teachers and peers: acc+gyro, students: acc)
CHANNELS = {"teacher": 6, "peer": 6, "student": 3}
MODELS = sorted(list_models())


def make(name: str, seed: int = 0) -> tuple[torch.nn.Module, int]:
    torch.manual_seed(seed)
    channels = CHANNELS[list_models()[name]]
    return build_model(name, channels, CLASSES, WINDOW), channels


def test_roles_and_names() -> None:
    roles = list_models()
    assert {"cnn1d", "transformer"} <= {n for n, r in roles.items() if r == "teacher"}
    assert {"deepconvlstm", "tinyhar"} <= {n for n, r in roles.items() if r == "peer"}
    assert {"tiny", "tiny_xs", "tiny_s", "tiny_m", "tiny_l"} <= {
        n for n, r in roles.items() if r == "student"
    }


@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes_and_features(name: str) -> None:
    model, channels = make(name)
    model.eval()
    out = model(torch.randn(3, channels, WINDOW))
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (3, CLASSES)
    assert tuple(out.features) == model.feature_names
    # every model has "stage1".."stage<n>" (n depends on its depth), "final" and "embedding"
    stages = [k for k in out.features if k.startswith("stage")]
    assert stages == [f"stage{i + 1}" for i in range(len(stages))], (name, stages)
    assert len(stages) >= 2, f"{name} exposes fewer than two stages: {stages}"
    for required in ("final", "embedding"):
        assert required in out.features, f"{name} lacks feature {required}"
    for key, feat in out.features.items():
        assert feat.shape[0] == 3
        assert feat.dim() == (2 if key == "embedding" else 3), f"{name}:{key} {tuple(feat.shape)}"
    # the embedding is what the head reads
    assert out.features["embedding"].shape[1] == model.head.in_features


@pytest.mark.parametrize("name", MODELS)
def test_param_count_in_declared_range(name: str) -> None:
    model, _ = make(name)
    low, high = model.param_range
    assert low <= count_params(model) <= high, (name, count_params(model), model.param_range)


@pytest.mark.parametrize("name", MODELS)
def test_onnx_export_matches_pytorch(name: str) -> None:
    model, channels = make(name)
    model.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LogitsOnly(model),
            torch.randn(2, channels, WINDOW),
            buf,
            opset_version=17,
            dynamo=False,
            input_names=["x"],
            output_names=["logits"],
            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
        )
    assert not model.training, "export must leave the model in eval mode"
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.randn(5, channels, WINDOW)  # another batch size than the traced one
    with torch.no_grad():
        expected = model(x).logits.numpy()
    got = sess.run(None, {"x": x.numpy()})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name: str) -> None:
    model, channels = make(name)
    with torch.no_grad():  # zero-initialised gates (TinyHAR's gamma) block gradients by design
        for p in model.parameters():
            if not p.any():
                p.fill_(0.5)
    model.train()
    out = model(torch.randn(4, channels, WINDOW))
    torch.nn.functional.cross_entropy(out.logits, torch.arange(4) % CLASSES).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}.{pname} gets no gradient"
        assert torch.isfinite(p.grad).all()
        assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero gradient"


def test_unknown_model_is_named() -> None:
    with pytest.raises(KeyError, match="unknown model 'nope'.*cnn1d"):
        build_model("nope", 3, 6, 128)
