"""The test cluster's own script, tests/cluster/slurm-cluster, run for real.

Its pid files live in /run, which survives a restart of this kind of machine, so a pid file's PID
may belong to another process by the next start: even to another twin's slurmctld, since the
twins start in the same order each time. ``up`` must then start the daemon, not trust the file.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.exclusive, pytest.mark.usefixtures("cluster")]

SCRIPT = Path(__file__).resolve().parent / "slurm-cluster"
RUNDIR = Path("/run/slurm-aifsdk")


def cluster(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def held_job(name: str) -> str:
    """A real job that stays in the queue (held) until cancelled: its id."""
    argv = ["sbatch", "--parsable", "--hold", "-t", "1", "-J", name, "--wrap", "true"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip().split(";")[0]


def queued() -> list[str]:
    return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split()


def test_twin_up_starts_it_when_its_pid_file_names_another_twins_slurmctld() -> None:
    assert cluster("twin", "lumi-g", "up").returncode == 0
    assert cluster("twin", "karolina-gpu", "down").returncode == 0
    lumi_pid = (RUNDIR / "twin-lumi-g.pid").read_text().strip()
    (RUNDIR / "twin-karolina-gpu.pid").write_text(lumi_pid + "\n")
    try:
        up = cluster("twin", "karolina-gpu", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert (RUNDIR / "twin-karolina-gpu.pid").read_text().strip() != lumi_pid
        status = cluster("twin", "karolina-gpu", "status")
        assert status.returncode == 0 and " up " in status.stdout, status.stdout
        # the other twin was left alone
        assert cluster("twin", "lumi-g", "status").returncode == 0
        assert (RUNDIR / "twin-lumi-g.pid").read_text().strip() == lumi_pid
    finally:
        cluster("twin", "karolina-gpu", "up")


def test_status_does_not_count_a_pid_file_whose_process_is_another_program() -> None:
    pidfile = RUNDIR / "twin-karolina-gpu.pid"
    assert cluster("twin", "karolina-gpu", "up").returncode == 0
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        assert cluster("twin", "karolina-gpu", "down").returncode == 0
        pidfile.write_text(f"{sleeper.pid}\n")
        status = cluster("twin", "karolina-gpu", "status")
        assert status.returncode == 1 and "DOWN" in status.stdout, status.stdout
        down = cluster("twin", "karolina-gpu", "down")  # must not kill the unrelated process
        assert down.returncode == 0 and sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
        up = cluster("twin", "karolina-gpu", "up")
        assert up.returncode == 0, up.stdout + up.stderr
    assert cluster("twin", "karolina-gpu", "status").returncode == 0


@pytest.mark.parametrize("command", [("clear",), ("up", "--clear")])
def test_clear_cancels_every_job_left_in_the_queue(command: tuple[str, ...]) -> None:
    """What tests/run-all does under CI (``up --clear``): jobs from an earlier run, recovered from
    slurmctld's saved state, would otherwise take the nodes from the suite."""
    held = held_job("left-from-earlier")
    assert held in queued()
    cleared = cluster(*command)
    assert cleared.returncode == 0 and held in cleared.stdout, cleared.stdout + cleared.stderr
    assert queued() == []
    state = subprocess.run(["sacct", "-n", "-X", "-j", held, "-o", "State"], capture_output=True, text=True).stdout
    assert "CANCELLED" in state, state


def test_up_without_clear_leaves_the_queue_alone() -> None:
    """Tests run ``up`` to restore a node they crashed, with their own jobs still queued."""
    held = held_job("still-wanted")
    try:
        up = cluster("up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert held in queued()
    finally:
        subprocess.run(["scancel", held], check=False)
