"""Job lifecycle at scale against the real local cluster: waiting on many jobs with batched
scheduler queries, status with accounting down, job arrays (split at MaxArraySize), dependencies,
and `aifsdk jobs` from a new process.

Nothing is faked: sbatch, squeue, sacct, scontrol, slurmdbd and the nodes are real. Settings that
a test changes (slurmdbd stopped, MaxArraySize) go through tests/cluster/slurm-cluster and are
restored in the fixture's teardown.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lifecycle_jobs import stamp

import aifsdk
import aifsdk._scheduler as sched
from aifsdk._backends import SCHEDULER_POLL_MIN_S, poller
from aifsdk._scheduler import default_slurm

from jobfns import boom, double

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "cluster" / "slurm-cluster"


def _cluster(*args: str) -> None:
    subprocess.run(["bash", str(CLUSTER), *args], check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture(autouse=True)
def fresh_poller() -> None:
    poller().forget()


# -- waiting --------------------------------------------------------------------------------------
def test_waiting_on_many_jobs_asks_squeue_once_per_poll_for_all() -> None:
    jobs = [aifsdk.submit(double, i, site="slurm", time=5) for i in range(8)]
    counts = default_slurm().counts
    before, sacct_before = counts["squeue"], counts["sacct"]
    start = time.monotonic()
    assert aifsdk.wait(jobs, timeout=300) == jobs
    waited = time.monotonic() - start
    assert [j.result() for j in jobs] == [2 * i for i in range(8)]
    queries = counts["squeue"] - before
    # one squeue for all eight jobs per poll, at most one poll a second (plus the first at once)
    assert 1 <= queries <= waited / SCHEDULER_POLL_MIN_S + 1, (queries, waited)
    assert counts["sacct"] == sacct_before  # every job was still known to slurmctld


def test_wait_notices_a_job_cancelled_without_a_result() -> None:
    from jobfns import sleep_then

    jobs = [aifsdk.submit(sleep_then, 300, "never", site="slurm", time=5), aifsdk.submit(double, 5, site="slurm", time=5)]
    subprocess.run(["scancel", jobs[0].job_id], check=True)
    aifsdk.wait(jobs, timeout=120)
    assert jobs[1].result() == 10
    with pytest.raises(aifsdk.JobCancelledError):
        jobs[0].result()


# -- status with accounting down ------------------------------------------------------------------
@pytest.fixture
def accounting_down(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sched, "_SACCT_WARNED", False)
    _cluster("dbd-stop")
    try:
        yield
    finally:
        _cluster("dbd-start")


@pytest.mark.exclusive
def test_status_is_right_with_slurmdbd_stopped(accounting_down: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aifsdk")
    assert subprocess.run(["sacct", "-X", "-n", "-j", "1"], capture_output=True).returncode != 0  # accounting is really down
    ok = aifsdk.submit(double, 4, site="slurm", time=5)
    bad = aifsdk.submit(boom, "no accounting", site="slurm", time=5)
    assert ok.result(timeout=120) == 8
    with pytest.raises(aifsdk.JobFailedError, match="boom: no accounting"):
        bad.result(timeout=120)
    deadline = time.time() + 60
    while (ok.state, bad.state) != ("COMPLETED", "FAILED") and time.time() < deadline:
        time.sleep(0.5)
    assert (ok.state, bad.state) == ("COMPLETED", "FAILED")
    # A job slurmctld no longer knows (never issued here): accounting is asked, fails, and the
    # answer is UNKNOWN, with one warning for the whole process however often it is asked.
    for _ in range(3):
        poller().forget()
        assert poller().states(["999999"]) == {"999999": ("UNKNOWN", "")}
    warnings = [r for r in caplog.records if "sacct is not usable" in r.getMessage()]
    assert len(warnings) == 1
    # ... and a finished job whose scheduler record is gone gets its state from its own files.
    assert ok._state_from_files("UNKNOWN") == "COMPLETED"
    assert bad._state_from_files("UNKNOWN") == "FAILED"
    cli = subprocess.run([sys.executable, "-m", "aifsdk", "status", ok.job_id], capture_output=True, text=True, timeout=60)
    assert cli.stdout.split() == [ok.job_id, "COMPLETED"], cli.stderr


# -- arrays ---------------------------------------------------------------------------------------
@pytest.mark.exclusive
@pytest.mark.timeout(1500)  # about 7 minutes on the 2-core VM: 4 task slots, about 1 s of Python start per task
def test_a_thousand_task_array_returns_every_result_in_order() -> None:
    n = 1000
    jobs = aifsdk.map(double, range(n), site="slurm", time=5, pack=1)  # one array task per item
    assert len(jobs) == n and len({j.job_id.split("_")[0] for j in jobs}) == 1  # one array
    aifsdk.wait(jobs, timeout=1500)
    assert [j.result() for j in jobs] == [2 * i for i in range(n)]
    assert aifsdk.Job.attach(jobs[-1].job_id).result() == 2 * (n - 1)  # from the registry, by task id


@pytest.fixture
def max_array_size_7():
    """MaxArraySize=7 as `scontrol show config` reports it. (Slurm 22.05's slurmctld keeps
    enforcing the value it started with until it restarts; aifsdk reads the configured one.)"""
    before = sched.Slurm().config_value("MaxArraySize") or "1001"
    _cluster("set-max-array-size", "7")
    try:
        yield 7
    finally:
        _cluster("set-max-array-size", before)


@pytest.mark.exclusive
def test_array_larger_than_max_array_size_is_split_and_nothing_is_lost(max_array_size_7: int) -> None:
    n = 17
    jobs = aifsdk.map(double, range(n), site="slurm", time=5, max_parallel=3, pack=1)
    arrays = sorted({j.job_id.split("_")[0] for j in jobs}, key=int)
    assert len(arrays) == 3  # 7 + 7 + 3
    assert max(int(j.job_id.split("_")[1]) for j in jobs) == max_array_size_7 - 1
    script = (jobs[0].folder / f"{arrays[0]}_submission.sh").read_text()
    assert "#SBATCH --array=0-6%3" in script
    aifsdk.wait(jobs, timeout=300)
    assert [j.result() for j in jobs] == [2 * i for i in range(n)]


def test_submit_limit_and_partitions_are_asked_once_per_cache_lifetime(tmp_path: Path) -> None:
    """sacctmgr (0.2 s, through slurmdbd) and scontrol are not asked again by each map/submit,
    in this process or, through the cache folder, in the next one."""
    first = sched.Slurm(cache_dir=tmp_path)
    limit, info = first.submit_limit(), first.cluster_info()
    assert first.submit_limit() == limit and first.cluster_info() == info
    assert first.counts["sacctmgr"] == 1 and first.counts["scontrol"] == 2
    second = sched.Slurm(cache_dir=tmp_path)  # another process, same cache folder
    assert second.submit_limit() == limit and second.cluster_info() == info
    assert second.calls == 0
    assert "debug" in info.partitions
    stale = sched.Slurm(cache_ttl_s=0.0, cache_dir=tmp_path)
    assert stale.submit_limit() == limit and stale.counts["sacctmgr"] == 1


def test_command_sweep_passes_each_items_arguments() -> None:
    jobs = aifsdk.map(["bash", "-c", 'echo "arg=$0 $1"'], [["a", "1"], ["b", "2"], "c"], site="slurm", time=5)
    outputs = [j.result(timeout=120).stdout for j in jobs]
    assert ["arg=a 1" in outputs[0], "arg=b 2" in outputs[1], "arg=c " in outputs[2]] == [True, True, True], outputs


# -- dependencies ---------------------------------------------------------------------------------
def test_a_dependency_chain_runs_in_order() -> None:
    first = aifsdk.submit(stamp, "first", site="slurm", time=5)
    second = aifsdk.submit(stamp, "second", site="slurm", time=5, after=first)
    third = aifsdk.submit(stamp, "third", site="slurm", time=5, after=[aifsdk.afterany(first), second])
    script = (third.folder / f"{third.job_id}_submission.sh").read_text()
    assert f"#SBATCH --dependency=afterany:{first.job_id},afterok:{second.job_id}" in script
    rows = [j.result(timeout=180) for j in (first, second, third)]
    assert rows[0][2] <= rows[1][1] and rows[1][2] <= rows[2][1], rows


def test_a_failed_dependency_cancels_the_dependant_with_the_reason() -> None:
    first = aifsdk.submit(boom, "first fails", site="slurm", time=5)
    second = aifsdk.submit(double, 1, site="slurm", time=5, after=first)
    anyway = aifsdk.submit(double, 2, site="slurm", time=5, after=aifsdk.afterany(first))
    with pytest.raises(aifsdk.JobCancelledError) as info:
        second.result(timeout=180)
    assert f"dependency job {first.job_id} ended FAILED" in str(info.value)
    assert info.value.state == "CANCELLED"
    assert anyway.result(timeout=180) == 4  # afterany runs whatever the outcome


def test_after_is_checked_before_anything_is_queued() -> None:
    with pytest.raises(aifsdk.RequestError, match="after="):
        aifsdk.submit(double, 1, site="slurm", after=["not-a-job"])
    with pytest.raises(aifsdk.RequestError, match="not both"):
        aifsdk.submit(double, 1, site="slurm", after="12", extra={"dependency": "afterok:12"})


# -- aifsdk jobs ----------------------------------------------------------------------------------
def test_jobs_lists_what_a_dead_process_submitted() -> None:
    code = ("import sys; sys.path.insert(0, 'tests'); import aifsdk; from jobfns import double\n"
            "print(aifsdk.submit(double, 3, site='slurm', time=5, name='from-dead').job_id)\n"
            "print(aifsdk.map(double, [1, 2], site='slurm', time=5, name='dead-array', pack=1)[0].job_id.split('_')[0])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, check=True)
    single, array = out.stdout.split()
    aifsdk.Job.attach(single).wait(timeout=120)
    aifsdk.wait([aifsdk.Job.attach(f"{array}_{i}") for i in range(2)], timeout=120)
    listed = subprocess.run([sys.executable, "-m", "aifsdk", "jobs", "--json"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {r["job_id"]: r for r in json.loads(listed.stdout)}
    assert rows[single]["name"] == "from-dead" and rows[single]["site"] == "slurm"
    assert rows[single]["state"] in ("COMPLETED", "COMPLETING")
    assert rows[array]["tasks"] == 2 and rows[array]["name"] == "dead-array"
    text = subprocess.run([sys.executable, "-m", "aifsdk", "jobs"], capture_output=True, text=True, timeout=60).stdout
    assert single in text and "from-dead" in text
    whole = subprocess.run([sys.executable, "-m", "aifsdk", "status", array], capture_output=True, text=True, timeout=60)
    assert whole.returncode == 4 and f"{array}_0 .. {array}_1" in whole.stderr  # an array: attach one task
    task = subprocess.run([sys.executable, "-m", "aifsdk", "status", f"{array}_1"], capture_output=True, text=True, timeout=60)
    assert task.stdout.split() == [f"{array}_1", "COMPLETED"], task.stderr


# -- Hydra ----------------------------------------------------------------------------------------
def test_hydra_sweep_is_one_array_and_can_return_at_submission(tmp_path: Path) -> None:
    app = REPO / "examples" / "hydra_sweep" / "my_app.py"
    out = subprocess.run([sys.executable, str(app), "--multirun", "hydra/launcher=aifsdk", "site=slurm", "hydra.launcher.wait=false",
                          f"hydra.sweep.dir={tmp_path}", "x=1,2,3"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    ids = re.findall(r"\t#\d+ (\d+_\d+): ", out.stdout + out.stderr)
    assert len(ids) == 3 and len({i.split("_")[0] for i in ids}) == 1, ids  # one array of three
    jobs = [aifsdk.Job.attach(i) for i in ids]  # the launcher process has exited
    aifsdk.wait(jobs, timeout=300)
    assert [r.return_value for r in (j.result() for j in jobs)] == [1, 4, 9]
    assert all(" on n" in (tmp_path / str(i) / "result.txt").read_text() for i in range(3))
