"""The Slurm path against the real local cluster (tests/cluster/slurm-cluster up).

Nothing here is faked: sbatch, srun, squeue, sacct, scancel and the two slurmd nodes are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aifsdk

from conftest import sacct_ids, squeue_ids
from jobfns import boom, double, sleep_then, whoami

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]


def test_function_job_returns_its_value() -> None:
    plan = aifsdk.plan(double, 21, site="slurm", time="5min")
    job = plan.submit()
    assert job.result(timeout=600) == 42  # generous: the shared test cluster may be busy with other jobs
    # what sbatch received is byte for byte the plan's script
    submitted = (job.folder / f"{job.job_id}_submission.sh").read_text()
    assert submitted == plan.script
    assert job.state in ("COMPLETING", "COMPLETED")
    deadline = time.time() + 60
    while job.state != "COMPLETED" and time.time() < deadline:
        time.sleep(0.5)
    assert job.state == "COMPLETED"


def test_consumed_energy_is_none_where_the_cluster_collects_none() -> None:
    """This cluster runs acct_gather_energy/none, as many sites do: sacct's ConsumedEnergyRaw is 0
    for every job, which aifsdk reports as "not collected" (None), never as 0 J."""
    job = aifsdk.submit(double, 2, site="slurm", time="5min")
    assert job.result(timeout=600) == 4
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    assert "acct_gather_energy/none" in config
    assert job.consumed_energy_j() is None


def test_consumed_energy_is_read_where_a_site_collects_it() -> None:
    """A site with an energy plugin cannot exist on this machine: the sacct answer such a site
    gives is fed through Slurm.run, the seam every scheduler command goes through."""
    from aifsdk._scheduler import Slurm

    class EnergySite(Slurm):
        def run(self, argv: list[str], timeout: float = 60.0) -> str:
            assert argv[:6] == ["sacct", "-X", "-n", "-P", "-o", "JobID,ConsumedEnergyRaw"]
            return "101|3600000\n102|0\n103|\n"

    assert EnergySite().consumed_energy(["101", "102", "103", "104"]) == {"101": 3.6e6, "102": None, "103": None, "104": None}


def test_default_time_comes_from_the_partition_not_submitit() -> None:
    job = aifsdk.submit(double, 1, site="slurm")
    job.result(timeout=120)
    limit = subprocess.run(["scontrol", "show", "job", job.job_id], capture_output=True, text=True).stdout
    assert "TimeLimit=00:30:00" in limit  # partition debug DefaultTime, never submitit's 5 minutes


def test_command_job_exit_code_and_output() -> None:
    ok = aifsdk.submit(["bash", "-c", "echo from-$SLURMD_NODENAME"], site="slurm", time=5)
    res = ok.result(timeout=120)
    assert res.exit_code == 0 and "from-n" in res.stdout
    bad = aifsdk.submit(["bash", "-c", "echo nope >&2; exit 3"], site="slurm", time=5)
    with pytest.raises(aifsdk.JobFailedError) as info:
        bad.result(timeout=120)
    assert info.value.exit_code == 3 and info.value.state == "FAILED"
    assert "nope" in str(info.value)


def test_a_multi_task_failure_names_the_task_that_failed_not_those_stopped_after_it() -> None:
    """srun ends a step's other tasks (SIGTERM) when one fails; those record no result, and the
    error must still point at the task that failed, with its own exit code and output."""
    script = 'if [ "$SLURM_PROCID" = 1 ]; then echo rank-one-broke >&2; exit 3; fi; sleep 60'
    job = aifsdk.submit(["bash", "-c", script], site="slurm", nodes=2, time=5)
    with pytest.raises(aifsdk.JobFailedError) as info:
        job.results(timeout=120)
    err = info.value
    assert err.exit_code == 3 and "(task 1)" in str(err), str(err)
    assert "rank-one-broke" in str(err) and err.inspect.endswith("--task 1")


def test_two_nodes_report_distinct_nodes_and_ranks() -> None:
    job = aifsdk.submit(whoami, site="slurm", nodes=2, tasks_per_node=1, time=5)
    rows = job.results(timeout=120)
    assert sorted(r["node"] for r in rows) == ["n1", "n2"]
    assert sorted(r["rank"] for r in rows) == [0, 1]
    assert {r["world"] for r in rows} == {2}


def test_failing_job_raises_with_remote_traceback() -> None:
    job = aifsdk.submit(boom, "on the cluster", site="slurm", time=5)
    with pytest.raises(aifsdk.JobFailedError) as info:
        job.result(timeout=120)
    err = info.value
    assert err.job_id == job.job_id
    assert "RuntimeError: boom: on the cluster" in (err.remote_traceback or "")
    assert all(str(p).startswith(str(job.folder)) for p in err.logs)
    assert err.inspect.startswith("aifsdk logs ")


def test_cancel_gives_cancelled() -> None:
    job = aifsdk.submit(sleep_then, 120, "never", site="slurm", time=5)
    deadline = time.time() + 60
    while job.state == "PENDING" and time.time() < deadline:
        time.sleep(0.2)
    job.cancel()
    with pytest.raises(aifsdk.JobCancelledError):
        job.result(timeout=120)
    assert job.state == "CANCELLED"


def test_gpus_per_node_sets_cuda_visible_devices() -> None:
    job = aifsdk.submit(whoami, site="slurm", gpus_per_node=2, time=5)
    assert job.result(timeout=120)["cuda"] == "0,1"


def test_account_is_honoured() -> None:
    job = aifsdk.submit(whoami, site="slurm", account="proj-other", time=5)
    assert job.result(timeout=120)["account"] == "proj-other"
    with pytest.raises(aifsdk.SchedulerError, match="Invalid account"):
        aifsdk.submit(whoami, site="slurm", account="not-an-account", time=5)


def test_reattach_and_cli_from_another_process() -> None:
    job = aifsdk.submit(["bash", "-c", "echo cli-visible"], site="slurm", time=5, name="clijob")
    job.result(timeout=120)
    cli = [sys.executable, "-m", "aifsdk"]
    status = subprocess.run([*cli, "status", job.job_id], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.split() == [job.job_id, "COMPLETED"]
    logs = subprocess.run([*cli, "logs", job.job_id], capture_output=True, text=True)
    assert "cli-visible" in logs.stdout
    waited = subprocess.run([*cli, "wait", str(job.folder)], capture_output=True, text=True)
    assert waited.returncode == 0


def test_cli_submit_wait_returns_the_command_exit_code() -> None:
    out = subprocess.run([sys.executable, "-m", "aifsdk", "submit", "--site", "slurm", "--time", "5", "--wait", "--",
                          "bash", "-c", "exit 4"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 4, out.stderr
    job_id = out.stdout.strip()
    cancel = subprocess.run([sys.executable, "-m", "aifsdk", "cancel", "424242424"], capture_output=True, text=True)
    assert cancel.returncode == 4  # no such job
    assert job_id.isdigit()


BAD_REQUESTS = [
    dict(nodes=0), dict(nodes=3), dict(nodes="2"), dict(gpus_per_node=3), dict(gpus_per_node=-1),
    dict(tasks_per_node=0), dict(cpus_per_task=64), dict(cpus_per_task=0), dict(mem_gb=10_000), dict(mem_gb=-2),
    dict(time="5h"), dict(time="half an hour"), dict(time="1:75:00"), dict(partition="nope"), dict(partition="a b"),
    dict(account="bad account!"), dict(extra={"tiem": "1:00"}), dict(extra={"partition": "debug"}), dict(gpus=2),
    dict(site="slurmm"),
]


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[str(b) for b in BAD_REQUESTS])
def test_bad_requests_raise_before_anything_is_queued(bad: dict) -> None:
    import uuid

    name = f"bad-{uuid.uuid4().hex[:8]}"
    home = Path(os.environ["AIFSDK_HOME"])
    before = squeue_ids(name, under=home)
    kwargs = {"site": "slurm", "name": name, **bad}
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.submit(double, 1, **kwargs)
    assert isinstance(info.value, ValueError)
    problem = info.value.problems[0]
    assert problem.param and problem.allowed and problem.fix
    assert squeue_ids(name, under=home) - before == set()  # slurmctld got no job from this test (by name or script)
    assert sacct_ids(name) == set()  # and accounting never saw one by that name


def test_all_problems_at_once_against_the_discovered_cluster() -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(double, 1, site="slurm", nodes=3, gpus_per_node=4, time="6h")
    assert sorted(p.param for p in info.value.problems) == ["gpus_per_node", "nodes", "time"]
    assert "04:00:00" in str(info.value)


def test_example_two_nodes_runs() -> None:
    out = subprocess.run([sys.executable, str(REPO / "examples" / "two_nodes.py"), "--site", "slurm"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "'node': 'n1'" in out.stdout and "'node': 'n2'" in out.stdout


def test_payload_changed_after_submission_fails_the_job() -> None:
    job = aifsdk.submit(double, 21, site="slurm", time=5, extra={"hold": True})
    pickle = job.paths().submitted_pickle
    deadline = time.time() + 30
    while not pickle.exists() and time.time() < deadline:
        time.sleep(0.05)
    import cloudpickle

    pickle.write_bytes(cloudpickle.dumps("someone else's code"))  # what a co-tenant could try
    subprocess.run(["scontrol", "release", job.job_id], check=True)
    with pytest.raises(aifsdk.JobFailedError) as info:
        job.result(timeout=120)
    assert "changed after submission" in str(info.value)


def test_queued_job_runs_the_submitted_code_after_edit_and_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Edit and delete the working copy right after submitting: the held job, released later,
    still runs the submitted code (from its snapshot) and returns the submitted result."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "slurmmod.py").write_text("def which():\n    return 'submitted'\n")
    (root / "run.py").write_text("import slurmmod\nprint('cmd', slurmmod.which())\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    import importlib

    sys.modules.pop("slurmmod", None)
    slurmmod = importlib.import_module("slurmmod")
    fn_job = aifsdk.submit(slurmmod.which, site="slurm", time=5, extra={"hold": True})
    cmd_job = aifsdk.submit([sys.executable, "run.py"], site="slurm", time=5, extra={"hold": True})
    (root / "slurmmod.py").write_text("def which():\n    return 'edited'\n")
    (root / "run.py").unlink()
    subprocess.run(["scontrol", "release", fn_job.job_id, cmd_job.job_id], check=True)
    assert fn_job.result(timeout=120) == "submitted"
    assert "cmd submitted" in cmd_job.result(timeout=120).stdout
    sys.modules.pop("slurmmod", None)
