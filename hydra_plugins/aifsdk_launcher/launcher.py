"""The aifsdk Hydra launcher: a ``--multirun`` sweep becomes one aifsdk.map (a Slurm job array).

    python my_app.py --multirun hydra/launcher=aifsdk site=slurm x=1,2,3
    python my_app.py --multirun hydra/launcher=aifsdk site=slurm hydra.launcher.wait=false x=1,2,3

Each array task re-composes its sweep config on the node and runs the task function with Hydra's
own ``run_job`` (outputs in ``hydra.sweep.dir``/``subdir`` as usual). With ``wait`` (default)
the launcher returns every job's JobReturn in sweep order; with ``wait=false`` it returns as
soon as the array is queued, so a login node need not keep a process alive (follow the sweep
with ``aifsdk jobs``; each job's JobReturn is its result: ``aifsdk.Job.attach(id).result()``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)
RESOURCES = ("nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "mem_gb", "time", "partition", "account", "qos", "constraint")


class SweepTask:
    """What each array task runs: one sweep point, ``(overrides, job index)``, through run_job."""

    def __init__(self, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config
        self.singletons = Singleton.get_state()

    def __call__(self, point: tuple[list[str], int]) -> JobReturn:
        import os

        overrides, index = point
        Singleton.set_state(self.singletons)
        setup_globals()
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(sweep_config.hydra.job):
            sweep_config.hydra.job.id = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID", str(index)))
            sweep_config.hydra.job.num = index
        HydraConfig.instance().set_config(sweep_config)
        return run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=sweep_config,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


class AifsdkLauncher(Launcher):
    """Submits a Hydra sweep through ``aifsdk.map``; see :class:`AifsdkLauncherConf` for options."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import aifsdk

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        p = self.params
        options = {k: p[k] for k in RESOURCES if p.get(k) is not None}
        if p.get("extra"):
            options["extra"] = dict(p["extra"])
        points = [(list(o), initial_job_idx + i) for i, o in enumerate(job_overrides)]
        jobs = aifsdk.map(SweepTask(self.hydra_context, self.task_function, self.config), points, site=p.get("site") or "local",
                          max_parallel=p.get("max_parallel"), name=p.get("name") or str(self.config.hydra.job.name),
                          pack=1, **options)  # one job per sweep point: each is a run with the job's resources
        log.info(f"aifsdk: submitted {len(jobs)} job(s) to {p.get('site')}: {jobs[0].job_id} .. {jobs[-1].job_id} ({jobs[0].folder})")
        for (overrides, index), job in zip(points, jobs):
            log.info(f"\t#{index} {job.job_id}: {' '.join(filter_overrides(overrides))}")
        if not p.get("wait", True):
            return [_submitted(job, overrides) for (overrides, _), job in zip(points, jobs)]
        aifsdk.wait(jobs)
        return [_returned(job, overrides) for (overrides, _), job in zip(points, jobs)]


def _submitted(job: Any, overrides: list[str]) -> JobReturn:
    """The JobReturn of a job that was only queued: its return value is the aifsdk job id."""
    return JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=job.job_id)


def _returned(job: Any, overrides: list[str]) -> JobReturn:
    """The task's own JobReturn, or a FAILED one carrying the aifsdk error (Hydra raises it)."""
    import aifsdk

    try:
        return job.result()
    except aifsdk.JobFailedError as exc:
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=exc)
