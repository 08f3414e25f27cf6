"""cnn1d_branches: each modality encoded on its own, its per-modality embeddings, its channel
split, and the teacher's life through `harkd train`, `harkd export` and `harkd distill` (mrkd)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harkd.cli import main
from harkd.models import build_model

REPO = Path(__file__).resolve().parents[2]
SMALL = {"widths": [8, 16], "kernel": 3}


def test_each_modality_is_encoded_on_its_own() -> None:
    """Changing the gyro channels changes the gyro column of "modalities" and nothing of the
    acc column; the head reads the columns concatenated."""
    torch.manual_seed(0)
    model = build_model("cnn1d_branches", 6, 5, 64, **SMALL).eval()
    x = torch.randn(4, 6, 64)
    other = x.clone()
    other[:, 3:] = torch.randn(4, 3, 64)
    with torch.no_grad():
        a, b = model(x).features, model(other).features
    assert a["modalities"].shape == (4, 16, 2)
    torch.testing.assert_close(a["modalities"][..., 0], b["modalities"][..., 0])
    assert (a["modalities"][..., 1] - b["modalities"][..., 1]).abs().max() > 1e-3
    flat = a["modalities"].transpose(1, 2).flatten(1)
    torch.testing.assert_close(a["embedding"], flat)
    # stage maps: the branches' maps side by side (acc's channels first)
    assert a["stage1"].shape == (4, 16, 64) and a["final"].shape == (4, 32, 32)
    torch.testing.assert_close(a["stage1"][:, :8], b["stage1"][:, :8])


def test_branch_channels_split_the_view_in_order() -> None:
    torch.manual_seed(0)
    model = build_model("cnn1d_branches", 6, 3, 32, branch_channels=[2, 4], **SMALL).eval()
    assert model.bounds == [(0, 2), (2, 6)]
    x = torch.randn(2, 6, 32)
    y = x.clone()
    y[:, 2:] = 0  # the second branch's channels only
    with torch.no_grad():
        a, b = model(x).features["modalities"], model(y).features["modalities"]
    torch.testing.assert_close(a[..., 0], b[..., 0])
    assert model.branches[0].stem[0].in_channels == 2
    assert model.branches[1].stem[0].in_channels == 4


@pytest.mark.parametrize(
    ("channels", "params", "message"),
    [
        (6, {"branch_channels": [3, 2]}, r"summing to the 6 input channels, got \[3, 2\]"),
        (6, {"branch_channels": [6]}, "two or more counts"),
        (3, {}, "3 input channels are not two or more triaxial sensors; give branch_channels"),
        (5, {}, "5 input channels are not two or more triaxial sensors"),
    ],
)
def test_bad_channel_splits_are_named(channels: int, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model("cnn1d_branches", channels, 4, 32, **params)


@pytest.mark.slow
def test_trains_exports_and_teaches_mrkd_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped teacher config trains like any teacher, exports to ONNX checked against
    PyTorch on real test windows, and the shipped mrkd config distils from its run."""
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "cache"))
    small = [
        "data_overrides={subjects: [1, 2, 3, 4, 5, 6, 7, 8], "
        "split: {test_subjects: [2, 4], val_subjects: [3, 5]}}",
        "train.epochs=1", "train.threads=1", f"output_dir={tmp_path}",
    ]  # fmt: skip
    teacher = ["train", str(REPO / "configs" / "train" / "teacher_cnn1d_branches.yaml"),
               *small, "model.params.widths=[8, 16]", "--no-progress"]  # fmt: skip
    assert main(teacher) == 0
    run = tmp_path / "teacher-cnn1d-branches-hapt-quick"
    card = json.loads((run / "model.json").read_text())
    assert card["model"] == "cnn1d_branches" and card["view"] == ["acc", "gyro"]

    assert main(["export", str(run)]) == 0
    check = json.loads((run / "export.json").read_text())["check"]
    assert check["passed"] and check["windows"] > 0
    assert (run / "model.onnx").is_file()

    distill = ["distill", str(REPO / "configs" / "distill" / "mrkd.yaml"), *small,
               f"teachers.branches.run_dir={run}", "teachers.branches.params.widths=[8, 16]",
               "model.name=tiny_xs", "--no-progress"]  # fmt: skip
    assert main(distill) == 0
    metrics = json.loads((tmp_path / "mrkd-hapt-quick" / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["test"]["macro_f1"] <= 1.0
    capsys.readouterr()
