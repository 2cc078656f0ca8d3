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
    local.write_text(local.read_text() + "\nfrom .._planner import build_plan  # noqa: E402,F401\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe
    out = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0
    assert "aifsdk._backends.local -> aifsdk._planner" in out.stdout, out.stdout


def test_every_error_class_of_aifsdk_is_in_the_tree() -> None:
    """Each exception class aifsdk defines derives from AifsdkError (and keeps its builtin base)."""
    import importlib
    import inspect
    import pkgutil

    import aifsdk
    from aifsdk._errors import AifsdkError

    outside = []
    for info in pkgutil.walk_packages(aifsdk.__path__, "aifsdk."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("aifsdk"):
                if not issubclass(obj, AifsdkError):
                    outside.append(f"{obj.__module__}.{name}")
    assert outside == []


# Builtin exceptions raised on purpose that never reach a caller of aifsdk: caught right away by the
# code that calls these functions, or part of a Python protocol.
CAUGHT_INSIDE = {
    ("aifsdk/__init__.py", "__getattr__", "AttributeError"),  # the module attribute protocol
    ("aifsdk/_resources.py", "parse_time", "ValueError"),  # callers turn it into a Problem
    ("aifsdk/_paths.py", "expand_root", "ValueError"),  # the planner turns it into a Problem
    ("aifsdk/_sizing.py", "parse_measures", "ValueError"),  # caught a line below
    ("aifsdk/_backends/base.py", "executor", "NotImplementedError"),  # abstract methods
    ("aifsdk/_backends/base.py", "state", "NotImplementedError"),
    ("aifsdk/_backends/base.py", "cancel", "NotImplementedError"),
}


def test_no_builtin_exception_escapes_the_tree() -> None:
    import ast
    import builtins

    found = set()
    for path in sorted((ROOT / "aifsdk").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                exc = node.exc if isinstance(node, ast.Raise) else None
                name = exc.func.id if isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name) else getattr(exc, "id", None)
                if name and isinstance(getattr(builtins, name, None), type) and issubclass(getattr(builtins, name), BaseException):
                    found.add((str(path.relative_to(ROOT)), func.name, name))
    assert found - CAUGHT_INSIDE == set()


# Where a time text is read into minutes: the request (Resources.time_minutes, once when it is
# checked), the site profile's own limits and defaults, and what Slurm prints. Everything else
# reads those minutes (Resolved.minutes, Plan.time_minutes, Partition.max_minutes, ...).
TIME_PARSED_IN = {"aifsdk/_resources.py", "aifsdk/_profile.py", "aifsdk/_scheduler.py"}


def test_time_is_parsed_where_it_enters_only() -> None:
    import ast

    callers = set()
    for path in sorted((ROOT / "aifsdk").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "parse_time":
                callers.add(str(path.relative_to(ROOT)))
    assert callers - TIME_PARSED_IN == set(), "read the minutes already parsed (Resources.time_minutes, Resolved.minutes) instead"
    assert callers, "the scan found no call of parse_time at all: it no longer sees them"
