"""Every site's default GPU launch script is accepted by a slurmctld configured like the site.

The twins (tests/cluster/slurm-cluster twin SITE) are real slurmctld processes written from each
site's documentation; ``sbatch --test-only`` asks one whether it would run the exact script that
``plan`` renders with the site's launch recipe (one rank per GPU, the site's cores and memory per
GPU). Nothing is queued. A site whose twin is not written yet is skipped, saying so.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from pathlib import Path

import pytest

import aifsdk

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]
REPO = Path(__file__).resolve().parents[2]
TWINS = REPO / "tests" / "cluster" / "twins"
SITES = ["lumi-g", "leonardo-booster", "jupiter-booster", "mn5-acc", "meluxina-gpu", "karolina-gpu"]


def train(cfg: dict) -> float:
    return 0.0


@functools.cache
def twin_conf(site: str) -> str:
    if not (TWINS / f"{site}.conf").exists():
        pytest.skip(f"no twin of {site} yet (tests/cluster/twins/{site}.conf)")
    for _ in range(3):  # `twin SITE` is idempotent; a start racing another one fails and is retried
        up = subprocess.run(["bash", str(REPO / "tests/cluster/slurm-cluster"), "twin", site], capture_output=True, text=True)
        if up.returncode == 0:
            break
        time.sleep(2)
    assert up.returncode == 0, up.stdout + up.stderr
    conf = subprocess.run(["bash", str(REPO / "tests/cluster/slurm-cluster"), "twin", site, "conf"], capture_output=True, text=True)
    return conf.stdout.strip()


def twin_account(site: str) -> str:
    """An account the twin knows (its .qos file names them), else the profile's example."""
    qos = TWINS / f"{site}.qos"
    if qos.exists():
        for line in qos.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "account":
                return words[1]
    example = aifsdk.load_site(site).account.example
    assert example, f"site {site} has no account example"
    return example


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("shape", ["2 whole nodes", "1 GPU"])
def test_default_gpu_launch_script_passes_the_twin(site: str, shape: str, tmp_path: Path) -> None:
    conf = twin_conf(site)
    profile = aifsdk.load_site(site)
    nodes, gpus = (2, profile.node.gpus) if shape == "2 whole nodes" else (1, 1)
    plan = aifsdk.plan(train, {}, site=site, nodes=nodes, gpus_per_node=gpus, account=twin_account(site), time="1h",
                       snapshot=False, folder=tmp_path / "job")
    if profile.launch_recipe:
        assert plan.resources.tasks_per_node == gpus, "one rank per GPU by default"
    if profile.cpu_bind_masks and shape == "2 whole nodes":
        assert "--cpu-bind=mask_cpu:" in plan.script and all(line in plan.script for line in profile.software.modules)
    script = tmp_path / "job.sbatch"
    script.write_text(plan.script)
    answer = subprocess.run(["sbatch", "--test-only", str(script)], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "SLURM_CONF": conf})
    assert answer.returncode == 0 and "to start at" in answer.stderr, f"the {site} twin refused:\n{answer.stderr}\n{plan.script}"
