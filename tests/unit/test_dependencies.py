"""aifsdk's core installs and imports without the `bench` extra: no torch, pandas, pyarrow,
matplotlib or NVML for a login node or a laptop that only submits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
BENCH_ONLY = ("torch", "pandas", "pyarrow", "matplotlib", "pynvml")


def test_the_heavy_packages_are_in_the_bench_extra_only() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {Requirement(d).name for d in project["dependencies"]}
    bench = {Requirement(d).name for d in project["optional-dependencies"]["bench"]}
    assert not core & {"torch", "pandas", "pyarrow", "matplotlib", "nvidia-ml-py"}
    assert {"torch", "pandas", "pyarrow", "matplotlib"} <= bench


def test_every_core_module_imports_with_the_bench_packages_unimportable() -> None:
    code = (f"import sys\nfor name in {BENCH_ONLY!r}:\n    sys.modules[name] = None\n"
            "import pkgutil, importlib, aifsdk\n"
            "names = [m.name for m in pkgutil.walk_packages(aifsdk.__path__, 'aifsdk.') if not m.name.endswith('__main__')]\n"
            "for name in names:\n    importlib.import_module(name)\n"
            "print(len(names))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) > 20
