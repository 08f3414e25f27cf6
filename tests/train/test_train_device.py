"""`train.device`, `train.amp`, `train.deterministic` on the CPU, GPU discovery faked where needed:
`auto`'s fallback and its line, the errors for a GPU that is not there, the run card's record,
CPU results unchanged by the new settings, the config hash unchanged while they are defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.config import ConfigError, RunConfig, TrainConfig, validate_run_config
from harkd.train import device as device_mod
from harkd.train.device import autocast, resolve_device, wants_cuda
from harkd.train.loop import fit
from harkd.train.runcard import RunCard, read_card
from harkd.train.seeding import CUBLAS_WORKSPACE, rng_state, seed_everything

REPO = Path(__file__).resolve().parents[2]
TINY = {"name": "tiny", "view": ["acc"]}
SMALL_CNN = {"name": "cnn1d", "view": ["acc", "gyro"], "params": {"widths": [8, 16], "kernel": 3}}


def run_config(root: Path, model: dict[str, Any], **train: Any) -> RunConfig:
    """A 1-epoch run config on hapt-quick training `model`, with `train` settings over it."""
    return validate_run_config({
        "data": str(REPO / "configs" / "data" / "hapt-quick.yaml"),
        "model": model,
        "train": {"epochs": 1, "batch_size": 128, "seed": 0, "patience": None, "threads": 1,
                  **train},
        "output_dir": str(root),
    }, source="test config")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees no CUDA device (whatever the machine has)."""
    monkeypatch.setattr(device_mod, "cuda_device_count", lambda: 0)


def test_auto_falls_back_to_the_cpu_and_says_so(no_gpu: None) -> None:
    device, note = resolve_device("auto")
    assert device == torch.device("cpu")
    assert note is not None and note.startswith("train.device auto: cpu (torch ")
    assert resolve_device("cpu") == (torch.device("cpu"), None)


@pytest.mark.parametrize("setting", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(no_gpu: None, setting: str) -> None:
    with pytest.raises(ConfigError, match=rf"^train\.device={setting}: torch sees no CUDA device"):
        resolve_device(setting)


def test_a_gpu_index_beyond_those_seen_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_mod, "cuda_device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"cuda:3: torch sees 2 CUDA device\(s\), cuda:0 to "):
        resolve_device("cuda:3")


def test_a_placement_stands_for_auto_but_not_for_cpu(no_gpu: None) -> None:
    device, note = resolve_device("auto", placed="cpu")
    assert device == torch.device("cpu") and note is not None and "placed by the grid" in note
    assert resolve_device("cpu", placed="cuda:1") == (torch.device("cpu"), None)
    with pytest.raises(ConfigError, match="no CUDA device"):  # placed on a GPU that is not there
        resolve_device("auto", placed="cuda:1")


def test_bad_settings_are_refused_naming_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^--device='gpu': expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu", what="--device")
    with pytest.raises(ConfigError, match=r"train\.device"):
        validate_run_config({"data": "d.yaml", "model": TINY, "train": {"device": "gpu"}})


def test_wants_cuda() -> None:
    assert wants_cuda("auto", True) and not wants_cuda("auto", False)
    assert wants_cuda("cuda", False) and wants_cuda("cuda:2", False)
    assert not wants_cuda("cpu", True)


def test_new_settings_stay_out_of_the_config_hash_at_their_defaults(tmp_path: Path) -> None:
    plain = run_config(tmp_path, TINY)
    dumped = plain.model_dump(mode="json")["train"]
    assert not {"device", "amp", "deterministic"} & set(dumped)
    assert set(TrainConfig.OMITTED_AT_DEFAULT) >= {"device", "amp", "deterministic"}
    explicit = run_config(tmp_path, TINY, device="auto", amp=False, deterministic=True)
    assert explicit.config_hash() == plain.config_hash()
    for key, value in (("device", "cpu"), ("amp", True), ("deterministic", False)):
        changed = run_config(tmp_path, TINY, **{key: value})
        assert changed.model_dump(mode="json")["train"][key] == value
        assert changed.config_hash() != plain.config_hash()


def test_cpu_and_auto_without_a_gpu_train_the_same_weights(
    hapt_quick_small: WindowSet, tmp_path: Path, no_gpu: None, capsys: pytest.CaptureFixture[str]
) -> None:
    auto = fit(run_config(tmp_path, SMALL_CNN), ws=hapt_quick_small, run_dir=tmp_path / "auto",
               progress=True)
    assert "train.device auto: cpu (" in capsys.readouterr().err
    cpu = fit(run_config(tmp_path, SMALL_CNN, device="cpu"), ws=hapt_quick_small,
              run_dir=tmp_path / "cpu", progress=False)
    assert (auto.run_dir / "model.safetensors").read_bytes() == (
        cpu.run_dir / "model.safetensors").read_bytes()
    assert auto.metrics["test"] == cpu.metrics["test"]
    card = read_card(auto.run_dir)
    assert (card.device, card.device_name, card.cuda_version) == ("cpu", None, None)
    assert card.deterministic is True and card.amp is False
    assert card.torch_version == torch.__version__


def test_the_card_records_amp_and_deterministic(hapt_quick_small: WindowSet,
                                                tmp_path: Path) -> None:
    cfg = run_config(tmp_path, TINY, amp=True, deterministic=False)
    try:
        result = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "amp", progress=False)
    finally:
        seed_everything(0)  # deterministic again for the rest of the session
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    card = read_card(result.run_dir)
    assert card.amp is True and card.deterministic is False and card.device == "cpu"


def test_amp_runs_the_forward_pass_in_bfloat16() -> None:
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast(torch.device("cpu"), True):
        assert layer(x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), False):
        assert layer(x).dtype == torch.float32


def test_seeding_sets_the_deterministic_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        seed_everything(3, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
        seed_everything(3)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    finally:
        seed_everything(0)
    tensors, _ = rng_state(torch.Generator(), torch.device("cpu"))
    assert set(tensors) == {"rng.torch", "rng.augment"}  # no CUDA state off the GPU


def test_a_card_written_before_the_device_fields_reads_as_a_cpu_run(teacher_run: Path,
                                                                     tmp_path: Path) -> None:
    raw = json.loads((teacher_run / "model.json").read_text())
    for key in ("device", "device_name", "cuda_version", "deterministic", "amp"):
        raw.pop(key)
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.json").write_text(json.dumps(raw))
    card = read_card(old)
    assert isinstance(card, RunCard)
    assert (card.device, card.deterministic, card.amp, card.cuda_version) == ("cpu", True,
                                                                             False, None)


def test_train_with_cuda_and_no_gpu_exits_with_one_line(
    tmp_path: Path, no_gpu: None, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["train", str(REPO / "configs" / "train" / "student_tiny.yaml"),
               "train.device=cuda", f"output_dir={tmp_path}", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("harkd train: train.device=cuda: torch sees no CUDA device")
    assert len(err.splitlines()) == 1


def test_evaluate_with_cuda_and_no_gpu_exits_with_one_line(
    teacher_run: Path, no_gpu: None, capsys: pytest.CaptureFixture[str]
) -> None:
    data = REPO / "configs" / "data" / "hapt-quick.yaml"
    subset = ["subjects=[1,2,3,4,5,6,7,8]", "split.test_subjects=[2,4]",
              "split.val_subjects=[3,5]"]
    rc = main(["evaluate", str(teacher_run), "--data", str(data), *subset, "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("harkd evaluate: --device=cuda: torch sees no CUDA device (torch ")
    assert err.endswith("; use auto or cpu")


def test_the_device_benchmark_says_it_measured_nothing_without_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import bench_device

    monkeypatch.setattr(bench_device, "cuda_device_count", lambda: 0)
    out = tmp_path / "device.json"
    assert bench_device.main(["--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("bench_device: torch sees no CUDA device (torch ")
    assert "the GPU figures are not measured" in said and not out.exists()
