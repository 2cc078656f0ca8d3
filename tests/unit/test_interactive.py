"""The commands aifsdk shell and aifsdk jupyter build, for a site reached over SSH: the user's own
ssh settings (config file, options) carry the allocation and the tunnel. Running them for real is
in tests/cluster/test_daily.py (a shell through a pty, Jupyter's API through a tunnel)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

import aifsdk
from aifsdk._interactive import shell_argv, tunnel


def _ssh_site(tmp_path: Path) -> str:
    config = tmp_path / "ssh_config"
    config.write_text("Host login\n  HostName 127.0.0.1\n")
    folder = Path(os.environ["AIFSDK_CONFIG_DIR"]) / "site"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "far.yaml").write_text(
        "title: a cluster behind a login node\nexecutor: slurm\ndiscover: false\n"
        "partitions: {gpu: {default: true, max_time: '04:00:00', gpus_per_node: 4}}\n"
        "env: {NCCL_DEBUG: WARN}\n"
        f"ssh:\n  host: login\n  config: {config}\n  options: ['ProxyJump=gateway']\n  setup: ['module load python']\n"
    )
    return "far"


def test_the_tunnel_goes_through_the_profiles_ssh_settings(tmp_path: Path) -> None:
    profile = aifsdk.load_site(_ssh_site(tmp_path))
    argv = tunnel(SimpleNamespace(profile=profile), "gpu0042", 41234, 8888)  # type: ignore[arg-type]
    assert argv[:4] == ["ssh", "-N", "-L", "8888:gpu0042:41234"] and argv[-1] == "login"
    assert "-F" in argv and str(tmp_path / "ssh_config") in argv and "ProxyJump=gateway" in argv
    assert not any(a.startswith(("ControlPath", "ControlMaster", "ControlPersist")) for a in argv)  # a tunnel of its own


def test_the_shell_runs_salloc_and_srun_on_the_login_node(tmp_path: Path) -> None:
    profile = aifsdk.load_site(_ssh_site(tmp_path))
    r = aifsdk.Resources(nodes=2, gpus_per_node=4, tasks_per_node=4, time="01:00:00", partition="gpu")
    pl = SimpleNamespace(profile=profile, resources=r, name="shell", site="far", container=None)
    argv = shell_argv(pl, None)  # type: ignore[arg-type]
    assert argv[:2] == ["ssh", "-t"] and "login" in argv
    remote = argv[-1]
    assert remote.startswith("module load python; salloc --job-name=shell --partition=gpu --nodes=2 --ntasks-per-node=4 --gpus-per-node=4")
    assert "srun --pty --nodes=1 --ntasks=1 --export=ALL,AIFSDK_SITE=far,NCCL_DEBUG=WARN bash -l" in remote
    assert shlex.split(remote.split("; ", 1)[1])[0] == "salloc"


def test_the_shell_runs_in_the_sites_container_with_its_gpus(tmp_path: Path) -> None:
    from aifsdk._planner import Container

    folder = Path(os.environ["AIFSDK_CONFIG_DIR"]) / "site"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "boxed.yaml").write_text(
        "title: a cluster whose jobs run in an image\nexecutor: slurm\ndiscover: false\n"
        "node: {gpus: 4, gpu_model: A100}\npartitions: {gpu: {default: true, max_time: '04:00:00', gpus_per_node: 4}}\n"
    )
    r = aifsdk.Resources(nodes=1, gpus_per_node=2, tasks_per_node=1, time="00:30:00", partition="gpu")
    pl = SimpleNamespace(profile=aifsdk.load_site("boxed"), resources=r, name="shell", site="boxed",
                         container=Container("docker://python:3.11", "apptainer"))
    argv = shell_argv(pl, None)  # type: ignore[arg-type]
    assert argv[0] == "salloc" and "--gpus-per-node=2" in argv and "--time=00:30:00" in argv
    assert argv[argv.index("srun"):][-4:] == ["apptainer", "shell", "--nv", "docker://python:3.11"]
    command = shell_argv(pl, ["nvidia-smi", "-L"])  # type: ignore[arg-type]
    assert command[command.index("apptainer"):] == ["apptainer", "exec", "--nv", "docker://python:3.11", "nvidia-smi", "-L"]


def test_a_site_without_a_scheduler_has_no_shell_and_no_tunnel() -> None:
    """The backend seam answers for every site: local and debug refuse a shell or a tunnel with a
    RequestError naming the site and the way out, as `aifsdk shell --site local` does."""
    from aifsdk._backends import backend_for
    from aifsdk._interactive import shell_plan

    for site in ("local", "debug"):
        backend = backend_for(aifsdk.load_site(site))
        for call in (lambda: backend.terminal(["bash"]), lambda: backend.tunnel("8888:n1:41234"), lambda: shell_plan(site)):
            with pytest.raises(aifsdk.RequestError) as info:
                call()
            (problem,) = info.value.problems
            assert (problem.param, problem.value) == ("site", site)
            assert "needs an allocation on compute nodes" in problem.allowed and "--site slurm" in problem.fix
