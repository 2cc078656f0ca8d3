"""The Hydra launcher (hydra_plugins/aifsdk_launcher) through the example app, on site `local`
(real subprocesses); the Slurm array path is in tests/cluster/test_lifecycle.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "examples" / "hydra_sweep" / "my_app.py"


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(APP), "--multirun", "hydra/launcher=aifsdk", f"hydra.sweep.dir={tmp_path}", *overrides],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_launcher_is_discovered_and_runs_the_sweep(tmp_path: Path) -> None:
    out = sweep(tmp_path, "x=2,3,4")
    assert out.returncode == 0, out.stderr
    assert "aifsdk: submitted 3 job(s) to local" in out.stderr + out.stdout
    results = [(tmp_path / str(i) / "result.txt").read_text() for i in range(3)]
    assert [r.split()[1] for r in results] == ["squared=4", "squared=9", "squared=16"]


def test_a_failing_point_fails_the_multirun(tmp_path: Path) -> None:
    out = sweep(tmp_path, "x=1,oops")
    assert out.returncode != 0
    assert "oops" in out.stderr  # int('oops') raised on the node; Hydra reports the failed job
    assert (tmp_path / "0" / "result.txt").exists()  # the good point still ran
