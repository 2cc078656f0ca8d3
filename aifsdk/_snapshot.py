"""Code snapshots: the job runs the code as it was at submit time, not as it is when it starts.

The files are chosen like git does (tracked plus untracked-but-not-ignored files in a work tree;
elsewhere every file minus ignore patterns), plus the patterns of an ``.aifsdkignore`` file.
They are stored content-addressed under ``<job_root>/.snapshots/objects/<sha256>`` (identical
files once, across all jobs) and each job gets ``<job folder>/code/``, hard links into that store:
an unchanged file is never copied again. Two guards run at plan time, before anything is
written: a size guard (the biggest files and how to exclude them) and a secret guard (file names
and the pattern that matched).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ._errors import Problem

DEFAULT_MAX_MB = 300.0
LARGE_FILE_MB = 50.0
DEFAULT_IGNORES = (
    ".git/", "__pycache__/", "*.pyc", ".venv/", "venv/", ".tox/", ".mypy_cache/", ".pytest_cache/", ".ruff_cache/",
    "node_modules/", ".ipynb_checkpoints/", "*.egg-info/", "build/", "dist/", ".benchmarks/", "outputs/", "multirun/",
)
DATA_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".npy", ".npz", ".h5", ".hdf5", ".nc", ".tif", ".tiff",
                 ".nii", ".nii.gz", ".dcm", ".zarr", ".parquet", ".tar", ".tar.gz", ".zip", ".mp4", ".onnx")

SECRET_NAMES = {
    ".env": "a dotenv file", ".netrc": "a .netrc credentials file", ".pgpass": "a PostgreSQL password file",
    "id_rsa": "an SSH private key", "id_ed25519": "an SSH private key", "id_ecdsa": "an SSH private key", "id_dsa": "an SSH private key",
    "credentials": "a cloud credentials file", ".git-credentials": "git credentials", ".npmrc": "a registry token file",
    ".pypirc": "a package-index credentials file", ".dockercfg": "a registry credentials file",
}
SECRET_PATH_PATTERNS = {
    r"(^|/)\.ssh/": "an .ssh directory", r"(^|/)\.aws/credentials$": "AWS credentials", r"(^|/)\.docker/config\.json$": "Docker registry credentials",
    r"(^|/)\.env\.[^/]+$": "a dotenv file", r"(^|/)\.kube/config$": "a Kubernetes config", r"\.(pem|key|p12|pfx)$": "a private key or certificate bundle",
    r"(^|/)gcloud/.*credentials.*\.json$": "Google Cloud credentials", r"(^|/)\.huggingface/token$": "a Hugging Face token",
}
SECRET_TEXT_PATTERNS = {
    r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY( BLOCK)?-----": "a private key",
    r"\bAKIA[0-9A-Z]{16}\b": "an AWS access key id",
    r"\bhf_[A-Za-z0-9]{30,}\b": "a Hugging Face token",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b": "a GitHub token",
    r"\bgithub_pat_[A-Za-z0-9_]{40,}\b": "a GitHub fine-grained token",
    r"\bAIza[0-9A-Za-z_\-]{35}\b": "a Google API key",
    r"\bxox[abpr]-[0-9A-Za-z-]{10,}\b": "a Slack token",
    r"\bsk-[A-Za-z0-9]{32,}\b": "an API secret key",
    # a literal value: quoted, or a bare token that ends the line (not `os.environ[...]`, `${VAR}`, prose)
    r"(?im)\b(password|passwd|secret|api_key|apikey|access_token|auth_token)\s*[:=]\s*"
    r"(?:'[^'\s]{6,}'|\"[^\"\s]{6,}\"|[A-Za-z0-9_\-+/!@%^&*.]{8,}\s*$)": "a password or secret assignment",
}
_TEXT_SCAN_BYTES = 1 << 20


@dataclass
class SnapshotOptions:
    """``snapshot=`` of submit: True (default), False, a root path, or this object."""

    root: Path | None = None
    max_mb: float = DEFAULT_MAX_MB
    allow: tuple[str, ...] = ()  # glob patterns of files the secret guard must let through
    exclude: tuple[str, ...] = ()


@dataclass
class Snapshot:
    root: Path  # the user's tree that was snapshotted
    tree: Path  # the job's copy (hard links into the store), which the job runs from
    digest: str  # sha256 over (path, content hash, executable) of every file
    files: int
    bytes: int
    copied_bytes: int  # bytes new to the store (0 when nothing changed)
    git_commit: str | None = None
    git_dirty_sha256: str | None = None


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "environment.yml", ".aifsdkignore")


def looks_like_project(root: Path) -> bool:
    """A git work tree, or a folder with a project file: never $HOME, / or /tmp by accident."""
    if root in (Path.home().resolve(), Path("/"), Path("/tmp")):
        return (root / ".aifsdkignore").exists()
    return (root / ".git").exists() or _git(root, "rev-parse", "--show-toplevel") is not None or any(
        (root / m).exists() for m in PROJECT_MARKERS)


def find_root(start: Path) -> Path:
    top = _git(start, "rev-parse", "--show-toplevel")
    return Path(top.strip()).resolve() if top else start.resolve()


def _ignore_patterns(root: Path, extra: tuple[str, ...]) -> list[str]:
    patterns = list(DEFAULT_IGNORES) + list(extra)
    ignore_file = root / ".aifsdkignore"
    if ignore_file.is_file():
        patterns += [ln.strip() for ln in ignore_file.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return patterns


def _ignore_regex(patterns: list[str]) -> re.Pattern[str]:
    """One regex for all patterns: 'dir/' ignores a folder anywhere; others match the path or its name."""
    parts = []
    for pat in patterns:
        if pat.endswith("/"):
            body = fnmatch.translate(pat.rstrip("/")).removesuffix(r"\Z").removeprefix("(?s:").removesuffix(")")
            parts.append(f"(?:^|.*/)(?:{body})/.*")
        else:
            body = fnmatch.translate(pat).removesuffix(r"\Z").removeprefix("(?s:").removesuffix(")")
            parts.append(f"(?:{body})" if "/" in pat else f"(?:.*/)?(?:{body})")
    return re.compile(r"(?s:" + "|".join(parts) + r")\Z")


def list_files(root: Path, extra_ignores: tuple[str, ...] = ()) -> list[str]:
    """Relative paths of the files a snapshot of ``root`` holds, sorted."""
    ignore = _ignore_regex(_ignore_patterns(root, extra_ignores))
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is not None:
        names = [n for n in listed.split("\0") if n]
    else:
        names = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = [d for d in dirnames if not ignore.match(rel_dir + d + "/x")]
            names += [rel_dir + f for f in filenames]
    out = []
    base = str(root)
    for name in names:
        if ignore.match(name):
            continue
        try:
            st = os.lstat(os.path.join(base, name))
        except OSError:
            continue  # deleted since git listed it
        if stat.S_ISREG(st.st_mode):
            out.append(name)
        elif stat.S_ISLNK(st.st_mode):
            target = Path(base, name).resolve()
            if target.is_file() and target.is_relative_to(root):
                out.append(name)
    return sorted(out)


# Cheap substrings that every text pattern needs (lower-cased); a file with none is not searched.
_HINTS = re.compile(rb"private key|akia|hf_|gh[pousr]_|github_pat_|aiza|xox[abpr]|sk-|passw|secret|api_?key|access_token|auth_token")
_PATH_RE = re.compile("|".join(f"(?:{p})" for p in SECRET_PATH_PATTERNS))
_SCANNED: dict[tuple[str, int, int], tuple[str, str] | None] = {}  # (path, size, mtime) -> finding


def _scan_text(path: str) -> tuple[str, str] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_size, st.st_mtime_ns)
    if key in _SCANNED:
        return _SCANNED[key]
    found = None
    try:
        with open(path, "rb") as f:
            head = f.read(_TEXT_SCAN_BYTES)
    except OSError:
        head = b""
    if b"\0" not in head[:8192]:  # text only
        if _HINTS.search(head.lower()):  # one pass over lower-cased bytes, then the real patterns
            text = head.decode("utf-8", errors="ignore")
            for pattern, what in SECRET_TEXT_PATTERNS.items():
                if re.search(pattern, text):
                    found = (what, pattern)
                    break
    _SCANNED[key] = found
    return found


def check_secrets(root: Path, names: list[str], allow: tuple[str, ...]) -> list[Problem]:
    problems = []
    base_dir = str(root)
    for name in names:
        if allow and any(fnmatch.fnmatch(name, pat) for pat in allow):
            continue
        base = name.rsplit("/", 1)[-1]
        why, matched = SECRET_NAMES.get(base), base
        if why is None and _PATH_RE.search(name):
            why = next(w for p, w in SECRET_PATH_PATTERNS.items() if re.search(p, name))
            matched = "file name"
        if why is None:
            hit = _scan_text(os.path.join(base_dir, name))
            if hit:
                why, matched = hit
        if why:
            problems.append(Problem("snapshot", name, "no likely secrets in the shipped code",
                                    f"{why} matched ({matched}); remove it, add it to .aifsdkignore, or allow it with "
                                    f"snapshot=aifsdk.SnapshotOptions(allow=({name!r},))"))
    return problems


def check_size(root: Path, names: list[str], max_mb: float) -> list[Problem]:
    sizes = []
    for n in names:
        try:
            sizes.append((os.stat(os.path.join(root, n)).st_size, n))
        except OSError:
            continue  # gone since it was listed
    sizes.sort()
    total = sum(s for s, _ in sizes)
    large = [(s, n) for s, n in sizes if s > LARGE_FILE_MB * 2**20 or n.endswith(DATA_SUFFIXES) and s > 2**20]
    if total <= max_mb * 2**20 and not large:
        return []
    biggest = ", ".join(f"{n} ({s / 2**20:.1f} MB)" for s, n in sorted(sizes, reverse=True)[:5])
    what = f"{total / 2**20:.0f} MB in {len(names)} files" if total > max_mb * 2**20 else "large data files"
    return [Problem("snapshot", str(root), f"code under {max_mb:g} MB without data files (found {what})",
                    f"biggest: {biggest}. Exclude data in .aifsdkignore (e.g. 'data/', '*.ckpt') and read it from the "
                    "cluster's filesystem; or snapshot=False")]


def _file_hash(path: str, st: os.stat_result, cache: dict[str, list]) -> str:
    entry = cache.get(path)
    if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
        return entry[2]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    cache[path] = [st.st_size, st.st_mtime_ns, h.hexdigest()]
    return cache[path][2]


def take(root: Path, store: Path, names: list[str], dest: Path) -> Snapshot:
    """Store the files content-addressed under ``store`` (each content once) and lay out the job's
    own copy at ``dest`` as hard links to them: an unchanged file is never copied again."""
    store.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache_path = store / "hash-cache.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    entries = []
    total = copied = 0
    objects, base_dir, dest_dir = str(store / "objects"), str(root), str(dest)
    made: set[str] = set()
    for name in names:  # sequential: threads were slower here (the loop is mostly Python, under the GIL)
        path = os.path.join(base_dir, name)
        st = os.stat(path)
        digest = _file_hash(path, st, cache)
        executable = bool(st.st_mode & stat.S_IXUSR)
        entries.append((name, digest, executable))
        total += st.st_size
        obj = os.path.join(objects, digest[:2], digest)
        if not os.path.exists(obj):
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            part = f"{obj}.{os.getpid()}.part"
            shutil.copyfile(path, part)
            os.chmod(part, 0o555 if executable else 0o444)
            os.replace(part, obj)
            copied += st.st_size
        target = os.path.join(dest_dir, name)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            os.link(obj, target)
        except OSError:  # another filesystem than the store: copy
            shutil.copy2(obj, target)
    tmp_cache = cache_path.with_name(f".hash-cache.{os.getpid()}")
    tmp_cache.write_text(json.dumps(cache))
    tmp_cache.replace(cache_path)
    commit = _git(root, "rev-parse", "HEAD")
    diff = _git(root, "diff", "HEAD", "--binary")
    return Snapshot(root=root, tree=dest, digest=hashlib.sha256(json.dumps(entries).encode()).hexdigest(),
                    files=len(entries), bytes=total, copied_bytes=copied,
                    git_commit=commit.strip() if commit else None,
                    git_dirty_sha256=hashlib.sha256(diff.encode()).hexdigest() if diff else None)
