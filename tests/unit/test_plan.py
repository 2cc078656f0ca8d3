"""Rendering and validation against declared (not discovered) site limits.

Expected scripts live in tests/unit/expected/; refresh them after a deliberate change with
    AIFSDK_REFRESH_EXPECTED=1 pytest tests/unit/test_plan.py
and review the diff.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

import aifsdk

EXPECTED = Path(__file__).parent / "expected"

SITE = """
title: Test cluster with declared limits
executor: slurm
discover: false
python: python3
default_time: 45
gpu_request: {gpu_request}
node: {{gpus: 4, cpus: 32, mem_gb: 256}}
partitions:
  gpu: {{default: true, max_time: "1-00:00:00", max_nodes: 4, gpus_per_node: 4, cpus_per_node: 32, mem_gb: 256}}
  short: {{max_time: "02:00:00", max_nodes: 8, gpus_per_node: 4}}
qos: {{normal: {{default: true, description: the test QoS}}}}
account: {{required: true, pattern: "proj_[0-9]+", example: proj_123}}
billing: {{unit: node-hours}}
env: {{NCCL_SOCKET_IFNAME: hsn, OMP_NUM_THREADS: 7}}
setup: ["module load pytorch/2.5"]
sources: [test]
"""


@pytest.fixture
def sites(clean_env: Path) -> None:
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True)
    (folder / "testc.yaml").write_text(SITE.format(gpu_request="gpus-per-node"))
    (folder / "testgres.yaml").write_text(SITE.format(gpu_request="gres"))


def train(cfg: dict) -> float:
    return 0.0


def _check_expected(name: str, text: str) -> None:
    text = text.replace(f"aifsdk {aifsdk.__version__}", "aifsdk VERSION").replace(str(Path(__file__).parent), "TESTDIR")
    text = text.replace(shlex.quote(sys.executable), "PYTHON")
    path = EXPECTED / name
    if os.environ.get("AIFSDK_REFRESH_EXPECTED") == "1":
        path.write_text(text)
    assert path.exists(), f"{path} missing: run AIFSDK_REFRESH_EXPECTED=1 pytest {__file__}"
    assert text == path.read_text()


@pytest.mark.parametrize("site", ["testc", "testgres"])
def test_rendered_script_matches_stored(sites: None, site: str) -> None:
    p = aifsdk.plan(train, {"lr": 0.1}, site=site, nodes=2, gpus_per_node=4, tasks_per_node=4, cpus_per_task=8,
                    mem_gb=200, time="3h", account="proj_42", qos="normal", extra={"exclusive": True, "mail-type": "END"},
                    folder="/scratch/proj_42/jobs/run 1", name="unet")
    _check_expected(f"{site}.sbatch", p.script)
    assert p.resources.time == "03:00:00"
    assert p.cost.unit == "node-hours" and p.cost.amount == 6.0 and p.cost.gpu_hours == 24.0


def test_command_script_matches_stored(sites: None) -> None:
    p = aifsdk.plan(["echo", "it's", "fine"], site="testc", account="proj_1", folder="/tmp/x/job")
    _check_expected("testc-command.sbatch", p.script)
    assert p.kind == "command" and p.name == "echo"


def test_defaults_are_shown_with_their_origin(sites: None) -> None:
    p = aifsdk.plan(train, {}, site="testc", account="proj_1")
    assert p.resources.partition == "gpu" and p.origins["partition"] == "site default partition"
    assert p.resources.time == "00:45:00" and p.origins["time"] == "site testc default_time"
    assert "#SBATCH --time=00:45:00" in p.script
    assert "time:" in p.summary() and "site testc default_time" in p.summary()


def test_every_site_problem_at_once(sites: None) -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(train, {}, site="testc", nodes=5, gpus_per_node=8, cpus_per_task=40, mem_gb=300, time="2-00:00:00",
                    account="someone")
    params = [p.param for p in info.value.problems]
    assert sorted(params) == ["account", "cpus_per_task", "gpus_per_node", "mem_gb", "nodes", "time"]
    text = str(info.value)
    assert "at most 1-00:00:00 on partition gpu" in text
    assert "proj_123" in text  # the example account
    assert "nothing was submitted" in text


def test_missing_required_account(sites: None) -> None:
    with pytest.raises(aifsdk.RequestError, match="requires one"):
        aifsdk.plan(train, {}, site="testc")


def test_time_above_partition_suggests_a_partition_that_fits(sites: None) -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(train, {}, site="testc", partition="short", time="5h", account="proj_1")
    (problem,) = info.value.problems
    assert problem.param == "time" and "partition='gpu'" in problem.fix


@pytest.mark.parametrize("folder", ["/tmp/with space/job", "/tmp/quote's/job", '/tmp/dq"uote/job'])
def test_hostile_folder_names_are_quoted(sites: None, folder: str) -> None:
    import shlex

    p = aifsdk.plan(["true"], site="testc", account="proj_1", folder=folder)
    run_line = p.script.strip().splitlines()[-1]
    assert shlex.split(run_line)[-1] == folder
    assert f"--output={shlex.quote(folder + '/%j_0_log.out')}" in p.script


@pytest.mark.parametrize("folder", ["/tmp/new\nline", "/tmp/100%"])
def test_folder_names_slurm_cannot_take_are_refused(sites: None, folder: str) -> None:
    with pytest.raises(aifsdk.RequestError, match="folder"):
        aifsdk.plan(["true"], site="testc", account="proj_1", folder=folder)


def test_existing_nonempty_folder_is_never_reused(tmp_path: Path) -> None:
    (tmp_path / "old_result.pkl").write_text("x")
    with pytest.raises(aifsdk.RequestError, match="never reuses"):
        aifsdk.plan(print, folder=tmp_path)


def test_bad_targets() -> None:
    for target, args in ((42, ()), ("python train.py", ()), ([], ()), (["python", "missing_script.py"], ()), (["echo"], (1,))):
        with pytest.raises(aifsdk.RequestError) as info:
            aifsdk.plan(target, *args)
        assert info.value.problems[0].param in ("target", "args")


def test_local_site_limits() -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(print, nodes=2, gpus_per_node=1, tasks_per_node=os.cpu_count() + 1)  # type: ignore[operator]
    assert sorted(p.param for p in info.value.problems) == ["gpus_per_node", "nodes", "tasks_per_node"]



def test_container_command_is_exact(sites: None, tmp_path: Path) -> None:
    """Apptainer is not packaged for Debian 12: the exact command is checked through plan."""
    image = tmp_path / "pytorch.sif"
    image.write_bytes(b"not really an image")
    p = aifsdk.plan(["python", "-c", "print(1)"], site="testc", account="proj_1", gpus_per_node=4, container=str(image),
                    folder="/scratch/proj_1/jobs/c1")
    run_line = p.script.strip().splitlines()[-1]
    assert "exec --nv --bind " in run_line and f"{image} python3 -u -m aifsdk._run /scratch/proj_1/jobs/c1" in run_line
    assert "/scratch/proj_1/jobs" in run_line  # the job folder (and the snapshot in it) is bound
    with pytest.raises(aifsdk.RequestError, match="existing .sif"):
        aifsdk.plan(["true"], site="testc", account="proj_1", container=str(tmp_path / "missing.sif"))


def test_site_default_container(clean_env: Path, tmp_path: Path) -> None:
    """A profile's `container:` is every job's image unless submit names another or container=False;
    the profile's declared runtime (software.container_runtime) is the one used."""
    image, other = tmp_path / "site.sif", tmp_path / "mine.sif"
    image.write_bytes(b"x")
    other.write_bytes(b"y")
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "withimg.yaml").write_text(f"executor: slurm\ndiscover: false\ncontainer: {image}\n"
                                         "software: {container_runtime: singularity}\nsources: [t]\n")
    p = aifsdk.plan(["true"], site="withimg")
    assert p.container is not None and p.container.image == str(image) and p.container.runtime == "singularity"
    assert "singularity exec --bind" in p.script and str(image) in p.script
    assert str(other) in aifsdk.plan(["true"], site="withimg", container=str(other)).script
    off = aifsdk.plan(["true"], site="withimg", container=False)
    assert off.container is None and "exec --bind" not in off.script


def test_amd_gpus_get_rocm_flag(clean_env: Path, tmp_path: Path) -> None:
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "amd.yaml").write_text("executor: slurm\ndiscover: false\nnode: {gpus: 8, gpu_model: MI250X}\nsources: [t]\n")
    image = tmp_path / "rocm.sif"
    image.write_bytes(b"x")
    p = aifsdk.plan(["true"], site="amd", gpus_per_node=8, tasks_per_node=8, container=str(image))
    assert "exec --rocm --bind" in p.script


def test_short_jobs_get_their_checkpoint_signal_in_time(sites: None) -> None:
    assert "--signal=USR2@15" in aifsdk.plan(["true"], site="testc", account="proj_1", time=1).script
    assert "--signal=USR2@90" in aifsdk.plan(["true"], site="testc", account="proj_1", time=60).script


def test_every_shipped_site_renders_its_launch_line() -> None:
    """The rendered script of every shipped profile for one fixed request, against a stored copy."""
    from aifsdk._planner import render_script
    from aifsdk._profile import site_files

    request = aifsdk.Resources(nodes=1, tasks_per_node=2, gpus_per_node=0, time="01:00:00")
    for name in sorted(site_files()):
        profile = aifsdk.load_site(name)
        if profile.executor == "debug" or profile.status != "available":
            continue
        text = render_script(profile, request, Path("/jobs/x"), name="x", kind="command", description="train",
                             python="python3", launcher="srun")
        _check_expected(f"site-{name}.sbatch", text)


def test_site_srun_args_reach_the_launch_line(clean_env: Path) -> None:
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bind.yaml").write_text("executor: slurm\ndiscover: false\nsrun_args: ['--cpu-bind=verbose,cores']\nsources: [t]\n")
    run_line = aifsdk.plan(["true"], site="bind").script.strip().splitlines()[-1]
    assert run_line.startswith("srun --unbuffered --kill-on-bad-exit=1 --cpu-bind=verbose,cores --output")


@pytest.mark.parametrize("nodes", [1, 2])
@pytest.mark.parametrize("site", ["lumi-g", "jupiter-booster", "leonardo-booster", "mn5-acc", "meluxina-gpu", "karolina-gpu",
                                  "vega-gpu", "deucalion", "sofia", "hortense", "lucia", "local"])
def test_typical_request_renders_the_stored_script(site: str, nodes: int) -> None:
    """A typical 1-node and 2-node request on every shipped site that runs jobs (one task per GPU,
    the site's account format), through plan: partition, QoS, account, GPU flag, environment,
    setup and launch line, against tests/unit/expected/typical-<site>-<n>node.sbatch. (`slurm`
    takes its limits from this machine's cluster, `debug` runs in-process, announced sites
    refuse: see test_sites.py.)"""
    from test_sites import TYPICAL

    if site == "local":
        if nodes == 2:
            pytest.skip("site local is one machine")
        request: dict = {"tasks_per_node": 2, "time": "1h"}
    else:
        account, gpus, cores, _ = TYPICAL[site]
        request = {"gpus_per_node": gpus, "tasks_per_node": gpus, "cpus_per_task": cores, "account": account, "time": f"{nodes}h"}
    p = aifsdk.plan(["python3", "-m", "mymodel.train", "--epochs", "3"], site=site, nodes=nodes, name="train", folder="/jobs/train-1",
                    snapshot=False, **request)
    _check_expected(f"typical-{site}-{nodes}node.sbatch", p.script)
    assert f"#SBATCH --nodes={nodes}\n" in p.script or site == "local"


def test_resources_keyword_is_the_request(sites: None) -> None:
    p = aifsdk.plan(train, {}, site="testc", account="proj_1", resources=aifsdk.Resources(nodes=2, gpus_per_node=4, time="2h"))
    assert (p.resources.nodes, p.resources.gpus_per_node, p.resources.time) == (2, 4, "02:00:00")
    assert p.args == ({},)  # the Resources did not become an argument of the target
    same = aifsdk.plan(train, {}, site="testc", account="proj_1", nodes=2, gpus_per_node=4, time="2h")
    assert same.script.replace(str(same.folder), "F").replace(same.folder.name, "N") == p.script.replace(str(p.folder), "F").replace(p.folder.name, "N")


def test_tasks_that_do_not_divide_the_gpus_get_a_warning(sites: None) -> None:
    uneven = aifsdk.plan(train, {}, site="testc", account="proj_1", gpus_per_node=4, tasks_per_node=3)
    assert any("3 tasks per node do not divide 4 GPUs" in str(w) for w in uneven.warnings)
    even = aifsdk.plan(train, {}, site="testc", account="proj_1", gpus_per_node=4, tasks_per_node=2)
    assert not any("do not divide" in str(w) for w in even.warnings)


@pytest.mark.parametrize("command, name", [
    (["python", "-c", "import sys; print(1, file=sys.stderr)"], "python-c"),
    (["python3", "-u", "-c", "print()"], "python-c"),
    (["python", "-uc", "print()"], "python-c"),
    (["python3", "-m", "json.tool", "--help"], "json.tool"),
    (["bash", "-c", "echo x"], "bash"),
])
def test_a_command_job_is_named_after_what_it_runs(command: list[str], name: str) -> None:
    assert aifsdk.plan(command).name == name


@pytest.mark.parametrize("env, expected", [
    ({}, "run-1 allow"),
    ({"SLURM_ARRAY_TASK_ID": "7"}, "run-1-7 allow"),  # each array task its own run
    ({"WANDB_RUN_ID": "mine", "WANDB_RESUME": "must"}, "mine must"),  # the user's own choice wins
])
def test_the_script_exports_one_tracker_run_per_submission(sites: None, env: dict[str, str], expected: str) -> None:
    import subprocess

    p = aifsdk.plan(train, {}, site="testc", account="proj_1", folder="/scratch/proj_42/jobs/run 1", mlflow_run_id="a" * 32)
    lines = [ln for ln in p.script.splitlines() if ln.startswith(("export WANDB_", "export MLFLOW_"))]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "MLFLOW_", "SLURM_"))}
    out = subprocess.run(["bash", "-c", "\n".join([*lines, 'echo "$WANDB_RUN_ID $WANDB_RESUME $MLFLOW_RUN_ID"'])],
                         env={**clean, **env}, capture_output=True, text=True, check=True).stdout.split()
    assert " ".join(out[:2]) == expected and out[2] == "a" * 32


def test_an_mlflow_run_id_is_checked(sites: None) -> None:
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.plan(train, {}, site="testc", account="proj_1", mlflow_run_id="no spaces allowed")
    assert info.value.problems[0].param == "mlflow_run_id" and "create_run" in info.value.problems[0].fix
    assert "MLFLOW_RUN_ID" not in aifsdk.plan(train, {}, site="testc", account="proj_1").script  # only when asked for
