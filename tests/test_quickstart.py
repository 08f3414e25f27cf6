"""The quickstart end to end through the experiment engine, on real HAPT subjects at reduced
epochs: every artefact, a report built from the run store, distilled students far above
chance; a second run trains, exports and times nothing again."""

from __future__ import annotations

import json

import pytest

from harkd.cli import main

SMALL_DATA = {
    "subjects": [1, 2, 3, 4, 5, 6, 7, 8],
    "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]},
}


def short_overrides(out) -> list[str]:
    """The shipped quickstart on 8 subjects, 2 seeds, the `short` profile, quick timing."""
    data = json.dumps(SMALL_DATA, separators=(",", ":"))
    return [
        "--profile", "short", f"output_dir={out}", "axes.seed=[0,1]",
        f"profiles.short.data_overrides={data}", "profiles.short.train.threads=1",
        "latency={threads: 1, runs: 200, warmup: 20, batch: 32, int8: true}",
    ]


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "qs"
    grid = tmp_path / "qs-short"  # a profile's grid folder
    assert main(["demo", "--no-progress", *short_overrides(out)]) == 0
    first = capsys.readouterr().out
    assert "7 trained now, 0 reused" in first

    for name in ("report.md", "summary.json", "confusion_best_student.png", "f1_vs_latency.png",
                 "runs.sqlite"):
        assert (grid / name).stat().st_size > 0, name
    summary = json.loads((grid / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert set(rows) == {"teacher", "none", "iekd", "sk"}
    chance = 1 / 6
    for label in ("iekd", "sk"):
        mean_f1 = rows[label]["test_macro_f1"]["mean"]
        assert mean_f1 > 2 * chance, (label, mean_f1)
        assert rows[label]["test_macro_f1"]["n"] == 2 and rows[label]["seeds"] == [0, 1]
        assert rows[label]["int8"]["size_ratio"] < 1
    assert rows["teacher"]["test_macro_f1"]["n"] == 1
    assert rows["teacher"]["params"] > 20 * rows["none"]["params"]
    for row in rows.values():
        assert row["p50_us"] > 0 and row["x_floor"] > 0 and row["macs"] > 0
    runs = sorted((grid / "runs").iterdir())
    assert len(runs) == 7  # one teacher node, 3 methods x 2 seeds
    for run in runs:
        for artefact in ("model.safetensors", "model.json", "metrics.json", "model.onnx",
                         "model.int8.onnx", "confusion_test.png", "curve.png"):
            assert (run / artefact).is_file(), (run, artefact)
    report = (grid / "report.md").read_text()
    assert "| iekd | 2 |" in report and "× floor" in report and "| teacher | 1 |" in report
    assert "0.0000" not in report.split("| teacher | 1 |")[1].split("|")[1]  # n = 1, no ± 0

    # a second run trains, exports and times nothing again, and reports the same
    assert main(["demo", "--no-progress", *short_overrides(out)]) == 0
    second = capsys.readouterr().out
    assert "0 trained now, 7 reused" in second
    assert json.loads((grid / "summary.json").read_text())["rows"] == summary["rows"]


def test_demo_refuses_a_bad_override_before_training(tmp_path, capsys):
    assert main(["demo", f"output_dir={tmp_path / 'qs'}", "axes.seed=[zero]"]) == 2
    err = capsys.readouterr().err
    assert "train.seed" in err and "'zero'" in err and "Traceback" not in err
    assert not (tmp_path / "qs").exists()
