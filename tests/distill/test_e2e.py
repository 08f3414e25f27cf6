"""End to end: IE-KD stage 1 on real teacher features, every registered method through `fit`
(on the small real HAPT subset, or on small synthetic paired data where the method's example
needs a skeleton), and the `harkd distill` command's missing-teacher message."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from data_prep.windowset import WindowSet
from harkd.cli import main
from harkd.config import RunConfig, validate_run_config
from harkd.distill.base import (
    Batch,
    DistillContext,
    FrozenTeacher,
    ViewModel,
    build_distiller,
    distiller_class,
    list_distillers,
)
from harkd.models import build_model

REPO = Path(__file__).resolve().parents[2]
HAPT = REPO / "configs" / "data" / "hapt-quick.yaml"
TINY_TEACHER = {"widths": [8, 16], "kernel": 3}


def small_run_config(method: str, run_root: Path, **extra: object) -> RunConfig:
    """configs/distill-style run config (hapt-quick unless `extra` names other data) for
    `method`, 1 epoch, small models."""
    raw: dict = {
        "name": f"{method}-small",
        "data": str(HAPT),
        "model": {"name": "tiny_xs", "view": ["acc"]},
        "distill": {"method": method, "params": {}},
        "augment": {"policy": "jitter_scaling"},
        "train": {"epochs": 1, "batch_size": 128, "seed": 0, "patience": None, "threads": 1},
        "output_dir": str(run_root),
    }
    raw.update(extra)
    return validate_run_config(raw, source=f"test config {method}")


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


#: a small synthetic paired set for methods whose example needs groups HAPT lacks (skeleton)
SYNTH = REPO / "configs" / "data" / "synth-paired.yaml"
SYNTH_SMALL = ["reader_options.n_subjects=5", "reader_options.trials=1",
               "reader_options.duration_s=5.0", "split.test_subjects=[5]",
               "split.val_subjects=[4]"]  # fmt: skip


@pytest.fixture(scope="module")
def data_with(
    hapt_quick_small: WindowSet, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[set[str]], tuple[Path, WindowSet]]:
    """(protocol YAML, WindowSet): the first of hapt_quick_small and the small synthetic paired
    set that has the channel groups asked for."""
    from data_prep.config import load_data_config
    from data_prep.pipeline import prepare

    made: dict[Path, WindowSet] = {}
    builders = {
        HAPT: lambda: hapt_quick_small,
        SYNTH: lambda: prepare(
            load_data_config(SYNTH, SYNTH_SMALL),
            cache_dir=tmp_path_factory.mktemp("synth-cache"),
            progress=False,
        ),
    }

    def pick(groups: set[str]) -> tuple[Path, WindowSet]:
        for config, build in builders.items():
            ws = made[config] = made.get(config) or build()
            if groups <= set(ws.groups):
                return config, ws
        raise LookupError(f"no test data has the channel groups {sorted(groups)}")

    return pick


@pytest.fixture(scope="module")
def teacher_run_for(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A small teacher (cnn1d unless named) trained for 1 epoch on (protocol, WindowSet) and a
    view (once each)."""
    from harkd.train.loop import fit

    runs: dict[tuple[str, tuple[str, ...], str], Path] = {}
    root = tmp_path_factory.mktemp("teachers")

    def run(config: Path, ws: WindowSet, view: tuple[str, ...], name: str = "cnn1d") -> Path:
        key = (config.stem, tuple(view), name)
        if key not in runs:
            model = {"name": name, "view": list(view), "params": TINY_TEACHER}
            cfg = small_run_config("none", root, model=model, data=str(config))
            runs[key] = root / f"{key[0]}-{'+'.join(view)}-{name}"
            fit(cfg, ws=ws, run_dir=runs[key], progress=False)
        return runs[key]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("method", list_distillers())
def test_every_method_runs_end_to_end(
    method: str,
    data_with: Callable[[set[str]], tuple[Path, WindowSet]],
    teacher_run_for: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """Each registered method through `fit` on the example it declares: its teachers are small
    runs of the example's teacher model on its views, on data that has its channel groups."""
    from harkd.train.loop import fit
    from harkd.train.runcard import read_card

    example = distiller_class(method).example
    config, ws = data_with(example.groups())
    model = example.teacher_model
    teachers = {
        name: {"name": model, "view": list(view), "params": TINY_TEACHER,
               "run_dir": str(teacher_run_for(config, ws, view, model))}  # fmt: skip
        for name, view in example.teachers.items()
    }
    cfg = small_run_config(
        method,
        tmp_path,
        data=str(config),
        model={"name": "tiny_xs", "view": list(example.student_view)},
        distill={"method": method, "params": dict(example.params)},
        teachers=teachers,
        train={"epochs": 3, "batch_size": 128, "seed": 0, "patience": None, "threads": 1},
    )
    digests = {n: _digest(Path(t["run_dir"])) for n, t in teachers.items()}
    result = fit(cfg, ws=ws, run_dir=tmp_path / "run", progress=False)
    assert 0.0 <= result.metrics["test"]["macro_f1"] <= 1.0
    assert {n: _digest(Path(t["run_dir"])) for n, t in teachers.items()} == digests
    card = read_card(tmp_path / "run")
    assert card.method == method and card.view == list(example.student_view)
    assert card.label_names == ws.label_names
    # a method that trains on part of the training split counts what it dropped
    n_train = int(ws.mask("train").sum())
    own_set = distiller_class(method).training_set(ws, distiller_class(method).check_config(
        dict(example.params), list(teachers)))
    counted = result.metrics.get("training_windows")
    if own_set is ws:
        assert counted is None
    else:
        assert counted["split"] == n_train and counted["per_epoch"] == len(own_set.X)
        assert 0 < counted["kept"] == n_train - counted["dropped"] <= len(own_set.X)


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
