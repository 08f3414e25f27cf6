"""`harkd prep`: what it prints, cache hits, reader listing, errors; and the data config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.config import load_data_config
from data_prep.readers import get_reader, list_readers
from harkd.cli import main
from harkd.config import ConfigError

HAPT_QUICK = Path(__file__).resolve().parents[2] / "configs" / "data" / "hapt-quick.yaml"


@pytest.fixture
def rawdata_root(tmp_path, rawdata_writer, make_recording):
    recs = [
        make_recording([1] * 300 + [-1] * 100 + [2] * 300, user=1, exp=1),
        make_recording([4] * 400 + [5] * 300, user=2, exp=2, seed=1),
        make_recording([6] * 500 + [3] * 300, user=3, exp=3, seed=2),
        make_recording([1] * 50, user=4, exp=4, seed=3),
    ]
    return rawdata_writer(tmp_path / "UCI_HAPT", recs).parent


def test_prep_prints_read_windows_drops_and_cache(rawdata_root, tmp_path, capsys):
    argv = [
        "prep",
        str(HAPT_QUICK),
        "reader=uci_hapt_raw",
        f"path={rawdata_root}",
        "split.test_subjects=[3]",
        "split.val_subjects=[2]",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        f"read      uci_hapt_raw from {rawdata_root}: 4 recordings, 4 subjects"
    )
    assert "2,250 samples" in out[0]
    channels = "acc ['acc_x', 'acc_y', 'acc_z'], gyro ['gyro_x', 'gyro_y', 'gyro_z']"
    assert out[1] == f"channels  6 at 50 Hz: {channels}"
    table = {line.split()[0]: line.split()[1:] for line in out[4:13]}
    assert table["class"] == ["train", "val", "test"]
    assert table["WALKING"] == ["4", "0", "0"]  # starts 0..192: >= 80% WALKING
    assert table["SITTING"] == ["0", "5", "0"]
    assert table["LAYING"] == ["0", "0", "7"]
    assert table["subjects"] == ["1", "1", "1"]
    dropped = next(line for line in out if line.startswith("dropped"))
    assert (
        "recordings_shorter_than_window: 1" in dropped
        and "samples_in_short_recordings: 50" in dropped
    )
    assert out[-1].endswith("(written)")
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(hit)")


def test_list_readers_and_errors(tmp_path, capsys):
    assert main(["prep", "--list-readers"]) == 0
    listing = capsys.readouterr().out
    assert "hapt            UCI HAPT pickle from the PyPI package" in listing
    assert "uci_hapt_raw    UCI HAPT original RawData/" in listing
    assert main(["prep", str(HAPT_QUICK), "window.lenght=3", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'window.lenght'" in err and "allowed keys here: ['length', 'step'" in err
    assert main(["prep", str(HAPT_QUICK), "reader=uci_hapt_raw", f"path={tmp_path}"]) == 3
    assert "no labels.txt" in capsys.readouterr().err
    assert main(["prep"]) == 2


def test_list_readers_prints_every_declared_option(capsys):
    assert main(["prep", "--list-readers"]) == 0
    listing = capsys.readouterr().out
    sections = {}  # reader name -> its option lines, as printed
    for line in listing.splitlines():
        if line[:1].strip():
            name = line.split()[0]
            sections[name] = []
        else:
            sections[name].append(line.strip())
    assert set(sections) == set(list_readers())
    assert any(
        line.startswith("columns (dict[str, Any], required): the column map: subject (required)")
        for line in sections["table"]
    )
    assert sections["uci_hapt_raw"] == ["(no options)"]
    for name, reader in list_readers().items():
        options = reader.options.describe()
        for option in options:
            assert option.description, f"{name}.{option.name} has no description"
        assert [line.split(" (")[0] for line in sections[name] if line != "(no options)"] == [
            o.name for o in options
        ]


def test_describe_prints_the_format_and_options(capsys):
    assert main(["prep", "--describe", "table"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Reader `table`: any CSV or Parquet table")
    assert "channels: {acc_x: ax, acc_y: ay, acc_z: az}" in out  # the column map, in full
    assert "\n  timestamp_unit (str, default 's'): unit of the timestamp column" in out
    assert main(["prep", "--describe", "tabel"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harkd prep: unknown reader 'tabel'; known readers: [")
    assert len(err.splitlines()) == 1


def test_unknown_reader_option_is_one_line_naming_it(tmp_path, capsys):
    argv = ["prep", str(HAPT_QUICK), "reader_options.check_total=true", "--no-progress"]
    assert main([*argv, "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "reader 'hapt'" in err and "unknown key 'check_total'" in err
    assert "['check_totals']" in err
    assert not list(tmp_path.iterdir())  # refused before anything was read or cached
    table = get_reader("table")
    with pytest.raises(ConfigError) as info:
        table(tmp_path / "x.csv", colums={})
    message = str(info.value)
    assert "\n" not in message and "unknown key 'colums'" in message
    assert "allowed keys here: ['columns', 'label_map', 'rate_hz', 'timestamp_unit']" in message
    with pytest.raises(ConfigError, match="timestamp_unit: Input should be a valid string"):
        table(tmp_path / "x.csv", columns={}, timestamp_unit=3)


def test_prep_finds_shipped_configs_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["prep", "configs/data/hapt-quick.yaml", "reader=uci_hapt_raw", "path=."]) == 3
    assert "no labels.txt" in capsys.readouterr().err  # the shipped protocol was loaded
    assert main(["prep", "configs/data/hapt-quik.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("harkd prep: configs/data/hapt-quik.yaml: config file not found")
    assert str(tmp_path) in err and "shipped configs" in err


def test_console_script_runs():
    script = Path(sys.executable).with_name("harkd")
    done = subprocess.run(
        [str(script), "prep", "--list-readers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "uci_hapt_raw" in done.stdout


def test_data_config_overrides_and_types():
    cfg = load_data_config(
        HAPT_QUICK, ["split.test_subjects=[1, 2]", "window={length: 2.56, step: 1.28, unit: s}"]
    )
    assert cfg.split.test_subjects == ["1", "2"]
    assert cfg.window.in_samples(50.0) == (128, 64, 64)
    assert list(cfg.labels) == [1, 2, 3, 4, 5, 6] and cfg.class_names()[-1] == "LAYING"
    assert cfg.config_hash() != load_data_config(HAPT_QUICK).config_hash()
    with pytest.raises(ConfigError, match="must not map -1"):
        load_data_config(HAPT_QUICK, ["labels.-1=unlabelled"])
    with pytest.raises(ConfigError, match="null_class: Input should be 'drop' or 'keep'"):
        load_data_config(HAPT_QUICK, ["null_class=maybe"])
