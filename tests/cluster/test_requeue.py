"""Checkpoint and requeue on the real local cluster: a preemption signal reaches the training
process, rank 0 checkpoints, Slurm requeues the job, and it resumes where it stopped."""

from __future__ import annotations

import subprocess
import time

import pytest

import aifsdk

from jobfns import CountingTrainer

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


@pytest.mark.timeout(600)
def test_preempted_job_checkpoints_requeues_and_resumes() -> None:
    # 30 min: submitit calls a signal a time-out after 80 % of the limit or within its last 10 min
    job = aifsdk.submit(CountingTrainer(), 30, 0.2, site="slurm", time=30)
    deadline = time.time() + 120
    while "step 5" not in (job.stdout() or "") and time.time() < deadline:
        time.sleep(0.2)
    assert "step 5" in (job.stdout() or ""), job.stderr()
    # What Slurm does on preemption with preempt_send_user_signal: USR2 to the job's processes.
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)
    res = job.result(timeout=300)
    assert res["step"] == 30
    assert len(res["resumed_from"]) == 1 and 5 <= res["resumed_from"][0] < 30
    assert res["restarts"] == "1"
    assert job.requeues() == ["preempted"]
    assert "checkpoint at step" in (job.stdout() or "")


@pytest.mark.timeout(900)
def test_time_limit_requeues_and_resumes_with_the_same_result() -> None:
    """50 s of work under a 1-minute limit. The checkpoint signal is asked for 15 s before the
    limit, but Slurm delivers it up to 30 s early (it checks time limits every 30 s), so a run gets
    15 to 45 s of work: at least one requeue, at most two. Slurm makes a requeued job eligible
    again about 2 minutes later. The job must finish from its checkpoints with what an
    uninterrupted run computes."""
    steps, step_s = 100, 0.5
    uninterrupted = CountingTrainer()(steps, 0.0)
    job = aifsdk.submit(CountingTrainer(), steps, step_s, site="slurm", time=1)
    res = job.result(timeout=600)
    assert res["step"] == steps and res["total"] == uninterrupted["total"]
    assert res["resumed_from"] and res["resumed_from"][0] > 0  # not from step 0
    assert "timed-out" in job.requeues()


def _squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.timeout(300)
def test_a_requeued_command_job_gives_the_result_of_its_last_attempt() -> None:
    """`scontrol requeue` ends the first attempt of a command job with SIGTERM. That attempt leaves
    no result: result() waits for the requeued attempt and returns its output. Slurm makes a
    requeued job eligible again about 2 minutes later, while the first node still holds the job's
    revoked credential; its start time is set to now to skip that, on the other node (started on
    the same node, it is killed at once: "Job credential revoked")."""
    report = "echo attempt-${SLURM_RESTART_COUNT:-0}; if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then sleep 120; fi"
    job = aifsdk.submit(["bash", "-c", report], site="slurm", time=10)
    deadline = time.time() + 120
    while "attempt-0" not in (job.stdout() or "") and time.time() < deadline:
        time.sleep(0.2)
    assert "attempt-0" in (job.stdout() or ""), job.stderr()
    first_node = subprocess.run(["squeue", "-h", "-j", job.job_id, "-o", "%N"], capture_output=True, text=True).stdout.strip()
    assert first_node, "the first attempt's node"
    subprocess.run(["scontrol", "requeue", job.job_id], check=True)
    deadline = time.time() + 120
    while _squeue_state(job.job_id) != "PENDING" and time.time() < deadline:  # the first attempt has ended
        time.sleep(0.2)
    assert _squeue_state(job.job_id) == "PENDING"
    assert not job.paths().result_pickle.exists()  # the killed attempt recorded nothing
    assert "no result is recorded for this attempt" in (job.stderr() or "")
    skip = [f"JobId={job.job_id}", f"ExcNodeList={first_node}", "StartTime=now"]
    subprocess.run(["scontrol", "update", *skip], check=True)
    res = job.result(timeout=240)
    assert isinstance(res, aifsdk.CommandResult) and res.exit_code == 0
    assert res.stdout == "attempt-1\n"  # the last attempt's own output
