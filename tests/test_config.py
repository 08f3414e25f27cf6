"""Run configs: every shipped config validates; bad keys and values give messages that name the
key and list what is allowed, from the loader and from `harkd train`."""

from __future__ import annotations

from pathlib import Path

import pytest

from harkd.cli import main
from harkd.config import ConfigError, load_run_config

REPO = Path(__file__).resolve().parents[1]
TRAIN_CONFIGS = sorted((REPO / "configs" / "train").glob("*.yaml"))
#: run-config overrides putting a run on the 8-subject subset of tests/conftest.py
SMALL_DATA = [
    f"data={REPO / 'configs' / 'data' / 'hapt-quick.yaml'}",
    "data_overrides={subjects: [1, 2, 3, 4, 5, 6, 7, 8], "
    "split: {test_subjects: [2, 4], val_subjects: [3, 5]}}",
]


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.stem)
def test_shipped_train_configs_validate(path: Path) -> None:
    cfg = load_run_config(path)
    assert cfg.distill.method == "none" and (REPO / cfg.data).is_file()


def test_all_five_train_configs_exist() -> None:
    names = {p.stem for p in TRAIN_CONFIGS}
    assert names >= {"teacher_cnn1d", "teacher_transformer", "student_tiny", "deepconvlstm",
                     "tinyhar"}  # fmt: skip


def test_overrides_nest_and_parse_yaml_values() -> None:
    cfg = load_run_config(
        TRAIN_CONFIGS[0], ["train.epochs=3", "model.view=[acc]", "train.patience=null"]
    )
    assert cfg.train.epochs == 3 and cfg.model.view == ["acc"] and cfg.train.patience is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epoch=3", ["unknown key 'train.epoch'", "'epochs'", "'batch_size'"]),
        ("modle.name=tiny", ["unknown key 'modle'", "'model'", "'teachers'"]),
        ("train.schedule=linear", ["train.schedule", "'cosine'", "'onecycle'", "'linear'"]),
        ("train.epochs=0", ["train.epochs", "greater than or equal to 1"]),
        ("augment.teacher_input=noisy", ["augment.teacher_input", "'same'", "'clean'"]),
    ],
)
def test_bad_config_messages(override: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_run_config(TRAIN_CONFIGS[0], [override])
    for text in expected:
        assert text in str(err.value)


def test_malformed_override() -> None:
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_run_config(TRAIN_CONFIGS[0], ["train.epochs"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.epoch=3", "unknown key 'train.epoch'"),
        ("model.name=no_such_model", "model.name: unknown model 'no_such_model'; known: ["),
        ("distill.method=no_such_method", "unknown distillation method 'no_such_method'"),
        ("augment.policy=no_such_policy", "augment.policy: unknown policy ['no_such_policy']"),
        ("model.view=[magnetometer]", "channel group(s) ['magnetometer'] are not in the data"),
        ("distill.params={alpha: 1}", "unknown parameter 'alpha'"),
    ],
)
def test_harkd_train_reports_bad_configs_with_exit_code_2(
    override: str,
    expected: str,
    tmp_path: Path,
    data_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["train", str(REPO / "configs" / "train" / "student_tiny.yaml"), override,
            f"output_dir={tmp_path}", *SMALL_DATA, "--no-progress", "--cache-dir",
            str(data_cache)]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err, err
