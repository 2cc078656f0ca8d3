"""A task killed by a signal is told with the signal's name, and exit_code carries it; logs of any
size are read in constant memory (tails and requeue counts from the end or line by line). Real
local jobs and real processes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import aifsdk
from aifsdk._paths import aifsdk_home


def crash() -> None:
    import ctypes

    ctypes.string_at(0)  # a segmentation fault in this process


def test_a_function_job_that_segfaults_names_the_signal() -> None:
    job = aifsdk.submit(crash)
    with pytest.raises(aifsdk.JobFailedError) as err:
        job.result(timeout=120)
    assert err.value.exit_code == -signal.SIGSEGV
    assert "killed by signal 11 (SIGSEGV)" in str(err.value)
    assert "Fatal Python error: Segmentation fault" in job.stderr(0)  # the task's own log says where


def test_a_command_killed_by_a_signal_names_it_and_the_cli_exits_128_plus_it() -> None:
    job = aifsdk.submit(["bash", "-c", "kill -ABRT $$"])
    with pytest.raises(aifsdk.JobFailedError) as err:
        job.result(timeout=120)
    assert err.value.exit_code == -signal.SIGABRT and "killed by signal 6 (SIGABRT)" in str(err.value)
    out = subprocess.run([sys.executable, "-m", "aifsdk", "wait", job.job_id], capture_output=True, text=True, timeout=120)
    assert out.returncode == 128 + signal.SIGABRT, out.stderr


def big_job(folder: Path, job_id: str, mb: int) -> Path:
    """A finished local job whose stdout log is ``mb`` MB, with one requeue marker at its start."""
    folder.mkdir(mode=0o700, parents=True)
    record = {"job_id": job_id, "site": "local", "executor": "local", "kind": "function", "name": "big",
              "folder": str(folder), "tasks": 1}
    (folder / "aifsdk-job.json").write_text(json.dumps(record))
    line = b"step 123456 loss 0.123456 lr 0.000100 tokens/s 123456.7 padding to a long log line\n"
    with open(folder / f"{job_id}_0_log.err", "wb") as f:
        f.write(b"submitit WARNING (x) - Caught signal SIGUSR2 on n1: this job is timed-out.\n")
        block = line * (2**20 // len(line))
        for _ in range(mb):
            f.write(block)
        f.write(b"the last line\n")
    (folder / f"{job_id}_0_log.out").write_text("")
    reg = aifsdk_home() / "registry" / "local"
    reg.mkdir(parents=True, exist_ok=True, mode=0o700)
    (reg / job_id).symlink_to(folder)
    return folder


def peak_rss_mb(out: Path, *args: str) -> tuple[float, int]:
    """Peak memory of one `aifsdk` command (a fresh child, measured alone); its output goes to ``out``."""
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'wb')); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")
    done = subprocess.run([sys.executable, "-c", code, str(out), sys.executable, "-m", "aifsdk", *args], capture_output=True,
                          text=True, timeout=300)
    return int(done.stdout) / 1024, done.returncode


def test_status_and_logs_of_a_big_log_in_constant_memory(tmp_path: Path) -> None:
    big_job(tmp_path / "big", "999101", mb=300)
    big_job(tmp_path / "small", "999102", mb=1)
    out = tmp_path / "out"
    small, _ = peak_rss_mb(out, "status", "999102")  # python, aifsdk's imports and a 1 MB log
    status, rc = peak_rss_mb(out, "status", "999101")
    assert rc == 0 and out.read_text().strip() == "999101 FAILED (requeued 1x: timed-out)"
    logs, rc = peak_rss_mb(out, "logs", "999101", "--stderr")
    assert rc == 0 and out.stat().st_size > 290 * 2**20  # the whole log came out
    assert status < small + 50 and logs < small + 50, (small, status, logs)  # not the log's 300 MB
    job = aifsdk.Job.attach(tmp_path / "big")
    with pytest.raises(aifsdk.JobFailedError) as err:
        job.result()
    assert "the last line" in str(err.value) and len(str(err.value)) < 10_000  # the tail, from the end
    assert job.requeues() == ["timed-out"]
