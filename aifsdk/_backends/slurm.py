"""Slurm sites: submitit's SlurmExecutor for pickling, sbatch and the job runner, with the sbatch
text replaced by the plan's script, so that ``plan.script`` is byte for byte what sbatch receives.

The backend reaches its cluster through a transport with the same questions on this machine
(:class:`HereTransport`: a login node, the local test cluster) and over SSH
(:class:`aifsdk._backends.ssh.SSHTransport`): Slurm's commands, the job's Python and job root,
and the way the job's files go to the cluster and its results come back.
"""

from __future__ import annotations

import getpass
import shlex
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import submitit

from .._errors import Problem, SchedulerError
from .._paths import expand_root, user_root
from .._profile import SiteProfile
from .._scheduler import ClusterInfo, Slurm, default_slurm
from .base import CANCEL_MARK, Backend, Submission, env_argv, mark_cancelled, record_payload_hash
from .poller import Poller, poller


class PlannedSlurmExecutor(submitit.SlurmExecutor):
    """submitit's SlurmExecutor, submitting the plan's script instead of rendering its own."""

    def __init__(self, folder: Path, script: str, python: str, env: dict[str, str] | None = None) -> None:
        super().__init__(folder, python=python)
        self._script = script
        self._env = env

    def _make_submission_file_text(self, command: str, uid: str) -> str:
        return self._script

    def _make_submission_command(self, submission_file_path: Path) -> list[str]:
        return [*env_argv(self._env), "sbatch", str(submission_file_path)]

    def _submit_command(self, command: str) -> Any:
        record_payload_hash(self.folder)
        return super()._submit_command(command)


class Transport(Protocol):
    """How a Slurm backend reaches its cluster."""

    cluster_paths: bool

    def slurm(self) -> Slurm: ...
    def poller(self) -> Poller: ...
    def python(self, profile: SiteProfile) -> str: ...
    def job_root(self, profile: SiteProfile, account: str | None) -> Path: ...
    def check_environment(self, kind: str) -> list[Problem]: ...
    def where(self) -> str: ...
    def staging(self, profile: SiteProfile, folder: Path) -> Path: ...
    def executor(self, sub: Submission) -> PlannedSlurmExecutor: ...
    def manifest_entries(self, folder: Path) -> dict[str, Any]: ...
    def put(self, local: Path, folder: Path, code: bool = True, rules: tuple[str, ...] = ()) -> None: ...
    def get(self, records: list[Mapping[str, Any]], force: bool = False) -> None: ...
    def cluster_folder(self, record: Mapping[str, Any]) -> Path: ...
    def code_folder(self, record: Mapping[str, Any]) -> str | None: ...
    def terminal(self, argv: list[str]) -> list[str]: ...
    def tunnel(self, forward: str) -> list[str]: ...


class HereTransport:
    """The cluster of this machine: Slurm's commands run here, the job's files are already there."""

    cluster_paths = False

    def slurm(self) -> Slurm:
        return default_slurm()

    def poller(self) -> Poller:
        return poller()

    def python(self, profile: SiteProfile) -> str:
        return profile.python or shlex.quote(sys.executable)

    def job_root(self, profile: SiteProfile, account: str | None) -> Path:
        return user_root(expand_root(profile.job_root_for(account)))

    def check_environment(self, kind: str) -> list[Problem]:
        return []

    def where(self) -> str:
        return "this machine's Slurm cluster"

    def staging(self, profile: SiteProfile, folder: Path) -> Path:
        return folder

    def executor(self, sub: Submission) -> PlannedSlurmExecutor:
        return PlannedSlurmExecutor(sub.folder, sub.script, sub.python, env=sub.env)

    def manifest_entries(self, folder: Path) -> dict[str, Any]:
        return {}

    def put(self, local: Path, folder: Path, code: bool = True, rules: tuple[str, ...] = ()) -> None:
        """Nothing to send: the job reads the folder written here."""

    def get(self, records: list[Mapping[str, Any]], force: bool = False) -> None:
        """Nothing to fetch: the job writes to the folder read here."""

    def cluster_folder(self, record: Mapping[str, Any]) -> Path:
        return Path(record["folder"])

    def code_folder(self, record: Mapping[str, Any]) -> str | None:
        return (record.get("snapshot") or {}).get("code")

    def terminal(self, argv: list[str]) -> list[str]:
        return argv

    def tunnel(self, forward: str) -> list[str]:
        return ["ssh", "-N", "-L", forward, f"{getpass.getuser()}@{socket.gethostname()}"]


HERE = HereTransport()


class SlurmBackend(Backend):
    """A Slurm cluster, reached through ``transport``."""

    scheduled = True
    arrays = True

    def __init__(self, profile: SiteProfile | None, transport: Transport = HERE) -> None:
        super().__init__(profile)
        self.transport = transport
        self.cluster_paths = transport.cluster_paths
        self.arrays = transport is HERE  # over SSH: one job per item, for now

    def python(self) -> str:
        assert self.profile is not None
        return self.transport.python(self.profile)

    def job_root(self, account: str | None) -> Path:
        assert self.profile is not None
        return self.transport.job_root(self.profile, account)

    def slurm(self) -> Slurm:
        return self.transport.slurm()

    def cluster_info(self) -> ClusterInfo | None:
        if self.profile is not None and not self.profile.discover:
            return None
        return self.slurm().cluster_info()

    def check_environment(self, kind: str) -> list[Problem]:
        return self.transport.check_environment(kind)

    def where(self) -> str:
        return self.transport.where()

    def staging(self, folder: Path) -> Path:
        assert self.profile is not None
        return self.transport.staging(self.profile, folder)

    def executor(self, sub: Submission) -> Any:
        try:
            ex = self.transport.executor(sub)
        except RuntimeError:  # submitit: 'Could not detect "srun"'
            site = self.profile.name if self.profile else "slurm"
            raise SchedulerError(
                f"site {site!r} submits with Slurm, but srun/sbatch are not on this machine's PATH; "
                "submit from a login node, or start the local test cluster: tests/cluster/slurm-cluster up"
            ) from None
        # Only what submitit itself reads (task count; time limit for requeue countdowns). Set directly:
        # update_parameters would render and discard a whole sbatch string of its own to check them.
        ex.parameters.update(nodes=sub.nodes, ntasks_per_node=sub.tasks_per_node, time=sub.minutes)
        ex._throttling = 0.0  # one submission per executor: no need for submitit's 0.2 s spacing
        return ex

    def manifest_entries(self, folder: Path) -> dict[str, Any]:
        return self.transport.manifest_entries(folder)

    def submitted(self, local: Path, folder: Path) -> None:
        self.transport.put(local, folder, code=False)

    def put(self, local: Path, folder: Path, code: bool = True, rules: tuple[str, ...] = ()) -> None:
        self.transport.put(local, folder, code, rules)

    def poller(self) -> Poller:
        return self.transport.poller()

    def state(self, job_id: str, folder: Path, handle: Any, max_age: float | None = None) -> tuple[str, str]:
        shared = self.poller()
        states = shared.states([job_id]) if max_age is None else shared.states([job_id], max_age=max_age)
        return states[job_id]

    def cancel(self, job_id: str, folder: Path, handle: Any) -> None:
        mark_cancelled(folder / f"{job_id}.{CANCEL_MARK}")  # the state, where accounting is off
        self.slurm().cancel(job_id)

    def pull(self, records: list[Mapping[str, Any]], force: bool = False) -> None:
        self.transport.get(records, force)

    def cluster_folder(self, record: Mapping[str, Any]) -> Path:
        return self.transport.cluster_folder(record)

    def code_folder(self, record: Mapping[str, Any]) -> str | None:
        return self.transport.code_folder(record)

    def terminal(self, argv: list[str]) -> list[str]:
        """``argv`` run with a terminal where Slurm's commands run (salloc, srun --pty)."""
        return self.transport.terminal(argv)

    def tunnel(self, forward: str) -> list[str]:
        """The ssh command that forwards ``forward`` (``LOCAL:HOST:PORT``) to a compute node."""
        return self.transport.tunnel(forward)
