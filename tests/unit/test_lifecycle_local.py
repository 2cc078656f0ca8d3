"""Waiting on many jobs, map, dependencies and `aifsdk jobs` without a cluster: real local
subprocesses (site `local`) and the rendering of array and dependency scripts for a shipped
Slurm site profile (nothing is submitted there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import aifsdk
from aifsdk._array import array_script
from aifsdk._deps import parse_dependency

from jobfns import boom, double, sleep_then

LUMI = {"site": "lumi-g", "account": "project_465001926", "gpus_per_node": 1, "time": "1h"}


def _registry(home: Path) -> list[Path]:
    return sorted((home / "registry").rglob("*")) if (home / "registry").exists() else []


def test_wait_on_many_local_jobs_returns_them_all() -> None:
    jobs = [aifsdk.submit(double, i) for i in range(4)] + [aifsdk.submit(boom, "local")]
    assert aifsdk.wait(jobs, timeout=120) == jobs
    assert [j.state for j in jobs] == ["COMPLETED"] * 4 + ["FAILED"]
    assert [j.result() for j in jobs[:4]] == [0, 2, 4, 6]
    with pytest.raises(aifsdk.JobFailedError, match="boom: local"):
        jobs[4].result()


def test_wait_timeout_names_what_still_runs() -> None:
    slow = aifsdk.submit(sleep_then, 30, "late")
    with pytest.raises(aifsdk.JobTimeoutError, match=f"1 of 1 job.*{slow.job_id}"):
        aifsdk.wait([slow], timeout=0.5)
    slow.cancel()


def test_wait_refuses_what_is_not_a_job() -> None:
    with pytest.raises(TypeError, match="aifsdk.Job"):
        aifsdk.wait(["1234"])


def test_result_files_are_watched_often_but_at_a_bounded_rate() -> None:
    from aifsdk._job import file_poll_interval

    assert file_poll_interval(1) <= 0.02 and file_poll_interval(50) <= 0.1  # a few jobs: seen well within 0.1 s of their end
    assert all(folders / file_poll_interval(folders) <= 500 + 1e-6 for folders in range(1, 251))  # directory reads a second
    assert all(file_poll_interval(folders) <= 0.5 for folders in range(1, 100_000, 97))  # every end seen within 1 s


def test_map_on_local_gives_one_job_per_item_in_order() -> None:
    jobs = aifsdk.map(double, [5, 1, 3])
    assert [j.result(timeout=120) for j in jobs] == [10, 2, 6]
    sweep = aifsdk.map([sys.executable, "-c", "import sys; print('got', sys.argv[1:])"], ["a", ["b", "c"]])
    outs = [j.result(timeout=120).stdout for j in sweep]
    assert "got ['a']" in outs[0] and "got ['b', 'c']" in outs[1]


@pytest.mark.parametrize(("call", "param"), [
    (lambda: aifsdk.map(double, []), "items"),
    (lambda: aifsdk.map(double, [1], max_parallel=0), "max_parallel"),
    (lambda: aifsdk.map(["echo"], [3]), "items"),
    (lambda: aifsdk.submit(double, 1, after=["1234"]), "after"),
    (lambda: aifsdk.plan(double, 1, **LUMI, after=["twelve"]), "after"),
    (lambda: aifsdk.plan(double, 1, **LUMI, after=[]), "after"),
])
def test_bad_map_and_after_requests_name_the_parameter(call, param: str, clean_env: Path) -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        call()
    assert info.value.problems[0].param == param
    assert info.value.problems[0].fix
    assert _registry(clean_env) == []  # nothing was submitted


def test_after_renders_afterok_and_afterany_with_kill_on_invalid_dep() -> None:
    pl = aifsdk.plan(double, 1, **LUMI, after=[aifsdk.afterany("101", "102_3"), "103", aifsdk.afterok("104")])
    assert "#SBATCH --dependency=afterany:101:102_3,afterok:103:104" in pl.script
    assert "#SBATCH --kill-on-invalid-dep=yes" in pl.script
    assert parse_dependency("afterany:101:102_3,afterok:103:104") == [
        ("afterany", "101"), ("afterany", "102_3"), ("afterok", "103"), ("afterok", "104")]


def test_array_script_differs_from_the_plan_only_by_array_and_log_names() -> None:
    pl = aifsdk.plan(double, 1, **LUMI)
    text = array_script(pl.script, pl.folder, 250, 20)
    assert "#SBATCH --array=0-249%20" in text
    assert f"{pl.folder}/%A_%a_0_log.out" in text and f"{pl.folder}/%A_%a_%t_log.out" in text
    assert "%j" not in text
    removed = [line for line in pl.script.splitlines() if line not in text.splitlines()]
    assert all("%j" in line for line in removed), removed
    assert "%" not in array_script(pl.script, pl.folder, 5, 20).split("--array=")[1].splitlines()[0]  # no cap above the count


def test_jobs_lists_local_jobs_from_a_new_process(clean_env: Path) -> None:
    job = aifsdk.submit(double, 2, name="listed")
    job.wait(timeout=120)
    out = subprocess.run([sys.executable, "-m", "aifsdk", "jobs", "--json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)
    assert (row["job_id"], row["name"], row["site"], row["state"], row["tasks"]) == (job.job_id, "listed", "local", "COMPLETED", 1)
