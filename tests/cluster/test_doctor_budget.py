"""``aifsdk doctor --site X`` runs the site's own account and budget tools where its Slurm runs and
shows their answer beside the request's cost; a tool that is not there is named as missing.

The sites' real tools (lumi-allocations, saldo, jutil, it4ifree...) do not exist on this machine:
a small shell script stands in for one, put on PATH here (this machine's Slurm) or in the SSH
user's home (the login node over SSH). The test cluster, ssh and the doctor are real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aifsdk._doctor import doctor

from conftest import REMOTE_HOME, REMOTE_PYTHON, REMOTE_USER

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]

# Stands in for a site's budget tool: prints what it was asked and a budget line, like the real ones do.
STAND_IN = """#!/bin/sh
echo "stand-in budget tool, asked: $*"
echo "project aifsdk-test  GPU-hours used 1200 of 5000 (3800 left)"
"""


def site_profile(name: str, commands: dict[str, str], ssh: str = "") -> str:
    folder = Path(os.environ["AIFSDK_CONFIG_DIR"]) / "site"
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"  {k}: {v}\n" for k, v in commands.items())
    (folder / f"{name}.yaml").write_text(
        "title: the local test cluster with a site's budget tools\nexecutor: slurm\ndiscover: true\n"
        "partitions: {debug: {default: true}}\nbilling: {unit: gpu-hours}\n"
        f"commands:\n{lines}{ssh}sources: [test]\n")
    return name


def stand_in(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(STAND_IN)
    tool.chmod(0o755)
    return tool


def test_budget_tool_answer_beside_the_cost_and_a_missing_tool_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in(tmp_path / "bin", "site-budget")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    site = site_profile("budgeted", {"budget": "site-budget --project aifsdk-test", "accounts": "site-accounts-nowhere"})
    report = doctor(site, {"gpus_per_node": 1, "time": "2h"})
    found, missing = report.budget
    assert (found.command, found.missing, missing.command, missing.missing) == (
        "site-budget --project aifsdk-test", False, "site-accounts-nowhere", True)
    assert "asked: --project aifsdk-test" in found.output and "3800 left" in found.output
    text = report.text()
    assert "$ site-budget --project aifsdk-test\n    stand-in budget tool" in text
    assert "$ site-accounts-nowhere: not found where the site's Slurm runs (commands.accounts" in text
    assert report.cost is not None and f"  this request: {report.cost}" in text
    assert text.index("3800 left") < text.index("this request:"), "the budget, then the request's cost beside it"


def test_the_cli_prints_the_budget(tmp_path: Path) -> None:
    stand_in(tmp_path / "bin", "site-budget")
    site = site_profile("budgeted-cli", {"budget": "site-budget"})
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "-m", "aifsdk", "doctor", "--site", site, "--gpus-per-node", "1", "-t", "1h"],
                         capture_output=True, text=True, env=env)
    assert "budget (the site's own tools):" in out.stdout and "3800 left" in out.stdout, out.stdout + out.stderr
    assert "this request:" in out.stdout


def test_a_tool_that_fails_is_reported_with_its_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = stand_in(tmp_path / "bin", "site-budget")
    tool.write_text("#!/bin/sh\necho 'no such project' >&2\nexit 2\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    (answer,) = doctor(site_profile("budget-fails", {"budget": "site-budget"})).budget
    assert answer.error.startswith("exit code 2: no such project") and "failed" in answer.text()


@pytest.mark.slow
def test_budget_tool_over_ssh_runs_on_the_login_node(ssh_host: Path) -> None:
    """The stand-in lives in the SSH user's home only: found there, not on this machine."""
    remote_bin = Path(REMOTE_HOME) / "aifsdk-test-bin"
    tool = stand_in(remote_bin, "site-budget-remote")
    shutil.chown(remote_bin, REMOTE_USER)
    shutil.chown(tool, REMOTE_USER)
    ssh = f"ssh: {{host: aifsdk-test, config: {ssh_host}, python: {REMOTE_PYTHON}, job_root: ~/aifsdk/jobs}}\n"
    site = site_profile("budget-ssh", {"budget": f"{tool} --as-remote", "accounts": "site-budget-remote"}, ssh=ssh)
    found, missing = doctor(site, {"gpus_per_node": 1, "time": "1h"}).budget
    assert "asked: --as-remote" in found.output and not found.missing
    assert missing.missing, "not on the login node's PATH: named as missing there"
