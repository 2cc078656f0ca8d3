"""Rank variables from Slurm's: pure functions fed with the variables Slurm sets in a task."""

from __future__ import annotations

import pytest

from aifsdk._distributed import clean_environment, derived_port, expand_nodelist, rank_environment, torchrun_argv

SLURM_TASK = {  # what slurmd sets in task 5 of a 2-node x 4-task job with 4 GPUs per node
    "SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
    "SLURM_STEP_TASKS_PER_NODE": "4(x2)", "SLURM_JOB_ID": "123456", "SLURM_JOB_NODELIST": "gpu[007-008]",
    "CUDA_VISIBLE_DEVICES": "0,1,2,3",
}


def test_rank_environment_from_slurm() -> None:
    env = rank_environment(SLURM_TASK)
    assert env["RANK"] == "5" and env["WORLD_SIZE"] == "8" and env["LOCAL_RANK"] == "1"
    assert env["LOCAL_WORLD_SIZE"] == "4" and env["NODE_RANK"] == "1"
    assert env["MASTER_ADDR"] == "gpu007" and env["MASTER_PORT"] == str(derived_port("123456"))
    assert env["CUDA_VISIBLE_DEVICES"] == "1"  # one GPU per task


def test_amd_devices_are_narrowed_too() -> None:
    env = rank_environment({**SLURM_TASK, "CUDA_VISIBLE_DEVICES": "", "ROCR_VISIBLE_DEVICES": "0,1,2,3"})
    assert env["ROCR_VISIBLE_DEVICES"] == "1" and "CUDA_VISIBLE_DEVICES" not in env


def test_devices_left_alone_when_tasks_do_not_match_gpus() -> None:
    env = rank_environment({**SLURM_TASK, "CUDA_VISIBLE_DEVICES": "0,1"})
    assert "CUDA_VISIBLE_DEVICES" not in env


def test_master_from_batch_script_wins() -> None:
    env = rank_environment({**SLURM_TASK, "MASTER_ADDR": "gpu007", "MASTER_PORT": "29999"})
    assert env["MASTER_PORT"] == "29999"


def test_local_executor_variables() -> None:
    env = rank_environment({"SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_NTASKS": "2", "SUBMITIT_LOCAL_JOB_ID": "4242"})
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"]) == ("1", "2", "127.0.0.1")


@pytest.mark.parametrize("nodelist, hosts", [
    ("n1", ["n1"]), ("n[1-2]", ["n1", "n2"]), ("gpu[007-009,012],login1", ["gpu007", "gpu008", "gpu009", "gpu012", "login1"]),
    ("nid[005000-005001]", ["nid005000", "nid005001"]),
])
def test_expand_nodelist(nodelist: str, hosts: list[str]) -> None:
    assert expand_nodelist(nodelist) == hosts


def test_derived_port_range_and_arrays() -> None:
    assert 20000 <= derived_port("987654321") < 40000
    assert derived_port("77_3") == derived_port("77")


def test_clean_environment_keeps_slurm_conf() -> None:
    env = clean_environment({"SLURM_JOB_ID": "1", "SLURM_CONF": "/etc/slurm/x.conf", "RANK": "3", "MASTER_PORT": "1",
                             "SUBMITIT_EXECUTOR": "slurm", "PATH": "/bin", "SBATCH_ACCOUNT": "a"})
    assert env == {"SLURM_CONF": "/etc/slurm/x.conf", "PATH": "/bin"}


def test_torchrun_argv() -> None:
    argv = torchrun_argv(["python3", "train.py", "--lr", "1"], nnodes=2, nproc_per_node=4, python="/py")
    assert argv[:3] == ["/py", "-m", "torch.distributed.run"]
    assert "--nnodes=2" in argv and "--nproc_per_node=4" in argv and "--rdzv_backend=c10d" in argv
    assert argv[-3:] == ["train.py", "--lr", "1"]
    assert torchrun_argv(["python", "-m", "pkg.train"], nnodes=1, nproc_per_node=1, python="/py")[-2:] == ["-m", "pkg.train"]
    assert "--no-python" in torchrun_argv(["./a.out"], nnodes=1, nproc_per_node=1)
