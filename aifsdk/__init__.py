"""aifsdk: run training jobs and benchmarks on EuroHPC AI Factory supercomputers.

    import aifsdk
    job = aifsdk.submit(train, cfg, site="slurm", nodes=2, gpus_per_node=4, time="2h")
    print(job.result())

``plan`` shows what ``submit`` would do (the exact sbatch script, resolved resources, cost)
without submitting. Errors form one tree rooted at :class:`AifsdkError` (see ``aifsdk._errors``).

The public names are imported on first use (PEP 562): ``import aifsdk`` stays cheap, and a job's
runner (``python -m aifsdk._run``) and its unpickled payload load only the modules they use.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing
from collections.abc import Callable, Sequence
from typing import Any

if _typing.TYPE_CHECKING:  # the names __getattr__ imports on first use, for type checkers and IDEs
    from ._array import map
    from ._command import CommandResult
    from ._cost import Cost
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
        StorageError,
    )
    from ._job import Job, wait
    from ._measure import measure
    from ._plan import Plan, plan
    from ._profile import SiteProfile, load_site
    from ._resources import Resources
    from ._sizing import Measurement, Sizing, size
    from ._snapshot import SnapshotOptions

from ._version import __version__

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
    "StorageError",
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

# Where each public name lives; read by __getattr__ on first use.
_LAZY = {
    "map": "_array",
    "CommandResult": "_command",
    "afterany": "_deps",
    "afterok": "_deps",
    "distributed": "_distributed",
    **dict.fromkeys(
        ("AifsdkError", "JobCancelledError", "JobError", "JobFailedError", "JobNotFoundError", "JobTimeoutError",
         "Problem", "ProfileError", "RequestError", "SchedulerError", "SiteNotFoundError", "StorageError"),
        "_errors",
    ),
    "Job": "_sweep",  # the Job class of _job, with the items of packed maps registered (see Job.attach)
    "measure": "_measure",
    "Cost": "_cost",
    "Plan": "_plan",
    "plan": "_plan",
    "SiteProfile": "_profile",
    "load_site": "_profile",
    "Resources": "_resources",
    "Measurement": "_sizing",
    "Sizing": "_sizing",
    "size": "_sizing",
    "SnapshotOptions": "_snapshot",
    "wait": "_job",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aifsdk' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def submit(target: Callable[..., Any] | Sequence[str], *args: Any, site: str = "local", **options: Any) -> Job:
    """Submit ``target(*args)`` (or a command, as a list of strings) to ``site``.

    Keyword arguments are the fields of :class:`Resources` (``nodes``, ``gpus_per_node``,
    ``tasks_per_node``, ``cpus_per_task``, ``mem_gb``, ``time``, ``partition``, ``account``,
    ``qos``, ``constraint``, ``extra``), or ``resources=Resources(...)``, plus ``name``, ``folder``
    and ``launcher`` ("srun": srun starts every rank; "torchrun": one torchrun per node, for
    commands), ``after`` (jobs this one waits for: afterok, or :func:`afterany`) and
    ``mlflow_run_id`` (exported as MLFLOW_RUN_ID, so that requeues resume that MLflow run). Function
    keyword arguments go through ``functools.partial``; the target's signature is checked against
    the arguments given. The request is checked first, with every
    problem reported at once in a :class:`RequestError`; nothing reaches the scheduler then.
    aifsdk refuses only what the site would refuse or could never start; what the site runs but
    bills for nothing is a warning (``plan(...).warnings``), or a problem with ``strict=True``.
    """
    from ._plan import plan

    return plan(target, *args, site=site, **options).submit()
