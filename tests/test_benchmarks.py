"""The benchmarks build the grids they claim: nodes, cells and what each cell needs (nothing is
trained here), read back only their own runs from a run store, and answer bad options with one
line and a non-zero exit."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from harkd.config import ConfigError, load_run_config
from harkd.distill.base import distiller_classes
from harkd.grid.spec import Expansion, GridRun, load_spec
from harkd.grid.store import RunStore

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
#: the session fixture hapt_quick_small's 8 subjects, as a --data-overrides mapping
SMALL = "{subjects: [1, 2, 3, 4, 5, 6, 7, 8], split: {test_subjects: [2, 4], val_subjects: [3, 5]}}"
SMALL_DATA = {"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
              "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}}


def bench(name: str) -> ModuleType:
    """A benchmark script imported as a module (they import their shared helpers by name)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def expand(module: ModuleType, raw: dict) -> Expansion:
    return module.make_spec(raw, source=f"{module.__name__}.py").expand()


def nodes_by_name(exp: Expansion) -> dict[str, GridRun]:
    return {n.axes["node"]: n for n in exp.nodes}


def comparable(cfg, **train) -> dict:
    """A run config without what a bench cell changes on purpose (name, teachers, the
    train keys given)."""
    d = cfg.model_dump(mode="json")
    for key in ("name", "teachers"):
        d.pop(key)
    d["train"].update(train)
    return d


# -- bench_distill ----------------------------------------------------------------------------


def test_distill_arms_are_the_registered_methods_that_fit_and_the_controls():
    bd = bench("bench_distill")
    methods, skipped, left_out = bd.benchmarked_methods()
    labels = [m.label for m in methods]
    registry = distiller_classes()
    assert set(labels) == (set(registry) - set(skipped)) | set(bd.VARIANTS)
    assert labels[:4] == ["none", "ls", "kd", "kd-acc"]  # the baseline and the controls first
    for name in registry:
        if not (bd.DISTILL / f"{name}.yaml").is_file():
            assert skipped[name] == f"no configs/distill/{name}.yaml"
    # the multi-teacher methods run through training nodes; pskd has no hapt-quick config
    assert {"takd", "camkd", "cskd", "roskd", "mrkd"} <= set(labels)
    assert "pskd" in skipped
    for m in methods:
        method = bd.VARIANTS[m.label][0] if m.label in bd.VARIANTS else m.label
        own = bd.DISTILL / f"{method}.yaml"
        assert m.config == own
        cfg = load_run_config(own)
        kept = [k for k in cfg.teachers if k not in bd.LEFT_OUT]
        assert list(m.teachers) == kept, m.label  # every teacher key but the left-out ones
        assert len(kept) >= registry[cfg.distill.method].teacher_count[0]
    assert left_out == {"camkd": left_out["camkd"]} and "transformer" in left_out["camkd"]
    assert methods[labels.index("kd-acc")].teachers == {"cnn1d": "teacher_acc"}
    assert methods[labels.index("takd-chain")].teachers == {"cnn1d": "assistant"}
    carved = methods[labels.index("amal-carved")]
    assert carved.teachers == {"cnn1d": "teacher"}
    assert carved.overrides == {"distill.params.meta_split": "carved"}
    assert set(methods[labels.index("roskd")].teachers.values()) == {"subset0", "subset1",
                                                                     "subset2"}
    with pytest.raises(ConfigError, match="'pskd' is not benchmarked \\(no configs"):
        bd.chosen(methods, ["kd", "pskd"], skipped)
    # in the order named (the order the grid trains them), each once
    assert [m.label for m in bd.chosen(methods, ["kd", "none", "kd"], skipped)] == ["kd", "none"]


def test_distill_node_networks_match_the_teachers_the_method_configs_name():
    bd = bench("bench_distill")
    for name in bd.NODES:
        model, view, params = bd.node_model(name)
        assert model in {"cnn1d", "cnn1d_branches", "tiny_l"} and "acc" in view
    assert bd.node_model("assistant") == ("cnn1d", ["acc", "gyro"], {"widths": [16, 32, 64]})
    assert bd.node_model("teacher_acc") == ("cnn1d", ["acc"], {})
    # a key mapped to a node of another network is refused, naming both
    bd.NODE_OF_KEY["cnn1d"], saved = "assistant_small", bd.NODE_OF_KEY["cnn1d"]
    try:
        with pytest.raises(ConfigError, match="teacher 'cnn1d' is .* but node 'assistant_small'"):
            bd.teacher_nodes("kd", load_run_config(bd.DISTILL / "kd.yaml"))
    finally:
        bd.NODE_OF_KEY["cnn1d"] = saved
    # a teacher key with no node: the method is skipped with the reason
    nodes, why = bd.teacher_nodes("kd_synth", load_run_config(bd.DISTILL / "kd_synth.yaml"))
    assert nodes is None and why == "no training node here for its teacher 'skeleton'"


def test_distill_spec_is_one_cell_per_method_and_seed_over_the_nodes_it_needs(tmp_path):
    bd = bench("bench_distill")
    methods, _, _ = bd.benchmarked_methods()
    args = bd.parse_args(["--seeds", "0", "1", "--epochs", "2", "--teacher-epochs", "1",
                          "--data-overrides", SMALL, "--grid-dir", str(tmp_path),
                          "--set", "kd:distill.params.alpha=0.3", "train.lr=0.002"])
    exp = expand(bd, bd.build_spec(args, methods))
    nodes = nodes_by_name(exp)
    assert set(nodes) == set(bd.NODES)
    teacher, teacher_acc = nodes["teacher"], nodes["teacher_acc"]
    assert (teacher.config.model.name, teacher.config.model.view) == ("cnn1d", ["acc", "gyro"])
    assert (teacher_acc.config.model.name, teacher_acc.config.model.view) == ("cnn1d", ["acc"])
    for node in nodes.values():
        assert node.config.train.epochs == 1
        assert node.config.data_overrides["subjects"] == SMALL_DATA["subjects"]  # the cells' data
    # the chain: teacher -> assistant -> assistant2, each step kd
    assert nodes["assistant"].deps == (teacher.hash,)
    assert nodes["assistant2"].deps == (nodes["assistant"].hash,)
    assert nodes["assistant2"].config.distill.method == "kd"
    assert nodes["subset1"].config.data_overrides["split"]["subset"]["index"] == 1
    assert Counter(c.axes["method"] for c in exp.cells) == {m.label: 2 for m in methods}
    for cell in exp.cells:
        label, seed = cell.axes["method"], int(cell.axes["seed"])
        method = next(m for m in methods if m.label == label)
        own = load_run_config(method.config)
        wanted = tuple(nodes[n].hash for n in method.teachers.values())
        assert cell.deps == wanted, label
        assert [t.node for t in cell.config.teachers.values()] == list(wanted)
        assert list(cell.config.teachers) == list(method.teachers)
        # the cell is the method's own config, with the benchmark's settings over it
        alpha = {"alpha": 0.3} if label == "kd" else {}
        expected = comparable(own, epochs=2, patience=None, seed=seed, lr=0.002)
        expected["data_overrides"] = SMALL_DATA
        expected["distill"]["params"] |= alpha | {
            k.removeprefix("distill.params."): v for k, v in method.overrides.items()}
        assert comparable(cell.config) == expected, label
    carved = next(c for c in exp.cells if c.axes["method"] == "amal-carved")
    assert carved.config.distill.params["meta_split"] == "carved"
    kd_acc = next(c for c in exp.cells if c.axes["method"] == "kd-acc")
    assert kd_acc.config.distill.params["alpha"] != 0.3  # a prefixed --set reaches one method
    # only the nodes the chosen methods need are trained
    few = bd.chosen(methods, ["none", "takd-chain"], {})
    args.set = []
    assert set(nodes_by_name(expand(bd, bd.build_spec(args, few)))) == {"teacher", "assistant"}


# -- bench_pskd -------------------------------------------------------------------------------


def test_pskd_spec_trains_each_teacher_once_for_every_student_cell(tmp_path):
    bp = bench("bench_pskd")
    args = bp.parse_args(["--seeds", "0", "1", "2", "--epochs", "4", "--teacher-epochs", "2",
                          "--boundaries", "1", "2", "--subjects", "12", "--trials", "1",
                          "--grid-dir", str(tmp_path)])
    exp = expand(bp, bp.build_spec(args))
    nodes = nodes_by_name(exp)
    assert set(nodes) == {"teacher_skeleton", "teacher_fusion", "teacher_acc"}
    views = {name: n.config.model.view for name, n in nodes.items()}
    assert views == {"teacher_skeleton": ["skeleton"], "teacher_fusion": ["skeleton", "acc"],
                     "teacher_acc": ["acc"]}
    for node in nodes.values():
        assert node.config.train.epochs == 2 and node.deps == ()
        assert node.config.data_overrides == {"reader_options": {"n_subjects": 12, "trials": 1}}
    labels = ["student", "kd_skeleton", "kd_fusion", "kd_acc", "pskd_hard", "pskd_soft"]
    assert bp.arm_labels() == labels
    assert Counter(c.axes["method"] for c in exp.cells) == dict.fromkeys(labels, 3)
    for cell in exp.cells:
        label = cell.axes["method"]
        assert cell.config.train.epochs == 4 and cell.config.model.view == ["acc"]
        if label == "student":
            assert cell.deps == () and cell.config.distill.method == "none"
        elif label.startswith("kd_"):
            teacher = label.removeprefix("kd_")
            assert cell.deps == (nodes[f"teacher_{teacher}"].hash,)
            assert list(cell.config.teachers) == [teacher]
            assert cell.config.distill.method == "kd"
        else:
            assert set(cell.deps) == {n.hash for n in nodes.values()}
            assert {k: t.node for k, t in cell.config.teachers.items()} == {
                t: nodes[f"teacher_{t}"].hash for t in ("acc", "fusion", "skeleton")}
            assert cell.config.distill.params["variant"] == label.removeprefix("pskd_")
            assert cell.config.distill.params["boundaries"] == [1, 2]


# -- bench_train ------------------------------------------------------------------------------


def test_train_spec_is_one_cell_per_row_and_seed(tmp_path):
    bt = bench("bench_train")
    args = bt.parse_args(["--seeds", "0", "1", "--epochs", "6", "--epochs-for",
                          "deepconvlstm=4", "--grid-dir", str(tmp_path)])
    exp = expand(bt, bt.build_spec(args, bt.selected_rows(args)))
    assert exp.nodes == []  # baselines: nobody teaches them
    assert Counter(c.axes["row"] for c in exp.cells) == {bt.row_id(r): 2 for r in bt.TABLE}
    for cell in exp.cells:
        row = next(r for r in bt.TABLE if bt.row_id(r) == cell.axes["row"])
        _, config, model, view = row
        assert (cell.config.model.name, cell.config.model.view) == (model, view)
        assert cell.config.distill.method == "none" and cell.deps == ()
        schedule = (4, 2) if model == "deepconvlstm" else (6, 10)
        assert (cell.config.train.epochs, cell.config.train.patience) == schedule
        own = load_run_config(bt.TRAIN / f"{config}.yaml")
        assert cell.config.augment == own.augment and cell.config.data == own.data
    only = bt.parse_args(["--rows", "tinyhar", "--seeds", "0"])
    assert [bt.row_id(r) for r in bt.selected_rows(only)] == ["tinyhar-acc+gyro", "tinyhar-acc"]
    with pytest.raises(ConfigError, match="--rows"):
        bt.selected_rows(bt.parse_args(["--rows", "no-such-model"]))


def test_only_the_specs_own_finished_runs_are_read(tmp_path):
    bt = bench("bench_train")
    eb = bench("engine_bench")
    args = bt.parse_args(["--seeds", "0", "--rows", "tinyhar", "--grid-dir", str(tmp_path)])
    exp = expand(bt, bt.build_spec(args, bt.selected_rows(args)))
    other = expand(bt, bt.build_spec(bt.parse_args(["--seeds", "5", "--rows", "tinyhar"]),
                                     bt.selected_rows(args)))
    metrics = {"test": {"macro_f1": 0.5, "accuracy": 0.5, "ece": 0.1},
               "val": {"macro_f1": 0.6, "accuracy": 0.6, "ece": 0.1}}
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register([*exp.runs, *other.runs])
        for _ in range(2):  # the first cell of this spec and one of another spec finish
            row = store.claim([exp.cells[0].hash, other.cells[0].hash], "host", 1)
            store.complete(row.hash, "host", 1, metrics, {"s_per_epoch": 1.0}, 10, 2.0)
    runs = eb.read_runs(tmp_path, exp, "row")
    assert runs.nodes == {}
    assert {label: list(by_seed) for label, by_seed in runs.cells.items()} == {
        "tinyhar-acc+gyro": [0]}
    summary = eb.run_summary(runs.cells["tinyhar-acc+gyro"][0], tmp_path / "missing")
    assert summary["test_macro_f1"] == 0.5 and summary["s_per_epoch"] == {"main": 1.0}


# -- shared pieces ----------------------------------------------------------------------------


def test_paired_differences_carry_their_interval():
    eb = bench("engine_bench")
    a = {0: {"test_macro_f1": 0.90}, 1: {"test_macro_f1": 0.92}, 2: {"test_macro_f1": 0.95}}
    b = {0: {"test_macro_f1": 0.89}, 1: {"test_macro_f1": 0.90}, 3: {"test_macro_f1": 0.10}}
    test, diffs = eb.paired(a, b)  # seeds 0 and 1 only: seed 2 and 3 have no pair
    assert diffs == pytest.approx([0.01, 0.02]) and test.n == 2
    assert test.ci_low == pytest.approx(0.01) and test.ci_high == pytest.approx(0.02)
    assert eb.format_paired(test) == "+1.50 ± 0.71 [+1.00, +2.00]"
    one, _ = eb.paired({0: a[0]}, b)
    assert eb.format_paired(one) == "+1.00 (n = 1)"
    assert eb.format_paired(eb.paired({}, b)[0]) == ""


def test_flatness_pairs_each_method_with_the_baseline_of_the_same_seed():
    fl = bench("bench_flatness")
    models = {f"{m}{s}": {"increase": {"0.05": inc}}
              for (m, s), inc in {("none", 0): 0.30, ("none", 1): 0.50, ("none", 2): 0.40,
                                  ("gen1", 0): 0.20, ("gen1", 1): 0.35, ("gen1", 3): 9.0,
                                  ("self", 0): 0.31}.items()}
    models["gen0"] = {"increase": {"0.05": 0.0}}
    axes = {k: {"method": k[:-1], "seed": k[-1]} for k in models if k != "gen0"}
    axes["gen0"] = {"node": "gen0"}  # a training node: never paired
    (gen1,) = fl.paired_against(models, axes, "none", ["0.05"])  # self has one pair only
    assert (gen1["method"], gen1["n"]) == ("gen1", 2)  # seed 3 has no baseline
    assert gen1["0.05"]["diff_mean"] == pytest.approx(-0.125)
    assert gen1["0.05"]["ci_low"] == pytest.approx(-0.15)
    assert gen1["0.05"]["ci_high"] == pytest.approx(-0.10)


def test_flatness_of_a_folder_without_a_store_is_one_line(tmp_path, capsys):
    assert bench("bench_flatness").main(["--grid", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no run store" in err and str(tmp_path) in err and len(err.splitlines()) == 1


def test_srkd_length_summary_pairs_each_cell_with_none_of_the_same_seed(tmp_path):
    sl = bench("bench_srkd_length")

    def row(kind, f1, seconds=None, policy="light", seed="0", kept=None):
        axes = {} if kind == "node" else {sl.LENGTH: seconds, sl.POLICY: policy, sl.SEED: seed}
        metrics = {"test": {"macro_f1": f1}}
        if kept is not None:
            metrics["training_windows"] = {"kept": kept}
        return SimpleNamespace(kind=kind, status="done", axes=axes, metrics=metrics)

    rows = [row("node", 0.90),
            row("cell", 0.80, "none", seed="0"), row("cell", 0.84, "none", seed="1"),
            row("cell", 0.60, "30", seed="0", kept=22), row("cell", 0.70, "30", seed="1", kept=22),
            row("cell", 0.72, "all", seed="0", kept=300),
            row("cell", 0.74, "all", seed="1", kept=300),
            row("cell", 0.50, "30", "heavy", seed="0", kept=22)]
    got = sl.summarise(rows)
    assert got["teacher"] == pytest.approx(0.90) and got["none"]["mean"] == pytest.approx(0.82)
    cells = {(c["policy"], c["seconds"]): c for c in got["cells"]}
    assert [(c["policy"], c["seconds"]) for c in got["cells"]] == [
        ("heavy", "30"), ("light", "30"), ("light", "all")]  # by policy, then length
    short = cells["light", "30"]
    assert (short["n"], short["windows"]) == (2, 22) and short["mean"] == pytest.approx(0.65)
    assert short["vs_none_points"]["diff_mean"] == pytest.approx(-17.0)  # (-20 - 14) / 2
    assert short["of_none"] == pytest.approx(0.65 / 0.82)
    assert short["of_teacher"] == pytest.approx(0.65 / 0.90)
    assert cells["heavy", "30"]["vs_none_points"]["n"] == 1
    assert "| light | all | 300 |" in sl.markdown(got)
    sl.plot(got, tmp_path / "srkd_length.png")
    assert (tmp_path / "srkd_length.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_label_noise_pairs_arms_by_seed_at_each_level_and_rule(tmp_path, capsys):
    """Two stores as the engine writes them (the noisy grid's `noise` axis, the clean
    benchmark's none): each level's arms and paired differences under both selection rules."""
    ln = bench("bench_label_noise")
    best = {("symmetric-30", "none"): [0.80, 0.82, 0.81],
            ("symmetric-30", "kd"): [0.86, 0.85, 0.88],
            ("symmetric-30", "ls"): [0.79, 0.83, 0.80], ("clean", "none"): [0.90, 0.91, 0.89]}

    def store(grid: Path, cells: dict, noise_axis: bool) -> None:
        with RunStore(grid / "runs.sqlite") as st:
            for (noise, method), f1s in cells.items():
                for seed, f1 in enumerate(f1s):
                    axes = {"method": method, "seed": str(seed)}
                    if noise_axis:
                        axes["noise"] = noise
                    st._db.execute(
                        "INSERT INTO runs (hash, idx, status, kind, axes, config, metrics) "
                        "VALUES (?, 0, 'done', 'cell', ?, '{}', ?)",
                        (f"{noise}{method}{seed}", json.dumps(axes), json.dumps(
                            {"test": {"macro_f1": f1}, "test_last": {"macro_f1": f1 + 0.01}})))
            st._db.commit()

    store(tmp_path / "noisy", {k: v for k, v in best.items() if k[0] != "clean"}, True)
    store(tmp_path / "clean", {k: v for k, v in best.items() if k[0] == "clean"}, False)
    # teacher nodes: the noisy grid's carry their level in the data protocol's split
    noisy_split = {"split": {"label_noise": {"kind": "symmetric", "rate": 0.3, "seed": 0}}}
    for grid, name, overrides, f1 in (("noisy", "teacher", noisy_split, 0.92),
                                      ("noisy", "teacher_acc", noisy_split, 0.90),
                                      ("noisy", "assistant", noisy_split, 0.5),  # not a teacher
                                      ("clean", "teacher", {}, 0.93)):
        with RunStore(tmp_path / grid / "runs.sqlite") as st:
            st._db.execute(
                "INSERT INTO runs (hash, idx, status, kind, axes, config, metrics) "
                "VALUES (?, 0, 'done', 'node', ?, ?, ?)",
                (f"{grid}{name}", json.dumps({"node": name}),
                 json.dumps({"data_overrides": overrides}),
                 json.dumps({"test": {"macro_f1": f1}})))
            st._db.commit()
    out = tmp_path / "out"
    assert ln.main(["--grid", str(tmp_path / "noisy"), "--clean-grid", str(tmp_path / "clean"),
                    "--out", str(out)]) == 0
    got = json.loads((out / "label_noise.json").read_text())["tables"]
    assert list(got) == ["best", "last"] and list(got["best"]) == ["clean", "symmetric-30"]
    noisy = got["best"]["symmetric-30"]
    assert noisy["arms"]["kd"]["mean"] == pytest.approx(np.mean(best["symmetric-30", "kd"]))
    kd_none = noisy["paired"]["kd - none"]
    assert kd_none["n"] == 3 and kd_none["diff_mean"] == pytest.approx((0.06 + 0.03 + 0.07) / 3)
    assert "roskd - none" not in noisy["paired"]  # an arm that did not run
    assert got["last"]["clean"]["arms"]["none"]["mean"] == pytest.approx(0.91)
    teachers = json.loads((out / "label_noise.json").read_text())["teachers"]
    assert teachers == {"symmetric-30": {"teacher": 0.92, "teacher_acc": 0.90},
                        "clean": {"teacher": 0.93}}
    md = (out / "label_noise.md").read_text()
    assert "| 30 % | 0.9200 | 0.9000 |" in md
    assert "| 30 % |" in md and "## Selection: last epoch (fixed budget)" in md
    assert (out / "label_noise.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert ln.main(["--grid", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no run store" in err and len(err.splitlines()) == 1


def test_the_two_selection_rules_are_compared_cell_by_cell():
    ab = bench("bench_aug_study")

    def effect(augment, diff, significant, n=10):
        return {"augment": augment, "method": "kd", "family": "kd", "n": n, "diff_mean": diff,
                "p_holm": 0.01 if significant else 0.5, "significant": significant}

    best = {"references": [{"name": "alone", "effects": [
        effect("jitter", 0.02, True), effect("mixup", -0.01, False), effect("rotation", 0.01, True),
        effect("cutmix", 0.03, True, n=0)]}]}
    fixed = {"references": [{"name": "alone", "effects": [
        effect("jitter", 0.01, True), effect("mixup", 0.002, True), effect("rotation", 0.0, False),
        effect("cutmix", 0.03, True)]}]}
    (got,) = ab.rule_agreement(best, fixed)
    assert (got["reference"], got["cells"], got["same_sign"]) == ("alone", 3, 1)  # cutmix: n 0
    assert got["significant_both"] == ["augment=jitter method=kd"]
    assert got["significant_best_only"] == ["augment=rotation method=kd"]
    assert got["significant_fixed_only"] == ["augment=mixup method=kd"]


def test_a_lost_tsaug_screen_is_carried_from_an_earlier_record_and_said_so(tmp_path):
    ab = bench("bench_aug_study")
    spec = load_spec(ab.SPEC)
    gone = tmp_path / "screen"  # no store: the screen's grid folder was lost
    assert "provisional" in ab.tsaug_screen(spec, gone)["status"]
    ranking = [{"augment": a, "val_macro_f1_mean": m, "n": 3} for a, m in (
        ("tsaug_drift", 0.978), ("tsaug_crop", 0.977), ("tsaug_resize", 0.976))]
    earlier = tmp_path / "aug_study_methods.json"
    earlier.write_text(json.dumps({"tsaug_screen": {"ranking": ranking}}))
    got = ab.tsaug_screen(spec, gone, earlier)
    assert got["screen_best_two"] == ["tsaug_drift", "tsaug_crop"]
    assert got["agrees"] is False  # the spec lists drift and resize
    assert got["carried_from"] == str(earlier) and got["ranking"] == ranking
    earlier.write_text(json.dumps({"tsaug_screen": {"status": "not run"}}))
    with pytest.raises(ValueError, match="expected an aug_study JSON with tsaug_screen.ranking"):
        ab.tsaug_screen(spec, gone, earlier)
    assert (ab.results_stem("full"), ab.results_stem("methods")) == (
        "aug_study", "aug_study_methods")


def test_overrides_go_to_every_label_or_the_one_named():
    eb = bench("engine_bench")
    got = eb.split_overrides(["train.lr=0.01", "kd:distill.params.alpha=0.5"], ["kd", "none"])
    assert eb.overrides_for(got, "kd") == {"train.lr": 0.01, "distill.params.alpha": 0.5}
    assert eb.overrides_for(got, "none") == {"train.lr": 0.01}
    with pytest.raises(ConfigError, match="'sk' is none of"):
        eb.split_overrides(["sk:distill.params.beta=1"], ["kd", "none"])
    with pytest.raises(ConfigError, match="key=value"):
        eb.split_overrides(["train.lr"], ["kd"])


@pytest.mark.parametrize(("script", "argv", "says"), [
    ("bench_distill", ["--methods", "pskd"], "'pskd' is not benchmarked"),
    ("bench_pskd", ["--set", "nobody:train.lr=1"], "'nobody' is none of"),
    ("bench_train", ["--epochs-for", "deepconvlstm=x"], "--epochs-for: expected MODEL=N"),
])
def test_bad_options_get_one_line_and_a_non_zero_exit(script, argv, says, tmp_path, capsys):
    module = bench(script)
    assert module.main([*argv, "--dry-run", "--grid-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs.sqlite").exists()


# -- bench_regimes ----------------------------------------------------------------------------


def test_a_regime_lift_counts_only_over_none_and_every_control(tmp_path):
    """Regime A on a store of finished runs (metrics written here, nothing trained): the paired
    analysis reads the default profile's cells only, and a lift counts only where its interval
    excludes 0 against `none` and against each control."""
    br = bench("bench_regimes")
    regime = br.REGIMES["label-budget"]
    spec = load_spec(regime.spec).select({"budget": ["3"]})
    exp, fixed = spec.expand(), spec.expand("fixed")
    rng = np.random.default_rng(0)
    base = {d: 0.78 + 0.03 * rng.standard_normal() for d in range(10)}
    #: arm -> lift over `none` per draw (kd+pool-acc: as good as kd+pool, so the gyro adds 0)
    lift = {"none": 0.0, "ls": 0.01, "kd": 0.0, "kd+pool": 0.04, "kd+pool-acc": 0.04,
            "takd+pool": 0.07}
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register([*exp.runs, *fixed.runs])
        while (row := store.claim(None, "host", 1)) is not None:
            draw, arm = int(row.config["train"]["seed"]), row.axes.get("method")
            score = 0.1 if row.config["train"].get("selection") == "last" else (
                base[draw] + lift.get(arm, 0.0) + 0.002 * rng.standard_normal())
            store.complete(row.hash, "host", 1, {"test": {"macro_f1": score}}, {}, 100, 1.0)
    res = br.analyse(regime, tmp_path, "default")
    arms = res["groups"]["3"]["macro_f1"]
    assert arms["none"]["test"]["n"] == 10 and arms["none"]["test"]["mean"] > 0.5  # not fixed
    assert arms["takd+pool"]["vs_none"]["diff_mean"] == pytest.approx(0.07, abs=0.005)
    assert [c["vs"] for c in arms["takd+pool"]["vs_controls"]] == ["ls", "kd+pool-acc"]
    assert [c["vs"] for c in arms["takd+pool"]["vs_shown"]] == ["kd+pool"]
    assert arms["takd+pool"]["lift_counts"] is True
    assert arms["kd+pool"]["lift_counts"] is False  # no better than its acc-only control
    assert arms["kd+pool-acc"]["lift_counts"] is True and arms["kd"]["lift_counts"] is False
    (goal,) = br.goals_label_budget(res)
    # the best arm beats none by 7 points and its acc-only control kd+pool-acc by 3
    assert (goal["best_arm"], goal["met"]) == ("takd+pool", True)
    arm, margin = goal["gyro_vs_acc"].split(" - kd+pool-acc ")
    assert arm == "takd+pool" and float(margin.split()[0]) == pytest.approx(3.0, abs=0.4)
    assert "| 3 | takd+pool | 10 | 0.8" in br.section(regime, res)


def test_an_earlier_analysis_carries_over_what_a_new_store_lacks(tmp_path):
    """A store rebuilt for one arm of one budget (the earlier store lost): the earlier
    analysis's replicates are analysed with the new ones, the paired differences span both,
    the runs both have are compared, and the store's own score wins where they differ."""
    br = bench("bench_regimes")
    regime = br.REGIMES["label-budget"]
    spec = load_spec(regime.spec).select({"budget": ["3"], "method": ["none", "takd+pool"]})
    scores = {d: 0.70 + 0.01 * d for d in range(10)}
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.register(spec.expand().runs)
        while (row := store.claim(None, "host", 1)) is not None:
            draw, arm = int(row.config["train"]["seed"]), row.axes.get("method")
            score = scores[draw] + (0.05 if arm == "takd+pool" else 0.0)
            if (draw, arm) == (9, "none"):
                score += 0.001  # the rerun differs from the earlier run here
            store.complete(row.hash, "host", 1, {"test": {"macro_f1": score}}, {}, 100, 1.0)
    earlier_arm = {"per_replicate": {str(d): scores[d] + 0.02 for d in range(10)}}
    earlier = {"grid_dir": "/lost", "groups": {
        "3": {"n_params": 100, "macro_f1": {
            "none": {"per_replicate": {str(d): scores[d] for d in range(10)}},
            "kd+pool": earlier_arm}},
        "5": {"n_params": 100, "macro_f1": {"none": earlier_arm}}},
        "nodes": {"teacher": {"5": {"macro_f1": {"mean": 0.9}}}}}
    res = br.analyse(regime, tmp_path, "default", earlier)
    arms = res["groups"]["3"]["macro_f1"]
    assert set(arms) == {"none", "kd+pool", "takd+pool"} and "5" in res["groups"]
    assert arms["kd+pool"]["vs_none"]["diff_mean"] == pytest.approx(0.02 - 0.0001)
    shown = {c["vs"]: c["diff_mean"] for c in arms["takd+pool"]["vs_shown"]}
    assert shown["kd+pool"] == pytest.approx(0.03)
    assert arms["none"]["per_replicate"]["9"] == pytest.approx(scores[9] + 0.001)
    assert res["earlier"] == {"carried": 20, "from": "/lost", "rerun_and_compared": 10,
                              "max_abs_difference": pytest.approx(0.001)}
    assert res["nodes"]["teacher"]["5"] == {"macro_f1": {"mean": 0.9}}
    assert ("20 replicates (group, draw, arm) come from an earlier analysis of store `/lost`, "
            "the rest from this store; 10 were in both, their largest difference 0.0010."
            ) in br.preamble(regime, res)
