"""Start-up cost of aifsdk, on both sides of a job: what ``import aifsdk`` and the job runner load,
and the submit-time list of installed packages cached across processes.

Everything here is real: fresh interpreters, real files on sys.path, the real job runner imports.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_aifsdk_loads_no_submodule_until_a_name_is_used() -> None:
    out = _run(
        "import sys, aifsdk\n"
        "print(sorted(m for m in sys.modules if m.startswith(('aifsdk.', 'submitit', 'yaml'))))\n"
        "aifsdk.RequestError\n"
        "print(sorted(m for m in sys.modules if m.startswith('aifsdk.')))\n"
        "from aifsdk import Job\n"
        "print(Job.__module__, 'aifsdk._job' in sys.modules)\n"
    )
    before, after_error, job = out.splitlines()
    assert before == "['aifsdk._version']"  # __version__, a one-line module
    assert after_error == "['aifsdk._errors', 'aifsdk._version']"
    assert job == "aifsdk._job True"


def test_the_job_runner_imports_neither_numpy_nor_the_submit_side() -> None:
    """What ``python -m aifsdk._run`` and an unpickled function payload load before the user's code."""
    out = _run(
        "import sys, aifsdk._run, aifsdk._distributed\n"
        "from submitit.core import job_environment, utils\n"
        "print('numpy' in sys.modules, sorted(m for m in sys.modules if m.startswith('aifsdk.')))\n"
    )
    numpy, modules = out.split(" ", 1)
    assert numpy == "False"
    assert not {"aifsdk._plan", "aifsdk._planner", "aifsdk._job", "aifsdk._profile", "aifsdk._launch", "aifsdk._sizing"} & set(ast.literal_eval(modules))


def test_installed_packages_are_cached_and_a_new_distribution_changes_the_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aifsdk._launch import _installed_packages

    monkeypatch.setenv("AIFSDK_HOME", str(tmp_path / "home"))
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    first = _installed_packages()
    cached = list((tmp_path / "home" / "cache").glob("packages-*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text()) == first
    assert any(p.startswith("submitit==") for p in first)
    assert _installed_packages() == first  # read back from the cache

    dist = site / "aifsdk_probe_pkg-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: aifsdk-probe-pkg\nVersion: 1.2.3\n")
    added = _installed_packages()
    assert "aifsdk-probe-pkg==1.2.3" in added and set(added) - set(first) == {"aifsdk-probe-pkg==1.2.3"}

    (dist / "METADATA").unlink()
    dist.rmdir()
    assert _installed_packages() == first
