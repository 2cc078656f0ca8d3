"""The site's launch recipe, applied by default to GPU jobs on sites that recommend one (``launcher``).

One rank per GPU, the site's cores and memory per GPU, LUMI's CPU masks on whole nodes, the
profile's module lines; whatever the request sets itself wins. Everything here goes through
``plan``: nothing is submitted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import aifsdk
from aifsdk._profile import parse_profile

LUMI_MASKS = ("0x00fe000000000000,0xfe00000000000000,0x0000000000fe0000,0x00000000fe000000,"
              "0x00000000000000fe,0x000000000000fe00,0x000000fe00000000,0x0000fe0000000000")


def train(cfg: dict) -> float:
    return 0.0


def plan(site: str, **kw):  # type: ignore[no-untyped-def]
    return aifsdk.plan(train, {}, site=site, snapshot=False, **kw)


def flags(script: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", script, re.M))


def srun_line(script: str) -> str:
    (line,) = [x for x in script.splitlines() if x.startswith("srun ")]
    return line


def test_lumi_two_nodes_of_eight_gpus_get_the_whole_recipe() -> None:
    p = plan("lumi-g", nodes=2, gpus_per_node=8, account="project_465001926", time="2h")
    f = flags(p.script)
    assert (f["nodes"], f["ntasks-per-node"], f["cpus-per-task"], f["gpus-per-node"], f["mem"]) == ("2", "8", "7", "8", "480G")
    assert f"--cpu-bind=mask_cpu:{LUMI_MASKS}" in srun_line(p.script)
    assert "module use /appl/local/laifs/modules\nmodule load lumi-aif-singularity-bindings\n" in p.script
    assert p.script.index("module load") < p.script.index("export AIFSDK_SITE"), "modules load before the job's environment"
    assert "launch recipe" in p.origins["tasks_per_node"] and "7 cores per GPU" in p.origins["cpus_per_task"]
    assert "60 GB per GPU" in p.origins["mem_gb"]
    assert f"launch:    {srun_line(p.script)}" in p.summary()


def test_what_the_request_sets_wins() -> None:
    p = plan("lumi-g", nodes=1, gpus_per_node=8, tasks_per_node=2, cpus_per_task=20, mem_gb=200, account="project_465001926")
    f = flags(p.script)
    assert (f["ntasks-per-node"], f["cpus-per-task"], f["mem"]) == ("2", "20", "200G")
    assert not {"tasks_per_node", "cpus_per_task", "mem_gb"} & set(p.origins), "the request's own values: no site origin"
    assert "--cpu-bind" not in p.script, "2 ranks: the 8 per-GCD masks do not apply"


def test_masks_only_on_whole_nodes_with_the_recipes_cores() -> None:
    shared = plan("lumi-g", gpus_per_node=8, partition="small-g", account="project_465001926")
    assert flags(shared.script)["ntasks-per-node"] == "8" and "--cpu-bind" not in shared.script, "small-g shares nodes"
    whole = plan("lumi-g", gpus_per_node=8, partition="small-g", extra={"exclusive": True}, account="project_465001926")
    assert f"--cpu-bind=mask_cpu:{LUMI_MASKS}" in whole.script
    more = plan("lumi-g", gpus_per_node=8, cpus_per_task=8, tasks_per_node=7, account="project_465001926")
    assert "--cpu-bind" not in more.script
    wide = plan("lumi-g", gpus_per_node=8, tasks_per_node=8, cpus_per_task=6, account="project_465001926")
    assert "--cpu-bind=mask_cpu" in wide.script, "fewer cores than a mask holds still bind"


def test_a_partial_lumi_node_bills_by_its_cores_and_memory_slices() -> None:
    p = plan("lumi-g", gpus_per_node=2, partition="small-g", account="project_465001926", time="1h")
    f = flags(p.script)
    assert (f["ntasks-per-node"], f["cpus-per-task"], f["mem"]) == ("2", "7", "120G")
    assert p.cost.amount == 1.0, "2 GCDs, 14 cores (2 slices), 120 GB (2 slices): 2 x 0.5 GPU-h"


@pytest.mark.parametrize(("site", "account", "gpus", "tasks", "cores", "gpu_line"), [
    ("leonardo-booster", "EUHPC_D35_189", 4, "4", "8", "gres=gpu:4"),
    ("jupiter-booster", "e-dev-2026d09-128", 4, "4", "72", "gres=gpu:4"),
    ("sofia", "2026_001", 2, "2", "24", "gpus-per-node=2"),
])
def test_one_rank_per_gpu_with_the_sites_cores(site: str, account: str, gpus: int, tasks: str, cores: str, gpu_line: str) -> None:
    p = plan(site, nodes=2, gpus_per_node=gpus, account=account)
    f = flags(p.script)
    assert (f["ntasks-per-node"], f["cpus-per-task"]) == (tasks, cores)
    assert f"#SBATCH --{gpu_line}" in p.script
    modules = aifsdk.load_site(site).software.modules
    assert all(line in p.script for line in modules)


def test_torchrun_holds_every_ranks_cores_in_its_one_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    p = aifsdk.plan(["python", "train.py"], site="mn5-acc", nodes=2, gpus_per_node=4, account="etur02", snapshot=False)
    f = flags(p.script)
    assert (p.launcher, f["ntasks-per-node"], f["cpus-per-task"], f["qos"]) == ("torchrun", "1", "80", "acc_ehpc")
    assert "module load singularity" in p.script
    (torchrun,) = [x for x in p.launch_lines if "torch.distributed.run" in x]
    assert "--nnodes=2 --nproc_per_node=4 --node_rank=$SLURM_NODEID" in torchrun and torchrun.endswith(" train.py")


def test_cores_are_capped_by_the_partition() -> None:
    p = plan("hortense", partition="debug_milan_rhel9", gpus_per_node=1, account="2024_301")
    assert flags(p.script)["cpus-per-task"] == "8", "12 cores per GPU, but 8 cores per user on the debug partition"


def test_cpu_jobs_and_sites_without_a_recipe_are_unchanged() -> None:
    cpu = plan("lumi-g", account="project_465001926", partition="small-g")
    assert "module" not in cpu.script and "ntasks-per-node=1" in cpu.script and "--mem" not in cpu.script
    mel = plan("meluxina-gpu", nodes=2, gpus_per_node=4, account="p200301")
    assert flags(mel.script)["ntasks-per-node"] == "1" and "module" not in mel.script
    local = plan("slurm", gpus_per_node=0)
    assert "--cpu-bind" not in local.script


def test_a_cpu_mask_must_be_hexadecimal() -> None:
    with pytest.raises(aifsdk.ProfileError, match=r"cpu_bind_masks\[1\]: 'fe' is not a hexadecimal CPU mask"):
        parse_profile("executor: slurm\ncpu_bind_masks: ['0xfe', 'fe']\n", name="x", source="x.yaml")


def test_cores_that_only_fit_one_task_keep_one_task() -> None:
    p = plan("lumi-g", gpus_per_node=8, cpus_per_task=56, account="project_465001926")
    assert flags(p.script)["ntasks-per-node"] == "1" and flags(p.script)["cpus-per-task"] == "56"
    assert any("8 x 56 cores, more than the node's 56" in n for n in p.notes)


def test_plan_json_carries_the_launch_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("print('hi')\n")
    out = subprocess.run([sys.executable, "-m", "aifsdk", "plan", "--json", "--site", "lumi-g", "-N", "2", "--gpus-per-node", "8",
                          "-A", "project_465001926", "-t", "1h", "--", "python", "train.py"], capture_output=True, text=True)
    data = json.loads(out.stdout)
    (line,) = data["launch"]
    assert line.startswith("srun ") and f"--cpu-bind=mask_cpu:{LUMI_MASKS}" in line and line in data["script"]


@pytest.mark.parametrize(("kw", "param", "cheaper"), [
    ({"tasks_per_node": 1, "cpus_per_task": 9}, "cpus_per_task", "use cpus_per_task<=8 (8 cores for 1 GPU), or gpus_per_node=2"),
    ({"mem_gb": 65}, "mem_gb", "use mem_gb<=64, or gpus_per_node=2"),
])
def test_lumi_slices_beyond_the_gpus_are_a_warning(kw: dict, param: str, cheaper: str) -> None:
    """LUMI bills 1 GCD with 9 cores (or 65 GB) as 2 GCDs: the site runs it, so a warning, and strict refuses it."""
    request = {"gpus_per_node": 1, "partition": "small-g", "account": "project_465001926", **kw}
    (warning,) = plan("lumi-g", **request).warnings
    assert warning.param == param and "2 billing slices" in warning.waste and cheaper in warning.cheaper
    with pytest.raises(aifsdk.RequestError, match="2 billing slices"):
        plan("lumi-g", strict=True, **request)
    assert not plan("lumi-g", gpus_per_node=1, partition="small-g", account="project_465001926").warnings, "the recipe fits its slices"
