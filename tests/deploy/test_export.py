"""ONNX export: equality with PyTorch on real windows for every registered model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from harkd.deploy.export import ATOL, OPSET, check_export, compare_logits, export_onnx
from harkd.deploy.onnx_io import NORM_KEY, onnx_logits, read_metadata
from harkd.deploy.session import make_session
from harkd.models import build_model, list_models

#: the real HAPT channel groups each role is built for (students see the accelerometer only)
VIEWS = {"student": ["acc"], "teacher": ["acc", "gyro"], "peer": ["acc", "gyro"]}


@pytest.mark.parametrize("name", sorted(list_models()))
def test_export_matches_pytorch_on_real_windows(name, hapt_quick_small, tmp_path):
    ws = hapt_quick_small
    idx = ws.channel_indices(VIEWS[list_models()[name]])
    norm = ([ws.meta["norm"]["mean"][i] for i in idx], [ws.meta["norm"]["std"][i] for i in idx])
    x_test = np.ascontiguousarray(ws.X[ws.mask("test")][:, idx])
    torch.manual_seed(0)
    model = build_model(name, len(idx), ws.num_classes, 128).eval()
    meta = {"harkd.model": name, "harkd.label_names": ["a", "b"]}
    path = export_onnx(model, tmp_path / f"{name}.onnx", len(idx), 128, meta, norm)
    check = check_export(model, path, x_test[:200], norm)
    assert check.windows == 200
    assert check.max_excess <= 0 and check.max_abs_diff < 10 * ATOL, check
    assert check.argmax_agreement >= 0.999, check
    assert check.passed
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= OPSET
    assert [i.name for i in proto.graph.input] == ["windows"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert read_metadata(proto)["harkd.model"] == name
    # dynamic batch: 1 and 7 windows both run and give [B, classes]
    session = make_session(path)
    for batch in (1, 7):
        out = session.run(["logits"], {"windows": x_test[:batch]})[0]
        assert out.shape == (batch, ws.num_classes)


def test_the_logit_allowance_grows_with_the_logit_and_argmax_flips_fail():
    """3e-4 off passes on logits of about 2 (allowance 1e-4 + 1e-3 x 2), fails on logits near
    0; argmax agreement below 99.9 % fails."""
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 0.02, (200, 6)).astype(np.float32)
    ref[:, 0] += 0.1  # class 0 wins every window
    assert compare_logits(ref + 2, ref + 2 + 3e-4).passed
    near_zero = compare_logits(ref, ref + 3e-4)
    assert not near_zero.passed and near_zero.max_excess == pytest.approx(2e-4, rel=0.2)
    flipped = ref.copy()
    flipped[:2, 1] = flipped[:2, 0] + 1e-6  # 2 of 200 windows change their argmax
    check = compare_logits(ref, flipped)
    assert check.argmax_agreement == 0.99 and not check.passed


def test_normalisation_recorded_instead_of_folded(trained_tiny, acc_data, tmp_path):
    folded = export_onnx(trained_tiny, tmp_path / "f.onnx", 3, 128, {}, acc_data.norm)
    recorded = export_onnx(trained_tiny, tmp_path / "r.onnx", 3, 128, {}, acc_data.norm,
                           fold_normalization=False)
    meta = read_metadata(onnx.load(str(recorded)))
    assert meta[NORM_KEY]["folded"] is False
    assert meta[NORM_KEY]["mean"] == pytest.approx(acc_data.norm[0])
    assert read_metadata(onnx.load(str(folded)))[NORM_KEY]["folded"] is True
    # tiny folds the normalisation into its stem's weights: no node more than unfolded
    assert ops(folded) == ops(recorded)
    # onnx_logits applies the recorded normalisation, so both agree with PyTorch
    check = check_export(trained_tiny, recorded, acc_data.x_test[:300], acc_data.norm)
    assert check.passed, check
    np.testing.assert_allclose(
        onnx_logits(folded, acc_data.x_test[:50]), onnx_logits(recorded, acc_data.x_test[:50]),
        atol=1e-4,
    )


def ops(path) -> list[str]:
    nodes = onnx.load(str(path)).graph.node
    return [n.op_type for n in nodes if n.op_type not in ("Constant", "Identity")]


def test_models_without_weight_folding_get_one_normalisation_node(acc_data, tmp_path):
    torch.manual_seed(0)
    model = build_model("cnn1d", 3, acc_data.num_classes, 128).eval()
    assert not hasattr(model, "fold_input_normalization")
    folded = export_onnx(model, tmp_path / "f.onnx", 3, 128, {}, acc_data.norm)
    recorded = export_onnx(model, tmp_path / "r.onnx", 3, 128, {}, acc_data.norm,
                           fold_normalization=False)
    assert ops(folded) == ["BatchNormalization", *ops(recorded)]
    assert check_export(model, folded, acc_data.x_test[:100], acc_data.norm).passed


def test_export_merges_training_branches_and_leaves_the_model_alone(acc_data, tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny", 3, acc_data.num_classes, 128, branches=[3])
    model.train()
    model(torch.from_numpy(acc_data.x_train[:64]))  # BN statistics away from their start
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = export_onnx(model, tmp_path / "b.onnx", 3, 128, {}, acc_data.norm)
    check = check_export(model, path, acc_data.x_test[:300], acc_data.norm)
    assert check.passed, check
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # one Conv per convolution of the deployed model, whatever the branches
    plain = export_onnx(build_model("tiny", 3, acc_data.num_classes, 128).eval(),
                        tmp_path / "p.onnx", 3, 128, {}, acc_data.norm)
    assert ops(path) == ops(plain)


def test_bad_normalisation_is_rejected(trained_tiny, tmp_path):
    with pytest.raises(ValueError, match="std must be > 0"):
        export_onnx(trained_tiny, tmp_path / "x.onnx", 3, 128, {}, ([0, 0, 0], [1, 0, 1]))
    with pytest.raises(ValueError, match="normalisation has 2 channels, the model 3"):
        export_onnx(trained_tiny, tmp_path / "x.onnx", 3, 128, {}, ([0, 0], [1, 1]))
