"""The quickstart end to end on real HAPT subjects at reduced epochs: every artefact, and
distilled students far above chance; a second run reuses everything."""

from __future__ import annotations

import json

import pytest

from harkd.cli import main

SMALL_DATA = {
    "subjects": [1, 2, 3, 4, 5, 6, 7, 8],
    "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]},
}


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "qs"
    data = json.dumps(SMALL_DATA, separators=(",", ":"))
    overrides = [
        f"output_dir={out}",
        "seeds=[0,1]",
        f"teacher_overrides={{train: {{epochs: 3, threads: 1}}, data_overrides: {data}}}",
        f"student_overrides={{train: {{epochs: 4, threads: 1}}, data_overrides: {data}}}",
        "bench.runs=200",
        "bench.warmup=20",
        "bench.batch=32",
    ]
    assert main(["demo", "--no-progress", *overrides]) == 0
    first = capsys.readouterr().out

    for name in ("report.md", "summary.json", "confusion_best_student.png", "f1_vs_latency.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["rows"]}
    assert set(rows) == {"teacher", "none", "iekd", "sk"}
    chance = 1 / 6
    for label in ("iekd", "sk"):
        mean_f1, _ = rows[label]["test_macro_f1"]
        assert mean_f1 > 3 * chance, (label, mean_f1)
        assert len(rows[label]["test_macro_f1_per_seed"]) == 2
        assert rows[label]["int8"]["size_ratio"] < 1
    for row in rows.values():
        assert row["p50_us"] > 0 and row["x_floor"] > 0 and row["macs"] > 0
    students = sorted((out / "students").iterdir())
    assert len(students) == 6
    for run in students:
        for artefact in ("model.safetensors", "model.json", "metrics.json", "model.onnx",
                         "model.int8.onnx", "confusion_test.png", "curve.png"):
            assert (run / artefact).is_file(), (run, artefact)
    report = (out / "report.md").read_text()
    assert "| iekd |" in report and "× floor" in report
    assert "iekd" in first and "teacher" in first

    # a second run trains, exports and measures nothing again
    assert main(["demo", "--no-progress", *overrides]) == 0
    second = capsys.readouterr().out
    assert "reusing" in second
    assert second.count("reusing the latency measurement") == 1 + 3 + 3
    assert json.loads((out / "summary.json").read_text())["rows"] == summary["rows"]

    # an export written by an older exporter is redone, not reused
    record = students[0] / "export.json"
    stale = json.loads(record.read_text())
    stale["export_format"] -= 1
    record.write_text(json.dumps(stale))
    assert main(["demo", "--no-progress", *overrides]) == 0
    third = capsys.readouterr().out
    assert third.count("reusing the ONNX export") == 1 + 6 - 1  # teacher + students
    assert json.loads(record.read_text())["export_format"] == stale["export_format"] + 1
