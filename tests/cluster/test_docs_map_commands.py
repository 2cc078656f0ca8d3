"""The map commands docs/many-jobs.md shows (wait, status, cancel, logs of one item, jobs --state),
run as written against a real packed map on the local cluster, with the map's id in place of the
example's."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from map_jobs import square_and_say

import aifsdk

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster"), pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ID = "map-3f9a1c2b"


def test_the_documented_map_commands_run_on_a_real_map() -> None:
    lines = [line.removeprefix("$ ").split("  #", 1)[0].strip() for line in (REPO / "docs" / "many-jobs.md").read_text().splitlines()
             if line.startswith("$ aifsdk ")]
    assert {shlex.split(line)[1] for line in lines} >= {"wait", "status", "cancel", "logs", "jobs"}
    jobs = aifsdk.map(square_and_say, range(18), site="slurm", time=5, pack=6, name="docs-map")
    map_id = jobs[0].map_id
    for line in lines:
        argv = shlex.split(line.replace(EXAMPLE_ID, map_id))
        run = subprocess.run([sys.executable, "-m", "aifsdk", *argv[1:]], capture_output=True, text=True, timeout=600, cwd=REPO)
        assert run.returncode == 0, f"`{line}` exited {run.returncode}: {run.stderr}"
        if argv[1] == "logs":
            item = int(re.search(r"\.(\d+)$", argv[2]).group(1))
            assert f"item {item} says hello" in run.stdout
        if argv[1] == "status":
            assert f"{map_id} done=18 " in run.stdout and "failed=0" in run.stdout, run.stdout
    assert [j.result() for j in jobs] == [i * i for i in range(18)]
