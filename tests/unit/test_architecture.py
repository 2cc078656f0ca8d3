"""The import graph stays layered: import-linter's contracts (``[tool.importlinter]`` in
pyproject.toml) hold, and a broken contract fails here with import-linter's own report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports() -> str:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "lint-imports is missing: pip install -e '.[test]' installs import-linter"
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_import_contracts_are_kept() -> None:
    report = _lint_imports()
    assert "0 broken" in report and "Contracts: 3 kept" in report, report


def test_a_backend_importing_the_planner_breaks_the_contract(tmp_path: Path) -> None:
    """The contracts can fail: a copy of the package whose backend imports the planner is refused."""
    pkg = tmp_path / "aifsdk"
    shutil.copytree(ROOT / "aifsdk", pkg, ignore=shutil.ignore_patterns("__pycache__", "configs"))
    local = pkg / "_backends" / "local.py"
    local.write_text(local.read_text() + "\nfrom .._plan import plan  # noqa: E402,F401\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe
    out = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0
    assert "aifsdk._backends.local -> aifsdk._plan" in out.stdout, out.stdout

