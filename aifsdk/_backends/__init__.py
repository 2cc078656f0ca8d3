"""Backends: the only code that knows where a job runs.

=========  ==========================================================================
debug      this process (submitit's DebugExecutor)
local      this machine, a controller process and its tasks (submitit's LocalExecutor)
slurm      a Slurm cluster (submitit's SlurmExecutor with the plan's script), reached
           through a transport: this machine's Slurm, or a login node over SSH
=========  ==========================================================================

:func:`backend_for` gives a site's backend; :func:`backend_of` the backend of a submitted job,
from its manifest. Planning, launching and following jobs ask it (the Python command, the job
root, the cluster's partitions, the executor, the scheduler's queue, results to pull, state,
cancel, the cluster-side environment) and never which kind it is. This package imports neither
the planner nor the Job class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import SchedulerError
from .._profile import SiteProfile, load_site
from .base import CANCEL_MARK, Backend, Submission, record_payload_hash
from .local import DebugBackend, LocalBackend
from .poller import SCHEDULER_POLL_MAX_S, SCHEDULER_POLL_MIN_S, Poller, poller
from .slurm import HERE, SlurmBackend
from .ssh import SSHTransport

__all__ = ["CANCEL_MARK", "SCHEDULER_POLL_MAX_S", "SCHEDULER_POLL_MIN_S", "Backend", "Poller", "Submission", "backend_for", "backend_of",
           "poller", "record_payload_hash"]

_DEBUG = DebugBackend()
_LOCAL = LocalBackend()
_SLURM_HERE = SlurmBackend(None, HERE)


def backend_for(profile: SiteProfile) -> Backend:
    """The backend of a site."""
    if profile.executor == "debug":
        return DebugBackend(profile)
    if profile.executor == "local":
        return LocalBackend(profile)
    if profile.ssh is not None:
        return SlurmBackend(profile, SSHTransport.of(profile))
    return SlurmBackend(profile, HERE)


def backend_of(record: Mapping[str, Any]) -> Backend:
    """The backend following a submitted job, from its manifest (``aifsdk-job.json``)."""
    executor = record.get("executor", "slurm")
    if executor == "debug":
        return _DEBUG
    if executor == "local":
        return _LOCAL
    if not record.get("remote"):
        return _SLURM_HERE
    site = str(record.get("site"))
    profile = load_site(site)
    if profile.ssh is None:
        raise SchedulerError(f"job {record.get('job_id')} was submitted to site {site!r} over SSH, but that profile has no ssh block now; "
                             f"restore it (aifsdk sites show {site}) to follow the job")
    return backend_for(profile)
