"""A node crash on the real local cluster: n2's slurmd and the job's processes are killed while the
job runs there. Slurm marks the node down, requeues the job itself (NODE_FAIL), the job waits with
its reason; Job.requeues() names the failed node; once the node is back the job runs again and
returns its value. This disturbs the shared cluster for about two minutes: it holds
/tmp/aifsdk-cluster.lock, and the cluster is restored (`slurm-cluster up`) whatever happens."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import aifsdk
from aifsdk._backends import poller

from jobfns import sleep_then

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "cluster" / "slurm-cluster"


@pytest.fixture
def cluster_to_myself() -> Iterator[None]:
    """The test is marked exclusive: it holds /tmp/aifsdk-cluster.lock alone (tests/conftest.py)."""
    try:
        yield
    finally:
        subprocess.run(["bash", str(CLUSTER), "up"], capture_output=True, timeout=600)  # both nodes back, idle


def job_pids(job_id: str) -> list[int]:
    """The processes of one job on this machine: its slurmstepd and everything with its SLURM_JOB_ID."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"[{job_id}.".encode() in cmdline or f"SLURM_JOB_ID={job_id}\0".encode() in env:
            pids.append(int(entry.name))
    return pids


def wait_for(check, limit_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.time() + limit_s
    while time.time() < deadline:
        poller().forget()
        found = check()
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"{what} not seen within {limit_s:.0f} s")


@pytest.mark.exclusive
def test_a_node_crash_is_requeued_and_told(cluster_to_myself: None) -> None:
    job = aifsdk.submit(sleep_then, 20, "survived", site="slurm", time="10min", extra={"nodelist": "n2"})
    wait_for(lambda: job.state == "RUNNING", 180, "the job running on n2")
    slurmd = int(Path("/run/slurm-aifsdk/slurmd-n2.pid").read_text())
    os.kill(slurmd, signal.SIGKILL)  # the node's daemon dies with the node...
    for pid in job_pids(job.job_id):  # ...and so do the job's processes
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    requeues = wait_for(lambda: job.requeues(), 300, "Slurm's requeue after the node failure")
    assert requeues == ["node-failure on n2"]
    reason = wait_for(lambda: job.state == "PENDING" and job.reason, 120, "a pending reason")
    assert "n2" in reason or "Node" in reason or "BeginTime" in reason, reason
    status = subprocess.run(["python", "-m", "aifsdk", "status", job.job_id], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PATH=f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"))
    assert "requeued 1x: node-failure on n2" in status.stdout, status
    subprocess.run(["bash", str(CLUSTER), "up"], check=True, capture_output=True, timeout=600)  # the node is back
    assert job.result(timeout=600) == "survived"
