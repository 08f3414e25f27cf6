"""Policies: composition, errors, listing, and the `harkd augment` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from harkd.augment import build_policy, list_ops, list_policies
from harkd.cli import main
from harkd.config import ConfigError

GROUPS = {"acc": [0, 1, 2], "gyro": [3, 4, 5]}


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_composition_runs_ops_in_order(real_batch):
    policy = build_policy(
        "rotation+timewarp+jitter+scaling", real_batch.groups, norm=real_batch.norm
    )
    assert [op.name for op in policy.ops] == ["rotation", "timewarp", "jitter", "scaling"]
    a, ya = policy(real_batch.x, real_batch.y_soft, gen(5))
    b, _ = policy(real_batch.x, real_batch.y_soft, gen(5))
    c, _ = policy(real_batch.x, real_batch.y_soft, gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c) and ya is real_batch.y_soft


def test_none_is_the_identity(synthetic_batch):
    policy = build_policy("none", GROUPS)
    out, y = policy(synthetic_batch.x, synthetic_batch.y_soft, gen())
    assert out is synthetic_batch.x and y is synthetic_batch.y_soft


def test_policy_rejects_nan(synthetic_batch):
    x = synthetic_batch.x.clone()
    x[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/inf"):
        build_policy("jitter+mixup", GROUPS)(x, synthetic_batch.y_soft, gen())


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(KeyError, match="known: .*'jitter'.*'none'") as err:
        build_policy("jitter+warp_speed", GROUPS)
    assert "warp_speed" in str(err.value)


def test_every_op_is_in_a_shipped_policy_with_all_parameters():
    policies = list_policies()
    used = {spec["op"] for ops in policies.values() for spec in ops}
    assert used == set(list_ops())
    assert policies["none"] == []
    assert policies["timewarp"][0] == {"op": "timewarp", "p": 1.0, "sigma": 0.2, "n_knots": 4}
    assert policies["tsaug_dropout"][0]["p_drop"] == 0.05


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policies:\n  a: [{op: warp9}]\n", "policy 'a': unknown augmentation op 'warp9'"),
        ("policies:\n  a: [{op: jitter, sigmaa: 1}]\n", r"unknown parameter\(s\) \['sigmaa'\]"),
        ("policies:\n  a+b: []\n", "reserved"),
        ("policies:\n  a: {op: jitter}\n", "list of mappings"),
        ("jitter: []\n", "top-level 'policies'"),
    ],
)
def test_bad_policy_files_name_file_and_problem(tmp_path: Path, text, message):
    path = tmp_path / "policies.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        build_policy("a", GROUPS, path=path)
    assert str(path) in str(err.value)


def test_norm_is_validated():
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        build_policy("rotation", GROUPS, norm={"mean": [0.0] * 6, "std": [1, 1, 0, 1, 1, 1]})
    with pytest.raises(ValueError, match="missing"):
        build_policy("rotation", GROUPS, norm={"mean": [0.0] * 6})


def test_cli_list(capsys):
    assert main(["augment", "--list"]) == 0
    out = capsys.readouterr().out
    assert "timewarp\n    timewarp(p=1.0, sigma=0.2, n_knots=4)" in out
    assert "none  (identity)" in out and "tsaug_timewarp" in out


def data_args(ws, tmp_path: Path) -> list[str]:
    """--data (the fixture's own resolved config written as YAML) and its cache folder."""
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump(ws.meta["config"]))
    return ["--data", str(config), "--cache-dir", str(Path(ws.meta["cache_path"]).parent)]


def test_cli_show_writes_a_png(hapt_quick_small, tmp_path: Path, capsys):
    out = tmp_path / "aug.png"
    argv = ["augment", "--show", "rotation+timewarp", *data_args(hapt_quick_small, tmp_path)]
    assert main([*argv, "--out", str(out), "--n", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    assert str(out) in capsys.readouterr().out


def test_cli_show_unknown_policy_fails_cleanly(hapt_quick_small, tmp_path: Path, capsys):
    argv = ["augment", "--show", "nope", *data_args(hapt_quick_small, tmp_path)]
    assert main([*argv, "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown augmentation policy ['nope']" in capsys.readouterr().err
