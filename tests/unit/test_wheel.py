"""The wheel holds the benchmark suite and its configs: built from this checkout, installed into a
fresh virtual environment, ``python -m benchmarks`` runs from an empty folder.

To stay offline and fast, the wheel is installed with ``--no-deps --no-index`` and the fresh
environment sees this test's own site-packages (torch, hydra, submitit...) through a ``.pth``
line appended after its own. A path line in a ``.pth`` file does not run the ``.pth`` files of the
folder it names, so this checkout (put on the path by the editable install) stays out of it: the
test checks that ``aifsdk`` and ``benchmarks`` are imported from the fresh environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["timing.min_samples=2", "timing.max_samples=2", "timing.min_time_s=0", "timing.warmup_iters=1", "timing.flush_cache=false",
        "threads=1", "telemetry_interval_s=0.05", "suite.benchmarks.matmul.m_range=[32,64,32]", "suite.benchmarks.matmul.n_range=[64]",
        "suite.benchmarks.matmul.k_range=[64]", "suite.benchmarks.membw.size_mb=2", "workload.batch_size=1"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("aifsdk-*.whl")
    return path


def test_wheel_holds_the_suite_and_its_configs_and_not_the_tools(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("benchmarks/__main__.py", "benchmarks/results.py", "benchmarks/workloads/__init__.py", "aifsdk/configs/benchmarks.yaml",
                   "aifsdk/configs/suite/quick.yaml", "aifsdk/configs/workload/unet3d.yaml", "aifsdk/configs/reference/accelerators.yaml"):
        assert needed in names, f"{needed} missing from {wheel.name}"
    assert not [n for n in names if n.startswith(("tools/", "tests/"))]


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    own = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                         check=True).stdout.strip()
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (Path(own) / "zz_dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    return python


def test_python_m_benchmarks_runs_from_an_empty_folder(fresh_venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run([str(fresh_venv), "-c", "import aifsdk, benchmarks; print(aifsdk.__file__); print(benchmarks.__file__)"],
                           cwd=empty, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(fresh_venv.parents[1])) for line in where.stdout.split()), where.stdout
    run = subprocess.run([str(fresh_venv), "-m", "benchmarks", *TINY], cwd=empty, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    (folder,) = (empty / "results").iterdir()
    doc = json.loads((folder / "results.json").read_text())
    measured = {r["benchmark"] for r in doc["rows"] if "stats" in r}
    assert measured == {"matmul", "membw", "workload"}, doc["rows"]
    assert {r["case"] for r in doc["rows"] if r["benchmark"] == "workload"} == {"unet3d fp32", "satseg fp32", "sar fp32", "logformer fp32"}
    assert f"results: {folder.relative_to(empty)}" in run.stdout or f"results: {folder}" in run.stdout
