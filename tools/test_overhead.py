"""The SDK's own overhead, measured with pytest-benchmark: ``aifsdk.plan`` of a function job,
without the code snapshot and with it (this repository snapshotted).

    .venv/bin/python -m pytest tools/test_overhead.py -q \
        --benchmark-json results/overhead-$(date +%Y%m%d-%H%M%S).json

pytest's default run does not collect this file (``testpaths = ["tests"]`` in pyproject.toml);
the JSON (``--benchmark-json``) keeps every raw timing. Targets are reported, never asserted:
plan of a function job under 50 ms.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import aifsdk

REPO = Path(__file__).resolve().parents[1]


def payload(x: int) -> int:
    return x + 1


@pytest.fixture(autouse=True)
def private_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Plans read and write nothing of the user's: AIFSDK_HOME and the job root are private."""
    monkeypatch.setenv("AIFSDK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AIFSDK_CONFIG_DIR", str(tmp_path / "home" / "config"))
    monkeypatch.setenv("AIFSDK_JOB_ROOT", str(tmp_path / "home" / "jobs"))
    monkeypatch.chdir(REPO)  # the snapshot row snapshots this repository


def test_plan_function_job_without_snapshot(benchmark) -> None:  # noqa: ANN001 - pytest-benchmark's fixture
    plan = benchmark(aifsdk.plan, payload, 1, site="local", snapshot=False)
    assert plan.kind == "function" and "payload" in plan.target and plan.snapshot is None


def test_plan_function_job_with_snapshot(benchmark) -> None:  # noqa: ANN001
    plan = benchmark(aifsdk.plan, payload, 1, site="local")
    assert plan.kind == "function" and plan.snapshot is not None
