"""The run card a finished run writes, and the one-line errors of reading a bad one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from data_prep.windowset import WindowSet
from harkd.config import ConfigError
from harkd.train.checkpoint import load_run_model
from harkd.train.runcard import CARD_FORMAT, CardError, read_card


def test_the_card_describes_the_run(teacher_run: Path, hapt_quick_small: WindowSet) -> None:
    ws = hapt_quick_small
    card = read_card(teacher_run)
    stored = json.loads((teacher_run / "metrics.json").read_text())
    assert card.format_version == CARD_FORMAT and card.torch_version == torch.__version__
    assert (card.model, card.params) == ("cnn1d", {"widths": [8, 16], "kernel": 3})
    assert card.view == ["acc", "gyro"] and card.channel_indices == [0, 1, 2, 3, 4, 5]
    assert card.channels == ws.channels and card.input_shape == (6, 128)
    assert card.label_names == ws.label_names and card.num_classes == 6
    assert card.rate_hz == 50.0 and card.data_hash == ws.meta["config_hash"]
    assert card.norm.mean == pytest.approx(ws.meta["norm"]["mean"])
    assert card.norm.std == pytest.approx(ws.meta["norm"]["std"])
    assert card.split_subjects.train == ws.meta["split_subjects"]["train"]
    assert card.split_subjects.test == ["2", "4"]
    assert (card.method, card.seed, card.best_epoch) == ("none", 0, 0)
    assert card.n_params == stored["n_params"] and card.config_hash == stored["config_hash"]
    assert card.metrics["val"].macro_f1 == stored["metrics"]["val"]["macro_f1"]
    model, same = load_run_model(teacher_run)
    assert same == card and sum(p.numel() for p in model.parameters()) == card.n_params


@pytest.fixture
def copy_of(teacher_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(teacher_run, run)
    return run


def _edit_card(run: Path, **changes: object) -> None:
    card = json.loads((run / "model.json").read_text())
    for key, value in changes.items():
        if value is None:
            card.pop(key)
        else:
            card[key] = value
    (run / "model.json").write_text(json.dumps(card))


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(err.value)
    assert "\n" not in text and isinstance(err.value, ConfigError)
    return text


def test_a_missing_card_is_named(tmp_path: Path) -> None:
    with pytest.raises(CardError) as err:
        read_card(tmp_path / "nope")
    assert "nope/model.json: not found; is" in _one_line(err)


def test_a_corrupt_card_is_named(copy_of: Path) -> None:
    (copy_of / "model.json").write_text('{"model": "cnn1d", ')
    with pytest.raises(CardError) as err:
        load_run_model(copy_of)
    assert "model.json: not a run card: invalid JSON" in _one_line(err)


def test_an_old_card_is_refused_with_its_format(copy_of: Path) -> None:
    _edit_card(copy_of, format_version=None)  # a sidecar written before cards had a format
    with pytest.raises(CardError) as err:
        read_card(copy_of)
    assert f"run card format None, this harkd reads format {CARD_FORMAT}" in _one_line(err)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window": "long"}, "window: Input should be a valid integer"),
        ({"label_names": ["a"]}, "num_classes 6 but 1 label_names"),
        ({"channels": ["acc_x"]}, "the view's sizes disagree"),
        ({"rate_hz": None}, "rate_hz: Field required"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_card_names_the_field(copy_of: Path, changes: dict, message: str) -> None:
    _edit_card(copy_of, **changes)
    with pytest.raises(CardError) as err:
        read_card(copy_of)
    assert "model.json: invalid run card: " in _one_line(err) and message in str(err.value)


def test_weights_that_do_not_fit_the_card_are_named(copy_of: Path) -> None:
    (copy_of / "model.safetensors").unlink()
    with pytest.raises(CardError, match="model.safetensors: not found"):
        load_run_model(copy_of)
    save_file({"head.weight": torch.zeros(2, 2)}, str(copy_of / "model.safetensors"))
    with pytest.raises(CardError) as err:
        load_run_model(copy_of)
    assert "model.safetensors: weights do not fit" in _one_line(err)
    (copy_of / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CardError, match="model.safetensors: not readable safetensors"):
        load_run_model(copy_of)
