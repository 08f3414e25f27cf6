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
    """The shipped quickstart on 8 subjects (3 of the 4 training subjects labelled), 2 draws,
    the `short` profile, quick timing."""
    data = json.dumps(SMALL_DATA, separators=(",", ":"))
    return [
        "--profile", "short", "--select", "draw=0,1", f"output_dir={out}",
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
    assert "12 trained now, 0 reused" in first

    for name in ("report.md", "summary.json", "confusion_best_student.png", "f1_vs_latency.png",
                 "runs.sqlite"):
        assert (grid / name).stat().st_size > 0, name
    summary = json.loads((grid / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert set(rows) == {"teacher", "teacher_acc", "none", "ls", "kd+pool", "kd+pool-acc"}
    chance = 1 / 6
    for label in ("kd+pool", "kd+pool-acc"):
        mean_f1 = rows[label]["test_macro_f1"]["mean"]
        assert mean_f1 > 2 * chance, (label, mean_f1)
        assert rows[label]["test_macro_f1"]["n"] == 2 and sorted(rows[label]["seeds"]) == [0, 1]
        assert rows[label]["int8"]["size_ratio"] < 1
        assert rows[label]["vs_none"]["n"] == 2  # paired with none draw by draw
    assert rows["teacher"]["test_macro_f1"]["n"] == 2  # one teacher per draw
    assert rows["teacher"]["params"] > 20 * rows["none"]["params"]
    for row in rows.values():
        assert row["p50_us"] > 0 and row["x_floor"] > 0 and row["macs"] > 0
    runs = sorted((grid / "runs").iterdir())
    assert len(runs) == 12  # 2 teachers per draw, 4 arms per draw
    for run in runs:
        for artefact in ("model.safetensors", "model.json", "metrics.json", "model.onnx",
                         "model.int8.onnx", "confusion_test.png", "curve.png"):
            assert (run / artefact).is_file(), (run, artefact)
    report = (grid / "report.md").read_text()
    assert "| kd+pool | 2 |" in report and "× floor" in report and "| teacher | 2 |" in report
    assert "Δ vs none" in report

    # a second run trains, exports and times nothing again, and reports the same
    assert main(["demo", "--no-progress", *short_overrides(out)]) == 0
    second = capsys.readouterr().out
    assert "0 trained now, 12 reused" in second
    assert json.loads((grid / "summary.json").read_text())["rows"] == summary["rows"]


def test_demo_refuses_a_bad_override_before_training(tmp_path, capsys):
    assert main(["demo", f"output_dir={tmp_path / 'qs'}", "axes.seed=[zero]"]) == 2
    err = capsys.readouterr().err
    assert "train.seed" in err and "'zero'" in err and "Traceback" not in err
    assert not (tmp_path / "qs").exists()
