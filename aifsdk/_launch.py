"""The seam around submitit: turn a Plan into a submitted job.

Local and debug sites use submitit's LocalExecutor and DebugExecutor. Slurm sites use submitit's
SlurmExecutor for pickling, sbatch and the job runner, with the sbatch text replaced by the
plan's script, so that ``plan.script`` is byte for byte what sbatch receives.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import getpass
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from submitit.core.utils import FailedJobError, FailedSubmissionError

from ._backends import Submission, backend_for
from ._errors import AifsdkError, Problem, RequestError, SchedulerError, StorageError
from ._paths import JOB_FILE, JOB_SCHEMA, make_private_dir, register, registry_folder, storage_error
from ._planner import CheckedPlan, environment_lines, signal_delay
from ._profile import user_config_dir
from ._run import PAYLOAD_HASH_FILE, sha256_file


def refuse_wrong_cluster(plan: CheckedPlan) -> None:
    """Before anything is written: a Slurm site must be this machine's cluster or reached over ssh."""
    from ._resolve import wrong_cluster

    why = wrong_cluster(plan.profile)
    if why is None:
        return
    profile = plan.profile
    copy = user_config_dir() / "site" / f"{profile.name}.yaml"
    login = next((n.split(":", 1)[1].strip() for n in profile.notes if n.lower().startswith("login:")), None)
    raise RequestError([Problem(
        "site", plan.site, f"a site this machine submits to: its own Slurm, or ssh to its login node ({why})",
        f"run aifsdk on a login node of {profile.title or profile.name}" + (f" ({login})" if login else "")
        + f", or add an ssh block (ssh: {{host: <your ssh host for the site>}}) to your copy of the profile, {copy}, "
        "so that aifsdk submits there over ssh; `aifsdk doctor --site " + profile.name + "` checks either way",
    )], site=plan.site)


def launch(plan: CheckedPlan) -> tuple[dict[str, Any], Any]:
    """Create the job folder, submit, and record the job: its manifest and submitit's job object.
    Errors name the folder kept."""
    refuse_wrong_cluster(plan)
    backend = backend_for(plan.profile)
    local = backend.staging(plan.folder)  # over SSH: staged here, pushed before sbatch, run there
    if not backend.in_process:
        registry_folder(plan.site)  # checked before anything is queued (and again at register)
    make_job_folder(plan, local)
    try:
        snap = _take_snapshot(plan, local)
        executor = backend.executor(submission(plan, local))
        target = plan.callable
        if plan.kind == "function":
            from ._distributed import RankedCall

            target = RankedCall.wrap(target)  # exports RANK, WORLD_SIZE, MASTER_ADDR, ... in each task
        try:
            sub_job = executor.submit(target, *plan.args)
        except (FailedJobError, FailedSubmissionError, subprocess.CalledProcessError) as exc:
            raise SchedulerError(
                f"sbatch refused the job: {str(exc).strip()}\n"
                f"Nothing was queued. The submitted script is kept in {plan.folder}; `aifsdk plan` shows it again."
            ) from None
        except Exception as exc:
            if _raised_while_pickling(exc):
                raise RequestError(
                    [Problem("target", plan.target, "a picklable callable and arguments (cloudpickle)", f"{type(exc).__name__}: {exc}; pass plain data, and build locks, files and sockets inside the job")],
                    site=plan.site,
                ) from None
            raise
    except SchedulerError:
        raise  # the folder is kept: it holds the script sbatch refused
    except BaseException as exc:  # nothing was queued: the half-made folder goes (a full disk, a refused file, Ctrl-C)
        shutil.rmtree(local, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, AifsdkError):
            raise storage_error(exc, Path(exc.filename or local), "writing the job folder") from None
        raise
    job_id = str(sub_job.job_id)
    record = job_record(plan, job_id, snap, folder=local)
    record.update(backend.manifest_entries(plan.folder))
    # The folder is new and private, and the registry points at it only after this write.
    with cancelled_unless_recorded(backend, job_id, local, sub_job):
        write_manifest(local, record)
        backend.submitted(local, plan.folder)  # over SSH: the payload under its job id, and the manifest
        if not backend.in_process:
            register(plan.site, job_id, local)
    return record, sub_job


def write_manifest(folder: Path, record: dict[str, Any]) -> None:
    """The job's manifest (aifsdk-job.json) in its folder; an OSError names the file."""
    path = folder / JOB_FILE
    try:
        path.write_text(json.dumps(record, default=str))
    except OSError as exc:
        exc.filename = str(path)
        raise


@contextlib.contextmanager
def cancelled_unless_recorded(backend: Any, job_id: str, folder: Path, handle: Any = None) -> Iterator[None]:
    """Around what records a job the scheduler has already queued (its manifest, its registry link,
    over SSH the files it runs from): if that fails, the job is cancelled, since no aifsdk command
    could follow it or get its result, and the error says so, naming the path that failed. The
    job folder is kept (it holds the script and the payload)."""
    try:
        yield
    except (OSError, AifsdkError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, AifsdkError):
            exc = storage_error(exc, Path(exc.filename or folder), f"job {job_id} was queued, but writing")
        try:
            backend.cancel(job_id, folder, handle)
            told = (f"\nThe job was cancelled ({'scancel ' + job_id if backend.scheduled else 'its process stopped'}): "
                    f"aifsdk could not have followed it or returned its result. Its folder {folder} is kept; "
                    "once the cause is fixed, submit again")
        except (OSError, AifsdkError) as again:
            told = (f"\nCancelling the job failed too ({again}): it may still run without aifsdk following it; "
                    + (f"cancel it with `scancel {job_id}`" if backend.scheduled else f"stop process {job_id}"))
        if isinstance(exc, StorageError):
            raise StorageError(f"{exc}{told}", path=exc.path) from None
        raise SchedulerError(f"job {job_id} was queued, but recording it failed: {exc}{told}") from None


def submission(plan: CheckedPlan, local: Path) -> Submission:
    """What the backend's submitit executor needs of ``plan``, written in ``local`` here."""
    r, minutes = plan.resources, plan.time_minutes
    env, cwd = _submission_environment(plan)
    return Submission(
        folder=local, job_folder=plan.folder, script=plan.script, python=plan.python, nodes=r.nodes or 1,
        tasks_per_node=r.tasks_per_node or 1, gpus_per_node=r.gpus_per_node or 0, minutes=minutes,
        signal_delay_s=signal_delay(plan.profile, minutes),
        shell_setup=(*environment_lines(plan.profile, plan.pythonpath), *plan.profile.setup), env=env, cwd=cwd,
    )


def job_record(plan: CheckedPlan, job_id: str, snap: Any, folder: Path | None = None) -> dict[str, Any]:
    """The manifest (aifsdk-job.json) of a submitted job (also used by aifsdk.map for arrays).
    ``folder``: where the job's files are on this machine (a remote job's local copy)."""
    folder = plan.folder if folder is None else folder
    return {
        "schema": JOB_SCHEMA,
        "job_id": job_id,
        "site": plan.site,
        "executor": plan.profile.executor,
        "kind": plan.kind,
        "name": plan.name,
        "target": plan.target,
        "folder": str(folder),
        "tasks": plan.num_tasks,
        "resources": plan.resources.as_dict(),
        "cost": plan.cost.__dict__,
        "script_sha256": hashlib.sha256(plan.script.encode()).hexdigest(),
        "snapshot": None if snap is None else {
            "root": str(snap.root), "code": str(snap.tree), "sha256": snap.digest, "files": snap.files, "bytes": snap.bytes,
            "new_bytes_stored": snap.copied_bytes, "git_commit": snap.git_commit, "git_uncommitted_diff_sha256": snap.git_dirty_sha256,
        },
        "submitted_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "user": getpass.getuser(),
        "host": os.uname().nodename,
        "launcher": plan.launcher,
        "pythonpath": plan.pythonpath,
        "workdir": str(plan.workdir) if plan.workdir else None,
        "module_lines": list(plan.profile.setup),
        "container": None if plan.container is None else {"image": plan.container.image, "runtime": plan.container.runtime,
                                                          "sha256": _image_hash(plan.container.image)},
        "site_env": dict(plan.profile.env),
        "payload_sha256": _read_payload_hash(folder),
        "environment": _environment(),
    }


def _submission_environment(plan: CheckedPlan) -> tuple[dict[str, str] | None, Path | None]:
    """The environment and the working folder of what submits the job (sbatch, or the local
    controller), given to that process alone (None: this process's). A local job also gets the
    site's variables and PYTHONPATH (no shell, so that cancel reaches it) and starts in the copy of
    the working folder."""
    updates, cwd = backend_for(plan.profile).launch_environment(plan.pythonpath, plan.workdir)
    return submission_environment(updates), cwd


def submission_environment(updates: dict[str, str] | None = None) -> dict[str, str] | None:
    """The whole environment of what submits a job (sbatch, a local controller), for that process
    alone: inside a running job, the outer job's SLURM_*, rank and launcher variables are removed
    (they break gres requests and torch.distributed in the inner job), SLURM_CONF is kept; then
    ``updates``. None: nothing differs from this process's environment."""
    from ._distributed import clean_environment

    updates = updates or {}
    nested = "SLURM_JOB_ID" in os.environ or "SUBMITIT_LOCAL_JOB_ID" in os.environ
    if not updates and not nested:
        return None
    env = clean_environment(dict(os.environ)) if nested else dict(os.environ)
    env.update(updates)
    return env


def _image_hash(image: str) -> str | None:
    """sha256 of a local image file, cached by size and mtime (images are GBs; hash once)."""
    path = Path(image)
    if not path.is_file():
        return None
    from ._paths import aifsdk_home

    st = path.stat()
    cache = aifsdk_home() / "cache" / "image-hashes.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    if key not in known:
        known[key] = sha256_file(path)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return known[key]


def _read_payload_hash(folder: Path) -> str | None:
    try:
        return (folder / PAYLOAD_HASH_FILE).read_text().split()[0]
    except (OSError, IndexError):
        return None  # debug site: nothing is pickled


@functools.lru_cache(maxsize=1)
def _environment() -> dict[str, Any]:
    """Python, platform and installed packages of the submitting environment (once per process)."""
    import platform
    import sys

    from ._version import __version__

    return {
        "aifsdk": __version__, "python": platform.python_version(), "executable": sys.executable,
        "implementation": platform.python_implementation(), "platform": platform.platform(), "machine": platform.machine(),
        "packages": _installed_packages(), "conda_prefix": os.environ.get("CONDA_PREFIX"), "conda_env": os.environ.get("CONDA_DEFAULT_ENV"),
    }


def _installed_packages() -> list[str]:
    """``name==version`` of every installed distribution. Reading them all takes ~0.1 s, so the list
    is cached in ``<AIFSDK_HOME>/cache``, keyed by the interpreter and by every ``*.dist-info`` /
    ``*.egg-info`` entry on sys.path with its mtime: an install, upgrade or removal changes the key."""
    import importlib.metadata
    import sys

    from ._paths import aifsdk_home, write_cache

    seen = [sys.executable, sys.version]
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as found:
                seen += [f"{entry}/{e.name} {e.stat().st_mtime_ns}" for e in found if e.name.endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:  # a zip on sys.path
            seen.append(f"{entry} {os.stat(entry).st_mtime_ns}")
        except OSError:
            continue
    cache = aifsdk_home() / "cache" / f"packages-{hashlib.sha256(chr(10).join(seen).encode()).hexdigest()[:32]}.json"
    try:
        return list(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    packages = sorted({f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions() if d.metadata["Name"]},
                      key=str.lower)
    write_cache(cache, packages)
    return packages


def store_of(plan: CheckedPlan, folder: Path) -> Path:
    """The snapshot store of a job folder: ``.snapshots`` in the user's job root (a remote job's
    local copy: in ``<AIFSDK_HOME>/remote``); for a folder outside it, next to the folder, in the
    user's own folder where that parent is shared."""
    from ._paths import expand_root, user_root

    if folder != plan.folder:  # a remote job's local copy: the store of remote sites, here
        return folder.parent.parent / ".snapshots"
    account = plan.resources.account if isinstance(plan.resources.account, str) else None
    for template in {plan.profile.job_root_for(account), plan.profile.job_root}:
        try:
            root = user_root(expand_root(template))
        except ValueError:
            continue
        if root in folder.parents:
            return root / ".snapshots"
    parent = user_root(folder.parent)
    return (parent if parent in folder.parents else folder.parent) / ".snapshots"


def make_job_folder(plan: CheckedPlan, folder: Path) -> None:
    """Create the job folder 0700, after checking (or creating 0700) the folders aifsdk trusts
    around it: the user's job root, which holds the snapshot store, and the site's folder in it."""
    from ._paths import ensure_private

    root = store_of(plan, folder).parent
    ensure_private(root, "the job root")
    if folder.parent != root and root in folder.parents:
        ensure_private(folder.parent, "the job root's site folder")
        remove_unsubmitted(folder.parent)
    make_private_dir(folder)


def remove_unsubmitted(site_folder: Path, age_s: float = 3600.0, every_s: float = 86400.0) -> list[Path]:
    """Delete job folders that a killed submit left half-made, at most once a day per site folder:
    the user's own, an hour old, with neither a manifest nor a submitted payload (nothing was ever
    queued from them). A folder with a payload but no manifest is kept: its job may be running."""
    import time

    stamp = site_folder / ".cleaned"
    now = time.time()
    try:
        if now - stamp.stat().st_mtime < every_s:
            return []
    except FileNotFoundError:
        pass
    except OSError:
        return []
    gone = []
    uid = os.getuid()
    with contextlib.suppress(OSError):
        stamp.touch()
        for entry in os.scandir(site_folder):
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if not entry.is_dir(follow_symlinks=False) or st.st_uid != uid or now - st.st_mtime < age_s:
                    continue
                names = os.listdir(entry.path)
                if JOB_FILE in names or any(n.endswith(("_submitted.pkl", ".pkl.sha256")) or n.startswith(".item-") for n in names):
                    continue
                shutil.rmtree(entry.path)
                gone.append(Path(entry.path))
    return gone


def _take_snapshot(plan: CheckedPlan, folder: Path | None = None) -> Any:
    """Store the planned files (a pack of what is new to the store) and point <folder> at them;
    the job extracts them into <folder>/code when it starts (a debug job, here and now)."""
    if plan.snapshot is None:
        return None
    folder = plan.folder if folder is None else folder
    from ._snapshot import take

    store = store_of(plan, folder)
    workdir = folder / "code" / plan.workdir.relative_to(plan.folder / "code") if plan.workdir else None
    snap = take(plan.snapshot.root, store, plan.snapshot.files, folder, workdir, tuple(plan.snapshot.options.allow))
    if backend_for(plan.profile).in_process:  # runs in this process, without the job-side start
        from ._pack import materialise

        materialise(folder)
    return snap


def _raised_while_pickling(exc: BaseException) -> bool:
    """True when the exception came out of (cloud)pickle while submitit saved the target."""
    if isinstance(exc, RuntimeError) and "through pickle" in str(exc):  # submitit's size guard
        return True
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if "cloudpickle" in filename or filename.endswith("pickle.py"):
            return True
        tb = tb.tb_next
    return isinstance(exc, TypeError) and "pickle" in str(exc)
