"""`harkd train` then `harkd evaluate` on the small real HAPT subset, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harkd.cli import main
from harkd.report.cost import run_macro_f1

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "configs" / "data" / "hapt-quick.yaml"
SUBSET = ["subjects=[1, 2, 3, 4, 5, 6, 7, 8]", "split.test_subjects=[2, 4]",
          "split.val_subjects=[3, 5]"]  # fmt: skip


def test_train_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    data_overrides = (
        "data_overrides={subjects: [1, 2, 3, 4, 5, 6, 7, 8], "
        "split: {test_subjects: [2, 4], val_subjects: [3, 5]}}"
    )
    args = ["train", str(REPO / "configs" / "train" / "student_tiny.yaml"), f"data={DATA}",
            data_overrides, "train.epochs=2", "train.threads=1", f"output_dir={tmp_path}",
            "--no-progress", "--cache-dir", cache]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "student-tiny-hapt-quick: test macro-F1" in out and "params" in out
    run = tmp_path / "student-tiny-hapt-quick"
    stored = json.loads((run / "metrics.json").read_text())["metrics"]["test"]
    # what `harkd bench` and the latency comparison read from a finished run
    assert run_macro_f1(run) == pytest.approx(stored["macro_f1"])
    assert run_macro_f1(tmp_path / "no-such-run") is None

    report = tmp_path / "eval.json"
    rc = main(["evaluate", str(run), "--data", str(DATA), *SUBSET, "--split", "all",
               "--out", str(report), "--cache-dir", cache])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr()
    assert "test: 638 windows" in text.out and "warning" not in text.err
    got = json.loads(report.read_text())
    assert got["test"]["confusion"] == stored["confusion"]

    # a protocol of other test subjects gives the same windows of subject 2
    other = ["subjects=[1, 2, 3, 4, 5, 6, 7, 8]", "split.test_subjects=[2]",
             "split.val_subjects=[3, 5]"]  # fmt: skip
    rc = main(["evaluate", str(run), "--data", str(DATA), *other, "--cache-dir", cache])
    assert rc == 0 and "test: " in capsys.readouterr().out


def test_evaluate_names_a_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "nope"), "--data", str(DATA)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harkd evaluate: ") and "nope/model.json: not found" in err


def test_train_and_distill_name_the_missing_teachers_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-teacher"
    config = str(REPO / "configs" / "distill" / "kd.yaml")
    for command in ("train", "distill"):
        assert main([command, config, f"teachers.cnn1d.run_dir={missing}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"harkd {command}: {config}: cannot train yet")
        assert f"run directory '{missing}' not found" in err
        assert "harkd train" in err and "model.name=cnn1d" in err and f"name={missing.name}" in err
    assert main(["train", config, "distill.params.alpah=1", "teachers={}"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'alpah' (allowed: teacher, alpha, temperature, pool)" in err
    assert err.count("\n") == 1


def test_a_config_file_that_does_not_exist(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["distill", "nope.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harkd distill: nope.yaml") and err.count("\n") == 1
