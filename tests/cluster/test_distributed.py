"""Multi-node torch.distributed on the real local cluster (gloo on CPU; n1 and n2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import aifsdk

from jobfns import allreduce_rank_sum, submit_from_inside

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]
torch = pytest.importorskip("torch")


def _known_teardown_abort(stderr: str) -> None:
    """torch 2.13 (CPU, gloo) sometimes aborts one rank after the script finished its work:
    'terminate called without an active exception' (SIGABRT, exit -6) during process-group
    teardown, about 1 run in 20 here, never before training and the summary completed. Cause not
    found yet (see the issue notes). Reported as XFAIL, never as a pass; any other failure fails."""
    aborted = ("code -6", "exitcode  : -6", "SIGABRT")
    if "terminate called without an active exception" in stderr and any(a in stderr for a in aborted):
        pytest.xfail("known torch/gloo teardown abort after the run completed (SIGABRT at exit)")
    pytest.fail(stderr)


@pytest.mark.parametrize("launcher", ["srun", "torchrun"])
def test_unmodified_torchrun_script_on_two_nodes(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "aifsdk", "submit", "--site", "slurm", "--nodes", "2", "--time", "10", "--launcher", launcher,
           "--wait", "--", sys.executable, str(REPO / "examples" / "ddp_train.py"), "--steps", "5", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.exists(), run.stderr
    summary = json.loads(out.read_text())
    assert summary["world_size"] == 2
    assert sorted(summary["hosts"]) == ["n1", "n2"]
    assert len(set(summary["weights_sha"])) == 1  # DDP kept both replicas identical
    if run.returncode != 0:
        _known_teardown_abort(run.stderr)


def test_torchrun_mode_runs_several_ranks_per_node(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    job = aifsdk.submit([sys.executable, str(REPO / "examples" / "ddp_train.py"), "--steps", "3", "--out", str(out)],
                        site="slurm", nodes=2, tasks_per_node=2, launcher="torchrun", time=10)
    assert job.num_tasks == 2  # srun starts one torchrun per node
    failure = None
    try:
        job.result(timeout=300)
    except aifsdk.JobFailedError as exc:
        failure = str(exc)
    assert out.exists(), failure
    summary = json.loads(out.read_text())
    assert summary["world_size"] == 4 and sorted(summary["hosts"]) == ["n1", "n1", "n2", "n2"]
    if failure:
        _known_teardown_abort(failure)


def test_ddp_example_as_a_function_job() -> None:
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import ddp_train
    finally:
        sys.path.remove(str(REPO / "examples"))
    job = aifsdk.submit(ddp_train.train, 5, site="slurm", nodes=2, tasks_per_node=1, time=10)
    try:
        rows = job.results(timeout=300)
    except aifsdk.JobFailedError as exc:
        _known_teardown_abort(str(exc))
    assert sorted(r["rank"] for r in rows) == [0, 1]
    assert len({r["mean_loss"] for r in rows}) == 1  # every rank holds the same all-reduced value
    assert len({sha for r in rows for sha in r["weights_sha"]}) == 1  # identical weights on every rank
    assert sorted(rows[0]["hosts"]) == ["n1", "n2"]


def test_example_ddp_function_script_runs() -> None:
    out = subprocess.run([sys.executable, str(REPO / "examples" / "ddp_function.py"), "--steps", "3"],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        _known_teardown_abort(out.stderr)
    assert "'world_size': 2" in out.stdout


def test_function_job_with_aifsdk_distributed() -> None:
    job = aifsdk.submit(allreduce_rank_sum, site="slurm", nodes=2, tasks_per_node=1, time=10)
    rows = job.results(timeout=300)
    assert [r["sum"] for r in rows] == [3.0, 3.0]  # 1 + 2
    assert sorted(r["node"] for r in rows) == ["n1", "n2"]
    assert {r["master"] for r in rows} == {"n1"}
    port = int(rows[0]["port"])
    assert 20000 <= port < 40000 and {r["port"] for r in rows} == {rows[0]["port"]}


def test_two_two_node_jobs_at_once_do_not_collide() -> None:
    """Both jobs run on n1 and n2 at the same time (one CPU each per node), each with its port."""
    a = aifsdk.submit(allreduce_rank_sum, site="slurm", nodes=2, tasks_per_node=1, cpus_per_task=1, time=10)
    b = aifsdk.submit(allreduce_rank_sum, site="slurm", nodes=2, tasks_per_node=1, cpus_per_task=1, time=10)
    ra, rb = a.results(timeout=300), b.results(timeout=300)
    assert [r["sum"] for r in ra] == [3.0, 3.0] and [r["sum"] for r in rb] == [3.0, 3.0]
    assert ra[0]["port"] != rb[0]["port"]


def test_nested_submission_does_not_inherit_the_outer_job() -> None:
    job = aifsdk.submit(submit_from_inside, site="slurm", nodes=1, tasks_per_node=1, time=10)
    res = job.result(timeout=300)
    inner = res["inner"]
    assert inner["SLURM_JOB_ID"] == res["inner_id"] != res["outer"]["SLURM_JOB_ID"]
    assert inner["SLURM_NTASKS"] == "1" and inner["SLURM_JOB_NUM_NODES"] == "1"
    assert inner["WORLD_SIZE"] == "1"  # its own, not the outer job's


def test_torchrun_launcher_refused_for_functions() -> None:
    with pytest.raises(aifsdk.RequestError, match="launcher"):
        aifsdk.plan(allreduce_rank_sum, site="slurm", launcher="torchrun")
