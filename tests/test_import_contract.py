"""The import contracts in pyproject.toml ([tool.importlinter]) hold, and the checker that
enforces them does catch an upward import (imports inside functions included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` of this environment on `config`, analysing the packages in `cwd`."""
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "lint-imports is missing: install the dev extra (pip install -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [command, str(config), "--no-cache"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_the_project_keeps_its_import_contracts():
    result = lint_imports(REPO / "pyproject.toml", REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "3 kept" in result.stdout


def test_an_upward_import_inside_a_function_is_caught(tmp_path):
    """A two-layer package whose lower layer imports the upper one inside a function."""
    pkg = tmp_path / "layered"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from layered import low\n")
    (pkg / "low.py").write_text(textwrap.dedent("""\
        def upward():
            from layered import high

            return high
        """))
    config = tmp_path / "contracts.toml"
    config.write_text(textwrap.dedent("""\
        [tool.importlinter]
        root_packages = ["layered"]

        [[tool.importlinter.contracts]]
        name = "high above low"
        type = "layers"
        layers = ["layered.high", "layered.low"]
        """))
    result = lint_imports(config, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "layered.low is not allowed to import layered.high" in result.stdout
    # without the upward import the same contract is kept
    (pkg / "low.py").write_text("def upward():\n    return None\n")
    assert lint_imports(config, tmp_path).returncode == 0


def test_the_real_code_breaks_a_contract_it_should_break(tmp_path):
    """Grid runs deployment for each cell (inside a function of its executors), so a contract
    putting deploy above grid must fail on this code base."""
    config = tmp_path / "inverted.toml"
    config.write_text(textwrap.dedent("""\
        [tool.importlinter]
        root_packages = ["harkd", "data_prep"]

        [[tool.importlinter.contracts]]
        name = "deploy above grid (wrong on purpose)"
        type = "layers"
        layers = ["harkd.deploy", "harkd.grid"]
        """))
    result = lint_imports(config, REPO)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "harkd.grid is not allowed to import harkd.deploy" in result.stdout
