"""A job Slurm has queued but aifsdk could not record (its manifest or its registry link could not
be written) is cancelled, and the error says so, naming the path, on the real local cluster.

The fault comes at the one moment that matters, just after sbatch queued the job: a real `sbatch`
runs, through a wrapper script first on PATH that, once sbatch has answered, blocks the path
aifsdk writes next (a folder where the manifest goes; the registry folder made writable by
others, which aifsdk refuses to trust). Nothing in aifsdk is replaced. Over SSH, the same with the job folder on the cluster taken from the remote user once the
login node's sbatch has answered (the cluster is this machine: the wrapper, run as root, gives
the folder to root)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from test_remote import remote_site

import aifsdk

from jobfns import sleep_then

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


def sbatch_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str) -> Path:
    """Put an `sbatch` first on PATH that runs the real one, keeps its answer in sbatch.out, then
    runs the shell line ``after`` ($SCRIPT: the submitted script). Returns sbatch.out."""
    real = shutil.which("sbatch")
    assert real, "sbatch is not on PATH"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = tmp_path / "sbatch.out"
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(
        "#!/bin/bash\n"
        f"out=$({shlex.quote(real)} \"$@\") || {{ rc=$?; echo \"$out\"; exit $rc; }}\n"
        f"echo \"$out\" > {shlex.quote(str(answer))}\n"
        "SCRIPT=${@: -1}\n"
        f"{after}\n"
        "echo \"$out\"\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return answer


def queued_id(answer: Path) -> str:
    found = re.search(r"(?:Submitted batch job )?(\d+)", answer.read_text())  # sbatch, or sbatch --parsable
    assert found, answer.read_text()
    return found.group(1)


def slurm_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.split()[0]
    acct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "State", "-j", job_id], capture_output=True, text=True)
    return acct.stdout.split()[0] if acct.stdout.split() else "UNKNOWN"


def cancelled(job_id: str) -> None:
    """Slurm says the job was cancelled (scancel is asynchronous: looked at until it says so)."""
    deadline = time.monotonic() + 120
    state = slurm_state(job_id)
    while not state.startswith("CANCELLED") and time.monotonic() < deadline:
        time.sleep(0.5)
        state = slurm_state(job_id)
    assert state.startswith("CANCELLED"), f"job {job_id} is {state}, not cancelled"


def test_a_job_whose_manifest_cannot_be_written_is_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = sbatch_then(tmp_path, monkeypatch, 'mkdir "$(dirname "$SCRIPT")/aifsdk-job.json"')
    with pytest.raises(aifsdk.StorageError) as err:
        aifsdk.submit(sleep_then, 600, "never", site="slurm", time="15min", name="unrecorded-manifest")
    job_id = queued_id(answer)
    message = str(err.value)
    manifest = err.value.path
    assert manifest is not None and manifest.name == "aifsdk-job.json" and manifest.is_dir(), message
    assert f"job {job_id} was queued, but writing {manifest} failed" in message, message
    assert f"The job was cancelled (scancel {job_id})" in message and "Fix:" in message, message
    cancelled(job_id)
    assert any(manifest.parent.glob("*_submission.sh")), "the job folder and its script are kept"
    assert not (Path(os.environ["AIFSDK_HOME"]) / "registry" / "slurm" / job_id).exists()


def test_a_job_whose_registry_link_cannot_be_written_is_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Path(os.environ["AIFSDK_HOME"]) / "registry" / "slurm"
    answer = sbatch_then(tmp_path, monkeypatch, f"chmod 0777 {shlex.quote(str(registry))}")
    with pytest.raises(aifsdk.StorageError) as err:
        aifsdk.submit(sleep_then, 600, "never", site="slurm", time="15min", name="unrecorded-registry")
    job_id = queued_id(answer)
    message = str(err.value)
    assert err.value.path == registry and f"the job registry {registry} may be written by others" in message, message
    assert f"The job was cancelled (scancel {job_id})" in message, message
    cancelled(job_id)


def test_a_registry_others_may_write_to_is_refused_before_anything_is_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Path(os.environ["AIFSDK_HOME"]) / "registry" / "slurm"
    registry.mkdir(parents=True)
    registry.chmod(0o777)
    answer = sbatch_then(tmp_path, monkeypatch, "true")
    with pytest.raises(aifsdk.StorageError, match=f"the job registry {re.escape(str(registry))} may be written by others.*chmod 700"):
        aifsdk.submit(sleep_then, 1, "x", site="slurm", time="5min", name="unrecorded-refused")
    assert not answer.exists(), "sbatch ran"


def test_an_array_whose_manifest_cannot_be_written_is_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = sbatch_then(tmp_path, monkeypatch, 'mkdir "$(dirname "$SCRIPT")/aifsdk-job.json"')
    with pytest.raises(aifsdk.StorageError) as err:
        aifsdk.map(["sleep"], ["600", "600"], site="slurm", time="15min", name="unrecorded-array", pack=1)
    array_id = queued_id(answer)
    message = str(err.value)
    assert err.value.path is not None and err.value.path.name == "aifsdk-job.json", message
    assert f"job {array_id} was queued" in message and f"The job was cancelled (scancel {array_id})" in message, message
    for task in ("0", "1"):
        cancelled(f"{array_id}_{task}")


def test_a_job_over_ssh_whose_files_cannot_be_sent_after_sbatch_is_cancelled(ssh_host: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Over SSH, the job's payload goes to the cluster under its job id once sbatch has answered;
    here the job folder there is given to root at that moment (the remote user may no longer write
    to it; rsync would make a read-only folder of the user's own writable again)."""
    real = shutil.which("ssh")
    assert real, "ssh is not on PATH"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = tmp_path / "sbatch.out"
    (bin_dir / "ssh").write_text(
        "#!/bin/bash\n"
        'case "${@: -1}" in\n'
        "  'sbatch '*)\n"
        f"    out=$({shlex.quote(real)} \"$@\"); rc=$?; echo \"$out\" > {shlex.quote(str(answer))}; echo \"$out\"\n"
        '    script=${@: -1}; d=$(dirname "${script#sbatch }"); chown root "$d"; chmod 0755 "$d"; exit $rc ;;\n'
        "esac\n"
        f"exec {shlex.quote(real)} \"$@\"\n"
    )
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    site = remote_site(ssh_host, name="unrecordedssh")
    with pytest.raises(aifsdk.SchedulerError) as err:  # the job waits for its begin time: it cannot have run or failed
        aifsdk.submit(["true"], site=site, time=5, name="unrecorded-ssh", extra={"begin": "now+1hour"})
    job_id = queued_id(answer)
    message = str(err.value)
    assert f"job {job_id} was queued, but recording it failed: copying" in message, message
    assert f"The job was cancelled (scancel {job_id})" in message, message
    cancelled(job_id)
