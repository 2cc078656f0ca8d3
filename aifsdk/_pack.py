"""Packed code snapshots: one pack file per new snapshot at submit, one folder of files on the node.

At submit time the contents new to the store are appended to ONE pack file (``packs/<id>.pack``:
the objects' bytes back to back), and a snapshot manifest (``snapshots/<digest>.json``) lists
each file's path, sha256, mode and where its bytes live (pack, offset, size). An object already
in an earlier pack is not stored again, and an unchanged tree (a snapshot digest already in the
store) writes nothing but the job's reference to it. ``objects.idx`` (one ``sha256 pack offset
size`` line per stored object, appended) says what the store holds. The store is private (0700,
read-only 0400 packs and manifests) and nothing in it is ever rewritten.

The job folder holds ``snapshot.json`` (the snapshot digest and the store, relative to the job
folder, so the same layout works on a remote cluster) and an empty ``code/``. On the compute
node, before any user code is imported, :func:`materialise` fills ``code/`` once per job folder
(the first task under a lock; the others, and a requeued job, find it complete). The store keeps
ONE extracted copy of each snapshot, ``trees/<digest>/files/``: the first job of a snapshot
extracts it from the packs into a temporary folder, checking each object's sha256 (and the
manifest's digest), makes the files read-only (0400, 0500 where executable), writes
``record.json`` (each file's inode and mtime) and renames the folder into place (a job that loses
that race uses the winner's). Every job then hard-links the files into its own ``code/``, whose
folders are the job's, and checks each link against the record (inode, size, mode, mtime): a tree
changed since is set aside and extracted again from the packs, whose hashes are checked again.
Where links cannot be made (another filesystem, a link limit), the job extracts into ``code/``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._errors import AifsdkError, SnapshotIntegrityError

REF_FILE = "snapshot.json"  # in the job folder: which snapshot, and where its store is
DONE_FILE = ".code-complete"  # in the job folder: code/ holds that snapshot in full
TREES = "trees"  # in the store: one extracted, checked, read-only copy per snapshot
# a link that cannot be made here (another filesystem, links not allowed, a file's link limit): extract instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP}
_CHUNK = 1 << 20


def snapshot_digest(entries: list[tuple[str, str, bool]] | list[list]) -> str:
    """sha256 over (path, content sha256, executable) of every file, in order."""
    return hashlib.sha256(json.dumps([list(e) for e in entries]).encode()).hexdigest()


def _write_new(path: Path, data: bytes, mode: int = 0o400) -> None:
    """Write a whole file under a temporary name and rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class PackStore:
    """A per-user store of packed snapshots (``<job_root>/.snapshots``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def manifest_path(self, digest: str) -> Path:
        return self.path / "snapshots" / f"{digest}.json"

    def has(self, digest: str) -> bool:
        """The snapshot is stored, in packs no job has found corrupt."""
        path = self.manifest_path(digest)
        if not path.is_file():
            return False
        bad = self._bad_packs()
        return not bad or not bad.intersection(packs_of(json.loads(path.read_bytes())))

    def _bad_packs(self) -> set[str]:
        return {p.name.removesuffix(".corrupt") for p in (self.path / "packs").glob("*.corrupt")}

    def objects(self) -> dict[str, tuple[str, int, int]]:
        """sha256 -> (pack, offset, size) of every object stored in a pack not marked corrupt."""
        try:
            text = (self.path / "objects.idx").read_text()
        except FileNotFoundError:
            return {}
        bad = self._bad_packs()
        found: dict[str, tuple[str, int, int]] = {}
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 4 and len(parts[0]) == 64 and parts[1] not in bad:  # a torn last line is skipped
                found.setdefault(parts[0], (parts[1], int(parts[2]), int(parts[3])))
        return found

    def add(self, root: Path, entries: list[tuple[str, str, bool]], sources: dict[str, tuple[str, os.stat_result]] | None = None,
            scanner: Callable[[str], Any] | None = None) -> tuple[str, list[tuple[str, str, bool]], int]:
        """Store a new snapshot of ``root``: the objects not stored yet go into one new pack, then
        its manifest is written. ``entries`` are (path, sha256, executable) as hashed before; a
        file whose bytes changed since is stored as it is now, and one deleted since is left out.
        ``sources``: the file each entry is read from and its stat when it was checked; it is opened
        without following a symlink and must still be that file (else :class:`PackChanged`).
        ``scanner(name)``: a secret scan fed the bytes that go into the pack (None: not scanned);
        one that finds something stops the pack (:class:`PackChanged`, ``found`` set).
        Returns (snapshot digest, entries, bytes new to the store)."""
        for sub in ("", "packs", "snapshots"):
            (self.path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("packs", "snapshots"):
            remove_leftovers(self.path / sub)
        known = self.objects()
        pack = f"{os.urandom(8).hex()}.pack"
        part = self.path / "packs" / f".{pack}.part"
        new: dict[str, tuple[str, int, int]] = {}
        files: list[list] = []
        kept: list[tuple[str, str, bool]] = []
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        offset = 0
        done = False
        try:
            for name, sha, executable in entries:
                where = known.get(sha) or new.get(sha)
                if where is None:
                    source, checked = (sources or {}).get(name) or (f"{root}/{name}", None)
                    scan = scanner(name) if scanner else None
                    try:
                        sha, size = _append(fd, source, checked, scan)
                    except FileNotFoundError:
                        continue  # deleted since it was listed: not in the snapshot
                    if scan is not None and scan.found:
                        raise PackChanged(name, found=scan.found)
                    where = known.get(sha) or new.get(sha)
                    if where is None:  # bytes new to the store: keep them in this pack
                        where = new[sha] = (pack, offset, size)
                        offset += size
                    else:  # changed since hashed, into content stored already: drop the copy
                        os.ftruncate(fd, offset)
                        os.lseek(fd, offset, os.SEEK_SET)
                kept.append((name, sha, executable))
                files.append([name, sha, int(executable), where[0], where[1], where[2]])
            done = True
        finally:
            os.close(fd)
            if not done:
                with contextlib.suppress(OSError):
                    part.unlink()  # a pack cut short (a full disk, a refused file) is not left behind
        digest = snapshot_digest(kept)
        if new:
            os.chmod(part, 0o400)
            os.replace(part, self.path / "packs" / pack)
            lines = "".join(f"{sha} {p} {off} {size}\n" for sha, (p, off, size) in new.items())
            fd = os.open(self.path / "objects.idx", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                _write_all(fd, lines.encode())  # one append: concurrent submits do not interleave lines
            finally:
                os.close(fd)
        else:
            part.unlink()
        manifest = {"version": 1, "digest": digest, "files": files}
        _write_new(self.manifest_path(digest), json.dumps(manifest, separators=(",", ":")).encode())
        return digest, kept, offset


class PackChanged(AifsdkError, RuntimeError):
    """A file changed between its check and its packing: now a symlink or another file (``found``
    empty), or it now holds a likely secret (``found`` = [what, pattern])."""

    def __init__(self, name: str, found: list[str] | None = None) -> None:
        self.name, self.found = name, found or []
        super().__init__(f"{name} changed while it was packed" + (f": {found[0]} matched ({found[1]})" if found else ""))


def _append(fd: int, path: str, checked: os.stat_result | None = None, scan: Any = None) -> tuple[str, int]:
    """Append a file's bytes to the pack, hashing (and scanning) what is written: (sha256, size).
    The file is opened without following a symlink, and must be the one ``checked`` (same device
    and inode): a file swapped for a link or another file after its check is not read."""
    h = hashlib.sha256()
    size = 0
    try:
        src = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # O_NONBLOCK: a fifo swapped in does not hang
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PackChanged(path) from None
        raise
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode) or checked is not None and (st.st_dev, st.st_ino) != (checked.st_dev, checked.st_ino):
            raise PackChanged(path)
        while chunk := os.read(src, _CHUNK):
            h.update(chunk)
            if scan is not None:
                scan.feed(chunk)
            _write_all(fd, chunk)
            size += len(chunk)
    finally:
        os.close(src)
    return h.hexdigest(), size


def remove_leftovers(folder: Path, age_s: float = 3600.0) -> list[Path]:
    """Delete this user's temporary files in a store folder that a killed or failed submit left
    (``.*.part``, ``.*.tmp``), once they are ``age_s`` old (an hour: a submit still writing one is
    not disturbed); returns what went."""
    gone = []
    uid = os.getuid()
    now = time.time()
    try:
        found = list(os.scandir(folder))
    except OSError:
        return gone
    for entry in found:
        if not entry.name.startswith(".") or not entry.name.endswith((".part", ".tmp")):
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if st.st_uid == uid and stat.S_ISREG(st.st_mode) and now - st.st_mtime > age_s:
                os.unlink(entry.path)
                gone.append(Path(entry.path))
    return gone


# -- the job folder's reference ------------------------------------------------------------------
def write_ref(folder: Path, store: Path, digest: str, workdir: Path | None = None) -> Path:
    """Point a job folder at a stored snapshot and create its (empty) ``code/``, plus the job's
    working folder inside it (Slurm's ``--chdir`` and the local runner need it before the job starts).
    Returns the code folder."""
    code = folder / "code"
    code.mkdir(exist_ok=True)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    ref = {"version": 1, "digest": digest, "store": os.path.relpath(store, folder)}
    (folder / REF_FILE).write_text(json.dumps(ref) + "\n")
    return code


def read_ref(folder: Path) -> dict | None:
    try:
        return json.loads((folder / REF_FILE).read_text())
    except FileNotFoundError:
        return None


def store_of(folder: Path, ref: dict) -> Path:
    """The store a job folder's reference names (relative to the folder)."""
    return Path(os.path.normpath(folder / ref["store"]))


def packs_of(manifest: dict) -> list[str]:
    return sorted({f[3] for f in manifest["files"]})


def load_manifest(store: Path, digest: str) -> dict:
    """A stored snapshot manifest (or the copy a job set aside as corrupt), checked against its digest."""
    path = PackStore(store).manifest_path(digest)
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        try:
            manifest = json.loads(path.with_name(path.name + ".corrupt").read_bytes())
        except FileNotFoundError:
            raise SnapshotIntegrityError(f"the code snapshot {digest[:16]}... is missing from {store} ({path.name}): "
                                         "the store was changed after submission; submit again") from None
    except ValueError as exc:
        raise SnapshotIntegrityError(f"the snapshot manifest {path} is not valid JSON ({exc}): the store was changed "
                                     "after submission; submit again") from None
    entries = [(f[0], f[1], bool(f[2])) for f in manifest.get("files", [])]
    if snapshot_digest(entries) != digest:
        raise SnapshotIntegrityError(f"the snapshot manifest {path} does not match the submitted snapshot {digest[:16]}...: "
                                     "the store was changed after submission; submit again")
    return manifest


# -- the node side ---------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between the tasks of one job (where the filesystem has none, each extracts)."""
    import fcntl

    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _done_text(folder: Path, digest: str) -> str:
    # the code folder's inode too: a copy of the job folder (a remote job's, pulled back) is not done
    return f"{digest} {os.stat(folder / 'code').st_ino}\n"


def is_complete(folder: Path, digest: str) -> bool:
    try:
        return (folder / DONE_FILE).read_text() == _done_text(folder, digest)
    except FileNotFoundError:
        return False


def materialise(folder: Path) -> bool:
    """Fill ``<folder>/code`` with the job's snapshot unless already done; True if it did.

    The files are hard links to the store's checked tree of the snapshot (made from the packs by
    the first job that needs it). Every object read from a pack is checked against its sha256; a
    mismatch raises :class:`SnapshotIntegrityError` naming the file, and sets the snapshot aside in
    the store (``.corrupt``) so that the next submit of the same tree stores it again."""
    ref = read_ref(folder)
    if ref is None:
        return False  # no snapshot (snapshot=False)
    digest = ref["digest"]
    if is_complete(folder, digest):
        return False
    with _locked(folder / ".code.lock"):
        if is_complete(folder, digest):
            return False  # another task of this job did it while we waited
        store = store_of(folder, ref)
        check_owned(store, "the snapshot store")
        manifest = load_manifest(store, digest)
        (folder / "code").mkdir(exist_ok=True)
        try:
            _fill(store, digest, manifest, folder / "code")
        except SnapshotIntegrityError as exc:
            _set_aside(store, digest, exc.pack)
            raise
        _write_new(folder / DONE_FILE, _done_text(folder, digest).encode(), 0o600)
    return True


def check_owned(path: Path, what: str) -> None:
    """Refuse to run code from a folder that is not this user's own or that others may write to."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SnapshotIntegrityError(f"{what} {path} is missing: the store was changed after submission; submit again") from None
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise SnapshotIntegrityError(
            f"{what} {path} belongs to uid {st.st_uid} (this job runs as uid {os.getuid()}) or may be written by others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): the job does not run code from it. Submit again from aifsdk "
            "(it keeps a store of your own), or make the folder yours and private (chmod 700)")


def tree_of(store: Path, digest: str) -> Path:
    """Where the store keeps the extracted files of a snapshot (present once a job of it started)."""
    return store / TREES / digest / "files"


def _fill(store: Path, digest: str, manifest: dict, code: Path) -> None:
    """Link ``code/``'s files to the store's tree of the snapshot, building (or rebuilding) the tree
    first when it is missing or changed; extract into ``code/`` where the store takes no tree or
    links cannot be made."""
    for _ in range(3):  # a tree found changed is set aside and made again; twice more at most
        tree = store / TREES / digest
        try:
            seen = os.stat(tree).st_ino
        except FileNotFoundError:
            try:
                _build_tree(store, digest, manifest)
                seen = os.stat(tree).st_ino
            except SnapshotIntegrityError:
                raise
            except OSError:
                break  # the store cannot hold a tree (read-only, full): this job extracts its own copy
        try:
            if _link_tree(tree, digest, manifest, code):
                return
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            break
        _retire(tree, seen)
    _extract(store, manifest, code)


def _build_tree(store: Path, digest: str, manifest: dict) -> None:
    """Extract and check a snapshot into a temporary folder of the store, record each file's inode
    and mtime, then rename it to ``trees/<digest>`` (if another job did so first, theirs stays)."""
    trees = store / TREES
    trees.mkdir(mode=0o700, exist_ok=True)
    _remove_leftovers(trees)
    tmp = trees / f".{digest[:16]}.{os.getpid()}.{os.urandom(3).hex()}.part"
    tmp.mkdir(mode=0o700)
    try:
        (tmp / "files").mkdir(mode=0o700)
        stamps = _extract(store, manifest, tmp / "files", staged=False)  # the folder is renamed into place whole
        record = {"version": 1, "digest": digest, "files": stamps}
        _write_new(tmp / "record.json", json.dumps(record, separators=(",", ":")).encode())
        try:
            os.rename(tmp, trees / digest)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise  # else another job's tree is in place: it is used
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _link_tree(tree: Path, digest: str, manifest: dict, code: Path) -> bool:
    """Hard-link every file of the tree into ``code/`` and check each link against the tree's record
    (inode, size, mode, mtime); False when the tree is not the one recorded (changed, or replaced
    meanwhile). Raises OSError when a link cannot be made (errno in ``_NO_LINK``: extract instead)."""
    check_owned(tree, "the snapshot's tree")
    try:
        record = json.loads((tree / "record.json").read_bytes())
        stamps = record["files"]
    except (OSError, ValueError, KeyError):
        return False
    files = manifest["files"]
    if record.get("digest") != digest or len(stamps) != len(files):
        return False
    src_base, base = f"{tree}/files", str(code)
    made: set[str] = set()
    for (name, _, executable, _, _, size), (ino, mtime) in zip(files, stamps, strict=True):
        parent = name.rpartition("/")[0]
        if parent and parent not in made:
            os.makedirs(f"{base}/{parent}", exist_ok=True)  # the job's own, writable folders
            made.add(parent)
        src, dst = f"{src_base}/{name}", f"{base}/{name}"
        try:
            os.link(src, dst)
        except FileExistsError:  # left by an interrupted start: replaced
            os.unlink(dst)
            os.link(src, dst)
        except FileNotFoundError:
            return False
        st = os.lstat(dst)
        if st.st_ino != ino or st.st_size != size or st.st_mtime_ns != mtime or stat.S_IMODE(st.st_mode) != _mode(executable):
            return False
    return True


def _remove_leftovers(trees: Path, age_s: float = 86400.0) -> None:
    """Delete what jobs killed while building or retiring a tree left (``.part``, ``.stale``), a day on."""
    for entry in trees.iterdir():
        with contextlib.suppress(OSError):
            if entry.name.startswith(".") and entry.name.endswith((".part", ".stale")) and \
                    time.time() - entry.stat().st_mtime > age_s:
                shutil.rmtree(entry, ignore_errors=True)


def _retire(tree: Path, inode: int) -> None:
    """Move a changed tree out of the way (if it is still the one that was checked) and delete it;
    jobs that linked its files keep their links."""
    aside = tree.with_name(f".{tree.name[:16]}.{os.urandom(3).hex()}.stale")
    with contextlib.suppress(OSError):
        if os.stat(tree).st_ino == inode:
            os.rename(tree, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _mode(executable: bool | int) -> int:
    return 0o500 if executable else 0o400


def _extract(store: Path, manifest: dict, code: Path, staged: bool = True) -> list[tuple[int, int]]:
    """Write every file of the manifest under ``code``, read-only, each checked against its sha256
    (``staged``: under a temporary name first, renamed into place once checked); returns each
    file's (inode, mtime in ns), in the manifest's order."""
    fds: dict[str, int] = {}
    made: set[str] = set()
    stamps: list[tuple[int, int]] = []
    base = str(code)
    tag = f".{os.getpid()}.part" if staged else ""
    try:
        for name, sha, executable, pack, offset, size in manifest["files"]:
            if pack not in fds:
                try:
                    fds[pack] = os.open(store / "packs" / pack, os.O_RDONLY)
                except FileNotFoundError:
                    raise SnapshotIntegrityError(f"{name}: its pack {pack} is missing from {store / 'packs'}: the store was "
                                                 "changed after submission; submit again", pack) from None
            parent = name.rpartition("/")[0]
            if parent and parent not in made:
                os.makedirs(f"{base}/{parent}", exist_ok=True)
                made.add(parent)
            target = f"{base}/{name}"
            out = os.open(target + tag, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _mode(executable))
            h = hashlib.sha256()
            try:
                done = 0
                while done < size:
                    chunk = os.pread(fds[pack], min(_CHUNK, size - done), offset + done)
                    if not chunk:
                        break
                    h.update(chunk)
                    _write_all(out, chunk)
                    done += len(chunk)
                st = os.fstat(out)
            finally:
                os.close(out)
            actual = h.hexdigest()
            if actual != sha or done != size:
                os.unlink(target + tag)
                raise SnapshotIntegrityError(
                    f"the code snapshot is corrupt: {name} read from pack {pack} ({done} of {size} bytes at offset {offset}, "
                    f"sha256 {actual[:16]}...) does not match the submitted file (sha256 {sha[:16]}...); the store "
                    f"{store} was changed after submission. The snapshot is set aside: submit again to store it anew", pack)
            if staged:
                os.replace(target + tag, target)
            stamps.append((st.st_ino, st.st_mtime_ns))
    finally:
        for fd in fds.values():
            os.close(fd)
    return stamps


def _set_aside(store: Path, digest: str, pack: str | None) -> None:
    """Mark a corrupt pack and manifest so that later submits store the tree again (nothing deleted)."""
    with contextlib.suppress(OSError):
        manifest = PackStore(store).manifest_path(digest)
        manifest.rename(manifest.with_name(manifest.name + ".corrupt"))
    with contextlib.suppress(OSError):
        if pack is not None:
            (store / "packs" / f"{pack}.corrupt").write_text("set aside by a job that found it did not match its digests\n")
