"""Method contracts on small models, for every registered method on the example it declares:
parameters, gradients, frozen teachers, stages, saving, and `harkd distill --list`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harkd.distill.base import (
    Batch,
    DistillContext,
    Distiller,
    FrozenTeacher,
    MethodParams,
    ViewModel,
    build_distiller,
    distiller_classes,
)
from harkd.distill.losses import kd_kl
from harkd.models import build_model

REPO = Path(__file__).resolve().parents[2]
METHODS = distiller_classes()
#: three channels for each channel group any registered method's example needs (acc first)
NEEDED = set().union(*(c.example.groups() for c in METHODS.values()))
GROUP_NAMES = ["acc", "gyro", *sorted(NEEDED - {"acc", "gyro"})]
GROUPS = {g: [3 * i, 3 * i + 1, 3 * i + 2] for i, g in enumerate(GROUP_NAMES)}
N_CHANNELS = 3 * len(GROUPS)
#: the batches of `batch()` index 12 training windows (a memory-bank method sizes its bank by it)
#: of three training subjects
CTX = DistillContext(
    num_classes=4, window=64, groups=GROUPS, label_names=list("abcd"), train_windows=12,
    train_subjects=("s1", "s2", "s3"),
)
SMALL_TEACHER = {"widths": [8, 16], "kernel": 3}
#: each registered method with its example's params, plus variants of some (case -> method, params)
CASES = {name: (name, {}) for name in METHODS} | {
    "iekd_random_cosine": ("iekd", {"split": "random", "distance": "cosine"}),
    "sk_three_pairs": (
        "sk",
        {"pairs": [["final", "final"], ["embedding", "embedding"], ["stage1", "stage2"]]},
    ),
}


def channels(view: tuple[str, ...] | list[str]) -> list[int]:
    return [i for g in view for i in GROUPS[g]]


def make(case: str, seed: int = 0, **params: object) -> Distiller:
    """The method of `case` on its example: small teachers (the example's model, cnn1d unless
    it says) on the example's views."""
    torch.manual_seed(seed)
    method, variant = CASES[case]
    example = METHODS[method].example
    view = channels(example.student_view)
    student = ViewModel(build_model("tiny_xs", len(view), 4, 64), view)
    teachers = {
        name: FrozenTeacher(
            build_model(example.teacher_model, 3 * len(v), 4, 64, **SMALL_TEACHER), channels(v)
        )
        for name, v in example.teachers.items()
    }
    return build_distiller(method, student, teachers, CTX, {**example.params, **variant, **params})


def batch(seed: int = 0, n: int = 12) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N_CHANNELS, 64, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    y_soft = torch.nn.functional.one_hot(y, 4).float()
    return Batch(x=x, y=y, y_soft=y_soft, index=torch.arange(n), subject=torch.arange(n) % 3)


def test_the_registered_methods() -> None:
    assert {"none", "kd", "iekd", "iedml", "sk", "pskd"} <= set(METHODS)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_declares_its_contract(method: str) -> None:
    cls = METHODS[method]
    assert cls.method == method and issubclass(cls.params_model, MethodParams)
    assert cls.description() and cls.description() != Distiller.description()
    low, high = cls.teacher_count
    assert high is None or low <= high
    assert low <= len(cls.example.teachers) and (high is None or len(cls.example.teachers) <= high)
    assert cls.check_config(cls.example.params, list(cls.example.teachers)) == make(method).params


@pytest.mark.parametrize(
    ("method", "params", "bad"),
    [
        ("kd", {"alpah": 0.5}, "unknown parameter 'alpah'"),
        ("sk", {"pairs": [["final", "nope"]]}, "nope"),
        ("iekd", {"distance": "l3"}, "distance: Input should be 'l1' or 'cosine'"),
        ("kd", {"teacher": "other"}, "other"),
        ("pskd", {"alpha": 2}, "alpha: Input should be less than or equal to 1"),
    ],
)
def test_bad_params_are_named_in_one_line(method: str, params: dict, bad: str) -> None:
    with pytest.raises(ValueError) as err:
        make(method, **params)
    assert bad in str(err.value) and "\n" not in str(err.value)
    if bad.startswith("unknown"):
        assert "(allowed: teacher, alpha, temperature, pool)" in str(err.value)


def test_teacher_counts_are_checked_by_the_base() -> None:
    student = ViewModel(build_model("tiny_xs", 3, 4, 64), GROUPS["acc"])
    teacher = FrozenTeacher(build_model("cnn1d", 6, 4, 64, **SMALL_TEACHER), list(range(6)))
    with pytest.raises(ValueError, match="method 'iedml' takes no teachers; remove teachers"):
        build_distiller("iedml", student, {"t": teacher}, CTX, METHODS["iedml"].example.params)
    with pytest.raises(ValueError, match="method 'pskd' needs at least 1 teacher"):
        build_distiller("pskd", student, {}, CTX, {})
    assert not build_distiller("none", student, {"t": teacher}, CTX, {}).teachers  # unused


def _grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


@pytest.mark.parametrize("method", sorted(CASES))
def test_gradients_reach_student_and_method_modules_never_teacher(method: str) -> None:
    d = make(method)
    stage = d.stages()[-1].name
    d.set_stage(stage)
    d.train()
    logits, losses = d.forward_train(batch(), epoch=0)
    assert logits.shape == (12, 4) and losses
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trainable = {id(p) for p in d.trainable_parameters()}
    assert {id(p) for p in d.student.parameters()} <= trainable
    assert all(g is not None and g.abs().sum() > 0 for g in _grads(d.student.model.stem))
    for t in d.teachers.values():
        assert all(g is None for g in _grads(t))
        assert not trainable & {id(p) for p in t.parameters()}
    if method.startswith("iekd"):
        assert all(g is not None for g in _grads(d.ie))  # both student encoders train
        assert all(g is None for g in _grads(d.teacher_ae))  # frozen in stage 2
        assert not trainable & {id(p) for p in d.teacher_ae.parameters()}
        assert not d.teacher_ae.training
    if method == "iedml":
        for m in (d.peer, d.ie_student, d.ie_peer, d.ae_student, d.ae_peer):
            assert all(g is not None for g in _grads(m))
            assert {id(p) for p in m.parameters()} <= trainable


def test_iekd_stage_one_trains_only_the_teacher_autoencoder() -> None:
    d = make("iekd")
    assert [(s.name, s.epochs, s.selects_model) for s in d.stages()] == [
        ("ae", 1, False),
        ("main", None, True),
    ]
    d.set_stage("ae")
    d.train()
    logits, losses = d.forward_train(batch(), epoch=0)
    assert logits is None and set(losses) == {"recon"}
    losses["recon"].backward()
    assert {id(p) for p in d.trainable_parameters()} == {id(p) for p in d.teacher_ae.parameters()}
    assert all(g is not None for g in _grads(d.teacher_ae))
    assert all(g is None for g in _grads(d.student))


@pytest.mark.parametrize("method", sorted(CASES))
def test_frozen_teacher_unchanged_after_steps(method: str) -> None:
    d = make(method)
    before = {k: v.clone() for t in d.teachers.values() for k, v in t.state_dict().items()}
    for stage in d.stages():
        d.set_stage(stage.name)
        d.train()
        opt = torch.optim.AdamW(d.trainable_parameters(), lr=1e-2, weight_decay=0.1)
        student_before = [p.detach().clone() for p in d.student.parameters()]
        for step in range(3):
            _, losses = d.forward_train(batch(step), epoch=0)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
        after_s = list(d.student.parameters())
        moved = any(not torch.equal(a, b) for a, b in zip(student_before, after_s, strict=True))
        assert moved == stage.selects_model  # stages that select no model train other modules
    after = {k: v for t in d.teachers.values() for k, v in t.state_dict().items()}
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included


def test_random_split_is_a_saved_fixed_permutation() -> None:
    d = make("iekd_random_cosine")
    state = d.state_dict()
    inh, exp = state["ie.inh_index"], state["ie.exp_index"]
    channels = d.ie.enc_inh[0].in_channels + d.ie.enc_exp[0].in_channels
    assert sorted(torch.cat([inh, exp]).tolist()) == list(range(channels))
    assert inh.tolist() != list(range(len(inh)))  # not the natural split
    other = make("iekd_random_cosine", seed=5)  # the permutation comes from split_seed only
    assert torch.equal(other.ie.inh_index, inh)
    other.ie.inh_index.zero_()
    other.load_state_dict(state)
    assert torch.equal(other.ie.inh_index, inh)


def test_teacher_sees_teacher_x() -> None:
    d = make("kd")
    b = batch()
    _, with_same = d.forward_train(b, 0)
    clean = Batch(b.x, b.y, b.y_soft, x_teacher=torch.zeros_like(b.x))
    _, with_clean = d.forward_train(clean, 0)
    assert with_same["ce"].item() == pytest.approx(with_clean["ce"].item())
    assert with_same["kd"].item() != pytest.approx(with_clean["kd"].item())


def test_iekd_alpha_adds_the_kd_term_and_scales_ce() -> None:
    """alpha = 0 is IE-KD alone; alpha > 0 adds alpha * T^2 KL and weighs CE by 1 - alpha."""
    plain, with_kd = make("iekd"), make("iekd")
    with_kd.params = with_kd.params.model_copy(update={"alpha": 0.75, "temperature": 2.0})
    for d in (plain, with_kd):
        d.set_stage("main")
        d.eval()
    b = batch()
    _, p_losses = plain.forward_train(b, 0)
    logits, k_losses = with_kd.forward_train(b, 0)
    assert "kd" not in p_losses and set(k_losses) == {"ce", "inh", "exp", "kd"}
    assert k_losses["ce"].item() == pytest.approx(0.25 * p_losses["ce"].item(), rel=1e-5)
    t_logits = with_kd.teachers["t"](b.x).logits
    expected = 0.75 * kd_kl(logits, t_logits, 2.0)
    assert k_losses["kd"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_iedml_mutual_kl_terms_target_the_other_network_detached() -> None:
    d = make("iedml")
    d.train()
    logits, losses = d.forward_train(batch(), 0)
    assert {"dml", "dml_peer"} <= set(losses)
    losses["dml"].backward()  # the student's KL: the peer's distribution is a fixed target
    assert all(g is not None for g in _grads(d.student.model.head))
    assert all(g is None for g in _grads(d.peer))
    off = make("iedml", lambda_dml=0.0)
    assert off.forward_train(batch(), 0)[1]["dml"].item() == 0.0


def test_distill_list_prints_every_method_and_its_params(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from harkd.cli import main

    assert main(["distill", "--list"]) == 0
    out = capsys.readouterr().out
    blocks = {line.split()[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert set(blocks) == set(METHODS)
    for name, cls in METHODS.items():
        assert cls.description() in blocks[name]
    assert "[no teachers]" in blocks["iedml"] and "[1+ teacher(s)]" in blocks["kd"]
    assert "    alpha: float = 0.5  weight of the KL term (CE gets 1 - alpha)" in out
    assert "    peer: ModelConfig = required  the peer network" in out
    assert "    pairs: list[tuple[str, str]] = [('final', 'final')]" in out


def test_every_method_has_a_shipped_config_whose_params_it_accepts() -> None:
    from harkd.config import load_run_config
    from harkd.train.assemble import check_method

    configs = sorted((REPO / "configs" / "distill").glob("*.yaml"))
    used = set()
    for path in configs:
        cfg = load_run_config(path)
        check_method(cfg)  # method, params and number of teachers
        used.add(cfg.distill.method)
    assert used == set(METHODS)
