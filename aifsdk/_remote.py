"""Remote sites: submit from a laptop to a Slurm cluster reached over SSH (a profile's ``ssh:`` block).

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
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import SchedulerError
from ._profile import SiteProfile, load_site
from ._scheduler import Slurm, guarded_command
from ._ssh import SSH

if TYPE_CHECKING:
    from ._job import Job
    from ._plan import Plan
    from ._wait import Poller

PULL_MIN_S = 1.0  # at most one pull of a site's job folders per second, however many jobs wait
_LOCK = threading.Lock()
_CONNECTIONS: dict[tuple[Any, ...], SSH] = {}
_SLURMS: dict[tuple[Any, ...], RemoteSlurm] = {}
_POLLERS: dict[tuple[Any, ...], Poller] = {}
_PULLED: dict[str, float] = {}  # local job folder -> monotonic time of its last pull


def _key(profile: SiteProfile) -> tuple[Any, ...]:
    spec = profile.ssh
    assert spec is not None  # callers check profile.ssh first
    return (profile.name, spec.host, spec.config, tuple(spec.options), spec.python)


def cluster_python(profile: SiteProfile) -> str:
    """The Python the job starts on the cluster."""
    spec = profile.ssh
    return (spec.python if spec and spec.python else None) or profile.python or "python3"


def connection(profile: SiteProfile) -> SSH:
    """The site's one SSH connection in this process."""
    key = _key(profile)
    with _LOCK:
        if key not in _CONNECTIONS:
            spec = profile.ssh
            assert spec is not None
            from dataclasses import replace

            _CONNECTIONS[key] = SSH(replace(spec, python=cluster_python(profile)), probe_setup=tuple(profile.setup))
        return _CONNECTIONS[key]


def job_root(profile: SiteProfile, account: str | None) -> str:
    """The site's job root on the cluster, expanded there (``~``, ``$SCRATCH``, ``$USER`` ...)."""
    spec = profile.ssh
    assert spec is not None
    template = spec.job_root or profile.job_root_for(account)
    if "AIFSDK_JOB_ROOT" in os.environ and not spec.job_root:
        template = profile.job_root_for(account)  # $AIFSDK_JOB_ROOT names a folder here, not there
    return connection(profile).expand(template)


class RemoteSlurm(Slurm):
    """Slurm's commands run on the login node through the site's SSH connection."""

    def __init__(self, ssh: SSH) -> None:
        super().__init__(cache_ttl_s=120.0, cache_dir=None)
        self.ssh = ssh
        self._remote_user: str | None = None

    def run(self, argv: list[str], timeout: float = 60.0) -> str:
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
        self.calls += 1
        return self.ssh.run(guarded_command(command), timeout=timeout, check=False)

    def user(self) -> str:
        if self._remote_user is None:
            self._remote_user = self.ssh.run(["id", "-un"], timeout=60).stdout.strip()
        return self._remote_user


def slurm(profile: SiteProfile) -> RemoteSlurm:
    """The scheduler seam of a remote site (one per process)."""
    key, ssh = _key(profile), connection(profile)
    with _LOCK:
        return _SLURMS.setdefault(key, RemoteSlurm(ssh))


def poller(profile: SiteProfile) -> Poller:
    """One queue view per remote site: one squeue over SSH for all of its jobs at a time."""
    from ._wait import Poller

    key = _key(profile)
    remote = slurm(profile)
    with _LOCK:
        if key not in _POLLERS:
            _POLLERS[key] = Poller(slurm=lambda: remote)
        return _POLLERS[key]


@dataclass
class Stage:
    """A remote job's two folders and how files go between them."""

    profile: SiteProfile
    local: Path  # here: payload, manifest, pulled results and logs
    remote: str  # on the cluster: what the sbatch script names

    @classmethod
    def for_plan(cls, plan: Plan) -> Stage:
        from ._paths import aifsdk_home

        return cls(plan.profile, aifsdk_home() / "remote" / plan.profile.name / plan.folder.name, str(plan.folder))

    @property
    def ssh(self) -> SSH:
        return connection(self.profile)

    def push(self, code: bool = True) -> None:
        """Send the local folder to the cluster: first (``code``) the job's snapshot manifest and the
        packs it reads into the site's store there (rsync sends only those it lacks), then the job's
        own files (snapshot reference, payload, its hash, script)."""
        if code:
            from ._pack import load_manifest, packs_of, read_ref, store_of

            ref = read_ref(self.local)
            if ref is not None:
                store = store_of(self.local, ref)
                manifest = load_manifest(store, ref["digest"])
                wanted = [f"snapshots/{ref['digest']}.json", *(f"packs/{p}" for p in packs_of(manifest))]
                rules = ("--include=snapshots/", "--include=packs/", *(f"--include={w}" for w in wanted), "--exclude=*")
                self.ssh.push(store, os.path.normpath(f"{self.remote}/{ref['store']}"), rules=rules)
        self.ssh.push(self.local, self.remote)

    def record(self) -> dict[str, Any]:
        spec = self.ssh.spec
        return {"host": spec.host, "folder": self.remote, "python": spec.python, "ssh_config": spec.config}


def executor(stage: Stage, plan: Plan) -> Any:
    """submitit's SlurmExecutor whose sbatch runs on the login node, after the folder is pushed."""
    from ._launch import _PlannedSlurmExecutor

    class _RemoteSlurmExecutor(_PlannedSlurmExecutor):
        @classmethod
        def affinity(cls) -> int:
            return 1  # srun is on the cluster, not on this machine

        def _make_submission_command(self, submission_file_path: Path) -> list[str]:
            stage.push()  # the payload, its hash and this script, before sbatch reads them
            # Not retried on a dropped connection: sbatch may have queued the job already.
            return stage.ssh.argv(shlex.join(["sbatch", f"{stage.remote}/{Path(submission_file_path).name}"]))

    ex = _RemoteSlurmExecutor(stage.local, plan.script, plan.python)
    r = plan.resources
    ex.parameters.update(nodes=r.nodes, ntasks_per_node=r.tasks_per_node, time=plan.time_minutes)
    ex._throttling = 0.0
    return ex


# -- the job side --------------------------------------------------------------------------------
def profile_of(job: Job) -> SiteProfile:
    profile = load_site(job.site)
    if profile.ssh is None:
        raise SchedulerError(f"job {job.job_id} was submitted to site {job.site!r} over SSH, but that profile has no ssh block now; "
                             f"restore it (aifsdk sites show {job.site}) to follow the job")
    return profile


def pull(jobs: list[Job], force: bool = False) -> None:
    """Bring new result and log files of remote jobs back: one rsync per site, at most once a
    second per job folder (unless ``force``). A failed pull is retried on the next call."""
    by_site: dict[str, list[Job]] = defaultdict(list)
    now = time.monotonic()
    for job in jobs:
        if job._remote and (force or now - _PULLED.get(str(job.folder), float("-inf")) >= PULL_MIN_S):
            by_site[job.site].append(job)
    for site_jobs in by_site.values():
        profile = profile_of(site_jobs[0])
        parents = {str(Path(j._remote["folder"]).parent) for j in site_jobs}
        if len(parents) != 1:
            for j in site_jobs:
                connection(profile).pull(j._remote["folder"], j.folder, exclude=("code/",))
        else:
            names = [Path(j._remote["folder"]).name for j in site_jobs]
            rules = tuple(f"--include={n}/***" for n in names)
            connection(profile).pull_filtered(parents.pop(), site_jobs[0].folder.parent, ("--exclude=*/code/", *rules, "--exclude=*"))
        for j in site_jobs:
            _PULLED[str(j.folder)] = time.monotonic()
