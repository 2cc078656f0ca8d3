"""What every backend answers. A backend is where a site's jobs run: this process (``debug``),
this machine (``local``), or a Slurm cluster, reached here or over SSH (``slurm``).

Planning, launching and following a job ask their site's backend and never which one it is.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._controller import CANCEL_MARK as CANCEL_MARK  # re-exported: where every backend finds them
from .._controller import mark_cancelled as mark_cancelled
from .._errors import Problem, RequestError, SchedulerError
from .._paths import expand_root, user_root
from .._profile import SiteProfile
from .._run import record_hash
from .._scheduler import ClusterInfo, Slurm
from .poller import Poller


@dataclass(frozen=True)
class Submission:
    """What the submitit executor of a backend needs from a plan."""

    folder: Path  # the job folder on this machine (payload, manifest; results and logs arrive here)
    job_folder: Path  # the same folder as the job sees it (another path only on a cluster reached over SSH)
    script: str  # the exact text sbatch receives (Slurm)
    python: str  # the command that starts Python for the job
    nodes: int
    tasks_per_node: int
    gpus_per_node: int
    minutes: int
    signal_delay_s: int
    shell_setup: tuple[str, ...] = ()  # environment and site setup lines (the local controller, when the site has setup lines)
    env: dict[str, str] | None = None  # the whole environment of what submits the job (None: this process's)
    cwd: Path | None = None  # where what submits the job starts (None: this process's working folder)


def record_payload_hash(folder: Path) -> None:
    """Hash the pickled payload submitit has just written (before sbatch or the local start), so
    that the job refuses to load a payload changed afterwards (aifsdk._run)."""
    pending = [p for p in Path(folder).glob("*.pkl") if not p.name.endswith(("_submitted.pkl", "_result.pkl"))]
    if len(pending) != 1:
        raise SchedulerError(f"expected one pending payload in {folder}, found {[p.name for p in pending]}; nothing was queued. "
                             "Another process wrote to this job folder: submit again (a new folder is made)")
    record_hash(pending[0])


def env_argv(env: dict[str, str] | None) -> list[str]:
    """``env`` as a prefix of a command (``env -u NAME ... NAME=VALUE ...``): what differs from this
    process's environment, so that nothing of this process is changed to submit."""
    if env is None:
        return []
    unset = [a for name in sorted(set(os.environ) - set(env)) for a in ("-u", name)]
    changed = [f"{k}={v}" for k, v in sorted(env.items()) if os.environ.get(k) != v]
    return ["env", *unset, *changed] if unset or changed else []


class Backend:
    """The questions planning, launching and following a job ask about where it runs.

    ``profile`` is None for a backend rebuilt from a job's manifest where the site's profile is
    not needed (following a job on this machine).
    """

    #: The job runs in this process when submitted (no folder, no snapshot, nothing to reattach).
    in_process = False
    #: A scheduler queues the job: partitions, QoS, accounts, dependencies, torchrun across nodes.
    scheduled = False
    #: Paths the job uses (job root, container image) are on another machine, not checked here.
    cluster_paths = False
    #: Many items may go as one job array.
    arrays = False
    #: The job runs as a child of the submitting process, which waits for it.
    child_of_submitter = False

    def __init__(self, profile: SiteProfile | None = None) -> None:
        self.profile = profile

    # -- planning ----------------------------------------------------------------------------
    def python(self) -> str:
        """The command that starts Python for the job."""
        assert self.profile is not None
        return self.profile.python or shlex.quote(sys.executable)

    def job_root(self, account: str | None) -> Path:
        """The folder job folders are made in (ValueError: a variable of its template is unset)."""
        assert self.profile is not None
        return user_root(expand_root(self.profile.job_root_for(account)))

    def slurm(self) -> Slurm | None:
        """The scheduler's commands (None: no scheduler)."""
        return None

    def cluster_info(self) -> ClusterInfo | None:
        """Partitions and nodes as the scheduler reports them (None: nothing to discover)."""
        return None

    def check_environment(self, kind: str) -> list[Problem]:
        """Problems with the Python environment the job will run in, each with its fix."""
        return []

    def where(self) -> str:
        """The cluster the scheduler commands reach, in words."""
        return "this machine"

    # -- launching ---------------------------------------------------------------------------
    def staging(self, folder: Path) -> Path:
        """Where the files of the job folder ``folder`` are written on this machine."""
        return folder

    def executor(self, sub: Submission) -> Any:
        """submitit's executor that submits the job."""
        raise NotImplementedError

    def launch_environment(self, pythonpath: list[str], workdir: Path | None) -> tuple[dict[str, str], Path | None]:
        """Variables to set, and the folder to be in, while the job is submitted (for a job
        started by this process, which inherits both)."""
        return {}, None

    def manifest_entries(self, folder: Path) -> dict[str, Any]:
        """What the job's manifest records about where the job runs (e.g. the cluster's folder)."""
        return {}

    def submitted(self, local: Path, folder: Path) -> None:
        """After the manifest is written in ``local``: send what the job (in ``folder``) still needs."""

    def put(self, local: Path, folder: Path, code: bool = True, rules: tuple[str, ...] = ()) -> None:
        """Send the files of ``local`` to the job folder ``folder`` where the job runs (its code
        snapshot first, with ``code``; only the files rsync filter ``rules`` select, with ``rules``)."""

    # -- following ---------------------------------------------------------------------------
    def poller(self) -> Poller | None:
        """The shared view of the scheduler's queue (None: the job's process tells its state)."""
        return None

    def state(self, job_id: str, folder: Path, handle: Any) -> tuple[str, str]:
        """(state, reason). ``ENDED``: the job is no longer running; its files tell how it ended.
        ``handle``: submitit's job object where this process submitted the job, else None."""
        raise NotImplementedError

    def settle(self, job_id: str, folder: Path, handle: Any) -> None:
        """After every task wrote its result: wait for what still runs to exit (briefly)."""

    def cancel(self, job_id: str, folder: Path, handle: Any) -> None:
        raise NotImplementedError

    # -- interactive work on compute nodes ---------------------------------------------------
    def terminal(self, argv: list[str]) -> list[str]:
        """``argv`` run with a terminal where the scheduler's commands run (salloc, srun --pty)."""
        raise self.no_allocation("an interactive shell")

    def tunnel(self, forward: str) -> list[str]:
        """The ssh command that forwards ``forward`` (``LOCAL:HOST:PORT``) to a compute node."""
        raise self.no_allocation("a tunnel to a compute node")

    def no_allocation(self, what: str) -> RequestError:
        """The error for ``what`` (an interactive shell, a Jupyter server) on a site without a
        scheduler: it needs an allocation on compute nodes."""
        site = self.profile.name if self.profile is not None else "?"
        return RequestError([Problem("site", site, f"a Slurm site ({what} needs an allocation on compute nodes)",
                                     "use --site slurm, or a site of `aifsdk sites` with executor slurm")], site=site)

    def cluster_folder(self, record: Mapping[str, Any]) -> Path:
        """The job folder as the job sees it."""
        return Path(record["folder"])

    def code_folder(self, record: Mapping[str, Any]) -> str | None:
        """The job's code copy as the job saw it (None: the job ran without a snapshot)."""
        return (record.get("snapshot") or {}).get("code")

    def pull(self, records: list[Mapping[str, Any]], force: bool = False) -> None:
        """Bring the jobs' new result and log files to their folders on this machine."""
