"""`--threads` of `harkd train` / `distill` / `evaluate`: its default, the config's
`train.threads`, and a conflict between the two."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from harkd.cli import main
from harkd.commands.options import DEFAULT_THREADS
from harkd.commands.train import training_threads
from harkd.config import ConfigError, load_run_config

STUDENT = Path(__file__).resolve().parents[2] / "configs" / "train" / "student_tiny.yaml"


@pytest.mark.parametrize(("option", "configured", "expected"), [
    (None, None, DEFAULT_THREADS), (3, None, 3), (None, 2, 2), (2, 2, 2)])
def test_threads_come_from_the_option_else_the_config_else_the_default(
        option, configured, expected) -> None:
    overrides = [] if configured is None else [f"train.threads={configured}"]
    assert training_threads(option, load_run_config(STUDENT, overrides)) == expected


def test_an_option_contradicting_the_config_is_refused_naming_both(capsys) -> None:
    with pytest.raises(ConfigError, match=r"--threads 3: the config sets train.threads=2"):
        training_threads(3, load_run_config(STUDENT, ["train.threads=2"]))
    assert main(["train", str(STUDENT), "train.threads=2", "--threads", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.threads=3" in err[0]


@pytest.mark.parametrize("argv", [[], ["--threads", "3"]])
def test_train_runs_with_the_chosen_thread_count(argv, monkeypatch, capsys) -> None:
    import harkd.train.loop

    seen = []

    def fake_fit(cfg, **_):
        seen.append(torch.get_num_threads())
        return SimpleNamespace(summary=lambda: "trained")

    monkeypatch.setattr(harkd.train.loop, "fit", fake_fit)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # a count the command must replace
        assert main(["train", str(STUDENT), *argv]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [int(argv[1]) if argv else DEFAULT_THREADS]
    assert capsys.readouterr().out.strip() == "trained"
