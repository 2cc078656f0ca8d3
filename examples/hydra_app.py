"""A Hydra app that picks its site and resources on the command line.

    python examples/hydra_app.py                                   # site local, runs the job
    python examples/hydra_app.py site=slurm resources.nodes=2      # the local Slurm cluster
    python examples/hydra_app.py site=lumi-g resources.nodes=2 resources.gpus_per_node=8 \\
        resources.account=project_465000001 dry_run=true           # LUMI-G's plan, nothing submitted

Config: examples/conf/hydra_app.yaml. ``aifsdk.hydra.register()`` makes every site profile a
choice of the ``site`` group and adds ``resources: default`` (every aifsdk.Resources field).
"""

from __future__ import annotations

import platform

import hydra
from omegaconf import DictConfig

import aifsdk
from aifsdk.hydra import options, register

register()


def sum_of_squares(steps: int) -> dict:
    return {"host": platform.node(), "sum_of_squares": sum(i * i for i in range(steps))}


@hydra.main(config_path="conf", config_name="hydra_app", version_base="1.3")
def main(cfg: DictConfig) -> None:
    plan = aifsdk.plan(sum_of_squares, cfg.steps, snapshot=False, **options(cfg))
    if cfg.dry_run:
        print(plan)
        return
    job = plan.submit()
    print(f"submitted job {job.job_id} to {job.site}; folder {job.folder}")
    print("result:", job.result(timeout=600))


if __name__ == "__main__":
    main()
