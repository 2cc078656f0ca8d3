"""A real site's job submitted on a machine whose Slurm is another cluster is refused before
anything is written, naming both ways out (the site's login node, or an ssh block).

This machine's Slurm is the local test cluster (cluster 'aifsdk', partition 'debug'): it is not
LUMI-G. Everything here is real: the refusal is decided from this cluster's scontrol, and
squeue/sacct show that nothing reached it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import aifsdk
from aifsdk._resolve import wrong_cluster

from conftest import sacct_ids

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


def train(cfg: dict) -> float:
    return 0.0


def queued(name: str) -> str:
    """This cluster's jobs of that name (the cluster is shared: other jobs come and go)."""
    return subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True, check=True).stdout.strip()


def _everything_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


def test_submit_to_lumi_from_this_cluster_writes_nothing(clean_env: Path) -> None:
    name = f"wrong-cluster-{os.getpid()}"
    request = dict(site="lumi-g", nodes=2, gpus_per_node=8, account="project_465001926", time="1h", name=name, snapshot=False)
    planned = aifsdk.plan(train, {}, **request)  # plan still shows the script (and caches what scontrol said)
    before_files = _everything_under(clean_env)
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.submit(train, {}, **request)
    (problem,) = info.value.problems
    assert problem.param == "site" and "cluster 'aifsdk'" in problem.allowed and "site lumi-g's is 'lumi'" in problem.allowed
    assert "login node" in problem.fix and "ssh" in problem.fix and "lumi-g.yaml" in problem.fix
    assert not planned.folder.exists() and not planned.folder.parent.exists()
    assert _everything_under(clean_env) == before_files, "no job folder, no registry entry"
    assert not Path("/scratch/project_465001926").exists()
    assert not queued(name) and not sacct_ids(name), "sbatch was never called"
    with pytest.raises(aifsdk.RequestError, match="login node"):
        aifsdk.map(train, [{}, {}], pack=1, **request)
    assert not planned.folder.parent.exists() and not queued(name) and not sacct_ids(name)
    from aifsdk._interactive import shell_plan

    with pytest.raises(aifsdk.RequestError, match="login node"):
        shell_plan("lumi-g", gpus_per_node=8, account="project_465001926", time="1h")


def test_this_machines_own_cluster_and_ssh_sites_are_not_refused(clean_env: Path) -> None:
    assert wrong_cluster(aifsdk.load_site("slurm")) is None, "site slurm is whatever this machine's Slurm is"
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text("executor: slurm\ndiscover: true\npartitions: {debug: {default: true}}\nsources: [t]\n")
    assert wrong_cluster(aifsdk.load_site("mine")) is None, "a profile naming this cluster's partition is this cluster"
    (folder / "remote-lumi.yaml").write_text(
        (Path(aifsdk.load_site("lumi-g").source_file).read_text() + "\nssh: {host: lumi}\n"))
    assert wrong_cluster(aifsdk.load_site("remote-lumi")) is None, "over ssh the login node's Slurm decides"


def test_the_cluster_name_decides_when_the_profile_has_one(clean_env: Path) -> None:
    """A profile naming the site's ClusterName: partitions with the same names elsewhere do not pass."""
    folder = clean_env / "config" / "site"
    folder.mkdir(parents=True)
    (folder / "lookalike.yaml").write_text("executor: slurm\ndiscover: true\ncluster_name: lumi\n"
                                            "partitions: {debug: {default: true}}\nsources: [t]\n")
    why = wrong_cluster(aifsdk.load_site("lookalike"))
    assert why is not None and "cluster 'aifsdk'" in why and "'lumi'" in why
    with pytest.raises(aifsdk.RequestError, match="login node"):
        aifsdk.submit(train, {}, site="lookalike", snapshot=False)
    (folder / "same.yaml").write_text("executor: slurm\ndiscover: true\ncluster_name: aifsdk\n"
                                      "partitions: {gpu-only-elsewhere: {default: true}}\nsources: [t]\n")
    assert wrong_cluster(aifsdk.load_site("same")) is None, "the ClusterName matches: this is the site"


def test_no_slurm_commands_here_is_refused_too(clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without Slurm's commands
    with pytest.raises(aifsdk.RequestError, match="no Slurm commands"):
        aifsdk.submit(train, {}, site="lumi-g", gpus_per_node=8, account="project_465001926", snapshot=False)
    assert not (clean_env / "jobs" / "lumi-g").exists()
