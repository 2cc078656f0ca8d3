"""What Slurm knows reaches the user, on the real local cluster: a pending job's reason in
`status`, `jobs` and the waiting log; Job.state and done() answer from the job's files while the
controller cannot be reached (real squeue against a controller address nobody answers on; the
shared controller itself is not touched)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aifsdk
from aifsdk._backends import poller

from jobfns import sleep_then

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aifsdk", *args], capture_output=True, text=True, timeout=120)


def test_a_pending_reason_is_shown(caplog: pytest.LogCaptureFixture) -> None:
    job = aifsdk.submit(sleep_then, 0, "x", site="slurm", time="5min", extra={"begin": "now+1hour"})
    try:
        deadline = time.time() + 60
        while job.state != "PENDING" or not job.reason and time.time() < deadline:
            poller().forget()
            time.sleep(1)
        assert job.reason.startswith("BeginTime") and "its start time has not come yet" in job.reason
        out = cli("status", job.job_id)
        assert out.stdout.strip() == f"{job.job_id} PENDING ({job.reason})", out
        rows = json.loads(cli("jobs", "--json").stdout)
        assert [r["reason"] for r in rows if r["job_id"] == job.job_id] == [job.reason]
        assert "PENDING (BeginTime)" in cli("jobs").stdout
        with caplog.at_level(logging.INFO, logger="aifsdk"):
            fresh = aifsdk.Job.attach(job.job_id)
            with pytest.raises(aifsdk.JobTimeoutError):
                fresh.wait(timeout=3)
        assert any(f"job {job.job_id}" in r.message and "BeginTime" in r.message for r in caplog.records)
    finally:
        job.cancel()


@pytest.fixture
def unreachable_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the cluster's slurm.conf whose controller port nobody listens on: squeue fails at once."""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    conf = re.sub(r"(?m)^SlurmctldPort=.*$", "", conf) + "\nSlurmctldPort=17999\n"
    conf = re.sub(r"(?m)^MessageTimeout=.*$", "MessageTimeout=1", conf)
    dead = tmp_path / "slurm.conf"
    dead.write_text(conf)
    return dead


def test_state_and_done_answer_while_the_controller_is_unreachable(unreachable_controller: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    job = aifsdk.submit(sleep_then, 8, "done", site="slurm", time="5min")
    deadline = time.time() + 120
    while job.state not in ("RUNNING", "COMPLETED", "COMPLETING") and time.time() < deadline:
        time.sleep(0.5)
    seen = job.state
    live = os.environ.get("SLURM_CONF")
    monkeypatch.setenv("SLURM_CONF", str(unreachable_controller))
    poller().forget()
    with pytest.raises(aifsdk.SchedulerError):
        aifsdk._scheduler.default_slurm().queue()  # the controller really does not answer
    assert job.state == seen and "did not answer" in job.state_note and "may be old" in job.state_note
    assert job.done() in (False, True)  # answers, does not raise
    assert job.result(timeout=300) == "done"  # waiting carries on from the files
    assert job.state == "COMPLETED" and job.done() is True and job.state_note
    out = cli("status", job.job_id)
    assert out.returncode == 0 and out.stdout.split() == [job.job_id, "COMPLETED"] and "may be old" in out.stderr
    if live is None:
        monkeypatch.delenv("SLURM_CONF")
    else:
        monkeypatch.setenv("SLURM_CONF", live)
    poller().forget()
    assert job.state in ("COMPLETED", "COMPLETING") and job.state_note == ""
