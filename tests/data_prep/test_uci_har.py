"""The `uci_har` reader on small trees in the UCI HAR Dataset layout."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from data_prep.readers import get_reader
from data_prep.readers.uci_har import CHANNELS
from data_prep.recording import RecordingError

STEMS = [f"{s}_{a}" for s in ("total_acc", "body_gyro", "body_acc") for a in "xyz"]
LABELS = "1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n"


def fmt(v: float) -> str:
    """The files' number format, e.g. `1.0130000e+000` (three-digit exponent)."""
    return re.sub(r"e([+-])(\d\d)$", r"e\g<1>0\2", f"{v:.7e}")


def windows(signal: np.ndarray) -> np.ndarray:
    """[n, 128, 9] windows at step 64 of a [T, 9] signal."""
    return np.stack([signal[s : s + 128] for s in range(0, len(signal) - 127, 64)])


def write_split(root: Path, split: str, blocks: list[tuple[int, int, np.ndarray]]) -> None:
    """Write (subject, activity, windows [n, 128, 9]) blocks as one UCI-HAR split."""
    folder = root / split / "Inertial Signals"
    folder.mkdir(parents=True)
    x = np.concatenate([w for _, _, w in blocks])
    for c, stem in enumerate(STEMS):
        rows = ("  " + "  ".join(fmt(v) for v in row) for row in x[:, :, c])
        (folder / f"{stem}_{split}.txt").write_text("\n".join(rows) + "\n")
    for name, col in (("subject", 0), ("y", 1)):
        values = [str(b[col]) for b in blocks for _ in range(len(b[2]))]
        (root / split / f"{name}_{split}.txt").write_text("\n".join(values) + "\n")


def signal(n: int, seed: int) -> np.ndarray:
    """A [n, 9] float32 signal whose values survive the 8-digit text format exactly."""
    x = np.random.default_rng(seed).normal(size=(n, 9))
    return np.array([[float(fmt(v)) for v in row] for row in x], dtype=np.float32)


@pytest.fixture()
def har_tree(tmp_path):
    """Subject 1: walking (4 windows) then sitting (3); subject 3 (test): 2 runs of laying."""
    walk, sit, lay = signal(320, 0), signal(256, 1), signal(448, 2)
    (tmp_path / "activity_labels.txt").write_text(LABELS)
    write_split(tmp_path, "train", [(1, 1, windows(walk)), (1, 4, windows(sit))])
    lay_w = windows(lay)
    # windows 2 and 3 of the laying run were removed (as UCI-HAR drops windows): two runs
    write_split(tmp_path, "test", [(3, 6, lay_w[:2]), (3, 6, lay_w[4:])])
    return tmp_path, walk, sit, lay


def test_windows_are_joined_into_runs(har_tree):
    root, walk, sit, lay = har_tree
    recs = get_reader("uci_har")(root)
    assert [(r.subject, r.session, r.n_samples) for r in recs] == [
        ("1", "train-row1", 320),
        ("1", "train-row5", 256),
        ("3", "test-row1", 192),
        ("3", "test-row3", 192),
    ]
    np.testing.assert_array_equal(recs[0].signals, walk)
    np.testing.assert_array_equal(recs[1].signals, sit)
    np.testing.assert_array_equal(recs[2].signals, lay[:192])
    np.testing.assert_array_equal(recs[3].signals, lay[256:])
    assert [set(r.labels.tolist()) for r in recs] == [{1}, {4}, {6}, {6}]
    r = recs[0].validate()
    assert r.channels == CHANNELS and r.rate_hz == 50.0
    assert r.units[:6] == ["g"] * 3 + ["rad/s"] * 3
    assert r.groups == {"acc": [0, 1, 2], "gyro": [3, 4, 5], "body_acc": [6, 7, 8]}
    assert r.label_names[6] == "LAYING"
    assert "Inertial Signals (windows 1-4)" in r.source


def test_windowing_the_runs_gives_back_the_original_windows(har_tree):
    root, walk, _, _ = har_tree
    rec = get_reader("uci_har")(root, splits=["train"])[0]
    np.testing.assert_array_equal(windows(rec.signals), windows(walk))


def test_truncated_row_names_file_and_line(har_tree):
    root = har_tree[0]
    file = root / "train" / "Inertial Signals" / "body_gyro_y_train.txt"
    lines = file.read_text().splitlines()
    lines[2] = lines[2].rsplit("  ", 1)[0]  # line 3 loses its last value
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordingError, match=r"body_gyro_y_train\.txt:3: expected 128 .* got 127"):
        get_reader("uci_har")(root)


def test_activity_outside_the_labels_names_its_line(har_tree):
    root = har_tree[0]
    (root / "train" / "y_train.txt").write_text("1\n\n1\n9\n" + "4\n" * 3)
    with pytest.raises(RecordingError, match=r"y_train\.txt:4: activity 9 outside .*\[1, 2"):
        get_reader("uci_har")(root)


def test_window_count_mismatch_is_an_error(har_tree):
    root = har_tree[0]
    (root / "test" / "subject_test.txt").write_text("3\n" * 3)
    with pytest.raises(RecordingError, match=r"y_test\.txt: 4 rows but subject_test\.txt has 3"):
        get_reader("uci_har")(root)


def test_missing_root_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="activity_labels.txt: missing"):
        get_reader("uci_har")(tmp_path)


def test_uci_har_protocol_gives_back_the_published_windows(har_tree, tmp_path):
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    root, walk, sit, lay = har_tree
    config = Path(__file__).resolve().parents[2] / "configs" / "data" / "uci-har.yaml"
    overrides = [f"path={root}", "split.test_subjects=[3]", "split.val_subjects=[]"]
    ws = prepare(load_data_config(config, overrides), tmp_path / "cache", progress=False)
    assert ws.meta["split_subjects"] == {"train": ["1"], "val": [], "test": ["3"]}
    want = np.concatenate([windows(walk), windows(sit), windows(lay[:192]), windows(lay[256:])])
    np.testing.assert_array_equal(ws.X, want[:, :, :6].transpose(0, 2, 1))
    assert ws.y.tolist() == [0] * 4 + [3] * 3 + [5] * 4  # class indices of 1, 4 and 6
