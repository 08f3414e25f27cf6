"""Promised errors for bad files and shapes; streaming decision counts; the comparison table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from harkd.cli import main
from harkd.deploy.latency import benchmark
from harkd.deploy.session import (
    InputShapeError,
    ModelFileError,
    load_onnx,
    make_session,
    resolve_shape,
)
from harkd.deploy.streaming import expected_decisions, stream
from harkd.report.cost import row, write_table
from harkd.report.plots import f1_latency


def test_missing_and_non_onnx_files_are_named(tmp_path):
    with pytest.raises(ModelFileError, match=r"nope\.onnx: no such file \(expected an ONNX"):
        load_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf\n" * 20)
    with pytest.raises(ModelFileError, match=r"notes\.onnx: not .*ONNX model"):
        load_onnx(bad)


def test_mismatched_shape_names_both_shapes(tiny_onnx):
    session = make_session(tiny_onnx)
    assert resolve_shape(session) == (3, 128)
    expected = r"expects input \[\?, 3, 128\].*given \[batch, 6, 128\]"
    with pytest.raises(InputShapeError, match=expected):
        resolve_shape(session, (6, 128))
    with pytest.raises(InputShapeError, match=r"given \[batch, 3, 100\]"):
        benchmark(tiny_onnx, runs=5, warmup=1, batch=2, shape=(3, 100))


def test_cli_bench_reports_errors_and_results(tiny_onnx, tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    assert main(["bench", str(bad)]) == 1
    assert "bad.onnx: not a readable ONNX model" in capsys.readouterr().err
    assert main(["bench", str(tiny_onnx), "--shape", "6,128", "--runs", "5"]) == 1
    assert "the model expects input [?, 3, 128]" in capsys.readouterr().err
    out_json = tmp_path / "bench.json"
    argv = ["bench", str(tiny_onnx), "--runs", "50", "--warmup", "5", "--batch", "8",
            "--json", str(out_json)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "x floor p50" in printed and "batch 8" in printed
    assert out_json.is_file()


def test_streaming_counts_decisions_and_checks_channels(tiny_onnx):
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((1000, 6)).astype(np.float32)  # 20 s at 50 Hz, 6 channels
    res = stream(tiny_onnx, signals, 50.0, hop_s=1.0)  # channels from the file: [0, 1, 2]
    assert res.decisions == expected_decisions(1000, 128, 50) == (1000 - 128) // 50 + 1 == 18
    assert list(res.starts[:3]) == [0, 50, 100] and len(res.predictions) == 18
    assert res.recording_s == pytest.approx(20.0)
    assert 0 < res.real_time_factor < 1
    assert res.latency.p50_us <= res.latency.p99_us
    assert stream(tiny_onnx, signals, 50.0, hop_s=0.5).decisions == (1000 - 128) // 25 + 1
    assert expected_decisions(100, 128, 50) == 0
    with pytest.raises(InputShapeError, match=r"expects input \[\?, 3, 128\].*given \[batch, 4"):
        stream(tiny_onnx, signals, 50.0, channels=[0, 1, 2, 3])
    with pytest.raises(InputShapeError, match="fewer than one window"):
        stream(tiny_onnx, signals[:100], 50.0)


def test_comparison_table_and_plot(tiny_onnx, tmp_path):
    bench = benchmark(tiny_onnx, runs=20, warmup=2, batch=4)
    rows = [
        row("tiny", bench, "tiny", "student", 0.81),
        row("cnn1d", bench, "cnn1d", "teacher", 0.93, params=176870),
        row("tinyhar", bench, "tinyhar", "peer", None),
    ]
    write_table(rows, tmp_path / "t.md", tmp_path / "t.csv")
    md = (tmp_path / "t.md").read_text().splitlines()
    assert md[0].startswith("| name | model | role | macro_f1") and len(md) == 5
    with open(tmp_path / "t.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [r["name"] for r in table] == ["tiny", "cnn1d", "tinyhar"]
    assert table[1]["params"] == "176870" and table[2]["macro_f1"] == ""
    assert f1_latency(rows, tmp_path / "t.png") == 2
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
