"""aifsdk: run training jobs and benchmarks on EuroHPC AI Factory supercomputers.

    import aifsdk
    job = aifsdk.submit(train, cfg, site="slurm", nodes=2, gpus_per_node=4, time="2h")
    print(job.result())

``plan`` shows what ``submit`` would do (the exact sbatch script, resolved resources, cost)
without submitting. Errors form one tree rooted at :class:`AifsdkError` (see ``aifsdk._errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._array import map
from ._command import CommandResult
from ._deps import afterany, afterok
from ._distributed import distributed
from ._errors import (
    AifsdkError,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    Problem,
    ProfileError,
    RequestError,
    SchedulerError,
    SiteNotFoundError,
)
from ._job import Job
from ._measure import measure
from ._plan import Cost, Plan, plan
from ._profile import SiteProfile, load_site
from ._resources import Resources
from ._sizing import Measurement, Sizing, size
from ._snapshot import SnapshotOptions
from ._wait import wait

__version__ = "0.1.0"

__all__ = [
    "AifsdkError",
    "CommandResult",
    "Cost",
    "Job",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobNotFoundError",
    "JobTimeoutError",
    "Measurement",
    "Plan",
    "Problem",
    "ProfileError",
    "RequestError",
    "Resources",
    "SchedulerError",
    "SiteNotFoundError",
    "SiteProfile",
    "Sizing",
    "SnapshotOptions",
    "__version__",
    "afterany",
    "afterok",
    "distributed",
    "load_site",
    "map",
    "measure",
    "plan",
    "size",
    "submit",
    "wait",
]


def submit(target: Callable[..., Any] | Sequence[str], *args: Any, site: str = "local", **options: Any) -> Job:
    """Submit ``target(*args)`` (or a command, as a list of strings) to ``site``.

    Keyword arguments are the fields of :class:`Resources` (``nodes``, ``gpus_per_node``,
    ``tasks_per_node``, ``cpus_per_task``, ``mem_gb``, ``time``, ``partition``, ``account``,
    ``qos``, ``constraint``, ``extra``) plus ``name``, ``folder`` and ``launcher`` ("srun": srun
    starts every rank; "torchrun": one torchrun per node, for commands) and ``after`` (jobs
    this one waits for: afterok, or :func:`afterany`). Function keyword
    arguments go through ``functools.partial``. The request is checked first, with every
    problem reported at once in a :class:`RequestError`; nothing reaches the scheduler then.
    """
    return plan(target, *args, site=site, **options).submit()
