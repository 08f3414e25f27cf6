"""Grid spec expansion: counts, include/exclude, aliases, bundles, profiles, stable hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harkd.cli import main
from harkd.config import ConfigError, validate_run_config
from harkd.grid.spec import load_spec, spec_from_dict

REPO = Path(__file__).resolve().parents[2]
BASE = {
    "data": "configs/data/hapt-quick.yaml",
    "model": {"name": "tiny", "view": ["acc"]},
    "teachers": {"cnn1d": {"name": "cnn1d", "view": ["acc", "gyro"], "run_dir": "runs/t"}},
    "train": {"epochs": 5},
}
KD = {"label": "kd", "set": {"distill.params": {"alpha": 0.5}}}
NONE = {"label": "none", "set": {"teachers": {}}}


def spec(**extra):
    raw = {"name": "g", "base": BASE,
           "axes": {"augment": ["none", "jitter", "scaling"], "method": [NONE, KD],
                    "seed": [0, 1]}}
    raw.update(extra)
    return spec_from_dict(raw, source="test.yaml")


def test_product_count_and_aliases():
    exp = spec().expand()
    assert (exp.product, len(exp.runs), exp.excluded, exp.included, exp.merged) == (12, 12, 0, 0, 0)
    run = next(r for r in exp.runs if r.axes == {"augment": "jitter", "method": "kd", "seed": "1"})
    assert run.config.augment.policy == "jitter"
    assert run.config.distill.method == "kd"
    assert run.config.distill.params == {"alpha": 0.5}
    assert run.config.train.seed == 1
    assert "cnn1d" in run.config.teachers
    plain = next(r for r in exp.runs if r.axes["method"] == "none")
    assert plain.config.teachers == {} and plain.config.distill.method == "none"
    assert [r.index for r in exp.runs] == list(range(12))
    # the last axis varies fastest
    assert [r.axes["seed"] for r in exp.runs[:4]] == ["0", "1", "0", "1"]


def test_exclude_and_include():
    exp = spec(exclude=[{"augment": ["jitter", "scaling"], "method": "kd"}],
               include=[{"augment": "mixup", "method": "none", "seed": [0, 1]}]).expand()
    assert (exp.product, exp.excluded, exp.included) == (12, 4, 2)
    assert len(exp.runs) == 10
    labels = [(r.axes["augment"], r.axes["method"]) for r in exp.runs]
    assert ("jitter", "kd") not in labels and ("scaling", "kd") not in labels
    assert labels.count(("mixup", "none")) == 2
    mixup = [r for r in exp.runs if r.axes["augment"] == "mixup"]
    assert {r.config.augment.policy for r in mixup} == {"mixup"}


def test_include_of_existing_runs_is_merged_and_dotted_keys_match():
    exp = spec(include=[{"augment.policy": "none", "distill.method": "kd"}]).expand()
    assert exp.included == 2 and exp.merged == 2 and len(exp.runs) == 12


def test_hash_is_the_resolved_config_hash_and_stable_across_key_order():
    exp = spec().expand()
    run = exp.runs[5]
    expected = validate_run_config(run.config.model_dump(mode="json")).config_hash()
    assert run.hash == expected == run.config.config_hash()
    # reordering every mapping in the spec changes nothing
    shuffled = json.loads(json.dumps({"seed": [0, 1], "method": [NONE, KD],
                                      "augment": ["none", "jitter", "scaling"]}))
    base = dict(reversed(list(BASE.items())))
    other = spec_from_dict({"axes": shuffled, "base": base, "name": "g"}, source="x.yaml")
    assert {r.hash for r in other.expand().runs} == {r.hash for r in exp.runs}
    assert len({r.hash for r in exp.runs}) == 12


def test_profile_applies_to_every_run_and_conditionally():
    s = spec(profiles={"quick": {"epochs": 1, "method=kd": {"distill.params.temperature": 2.0}}})
    full, quick = s.expand(), s.expand("quick")
    assert {r.config.train.epochs for r in full.runs} == {5}
    assert {r.config.train.epochs for r in quick.runs} == {1}
    kd = [r for r in quick.runs if r.axes["method"] == "kd"]
    assert all(r.config.distill.params == {"alpha": 0.5, "temperature": 2.0} for r in kd)
    assert all(r.config.distill.params == {} for r in quick.runs if r.axes["method"] == "none")
    assert not {r.hash for r in full.runs} & {r.hash for r in quick.runs}
    assert s.grid_dir("quick") == Path("runs/grids/g-quick")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"axes": {"train.nope": [1, 2]}}, "unknown key 'train.nope'"),
        ({"exclude": [{"colour": "red"}]}, "exclude[0] names axis 'colour'"),
        ({"axes": {"augment": ["none", "none"]}}, "repeats the labels ['none']"),
        ({"axes": {"method": [{"set": {"teachers": {}}}]}}, "needs a `label`"),
        ({"axes": {"method": [{"label": "x", "set": {}, "extra": 1}]}}, "unknown keys ['extra']"),
        ({"profiles": {"q": {"method=nope": {"epochs": 1}}}}, "axis 'method' has no value 'nope'"),
        ({"colour": 1}, "unknown key 'colour'"),
        ({"axes": {"augment": ["none"], "train.epochs": [0]}}, "train.epochs"),
    ],
)
def test_bad_specs_name_the_problem(extra, message):
    with pytest.raises(ConfigError) as err:
        spec(**extra)
    assert message in str(err.value)
    assert "test.yaml" in str(err.value)


def test_unknown_profile_lists_the_profiles():
    with pytest.raises(ConfigError, match=r"unknown profile 'fast'; profiles: \['quick'\]"):
        spec(profiles={"quick": {"epochs": 1}}).expand("fast")


def test_spec_file_with_base_path_and_dry_run(tmp_path, capsys):
    data = str(REPO / BASE["data"])  # the base's data protocol must load from tmp_path too
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({**BASE, "data": data}))
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", "axes": {"seed": [0, 1, 2]},
                                    "output_dir": str(tmp_path / "out")}))
    s = load_spec(path)
    assert s.name == "g" and len(s.expand().runs) == 3
    assert main(["grid", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 runs: 0 training nodes, 3 cells (product 3" in out
    for r in s.expand().runs:
        assert r.hash in out and f"seed={r.axes['seed']}" in out
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_shipped_grids_expand():
    ablation = load_spec(REPO / "configs/grids/hapt_aug_ablation.yaml")
    cross, full, quick, methods, smoke = (ablation.expand(p) for p in (
        None, "full", "quick", "methods", "smoke"))
    assert [len(e.cells) for e in (cross, full, quick, methods, smoke)] == [1700, 240, 36, 102, 16]
    policies = {"none", "jitter", "scaling", "jitter+scaling", "timewarp", "magwarp", "rotation",
                "mixup", "cutmix", "tsaug_drift", "tsaug_resize"}
    assert {r.axes["augment"] for r in cross.cells} == policies
    assert {r.axes["student"] for r in cross.cells} == {"tiny", "tiny_1k"}
    assert {r.axes["seed"] for r in cross.cells} == {str(s) for s in range(10)}
    # the teacher's input varies only where a teacher sees an augmented window, and the budget
    # rule leaves tiny_1k's clean-input and tsaug cells out
    clean = [r for r in cross.cells if r.axes["teacher_input"] == "clean"]
    assert clean and all(r.config.augment.teacher_input == "clean" for r in clean)
    assert all(r.axes["method"] != "none" and r.axes["augment"] != "none"
               and r.axes["student"] == "tiny" for r in clean)
    assert not any(r.axes["student"] == "tiny_1k" and r.axes["augment"].startswith("tsaug_")
                   for r in cross.cells)
    # the study as measured: the tiny student alone and kd on every policy at 10 seeds, the
    # clean input on two policies, run last; quick is a part of it (the very same runs)
    assert {(r.axes["student"], r.axes["method"]) for r in full.cells} == {
        ("tiny", "none"), ("tiny", "kd")}
    assert {r.axes["augment"] for r in full.cells} == policies
    assert {r.axes["seed"] for r in full.cells} == {str(s) for s in range(10)}
    assert {r.axes["augment"] for r in full.cells if r.axes["teacher_input"] == "clean"} == {
        "jitter+scaling", "mixup"}
    order = [r.axes["teacher_input"] for r in full.cells]
    assert order == sorted(order, key=["same", "clean"].index)
    assert {r.hash for r in quick.cells} < {r.hash for r in full.cells}
    assert {r.axes["seed"] for r in quick.cells} == {"0", "1", "2"}
    # every method learns from its own teachers: kd, iekd and sk from the acc+gyro cnn1d, takd
    # from the two assistants of the chain, mrkd from the per-modality branches
    for exp in (cross, full, quick, methods, smoke):
        node = {n.axes["node"]: n for n in exp.nodes}
        taught_by = {"none": (), "kd": ("teacher",), "iekd": ("teacher",), "sk": ("teacher",),
                     "takd": ("assistant", "assistant2"), "mrkd": ("branches",)}
        assert node["teacher"].config.model.view == ["acc", "gyro"]
        assert all(set(r.deps) == {node[n].hash for n in taught_by[r.axes["method"]]}
                   for r in exp.cells)
        assert all(r.config.model.view == ["acc"] for r in exp.cells)
    assert node.keys() == {"teacher"}  # smoke trains only what its cells need
    assert [n.axes["node"] for n in full.nodes] == ["teacher"] == [
        n.axes["node"] for n in quick.nodes]
    chain = {n.axes["node"]: n for n in cross.nodes}
    assert chain["assistant2"].deps == (chain["assistant"].hash,)
    assert chain["assistant"].deps == (chain["teacher"].hash,)
    assert {r.axes["method"] for r in methods.cells} == {
        "none", "kd", "iekd", "sk", "takd", "mrkd"}
    assert {r.axes["method"] for r in methods.cells
            if r.axes["teacher_input"] == "clean"} == {"kd"}
    assert {r.axes["seed"] for r in methods.cells} == {"0", "1", "2"}
    # full, quick and methods are real studies at full training length; smoke the 2-epoch
    # plumbing check
    for exp in (full, quick, methods):
        assert {r.config.train.epochs for r in exp.cells} == {30} == {
            n.config.train.epochs for n in exp.nodes}
    assert {r.config.train.epochs for r in smoke.cells} == {2} == {
        smoke.nodes[0].config.train.epochs}
    # each method's parameters are its own config's, not a copy
    kd = next(r for r in full.cells if r.axes["method"] == "kd")
    assert kd.config.distill.params == {"alpha": 0.9, "temperature": 1.0}
    iekd = next(r for r in methods.cells if r.axes["method"] == "iekd")
    assert iekd.config.distill.params["ae_epochs"] == 5
    smoke = load_spec(REPO / "configs/grids/tiny_smoke.yaml").expand()
    assert (len(smoke.cells), len(smoke.nodes)) == (8, 1)


def test_shipped_regime_grids_expand_to_their_graphs():
    budget = load_spec(REPO / "configs/grids/label_budget.yaml").expand()
    assert (len(budget.nodes), len(budget.cells)) == (150, 300)
    nodes = {n.hash: n for n in budget.nodes}
    for cell in budget.cells:
        split = cell.config.data_overrides["split"]
        assert cell.config.train.seed == split["label_budget_seed"] == int(cell.axes["draw"])
        teachers = [nodes[d] for d in cell.deps]
        if cell.axes["method"] == "takd+pool":  # the draw's assistant, on the draw's pool
            (assistant,) = teachers
            assert assistant.config.model.view == ["acc", "gyro"]
            assert assistant.config.data_overrides["split"] == split
            assert assistant.config.distill.params["pool"] is True
            teachers = [nodes[d] for d in assistant.deps]
        for t in teachers:  # the draw's own teacher: same labelled subjects and seed, no pool
            assert t.config.data_overrides["split"] == {**split, "pool": False}
            assert t.config.train.seed == cell.config.train.seed
        wanted = {"none": 0, "ls": 0, "kd": 1, "kd+pool": 1, "kd+pool-acc": 1, "takd+pool": 1}
        assert len(cell.deps) == wanted[cell.axes["method"]]
        if cell.axes["method"] == "kd+pool-acc":
            assert nodes[cell.deps[0]].config.model.view == ["acc"]
    sizes = load_spec(REPO / "configs/grids/student_size.yaml").expand()
    assert (len(sizes.nodes), len(sizes.cells)) == (3, 200)
    by_name = {n.axes["node"]: n for n in sizes.nodes}
    assert by_name["assistant"].deps == (by_name["teacher"].hash,)  # teacher -> assistant chain
    assert {c.deps for c in sizes.cells if c.axes["method"] == "takd"} == {
        (by_name["assistant"].hash,)}
    folds = load_spec(REPO / "configs/grids/hapt12.yaml").expand()
    assert (len(folds.nodes), len(folds.cells)) == (20, 69)  # tiny: 4 arms x 10 folds
    fold_nodes = {n.hash: n for n in folds.nodes}
    for cell in folds.cells:
        if cell.axes["method"] == "takd":  # the fold's assistant, taught by the fold's teacher
            (assistant,) = (fold_nodes[d] for d in cell.deps)
            assert assistant.config.model.view == ["acc", "gyro"]
            (teacher,) = (fold_nodes[d] for d in assistant.deps)
            assert teacher.config.data_overrides == cell.config.data_overrides
    peers = [c for c in folds.cells if c.axes["model"] != "tiny"]
    assert {c.axes["method"] for c in peers} == {"none"}
    for model, folds_run in (("tinyhar-acc", 10), ("tinierhar-acc", 10), ("tinyhar", 3),
                             ("tinierhar", 3), ("deepconvlstm", 3)):  # the peers' stated folds
        assert sorted(int(c.axes["fold"]) for c in peers if c.axes["model"] == model) == list(
            range(folds_run))
    for cell in folds.cells:
        for dep in cell.deps:
            node = next(n for n in folds.nodes if n.hash == dep)
            assert node.config.data_overrides == cell.config.data_overrides  # the cell's fold


@pytest.mark.parametrize("name", ["label_budget", "student_size", "hapt12"])
def test_each_regime_has_a_fixed_budget_check_sharing_its_teachers(name):
    shipped = load_spec(REPO / f"configs/grids/{name}.yaml")
    default, fixed = shipped.expand(), shipped.expand("fixed")
    assert {n.hash for n in fixed.nodes} == {n.hash for n in default.nodes}
    assert len(fixed.cells) == len(default.cells)
    for cell, ref in zip(fixed.cells, default.cells, strict=True):
        assert cell.axes == ref.axes and cell.deps == ref.deps
        train = cell.config.train
        assert (train.selection, train.patience) == ("last", None)
        # the default profile's most epochs (label budget: a longer fixed run of few labels)
        assert train.epochs == (60 if name == "label_budget" else ref.config.train.epochs)


def test_a_profile_selects_labels_for_a_smaller_study():
    s = spec(profiles={"small": {"select": {"augment": ["none", "jitter"], "seed": [0]},
                                 "method=kd": {"train.epochs": 2}}})
    small = s.expand("small")
    assert sorted((r.axes["augment"], r.axes["method"], r.axes["seed"]) for r in small.runs) == [
        ("jitter", "kd", "0"), ("jitter", "none", "0"), ("none", "kd", "0"), ("none", "none", "0")]
    assert {r.config.train.epochs for r in small.runs if r.axes["method"] == "kd"} == {2}
    full = {r.hash for r in s.expand().runs}  # untouched by the profile's keys: the same runs
    assert {r.hash for r in small.runs if r.axes["method"] == "none"} <= full
    # a --select narrows further; a label a profile names must exist
    narrowed = s.select({"augment": ["jitter", "scaling"]}).expand("small")
    assert {r.axes["augment"] for r in narrowed.runs} == {"jitter"}
    with pytest.raises(ConfigError, match="no value"):
        spec(profiles={"bad": {"select": {"augment": ["warp"]}}})
    with pytest.raises(ConfigError, match="lists of labels"):
        spec(profiles={"bad": {"select": {"augment": "none"}}})


def test_a_profile_excludes_more_cells_and_keeps_the_spec_rules():
    s = spec(exclude=[{"augment": "scaling"}],
             profiles={"lean": {"exclude": [{"method": "kd", "augment": ["jitter"]}]}})
    lean = s.expand("lean")
    cells = {(r.axes["augment"], r.axes["method"]) for r in lean.runs}
    assert cells == {("none", "none"), ("none", "kd"), ("jitter", "none")}
    assert (lean.product, lean.excluded, len(lean.runs)) == (12, 6, 6)
    assert {r.hash for r in lean.runs} <= {r.hash for r in s.expand().runs}
    with pytest.raises(ConfigError, match=r"profiles.bad.exclude\[0\] names axis 'sensor'"):
        spec(profiles={"bad": {"exclude": [{"sensor": "acc"}]}}).expand("bad")
    with pytest.raises(ConfigError, match="list of rules"):
        spec(profiles={"bad": {"exclude": {"method": "kd"}}}).expand("bad")
