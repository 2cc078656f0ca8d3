"""Submitting over SSH, for real: a site profile with an ``ssh`` block reaches the local Slurm cluster
through the OpenSSH server on 127.0.0.1:2222, as the second Unix user aifsdk-remote, with the key
the session generated (tests/cluster/ssh-remote). Nothing is faked: the job runs as that user on
n1/n2, in that user's Python environment, from the pushed snapshot."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aifsdk

import jobfns
from conftest import REMOTE_HOME, REMOTE_PYTHON, REMOTE_USER, SSH_SCRIPT, squeue_ids

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def remote_site(config: Path, python: str = REMOTE_PYTHON, name: str = "viassh", job_root: str = "~/aifsdk/jobs") -> str:
    site_dir = Path(os.environ["AIFSDK_CONFIG_DIR"]) / "site"
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / f"{name}.yaml").write_text(
        "title: the local test cluster, reached over SSH as another user\n"
        "executor: slurm\n"
        "discover: true\n"
        "default_time: 10\n"
        "ssh:\n"
        "  host: aifsdk-test\n"
        f"  config: {config}\n"
        f"  python: {python}\n"
        f"  job_root: {job_root}\n"
    )
    return name


def test_function_and_command_jobs_over_ssh(ssh_host: Path) -> None:
    site = remote_site(ssh_host)
    plan = aifsdk.plan(jobfns.whoami, site=site, time=5)
    assert str(plan.folder).startswith(f"{REMOTE_HOME}/aifsdk/jobs/{site}/")  # the cluster's path
    assert REMOTE_PYTHON in plan.script
    job = plan.submit()
    assert job.folder != plan.folder and str(job.folder).startswith(os.environ["AIFSDK_HOME"])  # the local copy
    info = job.result(timeout=180)
    assert info["node"] in ("n1", "n2") and info["account"] == "aifsdk-test"
    remote_folder = Path(job.manifest()["remote"]["folder"])
    assert remote_folder == plan.folder and remote_folder.stat().st_uid != os.getuid()  # written there by the remote user
    assert (remote_folder / "code" / "tests" / "jobfns.py").exists()  # ran from the pushed snapshot
    assert job.state in ("COMPLETING", "COMPLETED")  # Slurm may still be cleaning up

    cmd = aifsdk.submit(["python3", "-c", "import getpass; print('hello from', getpass.getuser())"], site=site, time=5)
    res = cmd.result(timeout=180)
    assert res.exit_code == 0 and f"hello from {REMOTE_USER}" in res.stdout
    assert getpass.getuser() != REMOTE_USER


def test_unchanged_code_is_not_packed_or_sent_again(ssh_host: Path) -> None:
    """The second job of an unchanged tree packs nothing here; both jobs read the one manifest and
    pack pushed to the cluster's store, and each extracts its own code/ there."""
    site = remote_site(ssh_host)
    a = aifsdk.submit(jobfns.double, 2, site=site, time=5)
    local_packs = sorted((a.folder.parent.parent / ".snapshots" / "packs").glob("*.pack"))
    b = aifsdk.submit(jobfns.double, 3, site=site, time=5)
    assert aifsdk.wait([a, b], timeout=180) and (a.result(), b.result()) == (4, 6)
    assert sorted((a.folder.parent.parent / ".snapshots" / "packs").glob("*.pack")) == local_packs
    assert b.manifest()["snapshot"]["new_bytes_stored"] == 0 and b.manifest()["snapshot"]["sha256"] == a.manifest()["snapshot"]["sha256"]
    ra, rb = (Path(j.manifest()["remote"]["folder"]) for j in (a, b))
    remote_store = ra.parent.parent / ".snapshots"
    assert (remote_store / "snapshots" / f"{a.manifest()['snapshot']['sha256']}.json").is_file()
    assert {p.name for p in (remote_store / "packs").glob("*.pack")} >= {p.name for p in local_packs}
    assert oct(remote_store.stat().st_mode & 0o777) == "0o700"
    assert (ra / "code" / "tests" / "jobfns.py").read_text() == (rb / "code" / "tests" / "jobfns.py").read_text()


def test_resubmit_of_a_remote_job_runs_the_same_snapshot(ssh_host: Path) -> None:
    """The local copy of a remote job holds no extracted code (it was pulled back without code/):
    resubmit extracts it here from the local store and submits the same snapshot again."""
    site = remote_site(ssh_host)
    job = aifsdk.submit(jobfns.double, 5, site=site, time=5)
    assert job.result(timeout=180) == 10
    again = job.resubmit()
    assert again.result(timeout=180) == 10
    assert again.manifest()["snapshot"]["sha256"] == job.manifest()["snapshot"]["sha256"]
    # the new job imports from its own copy on the cluster, not from a path of this machine
    # (which the cluster cannot read: a CI clone is private to its user)
    old, new = job.manifest(), again.manifest()
    assert old["pythonpath"] and [p.replace(old["remote"]["folder"], new["remote"]["folder"]) for p in old["pythonpath"]] == new["pythonpath"]


def test_failure_and_logs_come_back(ssh_host: Path) -> None:
    site = remote_site(ssh_host)
    job = aifsdk.submit(jobfns.boom, "over ssh", site=site, time=5)
    with pytest.raises(aifsdk.JobFailedError) as info:
        job.result(timeout=180)
    assert "boom: over ssh" in str(info.value)
    assert any(str(p).startswith(str(job.folder)) for p in info.value.logs)  # local copies of the logs


@pytest.mark.exclusive
def test_dropped_connection_while_waiting_is_recovered(ssh_host: Path) -> None:
    site = remote_site(ssh_host)
    job = aifsdk.submit(jobfns.sleep_then, 6, "survived", site=site, time=5)
    subprocess.run(["bash", str(SSH_SCRIPT), "drop"], check=True, capture_output=True)  # the server cuts every connection
    assert job.result(timeout=180) == "survived"


def test_a_new_process_follows_the_job(ssh_host: Path) -> None:
    site = remote_site(ssh_host)
    job = aifsdk.submit(jobfns.sleep_then, 2, "from afar", site=site, time=5)
    code = f"import aifsdk; print(aifsdk.Job.attach({job.job_id!r}).result(timeout=180))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "from afar"
    status = subprocess.run([sys.executable, "-m", "aifsdk", "status", job.job_id], capture_output=True, text=True, env=dict(os.environ))
    assert "COMPLETED" in status.stdout, status.stdout + status.stderr


def test_cluster_environment_without_aifsdk_is_refused_before_submitting(ssh_host: Path) -> None:
    site = remote_site(ssh_host, python="/usr/bin/python3", name="bare")
    jobs_of_site = REMOTE_HOME / "aifsdk" / "jobs" / site  # other tests submit over SSH at the same time
    before = squeue_ids(under=jobs_of_site)
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.submit(jobfns.double, 1, site=site, time=5)
    text = str(info.value)
    assert "nothing was submitted" in text and "aifsdk importable there" in text and "pip install aifsdk==" in text
    assert squeue_ids(under=jobs_of_site) == before


def test_cancel_over_ssh(ssh_host: Path) -> None:
    site = remote_site(ssh_host)
    job = aifsdk.submit(jobfns.sleep_then, 120, "never", site=site, time=5)
    job.cancel()
    with pytest.raises(aifsdk.JobCancelledError):
        job.result(timeout=120)
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job.job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()
    assert out in ("CANCELLED", "")  # scancel ran on the login node (the job may already have been purged)


def test_doctor_reads_the_remote_cluster(ssh_host: Path) -> None:
    site = remote_site(ssh_host)
    argv = [sys.executable, "-m", "aifsdk", "doctor", "--site", site, "-N", "1", "--gpus-per-node", "4"]
    out = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "aifsdk-test (over SSH)" in out.stdout and "2 GPUs (gpu:fake:2)" in out.stdout
