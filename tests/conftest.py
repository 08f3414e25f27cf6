"""Session fixtures shared by the whole suite, built from the real UCI HAPT package data."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.config import DataConfig, load_data_config
from data_prep.recording import Recording
from data_prep.windowset import WindowSet

REPO = Path(__file__).resolve().parents[1]
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
#: 8 subjects: 2 test (UCI-HAR test subjects), 2 validation, 4 training
SMALL_OVERRIDES = [
    "subjects=[1, 2, 3, 4, 5, 6, 7, 8]",
    "split.test_subjects=[2, 4]",
    "split.val_subjects=[3, 5]",
]


def hapt_quick_small_config() -> DataConfig:
    """hapt-quick restricted to `SMALL_OVERRIDES`'s 8 subjects."""
    return load_data_config(HAPT_QUICK, SMALL_OVERRIDES)


@pytest.fixture(scope="session")
def hapt_quick_small(tmp_path_factory: pytest.TempPathFactory) -> WindowSet:
    """hapt-quick on 8 real HAPT subjects (train 1, 6, 7, 8; val 3, 5; test 2, 4), 2,608 windows."""
    from data_prep.pipeline import prepare

    return prepare(
        hapt_quick_small_config(), cache_dir=tmp_path_factory.mktemp("cache"), progress=False
    )


@pytest.fixture(scope="session")
def hapt_raw_recordings() -> list[Recording]:
    """All 61 experiments of the real HAPT package data, as the `hapt` reader returns them."""
    from data_prep.readers import get_reader

    return get_reader("hapt")()
