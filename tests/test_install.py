"""A non-editable install of the checkout works from any directory, its configs included.

The wheel is built from a copy of the checkout's package sources and installed with `--target`
into a temporary folder. Every check runs `python -S` with only that folder and the project's
site-packages on the path: no `.pth` file runs, so the checkout's editable install cannot stand
in for a module or config the wheel lacks. The working directory is outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from harkd.config import ConfigError
from harkd.shipped import SHIPPED_CONFIGS, config_file

REPO = Path(__file__).resolve().parents[1]
#: what a wheel is built from
SOURCES = ("pyproject.toml", "setup.py", "README.md", "harkd", "data_prep", "configs")

#: run inside the install: where harkd, its configs and every imported module come from, and
#: the shipped student config loaded through the shipped-config lookup
PROBE = """
import json, sys
from pathlib import Path
import harkd
from harkd.config import load_run_config
from harkd.shipped import SHIPPED_CONFIGS, config_file
cfg = load_run_config(config_file("configs/train/student_tiny.yaml"))
files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
print(json.dumps({
    "harkd": harkd.__file__, "configs": str(SHIPPED_CONFIGS), "data": cfg.data,
    "data_is_file": Path(cfg.data).is_file(), "modules": [f for f in files if f],
}))
"""


def build_and_install(sources: Path, work: Path) -> Path:
    """Build a wheel from the package sources under `sources`; install it into `work`/site."""
    src, wheels, target = work / "src", work / "wheels", work / "site"
    for name in SOURCES:
        path = sources / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", wheels, src)
    pip("install", "--no-deps", "--no-index", "--target", target, *wheels.glob("*.whl"))
    return target


def pip(*args: str | Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"pip {args[0]} failed:\n{done.stderr[-3000:]}"


def run_installed(target: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python -S ARGS` in `cwd` seeing the install and the project's dependencies only."""
    path = os.pathsep.join([str(target), *site.getsitepackages()])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run(
        [sys.executable, "-S", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the install folder, an empty working directory outside the repository)."""
    work = tmp_path_factory.mktemp("install")
    target = build_and_install(REPO, work)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return target, elsewhere


def check_ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_wheel_holds_every_module_and_config(installed):
    target, _ = installed
    for folder, package, pattern in (
        ("harkd", "harkd", "*.py"),
        ("data_prep", "data_prep", "*.py"),
        ("configs", "harkd_configs", "*.yaml"),
    ):
        here = {p.relative_to(REPO / folder) for p in (REPO / folder).rglob(pattern)}
        there = {p.relative_to(target / package) for p in (target / package).rglob(pattern)}
        assert here, f"no {pattern} under {folder}/"
        assert here - there == set(), f"files of {folder}/ missing from the wheel's {package}"


@pytest.mark.slow
def test_commands_run_from_the_install(installed):
    target, elsewhere = installed
    out = check_ok(run_installed(target, ["-m", "harkd.cli", "--help"], elsewhere))
    assert "prep" in out and "demo" in out
    script = target / "bin" / "harkd"  # the console script, run by the same interpreter
    out = check_ok(run_installed(target, [str(script), "prep", "--list-readers"], elsewhere))
    assert "columns (dict[str, Any], required): the column map" in out
    out = check_ok(run_installed(target, ["-m", "harkd.cli", "augment", "--list"], elsewhere))
    assert "timewarp" in out and "rotation" in out  # the shipped policies were found


@pytest.mark.slow
def test_shipped_configs_load_from_the_install(installed):
    target, elsewhere = installed
    probe = json.loads(check_ok(run_installed(target, ["-c", PROBE], elsewhere)))
    assert Path(probe["harkd"]).is_relative_to(target)
    assert Path(probe["configs"]) == target / "harkd_configs"
    assert probe["data_is_file"] and Path(probe["data"]).is_relative_to(target / "harkd_configs")
    checkout = [REPO / folder for folder in ("harkd", "data_prep", "configs")]
    from_checkout = [f for f in probe["modules"] if any(map(Path(f).is_relative_to, checkout))]
    assert from_checkout == [], "the install imported modules from the checkout"


def test_config_file_prefers_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = config_file("configs/train/student_tiny.yaml")
    assert shipped == SHIPPED_CONFIGS / "train" / "student_tiny.yaml" and shipped.is_file()
    assert config_file("train/student_tiny.yaml") == shipped  # a bare shipped name
    assert config_file("quickstart.yaml") == SHIPPED_CONFIGS / "quickstart.yaml"
    own = tmp_path / "configs" / "train" / "student_tiny.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("name: mine\n")
    assert config_file("configs/train/student_tiny.yaml").resolve() == own  # an existing path wins
    assert config_file(own) == own
    with pytest.raises(ConfigError) as info:
        config_file("configs/train/student_tini.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("configs/train/student_tini.yaml: ")
    assert str(tmp_path) in message and str(SHIPPED_CONFIGS) in message
    with pytest.raises(ConfigError, match="config file not found"):
        config_file(tmp_path / "absent.yaml")  # an absolute path is never looked up


@pytest.mark.slow
def test_demo_runs_from_the_install(installed, tmp_path, monkeypatch):
    """`harkd demo` with a short override, from outside the repository: the shipped quickstart
    spec, a node and the cell it teaches, and the report (tests/test_quickstart.py runs every
    arm)."""
    target, elsewhere = installed
    data = json.dumps({"subjects": [1, 2, 3, 4, 5, 6, 7, 8],
                       "split": {"test_subjects": [2, 4], "val_subjects": [3, 5]}})
    args = [str(target / "bin" / "harkd"), "demo", "--no-progress", "--profile", "short",
            "--select", "draw=0", "--select", "method=kd+pool", f"output_dir={tmp_path / 'qs'}",
            f"profiles.short.data_overrides={data}",
            "latency={threads: 1, runs: 50, warmup: 5, batch: 16, int8: false}"]
    monkeypatch.setenv("HARKD_CACHE", str(tmp_path / "cache"))
    out = check_ok(run_installed(target, args, elsewhere))
    assert "| teacher | 1 |" in out and "| kd+pool | 1 |" in out
    assert (tmp_path / "qs-short" / "report.md").is_file()
