"""End to end on the small real HAPT subset: IE-KD stage 1 on real teacher features, every
method through `fit`, and the `harkd distill` command's missing-teacher message."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.config import RunConfig, validate_run_config
from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.models import build_model

REPO = Path(__file__).resolve().parents[2]
TINY_TEACHER = {"widths": [8, 16], "kernel": 3}


def small_run_config(method: str, run_root: Path, **extra: object) -> RunConfig:
    """configs/distill-style run config on hapt-quick for `method`, 1 epoch, small models."""
    raw: dict = {
        "name": f"{method}-small",
        "data": str(REPO / "configs" / "data" / "hapt-quick.yaml"),
        "model": {"name": "tiny_xs", "view": ["acc"]},
        "distill": {"method": method, "params": {}},
        "augment": {"policy": "jitter_scaling"},
        "train": {"epochs": 1, "batch_size": 128, "seed": 0, "patience": None, "threads": 1},
        "output_dir": str(run_root),
    }
    raw.update(extra)
    return validate_run_config(raw, source=f"test config {method}")


@pytest.fixture(scope="module")
def tiny_teacher_run(hapt_quick_small: WindowSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a small acc+gyro cnn1d trained for 2 epochs by `fit`."""
    fit = pytest.importorskip("harkd.train.loop", reason="harkd.train.loop.fit not written yet").fit

    root = tmp_path_factory.mktemp("teacher")
    cfg = small_run_config(
        "none",
        root,
        model={"name": "cnn1d", "view": ["acc", "gyro"], "params": TINY_TEACHER},
        train={"epochs": 2, "batch_size": 128, "seed": 0, "patience": None, "threads": 1},
    )
    run_dir = root / "teacher"
    fit(cfg, ws=hapt_quick_small, run_dir=run_dir, progress=False)
    return run_dir


def real_batch(ws: WindowSet, split: str, n: int, seed: int) -> Batch:
    part = ws.subset(split)
    pick = np.random.default_rng(seed).choice(len(part), size=n, replace=False)
    norm = {k: torch.tensor(v, dtype=torch.float32) for k, v in ws.meta["norm"].items()}
    x = (torch.from_numpy(part.X[pick]) - norm["mean"].view(1, -1, 1)) / norm["std"].view(1, -1, 1)
    y = torch.from_numpy(part.y[pick]).long()
    return Batch(x=x, y=y, y_soft=torch.nn.functional.one_hot(y, ws.num_classes).float())


def context(ws: WindowSet) -> DistillContext:
    return DistillContext(ws.num_classes, ws.X.shape[-1], ws.groups, list(ws.meta["label_names"]))


def test_iekd_stage_one_lowers_reconstruction_on_real_teacher_features(
    hapt_quick_small: WindowSet,
) -> None:
    """The "final" maps of a small cnn1d (given 30 CE steps on real windows here, so the test
    needs no training run) are reconstructed much better after 60 auto-encoder steps."""
    torch.manual_seed(0)
    ws = hapt_quick_small
    model = build_model("cnn1d", 6, ws.num_classes, ws.X.shape[-1], **TINY_TEACHER)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(30):
        b = real_batch(ws, "train", 128, seed=100 + step)
        loss = torch.nn.functional.cross_entropy(model(b.x).logits, b.y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    teacher = FrozenTeacher(model, ws.groups["acc"] + ws.groups["gyro"])
    student = ViewModel(build_model("tiny_xs", 3, ws.num_classes, ws.X.shape[-1]), ws.groups["acc"])
    d = build_distiller("iekd", student, {"cnn1d": teacher}, context(ws), {"ae_epochs": 1})
    d.set_stage("ae")
    held_out = real_batch(ws, "val", 256, seed=1)

    def recon_error() -> float:
        d.eval()
        with torch.no_grad():
            return d.forward_train(held_out, 0)[1]["recon"].item()

    before = recon_error()
    opt = torch.optim.Adam(d.trainable_parameters(), lr=1e-2)
    for step in range(60):
        d.train()
        loss = d.forward_train(real_batch(ws, "train", 128, seed=step), 0)[1]["recon"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = recon_error()
    print(f"reconstruction L1 before {before:.4f} after {after:.4f}")
    assert after < 0.6 * before, (before, after)


def _digest(path: Path) -> str:
    return hashlib.sha256(
        b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())
    ).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("method", ["none", "kd", "iekd", "iedml", "sk"])
def test_every_method_runs_end_to_end(
    method: str, hapt_quick_small: WindowSet, tiny_teacher_run: Path, tmp_path: Path
) -> None:
    from harkd.train.loop import fit

    teachers = {
        "cnn1d": {
            "name": "cnn1d",
            "view": ["acc", "gyro"],
            "params": TINY_TEACHER,
            "run_dir": str(tiny_teacher_run),
        }
    }
    params = {
        "none": {},
        "kd": {"alpha": 0.5},
        "iekd": {"ae_epochs": 1},
        "iedml": {"peer": {"name": "cnn1d", "view": ["acc", "gyro"], "params": TINY_TEACHER}},
        "sk": {"pairs": [["final", "final"], ["embedding", "embedding"]]},
    }[method]
    extra = {"distill": {"method": method, "params": params}}
    if method in ("kd", "iekd", "sk"):
        extra["teachers"] = teachers
    cfg = small_run_config(method, tmp_path, **extra)
    teacher_digest = _digest(tiny_teacher_run)
    result = fit(cfg, ws=hapt_quick_small, run_dir=tmp_path / "run", progress=False)
    f1 = result.metrics["test"]["macro_f1"]
    assert 0.0 <= f1 <= 1.0
    assert _digest(tiny_teacher_run) == teacher_digest  # the teacher run is never written
    assert (tmp_path / "run").is_dir()


def test_cli_names_missing_teacher_and_the_train_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "distill" / "kd.yaml"
    missing = tmp_path / "no-such-teacher"
    rc = main(["distill", str(config), f"teachers.cnn1d.run_dir={missing}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(missing) in err and "not found" in err
    assert "harkd train" in err and "model.name=cnn1d" in err and f"name={missing.name}" in err
