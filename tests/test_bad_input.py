"""Bad input to every command: one line naming the file or field, a documented exit status
(`harkd.cli.EXIT_CODES`), no traceback, nothing half-written.

The commands run in-process through `harkd.cli.main` on a tiny table-reader data set written
here (6 subjects, acc + gyro at 50 Hz, three activities; subject 6 also jumps) and a one-epoch
teacher trained on it; only the Ctrl-C case needs a real process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from harkd.cli import COMMANDS, EXIT_CODES, main

RATE = 50
#: activity -> (amplitude, frequency Hz) of a sinusoid on every channel, plus noise
ACTIVITIES = {"walk": (1.0, 2.0), "sit": (0.05, 0.0), "run": (2.0, 3.5), "jump": (3.0, 1.0)}
LABELS = {1: "walk", 2: "sit", 3: "run"}
CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
SMALL_CNN = {"widths": [8, 16], "kernel": 3}


def write_table(path: Path) -> None:
    """12 s of each activity per subject (subject 6 also jumps), one CSV row per sample."""
    rng = np.random.default_rng(0)
    frames = []
    for subject in range(1, 7):
        for activity in ["walk", "sit", "run"] + (["jump"] if subject == 6 else []):
            amp, freq = ACTIVITIES[activity]
            t = np.arange(12 * RATE) / RATE
            x = amp * np.sin(2 * np.pi * freq * t)[:, None] + rng.normal(0, 0.1, (len(t), 6))
            frame = pd.DataFrame(x, columns=CHANNELS)
            frame.insert(0, "user", subject)
            frame["activity"] = activity
            frames.append(frame)
    pd.concat(frames).to_csv(path, index=False)


def protocol(csv: Path, **changes: Any) -> dict[str, Any]:
    raw = {
        "name": "tiny",
        "reader": "table",
        "path": str(csv),
        "reader_options": {
            "columns": {
                "subject": "user", "label": "activity",
                "channels": {c: c for c in CHANNELS},
                "units": {c: ("g" if c.startswith("acc") else "rad/s") for c in CHANNELS},
                "groups": {"acc": CHANNELS[:3], "gyro": CHANNELS[3:]},
            },
            "rate_hz": RATE,
            "label_map": {"walk": 1, "sit": 2, "run": 3, "jump": 4},
        },
        "groups": ["acc", "gyro"],
        "window": {"length": 128, "step": 64, "unit": "samples"},
        "labels": dict(LABELS),
        "split": {"kind": "fixed", "test_subjects": [5, 6], "val_subjects": [4]},
    }
    return raw | changes


def run_config(data: Path, root: Path, **changes: Any) -> dict[str, Any]:
    raw = {
        "name": "student",
        "data": str(data),
        "model": {"name": "tiny", "view": ["acc"]},
        "train": {"epochs": 1, "batch_size": 32, "seed": 0, "patience": None, "threads": 1},
        "output_dir": str(root),
    }
    return raw | changes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The data set, its protocols, run configs and a finished one-epoch acc+gyro teacher."""
    from harkd.config import validate_run_config
    from harkd.train.loop import fit

    root = tmp_path_factory.mktemp("bad-input")
    csv = root / "tiny.csv"
    write_table(csv)
    paths = {"root": root, "csv": csv, "cache": root / "cache"}
    protocols = {
        "data": protocol(csv),
        "two_classes": protocol(csv, labels={1: "walk", 2: "sit"}),
        "jump": protocol(csv, labels={**LABELS, 4: "jump"}),
    }
    for name, raw in protocols.items():
        paths[name] = root / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(raw))
    teacher = {"name": "cnn1d", "view": ["acc", "gyro"], "params": SMALL_CNN}
    os.environ["HARKD_CACHE"] = str(paths["cache"])
    try:
        fit(validate_run_config(run_config(paths["data"], root, name="teacher", model=teacher),
                                source="test"),
            run_dir=root / "teacher", progress=False, cache_dir=paths["cache"])
    finally:
        del os.environ["HARKD_CACHE"]
    paths["teacher"] = root / "teacher"
    paths["train"] = root / "train.yaml"
    paths["train"].write_text(yaml.safe_dump(run_config(paths["data"], root / "runs")))
    kd = run_config(paths["data"], root / "runs", name="kd",
                    teachers={"t": {**teacher, "run_dir": str(paths["teacher"])}},
                    distill={"method": "kd"})
    paths["kd"] = root / "kd.yaml"
    paths["kd"].write_text(yaml.safe_dump(kd))
    return paths


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands without --cache-dir (export, bench) use $HARKD_CACHE, never ./.cache."""
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path_factory.getbasetemp() / "bad-input-cache"))


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, *needles: str,
            absent: tuple[Path, ...] = ()) -> str:  # fmt: skip
    """Run `harkd ARGV`; assert the exit status, one error line holding every needle, no
    traceback, no 'wrote', and that nothing in `absent` (nor a temporary file beside it)
    exists. Returns the line."""
    argv = [str(a) for a in argv]
    rc = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert rc == code, (rc, captured.err)
    assert code in EXIT_CODES
    assert "Traceback" not in captured.err and "wrote" not in captured.out
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"harkd {argv[0]}: " if argv[0] in COMMANDS else "harkd: ")
    for needle in needles:
        assert needle in line, (needle, line)
    for path in absent:
        assert not path.exists(), path
        if path.parent.is_dir():
            assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")]
    return line


# -- option values: argparse's refusal in one line naming the option (exit 2) ------------------

OPTION_CASES = [
    (["bench", "m.onnx", "--runs", "0"], "--runs", "expected an integer >= 1, got '0'"),
    (["bench", "m.onnx", "--runs", "-3"], "--runs", ">= 1"),
    (["bench", "m.onnx", "--runs", "many"], "--runs", "expected an integer, got 'many'"),
    (["bench", "m.onnx", "--threads", "0"], "--threads", ">= 1"),
    (["bench", "m.onnx", "--warmup", "-1"], "--warmup", ">= 0"),
    (["bench", "m.onnx", "--batch", "0"], "--batch", ">= 1"),
    (["bench", "m.onnx", "--hop", "0"], "--hop", "expected a number > 0"),
    (["bench", "m.onnx", "--hop", "nan"], "--hop", "expected a number > 0"),
    (["bench", "m.onnx", "--shape", "3"], "--shape", "CHANNELS,TIME"),
    (["bench", "m.onnx", "--shape", "3,x"], "--shape", "CHANNELS,TIME"),
    (["bench", "m.onnx", "--shape", "0,128"], "--shape", "CHANNELS,TIME"),
    (["grid", "g.yaml", "--workers", "0"], "--workers", ">= 1"),
    (["grid", "g.yaml", "--threads", "0"], "--threads", ">= 1"),
    (["grid", "g.yaml", "--cpus-per-run", "0"], "--cpus-per-run", ">= 1"),
    (["grid", "g.yaml", "--runs-per-gpu", "0"], "--runs-per-gpu", ">= 1"),
    (["grid", "g.yaml", "--gpus", "0,x"], "--gpus", "expected GPU indices"),
    (["grid", "g.yaml", "--executor", "slurm"], "--executor", "invalid choice"),
    (["demo", "--workers", "0"], "--workers", ">= 1"),
    (["export", "run", "--calibration", "0"], "--calibration", ">= 1"),
    (["export", "run", "--format", "int4"], "--format", "invalid choice"),
    (["augment", "--show", "jitter", "--n", "0"], "--n", ">= 1"),
    (["augment", "--show", "jitter", "--split", "everything"], "--split", "invalid choice"),
    (["augment", "--n", "2"], "--list", "one of the arguments --list --show is required"),
    (["evaluate", "run"], "--data", "required"),
    (["evaluate", "run", "--data", "d.yaml", "--threads", "0"], "--threads", ">= 1"),
    (["train", "t.yaml", "--threads", "0"], "--threads", ">= 1"),
    (["distill", "d.yaml", "--threads", "two"], "--threads", "expected an integer"),
    (["evaluate", "run", "--data", "d.yaml", "--split", "nope"], "--split", "invalid choice"),
    (["train", "--run-dir"], "--run-dir", "expected one argument"),
    (["prep", "--describe"], "--describe", "expected one argument"),
]


@pytest.mark.parametrize(("argv", "option", "what"), OPTION_CASES,
                         ids=[" ".join(c[0][:1] + c[0][2:]) for c in OPTION_CASES])
def test_bad_option_value_is_one_line_naming_it(argv, option, what, capsys) -> None:
    line = refused(capsys, argv, 2, option, what)
    assert line.endswith(f"(see harkd {argv[0]} --help)")


def test_unknown_command_is_one_line(capsys) -> None:
    refused(capsys, ["tarin", "x.yaml"], 2, "invalid choice: 'tarin'")


# -- configs (exit 2) --------------------------------------------------------------------------


def test_train_without_a_config(capsys) -> None:
    refused(capsys, ["train"], 2, "give a run config YAML")


@pytest.mark.parametrize("command", ["train", "distill", "prep", "grid"])
def test_missing_config_file_names_it(command, tmp_path, capsys) -> None:
    refused(capsys, [command, tmp_path / "nope.yaml"], 2, f"{tmp_path / 'nope.yaml'}", "not found")


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("train.epochz=1", ("train.epochz",)),
        ("train.epochs=many", ("train.epochs",)),
        ("model.name=resnet9000", ("model.name", "unknown model 'resnet9000'")),
        ("augment.policy=jiter", ("augment.policy", "unknown policy ['jiter']")),
        ("augment.policy=jitter+rotashun", ("augment.policy", "['rotashun']")),
        ("distill.method=nokd", ("distill", "nokd")),
        ("data=/nowhere/protocol.yaml", ("/nowhere/protocol.yaml", "not found")),
    ],
)
def test_bad_run_config_is_refused_before_any_data_is_read(override, needles, tiny, tmp_path,
                                                           capsys) -> None:  # fmt: skip
    run = tmp_path / "run"
    refused(capsys, ["train", tiny["train"], override, "--run-dir", run,
                     "--cache-dir", tmp_path / "cache"], 2, *needles,
            absent=(run, tmp_path / "cache"))


def test_bad_distill_params_are_named(tiny, tmp_path, capsys) -> None:
    refused(capsys, ["distill", tiny["kd"], "distill.params.alpah=1", "--run-dir", tmp_path / "r"],
            2, "alpah", absent=(tmp_path / "r",))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("!!python/object/apply:os.system ['echo owned']\n", "python"),
        ("- a list\n- not a mapping\n", "mapping"),
        ("name: [unclosed\n", "YAML"),
    ],
    ids=["python-tag", "not-a-mapping", "broken-yaml"],
)
def test_unsafe_or_broken_yaml_is_one_line(text, needle, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    line = refused(capsys, ["prep", bad, "--cache-dir", tmp_path / "c"], 2, str(bad))
    assert needle.lower() in line.lower()


def test_prep_override_typo_lists_the_allowed_keys(tiny, tmp_path, capsys) -> None:
    refused(capsys, ["prep", tiny["data"], "window.lenght=3", "--cache-dir", tmp_path / "c"], 2,
            "window.lenght", "allowed keys", absent=(tmp_path / "c",))


def test_prep_needs_a_config_and_known_readers(capsys) -> None:
    refused(capsys, ["prep"], 2, "give a data protocol YAML")
    refused(capsys, ["prep", "--describe", "tabel"], 2, "unknown reader 'tabel'")


def test_augment_show_needs_data_and_a_known_policy(tiny, tmp_path, capsys) -> None:
    out = tmp_path / "a.png"
    refused(capsys, ["augment", "--show", "jitter", "--out", out], 2, "--data", absent=(out,))
    refused(capsys, ["augment", "--show", "jiter", "--data", tiny["data"], "--out", out], 2,
            "--show", "unknown augmentation policy ['jiter']", absent=(out,))


def _grid(tmp_path: Path, data: Path, **base: Any) -> Path:
    spec = {"name": "g", "output_dir": str(tmp_path / "out"),
            "base": run_config(data, tmp_path) | base, "axes": {"seed": [0, 1]}}
    path = tmp_path / "g.yaml"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize(
    ("base", "needles"),
    [
        ({"augment": {"policy": "jiter"}}, ("augment.policy", "['jiter']")),
        ({"distill": {"method": "nokd"}}, ("distill", "nokd")),
        ({"model": {"name": "resnet9000", "view": ["acc"]}}, ("model.name", "resnet9000")),
    ],
    ids=["augmentation", "method", "model"],
)
def test_grid_refuses_what_training_would_refuse_before_anything_runs(
    base, needles, dry_run, tiny, tmp_path, capsys
) -> None:
    spec = _grid(tmp_path, tiny["data"], **base)
    argv = ["grid", spec, "--no-progress"] + (["--dry-run"] if dry_run else [])
    refused(capsys, argv, 2, str(spec), "(run g-seed=", *needles, absent=(tmp_path / "out",))


def test_grid_dry_run_refuses_a_data_protocol_that_does_not_load(tiny, tmp_path, capsys) -> None:
    spec = _grid(tmp_path, tmp_path / "missing.yaml")
    refused(capsys, ["grid", spec, "--dry-run"], 2, "missing.yaml", "not found",
            absent=(tmp_path / "out",))


def test_grid_unknown_profile_and_select(tiny, tmp_path, capsys) -> None:
    spec = _grid(tmp_path, tiny["data"])
    refused(capsys, ["grid", spec, "--dry-run", "--profile", "quick"], 2, "unknown profile")
    refused(capsys, ["grid", spec, "--dry-run", "--select", "seed"], 2, "--select")


# -- silent wrong results, refused (exit 2, or 1 for data) -----------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["data_overrides.window.length=64", "data_overrides.window.step=32"], "window:"),
        (["data={two_classes}"], "classes:"),
        (["data_overrides.split.val_subjects=[3]"], "normalisation:"),
        (["teachers.t.view=[acc]"], "view:"),
    ],
    ids=["window", "classes", "normalisation", "view"],
)
def test_distill_refuses_a_teacher_that_does_not_fit(overrides, field, tiny, tmp_path,
                                                     capsys) -> None:  # fmt: skip
    run = tmp_path / "kd"
    overrides = [o.format(two_classes=tiny["two_classes"]) for o in overrides]
    refused(capsys, ["distill", tiny["kd"], *overrides, "--run-dir", run, "--no-progress",
                     "--cache-dir", tiny["cache"]],
            2, f"teachers.t ({tiny['teacher']}) does not fit tiny", field,
            absent=(run / "model.safetensors", run / "metrics.json"))


@pytest.mark.parametrize(
    ("data", "overrides", "field"),
    [
        ("two_classes", [], "classes:"),
        ("data", ["window.length=64", "window.step=32"], "window:"),
        ("data", ["split.test_subjects=[1]", "split.val_subjects=[4]"], "test subjects:"),
    ],
    ids=["classes", "window", "test-subjects"],
)
def test_evaluate_refuses_data_the_run_does_not_fit(data, overrides, field, tiny, tmp_path,
                                                    capsys) -> None:  # fmt: skip
    out = tmp_path / "m.json"
    refused(capsys, ["evaluate", tiny["teacher"], "--data", tiny[data], *overrides,
                     "--out", out, "--cache-dir", tiny["cache"]], 2, field, absent=(out,))


def test_export_int8_refuses_data_with_another_class_list(tiny, tmp_path, capsys) -> None:
    before = sorted(p.name for p in tiny["teacher"].iterdir())
    refused(capsys, ["export", tiny["teacher"], "--int8", "--data", tiny["two_classes"]], 2,
            "classes: the data has ['walk', 'sit']")
    assert sorted(p.name for p in tiny["teacher"].iterdir()) == before  # no onnx, no export.json


def test_a_class_without_training_windows_is_refused(tiny, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    refused(capsys, ["train", tiny["train"], f"data={tiny['jump']}", "--run-dir", run,
                     "--no-progress", "--cache-dir", tiny["cache"]],
            2, "split: class(es) ['jump']", "no training windows", "training subjects",
            absent=(run / "model.safetensors", run / "metrics.json"))
    assert main(["prep", str(tiny["jump"]), "--cache-dir", str(tiny["cache"]),
                 "--no-progress"]) == 0  # prep shows the data, and says it
    assert "WARNING   class(es) ['jump'] have no training windows" in capsys.readouterr().out


def _hapt_raw(root: Path, labels: str) -> Path:
    raw = root / "RawData"
    raw.mkdir(parents=True)
    rows = "\n".join("0.1 0.2 0.3" for _ in range(400))
    (raw / "acc_exp01_user01.txt").write_text(rows)
    (raw / "gyro_exp01_user01.txt").write_text(rows)
    (raw / "labels.txt").write_text(labels)
    return root


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ("1 1 5 0 199\n1 1 4 150 299\n", "labels.txt:2: segment 150..299 overlaps line 1's 0..199"),
        ("1 1 4 150 299\n1 1 5 0 199\n", "labels.txt:2: segment 0..199 overlaps line 1's 150..299"),
        ("1 1 5 0 199\n1 1 5 199 199\n", "labels.txt:2: segment 199..199 overlaps"),
        ("1 1 5 0 499\n", "ends past the 400 samples"),
        ("1 1 5 10\n", "labels.txt:1: expected 5 columns"),
        ("1 1 42 0 10\n", "activity 42 outside the HAPT label map"),
    ],
    ids=["overlap", "overlap-earlier-start", "shared-sample", "past-end", "columns", "activity"],
)
def test_uci_hapt_labels_errors_name_the_row(labels, needle, tmp_path, capsys) -> None:
    root = _hapt_raw(tmp_path / "hapt", labels)
    refused(capsys, ["prep", "configs/data/hapt-quick.yaml", "reader=uci_hapt_raw",
                     f"path={root}", "--cache-dir", tmp_path / "c", "--no-progress"],
            1, needle, absent=(tmp_path / "c",))


def test_consecutive_label_segments_are_not_an_overlap(tmp_path) -> None:
    from data_prep.readers import get_reader

    root = _hapt_raw(tmp_path / "hapt", "1 1 5 0 199\n1 1 4 200 299\n")
    (rec,) = get_reader("uci_hapt_raw")(root)
    assert (rec.labels[:200] == 5).all() and (rec.labels[200:300] == 4).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_boolean_column_is_not_read_as_acceleration(suffix, tiny, tmp_path, capsys) -> None:
    frame = pd.read_csv(tiny["csv"]).head(2000)
    frame["acc_y"] = frame["acc_y"] > 0
    path = tmp_path / f"bool{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    where = f"{path}:2" if suffix == ".csv" else f"{path} row 1"
    refused(capsys, ["prep", tiny["data"], f"path={path}", "--cache-dir", tmp_path / "c",
                     "--no-progress"], 1, where, "column 'acc_y': boolean value", "number",
            absent=(tmp_path / "c",))


def test_non_numeric_cell_names_file_line_and_column(tiny, tmp_path, capsys) -> None:
    frame = pd.read_csv(tiny["csv"]).head(500).astype({"gyro_x": object})
    frame.loc[7, "gyro_x"] = "n/a?"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    refused(capsys, ["prep", tiny["data"], f"path={path}", "--cache-dir", tmp_path / "c"], 1,
            f"{path}:9", "column 'gyro_x'", absent=(tmp_path / "c",))


# -- the file system (exit 3): missing, a file where a folder is expected, full disk, read-only


def test_augment_to_a_full_disk_fails_and_does_not_say_wrote(tiny, capsys) -> None:
    refused(capsys, ["augment", "--show", "jitter", "--data", tiny["data"], "--out", "/dev/full",
                     "--cache-dir", tiny["cache"]], 3, "/dev/full", "no space left on device")
    assert Path("/dev/full").is_char_device()  # written in place, never replaced


@pytest.mark.parametrize("where", ["file-as-folder", "folder-as-file"])
def test_augment_output_path_problems(where, tiny, tmp_path, capsys) -> None:
    (tmp_path / "plain").write_text("x")
    out = tmp_path / "plain" / "a.png" if where == "file-as-folder" else tmp_path
    hint = "where a folder is expected" if where == "file-as-folder" else (
        "a folder stands where a file is expected")
    refused(capsys, ["augment", "--show", "jitter", "--data", tiny["data"], "--out", out,
                     "--cache-dir", tiny["cache"]], 3, str(tmp_path), hint)
    assert [p.name for p in tmp_path.iterdir()] == ["plain"]


def test_evaluate_out_on_a_full_disk_and_read_only_folder(tiny, tmp_path, monkeypatch,
                                                          capsys) -> None:  # fmt: skip
    argv = ["evaluate", tiny["teacher"], "--data", tiny["data"], "--cache-dir", tiny["cache"],
            "--device", "cpu"]
    refused(capsys, [*argv, "--out", "/dev/full"], 3, "/dev/full", "no space left")
    import errno

    import harkd.train.rundir as rundir

    def read_only(src, dst):  # the folder turned read-only between the write and the rename
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

    monkeypatch.setattr(rundir.os, "replace", read_only)
    out = tmp_path / "m.json"
    refused(capsys, [*argv, "--out", out], 3, str(out), "read-only file system", absent=(out,))
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_simulated_enospc_mid_write_leaves_nothing(tiny, tmp_path, monkeypatch, capsys) -> None:
    import errno

    import harkd.train.rundir as rundir

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(rundir.os, "fsync", full)
    out = tmp_path / "m.json"
    refused(capsys, ["evaluate", tiny["teacher"], "--data", tiny["data"], "--out", out,
                     "--cache-dir", tiny["cache"], "--device", "cpu"],
            3, str(out), "no space left", absent=(out,))
    assert list(tmp_path.iterdir()) == []


def test_train_run_dir_under_a_file(tiny, tmp_path, capsys) -> None:
    (tmp_path / "plain").write_text("x")
    refused(capsys, ["train", tiny["train"], "--run-dir", tmp_path / "plain" / "run",
                     "--no-progress", "--cache-dir", tiny["cache"]], 3,
            str(tmp_path / "plain"), "a file stands where a folder is expected")


def test_prep_cache_dir_under_a_file(tiny, tmp_path, capsys) -> None:
    (tmp_path / "plain").write_text("x")
    refused(capsys, ["prep", tiny["data"], "--cache-dir", tmp_path / "plain" / "c",
                     "--no-progress"], 3, str(tmp_path / "plain"))


def test_grid_output_dir_under_a_file(tiny, tmp_path, capsys) -> None:
    (tmp_path / "plain").write_text("x")
    spec = _grid(tmp_path, tiny["data"])
    refused(capsys, ["grid", spec, "--output-dir", tmp_path / "plain" / "g", "--no-progress"], 3,
            str(tmp_path / "plain"))


def test_bench_json_to_a_full_disk(tiny, tmp_path, capsys) -> None:
    from harkd.deploy.export import export_onnx
    from harkd.train.checkpoint import load_run_model

    model, card = load_run_model(tiny["teacher"])
    onnx = export_onnx(model, tmp_path / "t.onnx", *card.input_shape, {})
    refused(capsys, ["bench", onnx, "--runs", "3", "--warmup", "0", "--batch", "2",
                     "--json", "/dev/full"], 3, "/dev/full", "no space left")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["prep", "configs/data/hapt-quick.yaml", "reader=uci_hapt_raw", "path=/nowhere"],
         "/nowhere"),
        (["report", "/nowhere/grid"], "/nowhere/grid"),
    ],
    ids=["prep-source", "report-grid"],
)
def test_missing_inputs_are_named(argv, needle, tmp_path, capsys) -> None:
    refused(capsys, [*argv, *(["--cache-dir", tmp_path / "c"] if argv[0] == "prep" else [])],
            3, needle)


# -- corrupt inputs (named; they already were) --------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated-weights", "broken-card", "no-card"])
def test_damaged_run_directory_is_named(damage, tiny, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("model.json", "model.safetensors", "config.yaml"):
        (run / name).write_bytes((tiny["teacher"] / name).read_bytes())
    if damage == "truncated-weights":
        data = (run / "model.safetensors").read_bytes()
        (run / "model.safetensors").write_bytes(data[: len(data) // 2])
        needle = "model.safetensors"
    elif damage == "broken-card":
        (run / "model.json").write_text("{not json")
        needle = "model.json"
    else:
        (run / "model.json").unlink()
        needle = "model.json"
    refused(capsys, ["evaluate", run, "--data", tiny["data"], "--cache-dir", tiny["cache"]], 2,
            needle)


def test_bench_garbage_onnx_is_named(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    refused(capsys, ["bench", bad, "--runs", "3"], 1, "bad.onnx")


# -- the dispatcher: exit-status table, --debug, internal errors, Ctrl-C -----------------------


def test_help_documents_every_exit_status(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit status:" in out and "--debug" in out
    for code in EXIT_CODES:
        assert f"\n  {code:<4d} " in out


def test_debug_adds_the_traceback(tiny, tmp_path, capsys) -> None:
    argv = ["train", str(tiny["train"]), "model.name=resnet9000"]
    assert main(["--debug", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("harkd train: ")
    assert main([*argv, "--debug"]) == 2  # after the command too
    assert "Traceback" in capsys.readouterr().err


def test_a_bug_is_exit_4_with_one_line(monkeypatch, capsys) -> None:
    import harkd.commands.report as report

    def bug(args):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(report, "run", bug)
    refused(capsys, ["report", "x"], 4, "internal error TypeError: unsupported operand",
            "--debug")


def test_ctrl_c_in_process_is_one_line_and_130(monkeypatch, capsys) -> None:
    import harkd.commands.report as report

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "run", interrupted)
    assert refused(capsys, ["report", "x"], 130) == "harkd report: interrupted"


def test_ctrl_c_on_a_real_process(tiny, tmp_path) -> None:
    """SIGINT while `harkd bench` is timing: one line, exit 130, no traceback."""
    from harkd.deploy.export import export_onnx
    from harkd.train.checkpoint import load_run_model

    model, card = load_run_model(tiny["teacher"])
    onnx = export_onnx(model, tmp_path / "t.onnx", *card.input_shape, {})
    # Python's own SIGINT handler, as in a terminal: a test run started in the background by a
    # non-interactive shell (`make test &`) inherits SIGINT ignored, and so would the child.
    # The command's modules are imported before `ready`, so that on a loaded machine the signal
    # lands in the timing loop rather than in an import.
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "import harkd.commands.bench, harkd.deploy.latency, onnxruntime; "
            "from harkd.cli import main; print('ready', flush=True); "
            "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    argv = ["bench", str(onnx), "--runs", "100000000", "--warmup", "0"]
    with subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(2)  # inside main: the session is built, then timing
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()  # a child that ignored the signal must not time on after the test
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == ["harkd bench: interrupted"]
