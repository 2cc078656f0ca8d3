"""Slurm over SSH: submit from a laptop to a cluster reached through a profile's ``ssh:`` block.

A remote job's folder exists twice. On the cluster, under the site's job root there (expanded by
the login node's shell), it is the folder the sbatch script names and the job writes to. Here,
under ``<AIFSDK_HOME>/remote/<site>/``, submitit writes the payload and aifsdk keeps the manifest;
results and logs are pulled back into it. The registry points at the local copy, so
``Job.attach``, ``aifsdk status``/``logs``/``wait`` work from any process, as for other sites.

Copies go through rsync over the site's one SSH connection (see :mod:`aifsdk._ssh`). The job's
code snapshot lives in a store here (``<AIFSDK_HOME>/remote/.snapshots``, see :mod:`aifsdk._pack`)
and its manifest and packs are pushed to the same place relative to the job folder there; rsync
skips the packs the cluster already holds, so an unchanged tree sends one small manifest at most.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._errors import Problem, SchedulerError
from .._paths import aifsdk_home
from .._profile import SiteProfile
from .._scheduler import Slurm, guarded_command
from .._ssh import SSH
from .base import Submission
from .poller import Poller
from .slurm import PlannedSlurmExecutor

PULL_MIN_S = 1.0  # at most one pull of a site's job folders per second, however many jobs wait
_LOCK = threading.Lock()
_TRANSPORTS: dict[tuple[Any, ...], SSHTransport] = {}
_PULLED: dict[str, float] = {}  # local job folder -> monotonic time of its last pull


class ClusterSlurm(Slurm):
    """Slurm's commands run on the login node through the site's SSH connection."""

    def __init__(self, ssh: SSH) -> None:
        super().__init__(cache_ttl_s=120.0, cache_dir=None)
        self.ssh = ssh
        self._cluster_user: str | None = None

    def run(self, argv: list[str], timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
        """``env`` is not sent: the command runs in the login node's own environment."""
        if "-u" in argv and argv[0] in ("squeue", "sacct"):  # the cluster account, not the laptop's user name
            argv = list(argv)
            argv[argv.index("-u") + 1] = self.user()
        self.calls += 1
        self.counts[argv[0]] += 1
        proc = self.ssh.run(argv, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise SchedulerError(f"`{shlex.join(argv)}` failed on {self.ssh.spec.host} with exit code {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def site_command(self, command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """A site tool (``commands:`` of the profile) run on the login node."""
        self.calls += 1
        return self.ssh.run(guarded_command(command), timeout=timeout, check=False)

    def user(self) -> str:
        if self._cluster_user is None:
            self._cluster_user = self.ssh.run(["id", "-un"], timeout=60).stdout.strip()
        return self._cluster_user


def cluster_python(profile: SiteProfile) -> str:
    """The Python the job starts on the cluster."""
    spec = profile.ssh
    return (spec.python if spec and spec.python else None) or profile.python or "python3"


class SSHTransport:
    """A site's cluster through its one SSH connection in this process: the same questions as
    :class:`~aifsdk._backends.slurm.HereTransport`, answered on the login node."""

    cluster_paths = True

    def __init__(self, profile: SiteProfile) -> None:
        spec = profile.ssh
        if spec is None:
            raise SchedulerError(f"site {profile.name!r} has no ssh block; it is reached without SSH")
        self.profile = profile
        self.ssh = SSH(replace(spec, python=cluster_python(profile)), probe_setup=tuple(profile.setup))
        self._slurm = ClusterSlurm(self.ssh)
        self._poller = Poller(slurm=lambda: self._slurm)

    @classmethod
    def of(cls, profile: SiteProfile) -> SSHTransport:
        """The site's one transport in this process."""
        spec = profile.ssh
        key = (profile.name, spec.host if spec else None, spec.config if spec else None, tuple(spec.options) if spec else (),
               spec.python if spec else None)
        with _LOCK:
            if key not in _TRANSPORTS:
                _TRANSPORTS[key] = cls(profile)
            return _TRANSPORTS[key]

    # -- the cluster -----------------------------------------------------------------------
    def slurm(self) -> Slurm:
        return self._slurm

    def poller(self) -> Poller:
        """One queue view per site: one squeue over SSH for all of its jobs at a time."""
        return self._poller

    def python(self, profile: SiteProfile) -> str:
        return cluster_python(profile)

    def job_root(self, profile: SiteProfile, account: str | None) -> Path:
        """The site's job root on the cluster, expanded there (``~``, ``$SCRATCH``, ``$USER`` ...);
        where that folder is shared (not the cluster account's own, or writable by others), the
        account's own folder under it, as for a job root here."""
        spec = profile.ssh or self.ssh.spec  # the profile as it is now (the transport outlives an edit of it)
        template = spec.job_root or profile.job_root_for(account)
        if "AIFSDK_JOB_ROOT" in os.environ and not spec.job_root:
            template = profile.job_root_for(account)  # $AIFSDK_JOB_ROOT names a folder here, not there
        return Path(self.ssh.user_root(self.ssh.expand(template)))

    def check_environment(self, kind: str) -> list[Problem]:
        """What is pickled here must unpickle there."""
        return self.ssh.check_environment(kind)

    def where(self) -> str:
        return f"the Slurm cluster of {self.ssh.spec.host} (over SSH)"

    # -- the job's files -----------------------------------------------------------------------
    def staging(self, profile: SiteProfile, folder: Path) -> Path:
        """Here: payload, manifest, pulled results and logs of the job whose folder there is ``folder``."""
        return aifsdk_home() / "remote" / profile.name / folder.name

    def put(self, local: Path, folder: Path, code: bool = True, rules: tuple[str, ...] = ()) -> None:
        """Send the local folder to the cluster: first (``code``) the job's snapshot manifest and the
        packs it reads into the site's store there (rsync sends only those it lacks), then the job's
        own files (snapshot reference, payload, its hash, script). With ``rules`` (rsync filter
        rules): only the files they select."""
        if rules:
            self.ssh.push(local, str(folder), rules=rules)
            return
        if code:
            # The job root there holds the snapshot store the job runs code from, and the site's folder
            # holds the job folders: created 0700 or checked, before anything is sent into them.
            self.ssh.ensure_private([(str(folder.parent.parent), "the job root"), (str(folder.parent), "the job root's site folder")])
            from .._pack import load_manifest, packs_of, read_ref, store_of

            ref = read_ref(local)
            if ref is not None:
                store = store_of(local, ref)
                manifest = load_manifest(store, ref["digest"])
                wanted = [f"snapshots/{ref['digest']}.json", *(f"packs/{p}" for p in packs_of(manifest))]
                rules = ("--include=snapshots/", "--include=packs/", *(f"--include={w}" for w in wanted), "--exclude=*")
                self.ssh.push(store, os.path.normpath(f"{folder}/{ref['store']}"), rules=rules)
        self.ssh.push(local, str(folder))

    def executor(self, sub: Submission) -> PlannedSlurmExecutor:
        """submitit's SlurmExecutor whose sbatch runs on the login node, after the folder is pushed."""
        transport, local, there = self, sub.folder, sub.job_folder

        class _ClusterSlurmExecutor(PlannedSlurmExecutor):
            @classmethod
            def affinity(cls) -> int:
                return 1  # srun is on the cluster, not on this machine

            def _make_submission_command(self, submission_file_path: Path) -> list[str]:
                transport.put(local, there)  # the payload, its hash and this script, before sbatch reads them
                # Not retried on a dropped connection: sbatch may have queued the job already.
                return transport.ssh.argv(shlex.join(["sbatch", f"{there}/{Path(submission_file_path).name}"]))

        return _ClusterSlurmExecutor(sub.folder, sub.script, sub.python)

    def manifest_entries(self, folder: Path) -> dict[str, Any]:
        spec = self.ssh.spec
        return {"remote": {"host": spec.host, "folder": str(folder), "python": spec.python, "ssh_config": spec.config}}

    def cluster_folder(self, record: Mapping[str, Any]) -> Path:
        return Path(record["remote"]["folder"])

    def code_folder(self, record: Mapping[str, Any]) -> str | None:
        """The code copy in the job folder on the cluster."""
        return f"{record['remote']['folder']}/code"

    def terminal(self, argv: list[str]) -> list[str]:
        """``argv`` on the login node, after the ssh block's setup lines, with a terminal."""
        setup = "; ".join(self.ssh.spec.setup)
        there = f"{setup}; {shlex.join(argv)}" if setup else shlex.join(argv)
        return ["ssh", "-t", *self.ssh.options(), self.ssh.spec.host, there]

    def tunnel(self, forward: str) -> list[str]:
        """Forwarding through the login node with the user's own options (config, ProxyJump), not
        aifsdk's connection sharing."""
        options = [o for o in self.ssh.options() if not o.startswith("ControlPath=")]
        cleaned: list[str] = []
        for opt in options:
            if cleaned and cleaned[-1] == "-o" and opt.split("=", 1)[0] in ("ControlMaster", "ControlPersist"):
                cleaned.pop()
                continue
            cleaned.append(opt)
        return ["ssh", "-N", "-L", forward, *cleaned, self.ssh.spec.host]

    def get(self, records: list[Mapping[str, Any]], force: bool = False) -> None:
        """Bring new result and log files of the jobs back: one rsync, at most once a second per
        job folder (unless ``force``). A failed pull is retried on the next call."""
        now = time.monotonic()
        due = [r for r in records if r.get("remote") and (force or now - _PULLED.get(str(r["folder"]), float("-inf")) >= PULL_MIN_S)]
        if not due:
            return
        parents = {str(Path(r["remote"]["folder"]).parent) for r in due}
        if len(parents) != 1:
            for r in due:
                self.ssh.pull(r["remote"]["folder"], Path(r["folder"]), exclude=("code/",))
        else:
            names = [Path(r["remote"]["folder"]).name for r in due]
            rules = tuple(f"--include={n}/***" for n in names)
            self.ssh.pull_filtered(parents.pop(), Path(due[0]["folder"]).parent, ("--exclude=*/code/", *rules, "--exclude=*"))
        for r in due:
            _PULLED[str(r["folder"])] = time.monotonic()
