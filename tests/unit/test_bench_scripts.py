"""The SDK's own benchmark scripts and the harness's acceptance checks (tools/) start on a clean checkout (they are not otherwise run by the tests),
and the snapshot benchmark runs end to end on a tiny tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["bench_snapshot", "bench_submit", "bench_lifecycle", "check_matmul", "check_repeat"])
def test_benchmark_script_starts(script: str) -> None:
    out = subprocess.run([sys.executable, "-m", f"tools.{script}", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_snapshot_benchmark_on_a_tiny_tree(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "tools.bench_snapshot", "--files", "200", "--mb", "1", "--repeats", "2",
            "--content", "source", "--out", str(tmp_path)]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(next(tmp_path.glob("bench_snapshot-*.json")).read_text())
    run = report["runs"][0]
    assert run["first"]["files"] == 200 and run["first"]["new_bytes_stored"] > 0
    assert all(r["new_bytes_stored"] == 0 and r["packs"] == 1 for r in run["unchanged_same_process"] + run["unchanged_new_process"])
    assert all(m["extract_s"] > 0 for m in run["materialise"])


def test_secret_guard_false_positive_tool_on_this_repository() -> None:
    """docs/performance.md's false-positive measurement, on this repository: it holds no secret, so nothing is flagged."""
    out = subprocess.run([sys.executable, "-m", "tools.secret_guard_fp", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "all: 0 of " in out.stdout and " files flagged" in out.stdout
