"""`check_compatible`: each way a run's model can fail to fit the data is refused, naming the
field; teacher loading (and so `harkd train` / `harkd distill`) and `harkd evaluate` use it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.config import ConfigError, validate_run_config
from harkd.train.compat import IncompatibleRunError, check_compatible
from harkd.train.runcard import RunCard, read_card

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "configs" / "data" / "hapt-quick.yaml"
SUBSET = ["subjects=[1, 2, 3, 4, 5, 6, 7, 8]", "split.test_subjects=[2, 4]",
          "split.val_subjects=[3, 5]"]  # fmt: skip


def changed(ws: WindowSet, X: np.ndarray | None = None, **meta: Any) -> WindowSet:
    """`ws` with other windows and/or metadata (the arrays are shared, not copied)."""
    return dataclasses.replace(ws, X=ws.X if X is None else X, meta={**ws.meta, **meta})


@pytest.fixture(scope="module")
def card(teacher_run: Path) -> RunCard:
    return read_card(teacher_run)


def test_the_data_it_was_trained_on_fits(card: RunCard, hapt_quick_small: WindowSet) -> None:
    for role in ("teacher", "evaluate", "export"):
        assert check_compatible(card, hapt_quick_small, role) == [0, 1, 2, 3, 4, 5]
    gyro_first = changed(hapt_quick_small, groups={"gyro": [3, 4, 5], "acc": [0, 1, 2]})
    assert check_compatible(card, gyro_first, "teacher", view=["acc", "gyro"]) == list(range(6))


def _refusal(card: RunCard, ws: WindowSet, role: str = "teacher", **kw: Any) -> str:
    with pytest.raises(IncompatibleRunError) as err:
        check_compatible(card, ws, role, where="teachers.t", **kw)
    text = str(err.value)
    assert text.startswith("teachers.t does not fit") and "\n" not in text
    return text


def test_window_length(card: RunCard, hapt_quick_small: WindowSet) -> None:
    short = changed(hapt_quick_small, X=hapt_quick_small.X[..., :64], window=64)
    assert "window: the data's windows have 64 samples, the model's 128" in _refusal(card, short)


def test_sampling_rate(card: RunCard, hapt_quick_small: WindowSet) -> None:
    slow = changed(hapt_quick_small, rate_hz=25.0)
    assert "rate: the data is sampled at 25.0 Hz, the model at 50 Hz" in _refusal(card, slow)


def test_classes_and_their_order(card: RunCard, hapt_quick_small: WindowSet) -> None:
    names = hapt_quick_small.label_names
    swapped = changed(hapt_quick_small, label_names=[names[1], names[0], *names[2:]])
    assert "classes: the data has ['WALKING_UPSTAIRS', 'WALKING'," in _refusal(card, swapped)
    fewer = changed(hapt_quick_small, label_names=names[:5])
    assert "classes:" in _refusal(card, fewer, role="evaluate")


def test_view(card: RunCard, hapt_quick_small: WindowSet) -> None:
    no_gyro = changed(hapt_quick_small, groups={"acc": [0, 1, 2], "rot": [3, 4, 5]})
    assert "view: channel group(s) ['gyro'] of the model's view" in _refusal(card, no_gyro)
    renamed = changed(hapt_quick_small, channels=[*hapt_quick_small.channels[:5], "mag_z"])
    assert "view: the data's ['acc', 'gyro'] channels are" in _refusal(card, renamed)
    text = _refusal(card, hapt_quick_small, view=["acc"])
    assert "view: the model reads ['acc', 'gyro'], the config says ['acc']" in text


def test_normalisation_is_required_of_a_teacher_only(
    card: RunCard, hapt_quick_small: WindowSet
) -> None:
    norm = hapt_quick_small.meta["norm"]
    wider = {"mean": norm["mean"], "std": [1.5 * s for s in norm["std"]]}
    other = changed(hapt_quick_small, norm=wider)
    text = _refusal(card, other)
    assert "normalisation: the data's training-split statistics differ" in text
    assert check_compatible(card, other, "evaluate") == list(range(6))  # uses the card's own


def test_test_subjects_seen_in_training(card: RunCard, hapt_quick_small: WindowSet) -> None:
    subjects = {**hapt_quick_small.meta["split_subjects"], "test": ["2", "6", "3"]}
    leaked = changed(hapt_quick_small, split_subjects=subjects)
    text = _refusal(card, leaked, role="export")
    assert "test subjects: ['3', '6'] of the data's test split were among the run's" in text


def test_every_problem_is_reported_at_once(card: RunCard, hapt_quick_small: WindowSet) -> None:
    worse = changed(hapt_quick_small, X=hapt_quick_small.X[..., :64], rate_hz=25.0)
    text = _refusal(card, worse)
    assert "window:" in text and "; rate:" in text


def test_distilling_from_a_teacher_of_another_window_length_is_refused(
    teacher_run: Path, hapt_quick_small: WindowSet, tmp_path: Path
) -> None:
    from harkd.train.loop import fit

    raw = {
        "data": str(DATA),
        "model": {"name": "tiny_xs", "view": ["acc"]},
        "teachers": {
            "t": {"name": "cnn1d", "view": ["acc", "gyro"], "run_dir": str(teacher_run)}
        },
        "distill": {"method": "kd"},
        "train": {"epochs": 1, "threads": 1},
    }
    short = changed(hapt_quick_small, X=hapt_quick_small.X[..., :64].copy(), window=64)
    with pytest.raises(ConfigError, match=r"teachers.t \(.*teacher\) does not fit .*window:"):
        fit(validate_run_config(raw), ws=short, run_dir=tmp_path / "kd", progress=False)
    assert not (tmp_path / "kd" / "last.safetensors").exists()  # refused before training
    raw["teachers"]["t"]["name"] = "tiny"
    with pytest.raises(ConfigError, match="the run trained 'cnn1d', the config says 'tiny'"):
        fit(validate_run_config(raw), ws=hapt_quick_small, run_dir=tmp_path / "kd")


def test_evaluate_refuses_a_protocol_whose_test_subjects_it_trained_on(
    teacher_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = ["subjects=[1, 2, 6, 9]", "split.test_subjects=[2, 6]", "split.val_subjects=[9]"]
    argv = ["evaluate", str(teacher_run), "--data", str(DATA), *other,
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"harkd evaluate: {teacher_run} does not fit hapt-quick: test subjects:")
    assert "['6']" in err and "\n" not in err


def test_export_checks_the_run_fits_the_data_it_is_checked_on(
    teacher_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "cache"))
    protocol = yaml.safe_load(DATA.read_text())
    protocol["subjects"] = [1, 2, 3, 6, 9]
    protocol["split"] = {"kind": "fixed", "test_subjects": [2, 6], "val_subjects": [9]}
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(yaml.safe_dump(protocol))
    assert main(["export", str(teacher_run), "--data", str(leaky)]) == 2
    err = capsys.readouterr().err
    assert f"harkd export: {teacher_run} does not fit hapt-quick: test subjects: ['6']" in err
    assert not (teacher_run / "model.onnx").exists()
