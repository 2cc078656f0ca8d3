"""Site `local`: real subprocesses through submitit's LocalExecutor (no scheduler needed)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aifsdk

from conftest import processes_with
from jobfns import boom, double, sleep_then


def test_function_job_returns_its_value() -> None:
    job = aifsdk.submit(double, 21)
    assert job.result(timeout=60) == 42
    assert job.state == "COMPLETED"
    assert job.done()
    assert stat.S_IMODE(job.folder.stat().st_mode) == 0o700


def test_keyword_arguments_through_partial() -> None:
    import functools

    job = aifsdk.submit(functools.partial(sleep_then, value="kw"), 0)
    assert job.result(timeout=60) == "kw"


def test_failing_function_raises_with_remote_traceback() -> None:
    job = aifsdk.submit(boom, "here")
    with pytest.raises(aifsdk.JobFailedError) as info:
        job.result(timeout=60)
    err = info.value
    assert err.job_id == job.job_id
    assert "RuntimeError: boom: here" in (err.remote_traceback or "")
    assert err.logs == list(job.log_paths())
    assert err.inspect == f"aifsdk logs {job.job_id} --task 0"
    assert job.state == "FAILED"


def test_command_job_exit_code_and_output(tmp_path: Path) -> None:
    ok = aifsdk.submit(["bash", "-c", "echo out-line; echo err-line >&2"])
    res = ok.result(timeout=60)
    assert isinstance(res, aifsdk.CommandResult) and res.exit_code == 0
    assert (res.stdout, res.stderr) == ("out-line\n", "err-line\n")  # the command's own output, as text
    assert "out-line" in res.stdout_path.read_text() and "err-line" in res.stderr_path.read_text()
    bad = aifsdk.submit(["bash", "-c", "echo before-fail >&2; exit 7"])
    with pytest.raises(aifsdk.JobFailedError) as info:
        bad.result(timeout=60)
    assert info.value.exit_code == 7
    assert "before-fail" in str(info.value)
    assert "Traceback" not in str(info.value)  # the command's stderr, not the wrapper's traceback


def test_cancel_gives_cancelled() -> None:
    job = aifsdk.submit(sleep_then, 60, "never")
    time.sleep(1.0)
    job.cancel()
    with pytest.raises(aifsdk.JobCancelledError):
        job.result(timeout=30)
    assert job.state == "CANCELLED"


def test_a_cancel_while_the_controller_starts_gives_cancelled_and_leaves_nothing_running() -> None:
    """cancel() at once, while the local controller is still starting (importing, starting its
    task): the job reads CANCELLED, and neither the controller nor a task runs on."""
    job = aifsdk.submit(sleep_then, 60, "never")
    job.cancel()
    with pytest.raises(aifsdk.JobCancelledError):
        job.result(timeout=30)
    assert job.state == "CANCELLED"
    assert aifsdk.Job.attach(job.job_id).state == "CANCELLED"  # from another view of it: the mark in its folder
    assert processes_with(str(job.folder)) == []


def test_cancel_stops_every_process_of_a_command_job() -> None:
    """The command is a shell waiting for its child: a shell acts on SIGINT only once its child has
    exited, so the stop goes to the command's whole process group, and nothing of it runs on."""
    marker = f"cancel-{os.getpid()}-{time.monotonic_ns()}"
    job = aifsdk.submit(["bash", "-c", "echo started; sleep 60; echo not-reached", marker])
    deadline = time.monotonic() + 60
    while "started" not in (job.stdout() or "") and time.monotonic() < deadline:
        time.sleep(0.05)
    job.cancel()
    with pytest.raises(aifsdk.JobCancelledError):
        job.result(timeout=60)
    assert processes_with(marker) == [] and processes_with(str(job.folder)) == []


def test_wait_timeout_leaves_the_job_running() -> None:
    job = aifsdk.submit(sleep_then, 3, "late")
    with pytest.raises(aifsdk.JobTimeoutError):
        job.wait(timeout=0.3)
    assert job.result(timeout=60) == "late"


def test_reattach_from_another_process() -> None:
    job = aifsdk.submit(sleep_then, 1, {"ok": True})
    code = (
        "import aifsdk, json, sys; j = aifsdk.Job.attach(sys.argv[1]); "
        "print(json.dumps([j.job_id, j.result(timeout=60), j.state]))"
    )
    for ref in (job.job_id, str(job.folder)):
        out = subprocess.run([sys.executable, "-c", code, ref], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent)
        assert json.loads(out.stdout) == [job.job_id, {"ok": True}, "COMPLETED"]


def test_attach_unknown_job() -> None:
    with pytest.raises(aifsdk.JobNotFoundError):
        aifsdk.Job.attach("999999999")


def test_job_record_is_written() -> None:
    job = aifsdk.submit(double, 1, name="rec")
    job.result(timeout=60)
    record = json.loads((job.folder / "aifsdk-job.json").read_text())
    assert record["job_id"] == job.job_id and record["site"] == "local" and record["name"] == "rec"
    assert record["resources"]["time"] == "01:00:00"


def test_two_jobs_never_share_a_folder() -> None:
    a, b = aifsdk.submit(double, 1, name="same"), aifsdk.submit(double, 2, name="same")
    assert a.folder != b.folder
    assert (a.result(timeout=60), b.result(timeout=60)) == (2, 4)


def test_debug_site_runs_in_process() -> None:
    job = aifsdk.submit(os.getpid, site="debug")
    assert job.result() == os.getpid()


def test_unpicklable_target_is_a_request_error() -> None:
    import threading

    lock = threading.Lock()
    with pytest.raises(aifsdk.RequestError, match="picklable"):
        aifsdk.submit(double, lock)


def test_multiple_tasks_on_local() -> None:
    from jobfns import whoami

    job = aifsdk.submit(whoami, tasks_per_node=2)
    ranks = sorted(r["rank"] for r in job.results(timeout=60))
    assert ranks == [0, 1]


def test_a_command_result_pickled_by_an_older_version_still_loads(tmp_path: Path) -> None:
    """Older results held the log paths under stdout/stderr: they load with the text read back."""
    import pickle

    out, err = tmp_path / "1_0_log.out", tmp_path / "1_0_log.err"
    out.write_text("old out\n")
    err.write_text("old err\n")
    old = object.__new__(aifsdk.CommandResult)
    object.__setattr__(old, "__dict__", {"argv": ("x",), "exit_code": 0, "stdout": out, "stderr": err, "duration_s": 1.0})
    data = pickle.dumps(old)
    new = pickle.loads(data)
    assert (new.stdout, new.stderr, new.stdout_path, new.stderr_path) == ("old out\n", "old err\n", out, err)


def test_the_local_controller_is_started_as_submitit_starts_it() -> None:
    """aifsdk starts submitit's local controller itself (to give it the job's environment and
    working folder without changing this process's): the variables it sets are the ones submitit's
    own start_controller sets, and LocalExecutor reads the same parameters. A submitit release that
    changes either fails here."""
    import ast
    import inspect
    import re
    import textwrap

    from submitit.local import local

    from aifsdk._backends.local import controller_environment

    ours = controller_environment(ntasks=1, command="c", timeout_min=1, signal_delay_s=1, stderr_to_stdout=False,
                                  cuda_devices="", with_shell=False)
    theirs = inspect.getsource(local.start_controller)
    updates = [node for node in ast.walk(ast.parse(textwrap.dedent(theirs)))
               if isinstance(node, ast.Call) and ast.unparse(node.func) == "env.update"]
    assert len(updates) == 1 and {k.arg for k in updates[0].keywords} == set(ours)
    submit = inspect.getsource(local.LocalExecutor._submit_command)
    assert set(re.findall(r'self\.parameters\.get\("(\w+)"', submit)) == {
        "tasks_per_node", "gpus_per_node", "visible_gpus", "timeout_min", "signal_delay_s", "stderr_to_stdout", "setup"}
    assert '"-m", "submitit.local._local"' in theirs
    # aifsdk's controller (aifsdk._controller) runs submitit's Controller, with its own run loop:
    # submitit's must still be start, wait, start again on a requeue exit code, stop the tasks
    run = inspect.getsource(local.Controller.run)
    assert [m for m in re.findall(r"self\.(\w+)\(", run)] == ["start_tasks", "wait", "kill_tasks"]
    assert "LOCAL_REQUEUE_RETURN_CODE" in run


def test_submitting_changes_neither_the_environment_nor_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local job gets the site's variables and starts in its copy of the working folder, while
    the submitting process keeps its own environment and folder, even from inside a job."""
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # as inside an outer job: cleaned for the inner one only
    monkeypatch.chdir(tmp_path)
    before_env, before_cwd = dict(os.environ), os.getcwd()
    job = aifsdk.submit(["sh", "-c", "echo ${SLURM_JOB_ID:-none} $(pwd)"], snapshot=False)
    assert dict(os.environ) == before_env and os.getcwd() == before_cwd
    result = job.result(timeout=60)
    assert result.exit_code == 0
    assert result.stdout.split() == ["none", str(tmp_path)]
