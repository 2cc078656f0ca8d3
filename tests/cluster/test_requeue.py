"""Checkpoint and requeue on the real local cluster: a preemption signal reaches the training
process, rank 0 checkpoints, Slurm requeues the job, and it resumes where it stopped."""

from __future__ import annotations

import subprocess
import time

import pytest

import aifsdk

from jobfns import CountingTrainer

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


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
