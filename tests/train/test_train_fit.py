"""`fit` on the small real HAPT subset: it learns, repeats bit for bit, resumes to the same
weights (also across the stages of a multi-stage method), reuses finished runs, and writes a
run directory whose model and run card `load_run_model` reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from data_prep.windowset import WindowSet
from harkd.config import RunConfig, validate_run_config
from harkd.distill import base as distill_base
from harkd.distill.base import Batch, Distiller, Stage
from harkd.distill.losses import soft_cross_entropy
from harkd.train.checkpoint import load_run_model
from harkd.train.loop import fit
from harkd.train.metrics import evaluate

REPO = Path(__file__).resolve().parents[2]
RUN_FILES = {
    "config.yaml", "model.safetensors", "model.json", "metrics.json", "curve.png",
    "confusion_test.csv", "confusion_test.png", "last.safetensors", "last.json",
}  # fmt: skip


def config(tmp: Path, **train: Any) -> RunConfig:
    raw: dict[str, Any] = {
        "name": "t",
        "data": str(REPO / "configs" / "data" / "hapt-quick.yaml"),
        "model": {"name": "tiny", "view": ["acc"]},
        "augment": {"policy": train.pop("policy", "none")},
        "distill": {"method": train.pop("method", "none")},
        "train": {"epochs": 4, "batch_size": 64, "seed": 0, "patience": None, "threads": 1} | train,
        "output_dir": str(tmp),
    }
    return validate_run_config(raw, source="test")


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_run_model(run_dir)[0].state_dict()


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def trained(hapt_quick_small: WindowSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fit")
    fit(config(root, epochs=6), ws=hapt_quick_small, run_dir=root / "a", progress=False)
    return root / "a"


def test_fit_learns_far_above_chance(trained: Path) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["history"]]
    assert losses[-1] < 0.6 * losses[0], losses
    assert metrics["metrics"]["val"]["macro_f1"] > 0.6  # chance is about 1/6
    assert metrics["metrics"]["test"]["macro_f1"] > 0.5
    assert metrics["best_epoch"] is not None and metrics["epochs_run"] == 6
    assert {p.name for p in trained.iterdir()} >= RUN_FILES


def test_selected_model_is_the_best_validation_epoch(trained: Path) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    val_f1 = [h["val_macro_f1"] for h in metrics["history"]]
    assert metrics["best_epoch"] == int(np.argmax(val_f1))
    assert metrics["metrics"]["val"]["macro_f1"] == pytest.approx(max(val_f1))


def test_saved_model_reproduces_the_reported_test_metrics(
    trained: Path, hapt_quick_small: WindowSet
) -> None:
    from harkd.data import Normalizer

    model, card = load_run_model(trained)
    assert not model.training
    assert card.view == ["acc"] and card.channel_indices == [0, 1, 2]
    assert card.input_shape == (3, 128) and card.num_classes == 6
    assert card.channels == ["acc_x", "acc_y", "acc_z"] and card.rate_hz == 50.0
    assert card.label_names == hapt_quick_small.label_names
    assert card.split_subjects.test == ["2", "4"] and card.split_subjects.seen() == {
        "1", "3", "5", "6", "7", "8"
    }  # fmt: skip
    norm = Normalizer(card.norm.mean, card.norm.std)
    got = evaluate(model, hapt_quick_small, "test", norm, channels=card.channel_indices)
    stored = json.loads((trained / "metrics.json").read_text())
    assert got["confusion"] == stored["metrics"]["test"]["confusion"]
    assert got["macro_f1"] == pytest.approx(stored["metrics"]["test"]["macro_f1"])
    assert card.metrics["test"].macro_f1 == stored["metrics"]["test"]["macro_f1"]
    assert card.best_epoch == stored["best_epoch"] and card.n_params == stored["n_params"]
    assert card.config_hash == stored["config_hash"] and card.method == "none"


def test_test_last_scores_the_weights_after_the_last_epoch(
    trained: Path, hapt_quick_small: WindowSet
) -> None:
    from harkd.data import Normalizer
    from harkd.train.checkpoint import load_checkpoint
    from harkd.train.rundir import RunDir

    stored = json.loads((trained / "metrics.json").read_text())
    model, card = load_run_model(trained)
    tensors, _ = load_checkpoint(RunDir(trained))
    prefix = "distiller.student.model."
    model.load_state_dict({k.removeprefix(prefix): v for k, v in tensors.items()
                           if k.startswith(prefix)})
    norm = Normalizer(card.norm.mean, card.norm.std)
    got = evaluate(model.eval(), hapt_quick_small, "test", norm, channels=card.channel_indices)
    last = stored["metrics"]["test_last"]
    assert got["confusion"] == last["confusion"]
    assert got["macro_f1"] == pytest.approx(last["macro_f1"])
    if stored["best_epoch"] == stored["epochs_run"] - 1:  # the last epoch was the best one
        assert last == stored["metrics"]["test"]


def test_same_seed_twice_is_bit_identical(
    trained: Path, hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    again = fit(config(tmp_path, epochs=6), ws=hapt_quick_small, run_dir=tmp_path / "b",
                progress=False)  # fmt: skip
    first = json.loads((trained / "metrics.json").read_text())
    assert again.metrics == first["metrics"]
    assert [h["losses"] for h in again.history] == [h["losses"] for h in first["history"]]
    assert same_weights(trained, tmp_path / "b")


def test_another_seed_differs(trained: Path, hapt_quick_small: WindowSet, tmp_path: Path) -> None:
    fit(config(tmp_path, epochs=6, seed=1), ws=hapt_quick_small, run_dir=tmp_path / "c",
        progress=False)  # fmt: skip
    assert not same_weights(trained, tmp_path / "c")


def test_finished_run_is_reused_without_training(
    trained: Path, hapt_quick_small: WindowSet, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (trained / "model.safetensors").stat().st_mtime_ns
    cfg = config(trained.parent, epochs=6)
    result = fit(cfg, ws=hapt_quick_small, run_dir=trained, progress=True)
    assert result.from_cache
    assert "reusing" in capsys.readouterr().err
    assert (trained / "model.safetensors").stat().st_mtime_ns == before
    assert result.metrics == json.loads((trained / "metrics.json").read_text())["metrics"]


class SimulatedCrashError(Exception):
    pass


def interrupt_after(epoch: int):
    def hook(e: int) -> None:
        if e == epoch:
            raise SimulatedCrashError(f"simulated crash after epoch {e}")

    return hook


def test_resume_after_interruption_gives_the_same_final_weights(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    # augmentation (its generator state), a schedule and early-stopping counters all resume
    kw = {"epochs": 5, "policy": "jitter_scaling", "schedule": "onecycle", "patience": 3}
    full = fit(config(tmp_path, **kw), ws=hapt_quick_small, run_dir=tmp_path / "full",
               progress=False)  # fmt: skip
    with pytest.raises(SimulatedCrashError):
        fit(config(tmp_path, **kw), ws=hapt_quick_small, run_dir=tmp_path / "cut",
            progress=False, on_epoch_end=interrupt_after(1))  # fmt: skip
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert json.loads((tmp_path / "cut" / "last.json").read_text())["progress"]["global_epoch"] == 2
    resumed = fit(config(tmp_path, **kw), ws=hapt_quick_small, run_dir=tmp_path / "cut",
                  progress=False)  # fmt: skip
    assert not resumed.from_cache
    assert resumed.metrics == full.metrics
    for key in ("losses", "val_macro_f1", "lr_end"):  # timings differ, the rest must not
        assert [h[key] for h in resumed.history] == [h[key] for h in full.history]
    assert same_weights(tmp_path / "full", tmp_path / "cut")


class TwoStage(Distiller):
    """A test method: a warm-up stage (no selection) training an extra scale, then CE."""

    def __init__(self, student, teachers, context, params) -> None:  # noqa: ANN001
        super().__init__(student, teachers, context, params)
        self.scale = torch.nn.Parameter(torch.ones(()))

    def stages(self) -> list[Stage]:
        return [Stage("warm", 2, selects_model=False), Stage("main")]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [self.scale] if self.stage == "warm" else super().trainable_parameters()

    def forward_train(self, batch: Batch, epoch: int):  # noqa: ANN201
        logits = self.student(batch.x).logits
        return logits, {"ce": soft_cross_entropy(logits * self.scale, batch.y_soft)}


@pytest.fixture
def two_stage_method():
    distill_base.register_distiller("_test_two_stage")(TwoStage)
    yield "_test_two_stage"
    distill_base._METHODS.pop("_test_two_stage")


@pytest.mark.parametrize("cut_after", [1, 2])  # inside the first stage, in the second
def test_resume_across_stages(
    two_stage_method: str, cut_after: int, hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    kw = {"epochs": 2, "method": two_stage_method}
    full = fit(config(tmp_path, **kw), ws=hapt_quick_small, run_dir=tmp_path / "full",
               progress=False)  # fmt: skip
    assert [h["stage"] for h in full.history] == ["warm", "warm", "main", "main"]
    assert [h["val_macro_f1"] is None for h in full.history] == [True, True, False, False]
    assert full.best_epoch in (2, 3)
    with pytest.raises(SimulatedCrashError):
        fit(config(tmp_path, **kw), ws=hapt_quick_small, run_dir=tmp_path / "cut",
            progress=False, on_epoch_end=interrupt_after(cut_after))  # fmt: skip
    resumed = fit(config(tmp_path, **kw), ws=hapt_quick_small, run_dir=tmp_path / "cut",
                  progress=False)  # fmt: skip
    assert resumed.metrics == full.metrics
    assert same_weights(tmp_path / "full", tmp_path / "cut")


def test_class_weights_and_a_changed_config_start_over(
    hapt_quick_small: WindowSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "r"
    fit(config(tmp_path, epochs=1), ws=hapt_quick_small, run_dir=run, progress=False)
    result = fit(config(tmp_path, epochs=1, class_weights=True), ws=hapt_quick_small,
                 run_dir=run, progress=True)  # fmt: skip
    assert not result.from_cache
    assert "starting over" in capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text())["config_hash"] == result.config_hash


def test_a_finished_run_with_an_older_card_is_trained_again(
    hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    run = tmp_path / "r"
    fit(config(tmp_path, epochs=1), ws=hapt_quick_small, run_dir=run, progress=False)
    card = json.loads((run / "model.json").read_text())
    del card["format_version"]  # as written before run cards had a format
    (run / "model.json").write_text(json.dumps(card))
    again = fit(config(tmp_path, epochs=1), ws=hapt_quick_small, run_dir=run, progress=False)
    assert not again.from_cache
    assert json.loads((run / "model.json").read_text())["format_version"] == 1
