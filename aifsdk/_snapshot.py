"""Code snapshots: the job runs the code as it was at submit time, not as it is when it starts.

The files are chosen like git does (tracked plus untracked-but-not-ignored files in a work tree;
elsewhere every file minus ignore patterns), plus the patterns of an ``.aifsdkignore`` file, read
with git's rules (gitignore(5): ``/data/``, ``!keep.csv``, ``**``, last match wins).
They are stored under ``<job_root>/.snapshots/``: the contents new to the store in one pack per
snapshot, and a manifest per snapshot (see :mod:`aifsdk._pack`), so identical files are stored
once across all jobs and an unchanged tree writes nothing. The job folder names its snapshot and
the job links it into ``<job folder>/code/`` when it starts, from one checked copy per
snapshot that the store keeps. Two guards run at plan time,
before anything is written: a size guard (the biggest files and how to exclude them) and a secret
guard (file names and the pattern that matched).
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    ".env": "a dotenv file", ".netrc": "a .netrc credentials file",
    "_netrc": "a .netrc credentials file (Windows name)", ".pgpass": "a PostgreSQL password file",
    "id_rsa": "an SSH private key", "id_ed25519": "an SSH private key", "id_ecdsa": "an SSH private key", "id_dsa": "an SSH private key",
    "credentials": "a cloud credentials file", ".git-credentials": "git credentials", ".npmrc": "a registry token file",
    ".pypirc": "a package-index credentials file", ".dockercfg": "a registry credentials file", "kaggle.json": "a Kaggle API token",
    "terraform.tfstate": "a Terraform state file (it holds resource secrets)",
}
SECRET_PATH_PATTERNS = {
    r"(^|/)\.ssh/": "an .ssh directory", r"(^|/)\.aws/credentials$": "AWS credentials", r"(^|/)\.docker/config\.json$": "Docker registry credentials",
    r"(^|/)\.env\.[^/]+$": "a dotenv file", r"(^|/)\.kube/config$": "a Kubernetes config", r"\.(pem|key|p12|pfx)$": "a private key or certificate bundle",
    r"(^|/)gcloud/.*credentials.*\.json$": "Google Cloud credentials", r"(^|/)\.huggingface/token$": "a Hugging Face token",
    r"(^|/)\.kaggle/kaggle\.json$": "a Kaggle API token",
}
# what a text file must not hold: pattern -> (what it is, a literal every match contains). The literal
# gates the pattern: plain substring tests run at hundreds of MB/s, each regex at about 30 MB/s, so a
# pattern only runs on files that hold its literal (case-insensitive literals are matched lower-cased).
_KEY_WORDS = ("passw", "secret", "api_key", "apikey", "access_token", "auth_token", "access_key")
SECRET_TEXT_PATTERNS = {
    # PEM private keys, PKCS#1, SEC1, PKCS#8 (plain and ENCRYPTED), OpenSSH, PGP
    r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY( BLOCK)?-----": ("a private key", b"PRIVATE KEY"),
    r"\bAKIA[0-9A-Z]{16}\b": ("an AWS access key id", b"AKIA"),
    r"\bhf_[A-Za-z0-9]{30,}\b": ("a Hugging Face token", b"hf_"),
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b": ("a GitHub token", re.compile(rb"gh[pousr]_")),  # a literal prefix: as fast as `in`
    r"\bgithub_pat_[A-Za-z0-9_]{40,}\b": ("a GitHub fine-grained token", b"github_pat_"),
    r"\bAIza[0-9A-Za-z_\-]{35}\b": ("a Google API key", b"AIza"),
    r"\bxox[abpr]-[0-9A-Za-z-]{10,}\b": ("a Slack token", b"xox"),
    r"\bsk-[A-Za-z0-9]{32,}\b": ("an API secret key", b"sk-"),
    r"\bsk-(?:proj|svcacct|admin|ant-api\d\d)-[A-Za-z0-9_\-]{32,}": ("an OpenAI or Anthropic API key", b"sk-"),
    # a literal value given to a name that holds one of the key words (password, WANDB_API_KEY,
    # aws_secret_access_key, "clientSecret", "password" in JSON): quoted, or a bare token that ends the
    # line and holds a digit; not a reference (os.environ[...], ${VAR}, config.password, "env_api_key", prose)
    r"(?im)(?:password|passwd|secret|api_key|apikey|access_token|auth_token|access_key)[\w.-]*[\"']?\s*[:=]\s*"
    r"(?:'(?=[^']*[^a-z_.'-])[^'\s$]{6,}'|\"(?=[^\"]*[^a-z_.\"-])[^\"\s$]{6,}\"|(?=\S*\d)[A-Za-z0-9_\-+/!@%^&*.]{8,}\s*$)": (
        "a password or secret assignment", tuple(w.encode() for w in _KEY_WORDS)),
}


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
    tree: Path  # the job's copy (extracted from the store when the job starts), which the job runs from
    digest: str  # sha256 over (path, content hash, executable) of every file
    files: int
    bytes: int
    copied_bytes: int  # bytes new to the store (0 when nothing changed)
    git_commit: str | None = None
    git_dirty_sha256: str | None = None


def _git(root: Path, *args: str) -> str | None:
    return _git_output(_git_start(root, *args))


def _git_start(root: Path, *args: str) -> subprocess.Popen[str] | None:
    """Start a git command (its output is read by :func:`_git_output`, so other work can overlap it)."""
    try:
        return subprocess.Popen(["git", "-C", str(root), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None


def _git_output(proc: subprocess.Popen[str] | None) -> str | None:
    if proc is None:
        return None
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return out if proc.returncode == 0 else None


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


def _ignore_matcher(patterns: list[str]) -> Callable[[str], bool]:
    """Whether a relative path is ignored, with git's rules (gitignore(5), through the pathspec
    package): '/data/' only at the top, 'data/' a folder anywhere, '!keep.csv' brings a file back,
    the last matching pattern wins. Without '!' patterns, one combined regex answers (the same
    answer, faster on trees of many thousand files)."""
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    compiled = [p for p in spec.patterns if getattr(p, "include", None) is not None]
    if not all(p.include for p in compiled):
        return spec.match_file
    body = "|".join(f"(?:{_NAMED_GROUP.sub('(?:', p.regex.pattern)})" for p in compiled) or "(?!)"
    combined = re.compile(body)
    return lambda name: combined.match(name) is not None


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


_LISTED: dict[str, os.stat_result] = {}  # absolute path -> stat from the last listing (plan time)


def list_files(root: Path, extra_ignores: tuple[str, ...] = (), left_out: list[str] | None = None) -> list[str]:
    """Relative paths of the files a snapshot of ``root`` holds, sorted.

    In a git work tree, a submodule or a nested repository is listed by its own git (its tracked
    and untracked-not-ignored files), so its code is shipped too. One whose files cannot be listed
    (a submodule not checked out) is added to ``left_out``, for the plan to name."""
    ignored = _ignore_matcher(_ignore_patterns(root, extra_ignores))
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    if listed is not None:
        names = [n for n in listed.split("\0") if n]
    else:
        names = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = [d for d in dirnames if not ignored(rel_dir + d + "/x")]
            names += [rel_dir + f for f in filenames]
    out = []
    base = str(root)
    _LISTED.clear()
    while names:
        name = names.pop()
        if ignored(name):
            continue
        path = f"{base}/{name}"
        try:
            st = os.lstat(path.rstrip("/"))
        except OSError:
            continue  # deleted since git listed it
        if stat.S_ISREG(st.st_mode):
            out.append(name)
            _LISTED[path] = st  # the guards reuse it instead of a second stat
        elif stat.S_ISLNK(st.st_mode):
            target = Path(base, name).resolve()
            if target.is_file() and target.is_relative_to(root):
                out.append(name)
        elif stat.S_ISDIR(st.st_mode) and listed is not None:  # a submodule (gitlink) or a nested repository
            if ignored(name.rstrip("/") + "/"):
                continue
            inner = _git(Path(path), "ls-files", "-z", "--cached", "--others", "--exclude-standard") \
                if os.path.lexists(f"{path.rstrip('/')}/.git") else None
            if inner is None:
                if left_out is not None:
                    left_out.append(name.rstrip("/"))
            else:
                names += [f"{name.rstrip('/')}/{n}" for n in inner.split("\0") if n]
    return sorted(out)


_PATH_RE = re.compile("|".join(f"(?:{p})" for p in SECRET_PATH_PATTERNS))
# a literal each path pattern above holds: names without one skip _PATH_RE (whose `.*` parts cost ~6 us a name)
_PATH_GATE = re.compile(r"\.(?:ssh|aws|docker|env|kube|huggingface|kaggle|pem|key|p12|pfx)|gcloud")
_TEXT_RES = [(re.compile(p.encode()), what, p, anchor) for p, (what, anchor) in SECRET_TEXT_PATTERNS.items()]
SCAN_VERSION = 4  # bump whenever the secret patterns change: findings cached under an older version are redone
_CHUNK = 1 << 20
_OVERLAP = 4096  # bytes of one window carried into the next, so that a secret across a window's edge is seen


def _scan_bytes(head: bytes) -> list[str]:
    """[what, pattern] of the first secret pattern the text matches, [] when none."""
    low = None
    for rx, what, pattern, anchor in _TEXT_RES:
        if isinstance(anchor, tuple):
            low = head.lower() if low is None else low
            if not any(a in low for a in anchor):
                continue
        elif isinstance(anchor, re.Pattern):
            if not anchor.search(head):
                continue
        elif anchor not in head:
            continue
        if rx.search(head):
            return [what, pattern]
    return []


class SecretScan:
    """A secret scan fed a file's bytes in order, whole (windows of 1 MB that overlap by 4 KB):
    ``found`` is [what, pattern] once a pattern matched, [] while none has. A file whose first 8 KB
    hold a NUL byte is binary and not scanned."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._tail = b""
        self._binary: bool | None = None

    def feed(self, chunk: bytes) -> None:
        if self.found or self._binary or not chunk:
            return
        if self._binary is None:
            self._binary = b"\0" in chunk[:8192]
            if self._binary:
                return
        window = self._tail + chunk
        self.found = _scan_bytes(window)
        self._tail = window[-_OVERLAP:]


class FileIndex:
    """What is known about each file at a given size and mtime: its sha256 and its secret-scan result.

    Kept per user in ``<AIFSDK_HOME>/cache/snapshot-index.json`` (mode 0600), so a file that has not
    changed is neither read, hashed nor scanned again, by this process or a later one. An entry is
    ``[size, mtime_ns, sha256 or "", scan]`` with scan ``None`` (not scanned), ``[]`` (clean) or
    ``[what, pattern]``; a changed size or mtime makes it stale, as git's index does.
    """

    VERSION = 1
    MAX_ENTRIES = 400_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        self.dirty = False
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == self.VERSION and isinstance(data.get("files"), dict):
            self.entries = data["files"]
            if data.get("scan_version") != SCAN_VERSION:
                for entry in self.entries.values():
                    entry[3] = None

    def get(self, path: str, st: os.stat_result) -> list | None:
        entry = self.entries.get(path)
        return entry if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns else None

    def put(self, path: str, st: os.stat_result, digest: str = "", scan: list[str] | None = None) -> list:
        old = self.get(path, st)
        entry = [st.st_size, st.st_mtime_ns, digest or (old[2] if old else ""), scan if scan is not None else (old[3] if old else None)]
        self.entries[path] = entry
        self.dirty = True
        return entry

    def save(self) -> None:
        if not self.dirty:
            return
        if len(self.entries) > self.MAX_ENTRIES:  # keep the newest half (insertion order: least recently written first)
            self.entries = dict(list(self.entries.items())[-self.MAX_ENTRIES // 2:])
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"version": self.VERSION, "scan_version": SCAN_VERSION, "files": self.entries}, f, separators=(",", ":"))
            os.replace(tmp, self.path)  # a cache: another process's concurrent save may win, nothing is lost but time
        except OSError:  # a full or read-only home: the files are hashed and scanned again next time, nothing else is lost
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        self.dirty = False


_INDEX: FileIndex | None = None


def file_index() -> FileIndex:
    """This user's index (reloaded when AIFSDK_HOME changes)."""
    global _INDEX
    from ._paths import aifsdk_home, ensure_private, private_home

    path = aifsdk_home() / "cache" / "snapshot-index.json"
    if _INDEX is None or _INDEX.path != path:
        private_home()  # the index says which stored contents a file holds: only the user may write it
        ensure_private(path.parent, "the cache folder")
        _INDEX = FileIndex(path)
    return _INDEX


def _read(path: str, index: FileIndex, st: os.stat_result, scan: bool) -> list:
    """Read a file once: hash all of it and, when asked, scan all of it for secrets; record both."""
    h = hashlib.sha256()
    scanner = SecretScan() if scan else None
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            if scanner is not None:
                scanner.feed(chunk)
    return index.put(path, st, h.hexdigest(), None if scanner is None else scanner.found)


def _stat(path: str) -> os.stat_result | None:
    st = _LISTED.get(path)
    if st is None:
        try:
            st = os.stat(path)
        except OSError:
            return None
    return st


def check_secrets(root: Path, names: list[str], allow: tuple[str, ...]) -> list[Problem]:
    problems = []
    base_dir = str(root)
    index = file_index()
    for name in names:
        if allow and any(fnmatch.fnmatch(name, pat) for pat in allow):
            continue
        base = name.rsplit("/", 1)[-1]
        why, matched = SECRET_NAMES.get(base), base
        if why is None and _PATH_GATE.search(name) and _PATH_RE.search(name):
            why = next(w for p, w in SECRET_PATH_PATTERNS.items() if re.search(p, name))
            matched = "file name"
        if why is None:
            path = f"{base_dir}/{name}"
            st = _stat(path)
            if st is None:
                continue  # gone since it was listed
            entry = index.get(path, st)
            if entry is None or entry[3] is None:
                try:
                    entry = _read(path, index, st, scan=True)
                except OSError:
                    continue
            if entry[3]:
                why, matched = entry[3]
        if why:
            problems.append(Problem("snapshot", name, "no likely secrets in the shipped code",
                                    f"{why} matched ({matched}); remove it, add it to .aifsdkignore, or allow it with "
                                    f"snapshot=aifsdk.SnapshotOptions(allow=({name!r},))"))
    index.save()
    return problems


def check_size(root: Path, names: list[str], max_mb: float) -> list[Problem]:
    sizes = []
    base = str(root)
    for n in names:
        st = _stat(f"{base}/{n}")
        if st is not None:  # else gone since it was listed
            sizes.append((st.st_size, n))
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


def source_of(root: Path, name: str) -> tuple[str, os.stat_result] | None:
    """The file a snapshot entry is read from, as it is now, and its stat: the file itself, or for a
    symlink, its target when that is a regular file inside ``root``; None when it is gone.
    Raises :class:`aifsdk.RequestError` for a symlink that now leads out of the tree (or to no
    regular file): nothing outside the project is shipped, whatever changed since the plan."""
    from ._errors import RequestError

    path = f"{root}/{name}"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode):
        return path, st
    target = Path(path).resolve()
    if stat.S_ISLNK(st.st_mode) and target.is_relative_to(root):
        try:
            tst = os.lstat(target)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(tst.st_mode):
            return str(target), tst
    raise RequestError([Problem("snapshot", name, "files inside the project folder, as they were when planned",
                                f"it became {'a link to ' + str(target) if stat.S_ISLNK(st.st_mode) else 'something else than a file'} "
                                "after the plan; restore it or add it to .aifsdkignore, then submit again")])


def secret_scanner(allow: tuple[str, ...]) -> Any:
    """For :meth:`aifsdk._pack.PackStore.add`: a fresh :class:`SecretScan` for a file name, None for an allowed one."""
    return lambda name: None if allow and any(fnmatch.fnmatch(name, pat) for pat in allow) else SecretScan()


def refuse_secret(name: str, found: list[str]) -> Any:
    from ._errors import RequestError

    why, matched = found
    return RequestError([Problem("snapshot", name, "no likely secrets in the shipped code",
                                 f"{why} matched ({matched}) in what was read at submit (the file changed after the plan); "
                                 f"remove it, add it to .aifsdkignore, or allow it with snapshot=aifsdk.SnapshotOptions(allow=({name!r},))")])


def take(root: Path, store: Path, names: list[str], folder: Path, workdir: Path | None = None,
         allow: tuple[str, ...] = ()) -> Snapshot:
    """Store the files under ``store`` (a pack holding only the contents new to it, and the
    snapshot's manifest) and point the job ``folder`` at the snapshot; the files are linked into
    ``<folder>/code`` when the job starts (:func:`aifsdk._pack.materialise`). An unchanged file is
    neither read nor hashed again (the file index), and an unchanged tree writes no pack at all.

    What is stored is checked as it is read now, not only at plan time: no symlink is followed out
    of the tree (files are opened without following links and compared with what was checked), and
    a file changed since the plan is scanned for secrets again (the bytes that go into the pack)."""
    from ._errors import RequestError
    from ._pack import PackChanged, PackStore, snapshot_digest, write_ref
    from ._paths import ensure_private, storage_error

    commit, diff = _git_start(root, "rev-parse", "HEAD"), _git_start(root, "diff", "HEAD", "--binary")  # run alongside
    index = file_index()
    entries: list[tuple[str, str, bool]] = []
    sizes: dict[str, int] = {}
    sources: dict[str, tuple[str, os.stat_result]] = {}
    allowed = secret_scanner(allow)
    try:
        for name in names:
            found = source_of(root, name)  # now, not at plan time: what is stored is what the file holds at submit
            if found is None:
                continue  # deleted since it was listed: not in the snapshot (the manifest counts what is)
            path, st = found
            entry = index.get(path, st)
            scan = allowed(name) is not None
            if entry is None or not entry[2] or (scan and entry[3] is None):
                try:
                    entry = _read(path, index, st, scan=scan)
                except FileNotFoundError:
                    continue
            if scan and entry[3]:
                raise refuse_secret(name, entry[3])
            entries.append((name, entry[2], bool(st.st_mode & stat.S_IXUSR)))
            sizes[name] = st.st_size
            sources[name] = found
        index.save()
        digest = snapshot_digest(entries)
        ensure_private(store, "the snapshot store")  # jobs run what it holds: it must be the user's alone
        packs = PackStore(store)
        copied = 0
        if not packs.has(digest):
            try:
                digest, entries, copied = packs.add(root, entries, sources=sources, scanner=allowed)
            except PackChanged as exc:
                name = os.path.relpath(exc.name, root) if os.path.isabs(exc.name) else exc.name
                if exc.found:
                    raise refuse_secret(name, exc.found) from None
                raise RequestError([Problem("snapshot", name, "files inside the project folder, as they were when checked",
                                            "it was replaced (by a link or another file) while it was packed; submit again")]) from None
            except OSError as exc:
                raise storage_error(exc, Path(exc.filename or store), "storing the code snapshot in") from None
        try:
            code = write_ref(folder, store, digest, workdir)
        except OSError as exc:
            raise storage_error(exc, Path(exc.filename or folder), "writing the job folder") from None
    except BaseException:
        _git_output(commit), _git_output(diff)  # reaped, not left behind
        raise
    head, dirty = _git_output(commit), _git_output(diff)
    return Snapshot(root=root, tree=code, digest=digest, files=len(entries), bytes=sum(sizes.get(e[0], 0) for e in entries),
                    copied_bytes=copied, git_commit=head.strip() if head else None,
                    git_dirty_sha256=hashlib.sha256(dirty.encode()).hexdigest() if dirty else None)
