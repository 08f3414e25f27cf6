"""End to end on a small SYNTHETIC paired set: three teachers trained by `fit`, then
`harkd distill configs/distill/pskd_synth.yaml` with the progressive schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harkd.cli import main
from harkd.config import load_run_config
from harkd.train.runcard import read_card

REPO = Path(__file__).resolve().parents[2]
SMALL = {
    "reader_options": {"n_subjects": 5, "trials": 1, "duration_s": 5.0},
    "split": {"test_subjects": [5], "val_subjects": [4]},
}
TEACHERS = {
    "acc": ("synth_teacher_acc.yaml", {"widths": [8, 16, 16]}),
    "fusion": ("synth_teacher_fusion.yaml", {"sensor_channels": 3, "widths": [4, 8, 8]}),
    "skeleton": ("synth_teacher_skeleton.yaml", {"widths": [4, 8, 8]}),
}


@pytest.mark.slow
def test_harkd_distill_pskd_on_synthetic_pairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from harkd.train.loop import fit

    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "cache"))
    small = f"data_overrides={json.dumps(SMALL)}"
    teachers = {}
    for name, (config, params) in TEACHERS.items():
        cfg = load_run_config(
            REPO / "configs" / "train" / config,
            [
                f"data={REPO / 'configs' / 'data' / 'synth-paired.yaml'}",
                small,
                f"model.params={json.dumps(params)}",
                "train.epochs=1",
            ],
        )
        fit(cfg, run_dir=tmp_path / name, progress=False)
        teachers[name] = {**cfg.model.model_dump(), "run_dir": str(tmp_path / name)}
    rc = main(
        [
            "distill",
            str(REPO / "configs" / "distill" / "pskd_synth.yaml"),
            f"data={REPO / 'configs' / 'data' / 'synth-paired.yaml'}",
            small,
            f"teachers={json.dumps(teachers)}",
            "distill.params.boundaries=[1, 2]",
            "distill.params.variant=soft",
            "train.epochs=3",
            "--run-dir",
            str(tmp_path / "pskd"),
            "--no-progress",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "pskd" / "metrics.json").read_text())
    assert 0.0 <= metrics["metrics"]["test"]["macro_f1"] <= 1.0
    assert [sorted(h["losses"]) for h in metrics["history"]] == [["acs", "ce"]] * 3
    card = read_card(tmp_path / "pskd")
    assert (card.method, card.view, card.channels) == ("pskd", ["acc"], ["acc_x", "acc_y", "acc_z"])
    assert card.split_subjects.test == ["5"] and card.label_names == read_card(
        tmp_path / "skeleton"
    ).label_names
