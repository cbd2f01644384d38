"""The architecture as import-linter checks it (contracts in pyproject.toml): no import cycles, the
deployer's layers import only downwards, Sifu stands apart from the deployer, product code never
imports the tests. The second test proves the contracts bite, on imports made inside functions too,
and that every new module of deployer must be placed in a layer.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deployer import REPO_ROOT


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    linter = Path(sys.executable).parent / "lint-imports"
    # COLUMNS: rich would wrap contract names at 80 columns.
    return subprocess.run([str(linter), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "300"})


def test_import_contracts_are_kept():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


INJECTED = {
    "cycle hidden in a function": (
        "deployer/templating/context.py", "from deployer.render import registry", "No import cycles:"),
    "cycle through a package's __init__": (
        "deployer/config/answers.py", "from deployer.config import Settings", "No import cycle through deployer/config/"),
    "lower layer imports a higher one": (
        "deployer/ui.py", "from deployer.cli import common", "deployer is layered"),
    "a new module in no layer": (
        "deployer/unplaced.py", "pass", "deployer is layered"),
    "Sifu imports the deployer": (
        "sifu/config.py", "import deployer.config", "Sifu stands apart"),
    "product code imports the tests": (
        "devlms/app.py", "import tests.support.tls", "Product code never imports the tests"),
}


@pytest.mark.parametrize("case", INJECTED)
def test_each_contract_breaks_on_a_bad_change(tmp_path, case):
    path, statement, contract = INJECTED[case]
    pyproject = REPO_ROOT / "pyproject.toml"
    shutil.copy(pyproject, tmp_path)
    for package in tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["root_packages"]:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / path, "a") as f:
        f.write(f"\n\ndef _injected():\n    {statement}\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
