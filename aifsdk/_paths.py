"""Where aifsdk keeps things: job folders, the job registry, caches.

``AIFSDK_HOME`` (default ``~/.aifsdk``) holds the registry (``registry/<site>/<job id>.json``,
each pointing at a job folder) and caches. Job folders live under the site's ``job_root`` and are
unique per submission, created private to the user (0700), never reused.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
from pathlib import Path

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


def make_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700; refuse to reuse an existing folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=False)
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


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


def register(site: str, job_id: str, folder: Path) -> None:
    """Point registry/<site>/<job id> at the job folder (a symlink: one atomic call)."""
    path = registry_file(site, job_id)
    try:
        path.symlink_to(folder)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(folder)
    except FileExistsError:  # a reused local pid: the newest job takes the name, the old folder stays
        tmp = path.with_name(f".{job_id}.{os.getpid()}")
        tmp.symlink_to(folder)
        tmp.replace(path)


def lookup(job_id: str) -> list[Path]:
    """Folders registered under ``job_id`` on any site, newest first."""
    root = aifsdk_home() / "registry"
    hits = []
    for path in root.glob(f"*/{glob_escape(job_id)}"):
        try:
            hits.append((path.lstat().st_mtime, Path(os.readlink(path))))
        except OSError:
            continue
    return [folder for _, folder in sorted(hits, reverse=True)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
