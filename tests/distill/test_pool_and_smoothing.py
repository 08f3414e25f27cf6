"""Label smoothing's target, KD over unlabelled pool windows, and the fixed-epoch selection rule,
on hand-computed tensors and on a real HAPT subset with a label budget and a pool."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from data_prep.config import load_data_config
from data_prep.windowset import WindowSet
from harkd.config import validate_run_config
from harkd.distill.base import Batch, DistillContext, FrozenTeacher, ViewModel, build_distiller
from harkd.distill.losses import kd_kl
from harkd.models.base import build_model

REPO = Path(__file__).resolve().parents[2]
HAPT_QUICK = REPO / "configs" / "data" / "hapt-quick.yaml"
#: 8 subjects: test 2, 4; validation 3, 5; 2 of the 4 training subjects labelled, the rest pooled
BUDGET = ["subjects=[1, 2, 3, 4, 5, 6, 7, 8]", "split.test_subjects=[2, 4]",
          "split.val_subjects=[3, 5]", "split.label_budget=2", "split.pool=true"]
CONTEXT = DistillContext(6, 128, {"acc": [0, 1, 2], "gyro": [3, 4, 5]}, list("abcdef"))


class Fixed(torch.nn.Module):
    """A 'model' whose logits are the mean of each channel (deterministic, no parameters)."""

    def forward(self, x: torch.Tensor):  # noqa: ANN201
        from harkd.models.base import ModelOutput

        logits = x.mean(dim=2)
        return ModelOutput(torch.cat([logits, logits], dim=1)[:, :6], {})


def test_label_smoothing_target_by_hand() -> None:
    student = ViewModel(Fixed(), [0, 1, 2])
    ls = build_distiller("ls", student, {}, CONTEXT, {"smoothing": 0.3})
    x = torch.zeros(1, 6, 4)  # logits all 0: p = 1/6 for every class
    y_soft = torch.zeros(1, 6)
    y_soft[0, 2] = 1.0
    _, losses = ls.forward_train(Batch(x=x, y=torch.tensor([2]), y_soft=y_soft), 0)
    # target = 0.7 * onehot + 0.3 / 6; sum(target) = 1, so CE = -sum t ln(1/6) = ln 6
    assert losses["ce"].item() == pytest.approx(math.log(6), abs=1e-6)
    # against non-uniform logits: CE = -(0.75 * ln p_2 + 0.05 * sum_{k != 2} ln p_k)
    x2 = torch.zeros(1, 6, 4)
    x2[0, 2] = 1.0  # logit 1 on classes 2 (channel 2) and 5 (its copy)
    _, losses = ls.forward_train(Batch(x=x2, y=torch.tensor([2]), y_soft=y_soft), 0)
    log_z = math.log(4 + 2 * math.e)
    expected = -(0.75 * (1 - log_z) + 0.05 * (1 - log_z) + 0.05 * 4 * (-log_z))
    assert losses["ce"].item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="takes no teachers"):
        build_distiller("ls", student, {"t": FrozenTeacher(Fixed(), [0])}, CONTEXT, {})


def test_kd_pool_term_averages_over_labelled_and_pool_windows() -> None:
    torch.manual_seed(0)
    student = ViewModel(build_model("tiny_500", 3, 6, 128), [0, 1, 2])
    teacher = FrozenTeacher(build_model("cnn1d", 6, 6, 128, widths=[8, 16]), [0, 1, 2, 3, 4, 5])
    x, pool = torch.randn(4, 6, 128), torch.randn(3, 6, 128)
    y = torch.tensor([0, 1, 2, 3])
    batch = Batch(x=x, y=y, y_soft=torch.nn.functional.one_hot(y, 6).float(), x_pool=pool)
    params = {"alpha": 0.5, "temperature": 2.0}
    with_pool = build_distiller("kd", student, {"t": teacher}, CONTEXT, {**params, "pool": True})
    without = build_distiller("kd", student, {"t": teacher}, CONTEXT, params)
    student.eval()  # BatchNorm in eval: the same logits whatever the batch
    _, lp = with_pool.forward_train(batch, 0)
    _, ln = without.forward_train(batch, 0)
    s, t = student(torch.cat([x, pool])).logits, teacher(torch.cat([x, pool])).logits
    assert lp["kd"].item() == pytest.approx(0.5 * kd_kl(s, t, 2.0).item(), rel=1e-5)
    assert ln["kd"].item() == pytest.approx(0.5 * kd_kl(s[:4], t[:4], 2.0).item(), rel=1e-5)
    assert lp["ce"].item() == pytest.approx(ln["ce"].item(), rel=1e-6)  # CE: labelled only
    assert with_pool.uses_pool and not without.uses_pool


@pytest.fixture(scope="module")
def budget_small(tmp_path_factory: pytest.TempPathFactory) -> WindowSet:
    from data_prep.pipeline import prepare

    return prepare(load_data_config(HAPT_QUICK, BUDGET), cache_dir=tmp_path_factory.mktemp("c"),
                   progress=False)


def _cfg(tmp: Path, **extra):
    raw = {"data": str(HAPT_QUICK), "model": {"name": "tiny_500", "view": ["acc"]},
           "data_overrides": {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
                              "split": {"test_subjects": [2, 4], "val_subjects": [3, 5],
                                        "label_budget": 2, "pool": True}},
           "train": {"epochs": 2, "batch_size": 64, "patience": None, "threads": 1},
           "augment": {"policy": "jitter"}, "output_dir": str(tmp)}
    return validate_run_config(raw | extra, source="test")


def test_assembled_kd_pool_run_draws_augmented_pool_batches(budget_small, tmp_path) -> None:
    from harkd.train.assemble import assemble
    from harkd.train.loop import fit

    teacher_dir = tmp_path / "teacher"
    fit(_cfg(tmp_path, model={"name": "cnn1d", "view": ["acc", "gyro"],
                              "params": {"widths": [8, 16]}}),
        ws=budget_small, run_dir=teacher_dir, progress=False)
    teachers = {"t": {"name": "cnn1d", "view": ["acc", "gyro"], "run_dir": str(teacher_dir)}}
    cfg = _cfg(tmp_path, teachers=teachers, distill={"method": "kd", "params": {"pool": True}})
    run = assemble(cfg, budget_small)
    batches = list(run.batches.epoch(0))
    n_pool = int(budget_small.mask("pool").sum())
    assert n_pool > 0 and len(batches) == len(run.batches)
    for b in batches:
        assert b.x_pool is not None and b.x_pool.shape == (64, 6, 128)
    # the pool's order depends only on (seed, epoch): a resumed run draws the same windows
    pool = run.batches.pool
    pool.set_epoch(3)
    first = [x.clone() for x, _ in zip(pool, range(4), strict=False)]
    pool.set_epoch(3)
    assert all(torch.equal(a, b) for a, (b, _) in zip(first, zip(pool, range(4), strict=False),
                                                      strict=True))
    pool.set_epoch(4)
    assert not torch.equal(first[0], next(iter(pool)))
    result = fit(cfg, ws=budget_small, run_dir=tmp_path / "student", progress=False)
    assert result.metrics["test"]["macro_f1"] > 0
    plain = assemble(_cfg(tmp_path), budget_small)
    assert next(plain.batches.epoch(0)).x_pool is None


def test_selection_last_keeps_the_last_epoch(budget_small, tmp_path) -> None:
    from harkd.train.loop import fit

    cfg = _cfg(tmp_path, train={"epochs": 3, "batch_size": 64, "patience": 1, "threads": 1,
                                "selection": "last"})
    result = fit(cfg, ws=budget_small, run_dir=tmp_path / "last", progress=False)
    assert result.best_epoch == 2 and result.epochs_run == 3  # patience cannot stop it
    assert result.metrics["test_last"] == result.metrics["test"]  # one model, both rules
    default = _cfg(tmp_path)
    assert "selection" not in default.model_dump()["train"]  # old configs keep their hashes
