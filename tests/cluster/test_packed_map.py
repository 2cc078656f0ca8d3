"""Packed maps on the real local cluster: several items per Slurm job, run concurrently by workers,
with per-item outcomes, retries, resumption after a time limit, the user's submit limit (held-back
jobs, submitted as earlier ones end, by whichever process waits), cancel, and the same over SSH.

Nothing is faked: sbatch, squeue, scontrol requeue, sacctmgr and the nodes are real. The submit
limit is set on a QoS and an account made for these tests only (never on the associations other
tests use), and removed afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from map_jobs import devices, inner_map, logged_sleep, pick, square_and_say

import aifsdk
from aifsdk._sweep import Item, Sweep, attach_map

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]
LIMIT_QOS, LIMIT_ACCOUNT, LIMIT = "aifsdk-map-limit", "aifsdk-map-limit", 2


def _aifsdk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aifsdk", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_packed_results_come_back_in_order_with_each_items_output() -> None:
    n = 40
    jobs = aifsdk.map(square_and_say, range(n), site="slurm", time=5, pack=10, name="packed")
    assert all(isinstance(j, Item) for j in jobs) and jobs[7].job_id.endswith(".7")
    folder = jobs[0].folder
    assert {j.folder for j in jobs} == {folder}  # one folder for the whole map
    aifsdk.wait(jobs, timeout=300)
    assert [j.result() for j in jobs] == [i * i for i in range(n)]
    assert jobs[13].stdout() == "item 13 says hello\n"  # its own lines, not its neighbours'
    record = json.loads((folder / "aifsdk-job.json").read_text())
    assert len(record["map"]["arrays"]) == 1 and record["map"]["packs"] == 4  # 4 jobs, in one array
    assert len(list((folder / "results").iterdir())) < 4 * 4 + 5  # files per worker, not per item
    again = aifsdk.Job.attach(jobs[-1].job_id)  # from the registry, by item id
    assert again.result() == (n - 1) ** 2 and again.state == "COMPLETED"


def test_a_packed_map_from_inside_a_job() -> None:
    assert aifsdk.submit(inner_map, 4, site="slurm", time=5).result(timeout=400) == [0, 1, 4, 9]


def test_one_worker_per_gpu_with_its_own_device() -> None:
    jobs = aifsdk.map(devices, range(4), site="slurm", time=5, pack=4, gpus_per_node=2)
    seen = [j.result(timeout=180) for j in jobs]
    assert sorted({s["cuda"] for s in seen}) == ["0", "1"]  # Slurm gave the job both fake GPUs; one per worker
    by_pid = {s["pid"]: s["cuda"] for s in seen}
    assert len(set(by_pid.values())) == len(by_pid) == 2


def test_a_failing_item_and_a_segfault_leave_the_rest_and_retries_work(tmp_path: Path) -> None:
    items = [("ok", 0), ("raise", "bad item"), ("ok", 2), ("segv",), ("flaky", str(tmp_path / "mark")), ("ok", 5)]
    jobs = aifsdk.map(pick, items, site="slurm", time=5, pack=6, retries=1)
    aifsdk.wait(jobs, timeout=300)
    assert [jobs[i].result() for i in (0, 2, 5)] == [0, 2, 5]
    assert jobs[4].result() == "recovered"  # failed once, retried
    with pytest.raises(aifsdk.JobFailedError) as raised:
        jobs[1].result()
    assert "ValueError: bad item" in raised.value.remote_traceback and "(attempt 2)" in str(raised.value)
    with pytest.raises(aifsdk.JobFailedError, match=r"died \(signal SIGSEGV\)"):
        jobs[3].result()
    assert [j.state for j in jobs] == ["COMPLETED", "FAILED", "COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]


@pytest.mark.timeout(1500)  # Slurm holds a requeued job for about two minutes (its BeginTime) before it runs again
def test_a_packed_job_killed_by_its_time_limit_resumes_without_rerunning_what_was_done(tmp_path: Path) -> None:
    log = tmp_path / "runs.txt"
    # 144 s of items in one worker; the job has 2 minutes and is warned 30 s before (Slurm may warn up to 60 s earlier)
    n, seconds = 24, 6.0
    jobs = aifsdk.map(logged_sleep, [(i, seconds, str(log)) for i in range(n)], site="slurm", time=2, pack=n, cores_per_worker=2,
                       items_per_worker=1)  # one worker
    aifsdk.wait(jobs, timeout=1400)
    assert [j.result() for j in jobs] == list(range(n))
    lines = log.read_text().split("\n")
    ends = Counter(line.split()[1] for line in lines if line.startswith("end"))
    starts = Counter(line.split()[1] for line in lines if line.startswith("start"))
    assert all(ends[str(i)] == 1 for i in range(n)), ends  # a finished item never ran again
    assert sum(starts.values()) - n <= 3, starts  # at most the item in flight at each stop started twice
    task = Sweep(jobs[0].folder).task_of(0)
    main_log = (jobs[0].folder / f"{task}_0_log.err").read_text()
    assert "requeueing" in main_log and "already done" in main_log, main_log[-2000:]


@pytest.fixture
def limited_account() -> dict[str, str]:
    """A QoS with MaxSubmitJobsPerUser=2 and an account whose only QoS it is, for this user and
    for the SSH test site's user."""
    from conftest import REMOTE_USER

    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()

    def sacctmgr(*args: str) -> None:
        subprocess.run(["sacctmgr", "-i", *args], capture_output=True, text=True, timeout=60)

    sacctmgr("add", "qos", LIMIT_QOS, f"MaxSubmitJobsPerUser={LIMIT}")
    sacctmgr("modify", "qos", LIMIT_QOS, "set", f"MaxSubmitJobsPerUser={LIMIT}")
    sacctmgr("add", "account", LIMIT_ACCOUNT, "Description=aifsdk map limit tests", "Organization=aifsdk")
    for who in (user, REMOTE_USER):
        sacctmgr("add", "user", who, f"account={LIMIT_ACCOUNT}", f"qos={LIMIT_QOS}", f"defaultqos={LIMIT_QOS}")
    yield {"account": LIMIT_ACCOUNT, "qos": LIMIT_QOS}
    for who in (user, REMOTE_USER):
        subprocess.run(["scancel", "-u", who, "-A", LIMIT_ACCOUNT], capture_output=True, timeout=60)
        sacctmgr("delete", "user", who, f"account={LIMIT_ACCOUNT}")
    sacctmgr("delete", "account", LIMIT_ACCOUNT)
    sacctmgr("delete", "qos", LIMIT_QOS)


def _check_never_above_limit(folder: Path) -> None:
    record = json.loads((folder / "aifsdk-job.json").read_text())
    arrays = record["map"]["arrays"]
    assert len(arrays) > 1
    for array in arrays:  # what was queued in the QoS when it was submitted, plus its own jobs
        assert array["queued_before"] + len(array["packs"]) <= LIMIT, arrays


@pytest.mark.timeout(900)
def test_a_map_larger_than_max_submit_jobs_completes(limited_account: dict[str, str]) -> None:
    slurm = aifsdk._scheduler.default_slurm()
    assert slurm.map_limit(LIMIT_ACCOUNT, None) == (LIMIT, {"qos": LIMIT_QOS})
    jobs = aifsdk.map(square_and_say, range(12), site="slurm", time=5, pack=2, **limited_account)  # 6 jobs, 2 at a time
    assert len(Sweep(jobs[0].folder).held_back()) == 6 - LIMIT
    aifsdk.wait(jobs, timeout=600)
    assert [j.result() for j in jobs] == [i * i for i in range(12)]
    _check_never_above_limit(jobs[0].folder)


@pytest.mark.timeout(900)
def test_aifsdk_jobs_run_later_carries_on_submitting(limited_account: dict[str, str]) -> None:
    map_id = _map_then_die("square_and_say", "range(6)", "slurm")  # 3 jobs, 2 submitted
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        listed = _aifsdk("jobs", "--json")
        row = next(r for r in json.loads(listed.stdout) if r["job_id"] == map_id)
        if row["state"] == "COMPLETED":
            break
        time.sleep(3)
    sweep = attach_map(map_id)
    assert isinstance(sweep, Sweep) and [i.result() for i in sweep.items()] == [i * i for i in range(6)]
    _check_never_above_limit(sweep.folder)


def _map_then_die(function: str, items: str, site: str) -> str:
    """In a new process: map ``function`` over ``items`` in the limited account (most jobs held
    back), print the map's id, then die by SIGKILL."""
    code = (f"import sys, os, signal; sys.path.insert(0, 'tests/cluster'); import aifsdk; from map_jobs import {function}\n"
            f"jobs = aifsdk.map({function}, {items}, site='{site}', time=5, pack=2, account='{LIMIT_ACCOUNT}', qos='{LIMIT_QOS}')\n"
            "print(jobs[0].map_id, flush=True); os.kill(os.getpid(), signal.SIGKILL)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == -signal.SIGKILL, out.stderr
    return out.stdout.strip()


@pytest.mark.timeout(900)
def test_a_new_process_resumes_a_map_whose_submitter_was_killed(limited_account: dict[str, str]) -> None:
    map_id = _map_then_die("square_and_say", "range(10)", "slurm")
    waited = _aifsdk("wait", map_id, timeout=600)  # another process carries on submitting
    assert waited.returncode == 0, waited.stderr
    sweep = attach_map(map_id)
    assert isinstance(sweep, Sweep)
    assert [i.result() for i in sweep.items()] == [i * i for i in range(10)]
    _check_never_above_limit(sweep.folder)


def test_cancel_of_a_map_cancels_its_jobs_and_what_is_held_back(limited_account: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "runs.txt"
    jobs = aifsdk.map(logged_sleep, [(i, 60.0, str(log)) for i in range(8)], site="slurm", time=5, pack=2, **limited_account)
    map_id = jobs[0].map_id
    listed = _aifsdk("jobs", "--state", "pending", "--json")
    assert listed.returncode == 0 and map_id in [r["job_id"] for r in json.loads(listed.stdout)], listed.stderr
    cancelled = _aifsdk("cancel", map_id)
    assert cancelled.returncode == 0, cancelled.stderr
    aifsdk.wait(jobs, timeout=120)
    assert {j.state for j in jobs} == {"CANCELLED"}
    with pytest.raises(aifsdk.JobCancelledError):
        jobs[-1].result()
    time.sleep(3)
    sweep = Sweep(jobs[0].folder)
    sweep.tick(force=True)  # a waiter after the cancel submits nothing more
    arrays = sweep.record["map"]["arrays"]
    assert len(arrays) == 1 and sweep.held_back()  # the held-back packs stayed back
    queue = subprocess.run(["squeue", "-h", "-r", "-j", arrays[0]["job_id"], "-o", "%T"], capture_output=True, text=True).stdout.split()
    assert not [s for s in queue if s in ("PENDING", "RUNNING")], queue


def test_bad_packing_options_are_refused_before_anything_is_submitted() -> None:
    for kwargs, name in (({"pack": 0}, "pack"), ({"pack": "big"}, "pack"), ({"retries": -1}, "retries"),
                         ({"items_per_worker": 0}, "items_per_worker"), ({"pack": 4, "nodes": 2}, "pack")):
        with pytest.raises(aifsdk.RequestError, match=name):
            aifsdk.map(square_and_say, range(4), site="slurm", **kwargs)
    assert not list(Path(os.environ["AIFSDK_JOB_ROOT"]).glob("*/*"))  # no folder was made


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_packed_map_over_ssh_uses_arrays_and_cancels_whole(ssh_host: Path, tmp_path: Path) -> None:
    from test_remote import remote_site

    site = remote_site(ssh_host, name="mapssh")
    jobs = aifsdk.map(square_and_say, range(12), site=site, time=5, pack=4)
    aifsdk.wait(jobs, timeout=600)
    assert [j.result() for j in jobs] == [i * i for i in range(12)]
    assert jobs[5].stdout() == "item 5 says hello\n"
    record = json.loads((jobs[0].folder / "aifsdk-job.json").read_text())
    assert [len(a["packs"]) for a in record["map"]["arrays"]] == [3]  # one array of 3 jobs, not one job per item
    single = aifsdk.map(square_and_say, range(3), site=site, time=5, pack=1)  # one array task per item, still one array
    assert [j.result(timeout=300) for j in single] == [0, 1, 4]
    assert len(json.loads((single[0].folder / "aifsdk-job.json").read_text())["map"]["arrays"]) == 1
    slow = aifsdk.map(pick, [("ok", i) for i in range(2)] + [("raise", "x")], site=site, time=5, pack=3)
    assert [s.state for s in aifsdk.wait(slow, timeout=600)] == ["COMPLETED", "COMPLETED", "FAILED"]
    sleepy = aifsdk.map(logged_sleep, [(i, 120.0, "/dev/null") for i in range(4)], site=site, time=5, pack=2)
    cancelled = _aifsdk("cancel", sleepy[0].map_id)
    assert cancelled.returncode == 0, cancelled.stderr
    aifsdk.wait(sleepy, timeout=300)
    assert {j.state for j in sleepy} == {"CANCELLED"}


def test_ctrl_c_while_waiting_stops_the_waiting_not_the_jobs() -> None:
    jobs = aifsdk.map(logged_sleep, [(i, 30.0, "/dev/null") for i in range(2)], site="slurm", time=5, pack=2)
    map_id = jobs[0].map_id
    waiting = subprocess.Popen([sys.executable, "-m", "aifsdk", "wait", map_id], stderr=subprocess.PIPE, text=True, cwd=REPO)
    first = waiting.stderr.readline()  # the first progress line: the waiting has begun
    assert "items ended" in first, first
    waiting.send_signal(signal.SIGINT)
    _, err = waiting.communicate(timeout=60)
    err = first + err
    try:
        assert waiting.returncode == 130 and f"`aifsdk cancel {map_id}`" in err and "the jobs go on" in err, err
        assert {j.state for j in jobs} <= {"PENDING", "RUNNING"}  # still there
    finally:
        Sweep(jobs[0].folder).cancel()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_over_ssh_a_held_back_map_with_a_segfault_resumes_in_a_new_process(ssh_host: Path, limited_account: dict[str, str]) -> None:
    from test_remote import remote_site

    site = remote_site(ssh_host, name="mapssh")
    items = [("ok", i) for i in range(7)] + [("segv",)]
    map_id = _map_then_die("pick", repr(items), site)
    waited = _aifsdk("wait", map_id, timeout=600)
    assert waited.returncode == 1 and "1 of 8 item(s) did not complete: 7" in waited.stderr, waited.stderr
    sweep = attach_map(map_id)
    assert isinstance(sweep, Sweep) and sweep.record.get("remote")
    assert [i.result() for i in sweep.items()[:7]] == list(range(7))
    with pytest.raises(aifsdk.JobFailedError, match="SIGSEGV"):
        sweep.items()[7].result()
    _check_never_above_limit(sweep.folder)
