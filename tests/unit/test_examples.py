"""Every example in examples/ runs (cluster examples are run by tests/cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_first_job_runs_on_local() -> None:
    out = subprocess.run([sys.executable, str(REPO / "examples" / "first_job.py")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'sum_of_squares': 332833500" in out.stdout
