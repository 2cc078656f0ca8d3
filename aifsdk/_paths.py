"""Where aifsdk keeps things: job folders, the job registry, caches.

``AIFSDK_HOME`` (default ``~/.aifsdk``) holds the registry (``registry/<site>/<job id>``, each a
link to a job folder) and caches. Job folders live under the site's ``job_root`` and are unique
per submission, created private to the user (0700), never reused.

aifsdk runs what it finds in these folders (a pickled payload, a code snapshot), so it trusts a
folder only when it is the user's own and nobody else can write to it: each is created 0700 whatever
the umask, and checked before use (:func:`ensure_private`). A job root that is shared (a project's
scratch, a 1777 folder) gets a folder per user under it (:func:`user_root`), checked the same way.
A registry link is followed only to a folder the user owns.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pwd
import re
import secrets
import stat
from pathlib import Path

from ._errors import StorageError

JOB_FILE = "aifsdk-job.json"
JOB_SCHEMA = 2  # 1: first release; 2: + launcher, pythonpath, workdir, module_lines, site_env, payload_sha256, environment


def aifsdk_home() -> Path:
    return Path(os.environ.get("AIFSDK_HOME") or Path.home() / ".aifsdk").expanduser()


def expand_root(template: str) -> Path:
    """Expand ``~`` and ``$VARS`` in a site's job_root; ``$AIFSDK_JOB_ROOT`` wins if set."""
    if os.environ.get("AIFSDK_JOB_ROOT"):
        template = os.environ["AIFSDK_JOB_ROOT"]
    expanded = os.path.expandvars(os.path.expanduser(template))
    if "$" in expanded:
        raise ValueError(f"job_root {template!r} names an environment variable that is not set ({expanded!r})")
    return Path(expanded).absolute()


def new_folder_name(name: str) -> str:
    """A fresh, sortable, collision-free folder name: 20261123-224501-train-3f9a1c."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:40] or "job"
    return f"{stamp}-{slug}-{secrets.token_hex(3)}"


def user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def _not_private(st: os.stat_result) -> str | None:
    """Why a folder with this stat may not be trusted, or None."""
    if st.st_uid != os.getuid():
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = f"uid {st.st_uid}"
        return not_private(owner, user_name(), st.st_mode)
    return not_private(None, None, st.st_mode)


def not_private(owner: str | None, me: str | None, mode: int) -> str | None:
    """Why a folder may not be trusted, or None: ``owner`` is someone else than ``me`` (None: the
    user owns it), or ``mode`` lets its group or others write to it."""
    if owner is not None:
        return f"belongs to {owner}, not to you ({me})"
    if mode & 0o022:
        return f"may be written by {'others' if mode & 0o002 else 'its group'} (mode {stat.S_IMODE(mode):04o})"
    return None


def untrusted_folder(what: str, path: Path | str, why: str, owned: bool, chmod: str | None = None) -> StorageError:
    """The StorageError for a folder aifsdk will not use: ``why`` (see :func:`not_private`), and the
    fix (``chmod``: the command that makes a folder of the user's own private)."""
    if not owned:
        fix = ("if it is not meant to be there, ask its owner or an admin to remove it; or point aifsdk at a folder "
               "of your own (AIFSDK_HOME, the site's job_root, AIFSDK_JOB_ROOT)")
    else:
        fix = f"make it private: {chmod or 'chmod 700 ' + _quote(Path(path))}"
    return StorageError(f"{what} {path} {why}, and aifsdk runs code it finds there, so it only trusts folders that are "
                        f"yours and that nobody else can write to. Fix: {fix}", path=path)


def user_root(root: Path) -> Path:
    """Where this user's job folders and snapshot store go under a job root: the root itself when
    it is the user's own and only they may write to it (or it does not exist yet), else a folder
    named after the user under it (a project's shared scratch, a 1777 folder). Writes nothing."""
    try:
        st = os.stat(root)
    except OSError:
        return root
    return root if _not_private(st) is None else root / user_name()


def ensure_private(path: Path, what: str) -> Path:
    """Create ``path`` (and its missing parents) mode 0700 whatever the umask, or check that an
    existing one is the user's own and not writable by group or others; else StorageError naming
    the path and the fix. Returns ``path``."""
    missing = []
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
            os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            pass  # made meanwhile (by another submit): checked below
        except OSError as exc:
            raise storage_error(exc, folder, f"creating {what}") from None
    try:
        st = os.stat(path)
    except OSError as exc:
        raise storage_error(exc, path, f"reading {what}") from None
    why = _not_private(st)
    if why is not None:
        raise untrusted_folder(what, path, why, owned=st.st_uid == os.getuid())
    return path


def trusted(folder: Path) -> bool:
    """True when ``folder`` is the user's own and not writable by others (a registry link is
    followed, a job's files read, only then)."""
    try:
        return _not_private(os.stat(folder)) is None
    except OSError:
        return False


def storage_error(exc: OSError, path: Path, doing: str) -> StorageError:
    """An OSError while writing aifsdk's files, as a StorageError naming the path, the free space
    (for a full disk) and the fix."""
    import errno
    import shutil

    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = f"{shutil.disk_usage(probe).free / 2**20:.1f} MB free"
        except OSError:
            free = "free space unknown"
        fix = (f"free space on the filesystem of {probe} ({free}; `du -sh {_quote(probe)}/*` shows what uses it, and old "
               "job folders can go), or point the site's job_root / AIFSDK_JOB_ROOT at a larger filesystem")
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (f"make it writable for you (`ls -ld {_quote(path)}` shows its owner and mode), or point the site's job_root / "
               "AIFSDK_JOB_ROOT / AIFSDK_HOME at a folder of your own")
    else:
        fix = "check the filesystem, then submit again"
    return StorageError(f"{doing} {path} failed: {reason}. Fix: {fix}", path=path)


def _quote(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def make_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700 under a parent that is checked by :func:`ensure_private` (or is
    sticky, like /tmp: nobody else may rename or replace what is in it); refuse to reuse a folder."""
    try:
        sticky = bool(os.stat(path.parent).st_mode & stat.S_ISVTX)
    except OSError:
        sticky = False
    if not sticky:
        ensure_private(path.parent, "the job folder's parent")
    try:
        path.mkdir(mode=0o700, exist_ok=False)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    except FileExistsError:
        raise
    except OSError as exc:
        raise storage_error(exc, path, "creating the job folder") from None


def write_cache(path: Path, value: object) -> None:
    """Write a JSON cache file atomically (readers see the old or the new one); a read-only
    home only means the value is computed again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)
    except OSError:
        pass


def registry_file(site: str, job_id: str) -> Path:
    return aifsdk_home() / "registry" / site / job_id


def private_home() -> Path:
    """AIFSDK_HOME, created 0700 or checked (see :func:`ensure_private`)."""
    return ensure_private(aifsdk_home(), "AIFSDK_HOME")


def registry_folder(site: str) -> Path:
    """registry/<site>, created 0700 or checked with AIFSDK_HOME (see :func:`ensure_private`);
    submit checks it before anything is queued, and again when it registers the job."""
    private_home()
    return ensure_private(aifsdk_home() / "registry" / site, "the job registry")


def register(site: str, job_id: str, folder: Path) -> None:
    """Point registry/<site>/<job id> at the job folder (a symlink: one atomic call)."""
    path = registry_folder(site) / job_id
    try:
        path.symlink_to(folder)
    except FileExistsError:  # a reused local pid: the newest job takes the name, the old folder stays
        tmp = path.with_name(f".{job_id}.{os.getpid()}")
        tmp.symlink_to(folder)
        tmp.replace(path)


def registry_links(root: Path, pattern: str) -> list[tuple[float, Path]]:
    """(link time, folder) of the registry links under ``root`` matching ``pattern``, following only
    links to folders the user owns that nobody else can write to (a link to someone else's folder
    would make aifsdk read, and unpickle, their files)."""
    if root.is_dir():
        ensure_private(root, "the job registry")
    hits = []
    for path in root.glob(pattern):
        try:
            if not path.is_symlink():
                continue
            folder = Path(os.readlink(path))
            if trusted(folder):
                hits.append((path.lstat().st_mtime, folder))
        except OSError:
            continue
    return hits


def lookup(job_id: str) -> list[Path]:
    """Folders registered under ``job_id`` on any site, newest first."""
    hits = registry_links(aifsdk_home() / "registry", f"*/{glob_escape(job_id)}")
    return [folder for _, folder in sorted(hits, reverse=True)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
