"""Disk faults heal: a full job root gives an aifsdk error naming the path, the free space and the
fix, leaves nothing half-written, and the next submit works once space is freed; a result that
cannot be written fails the job saying so; what killed submits left is cleaned by a later one.
The full disk is real: a small tmpfs mounted as the job root (root only, as in CI)."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

import aifsdk


def big_result(mb: int) -> bytes:
    return os.urandom(mb * 2**20)


def small_result() -> str:
    return "fits"


@pytest.fixture
def tmpfs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-fault tests mount a tmpfs: they need root")
        pytest.skip("mounting a tmpfs needs root")
    root = tmp_path / "small-disk"
    root.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(root)], check=True)
    monkeypatch.setenv("AIFSDK_JOB_ROOT", str(root))
    yield root
    subprocess.run(["umount", "-l", str(root)], check=False)


def fill(root: Path, leave_kb: int = 64) -> Path:
    """Fill the filesystem of ``root`` but ``leave_kb``."""
    filler = root / "filler"
    free = os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
    filler.write_bytes(b"\0" * max(free - leave_kb * 1024, 0))
    return filler


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith((".part", ".tmp", ".save_tmp")))


def test_a_full_job_root_is_told_then_heals(tmpfs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "weights_table.py").write_bytes(os.urandom(512 * 1024).hex().encode())  # 1 MB of code to store
    monkeypatch.chdir(project)
    filler = fill(tmpfs_root)
    with pytest.raises(aifsdk.StorageError) as err:
        aifsdk.submit(["true"])
    message = str(err.value)
    assert str(tmpfs_root) in message and "No space left on device" in message
    assert "MB free" in message and "Fix: free space" in message and "job_root" in message
    assert leftovers(tmpfs_root) == []  # no partial pack, manifest or index
    assert not (tmpfs_root / "local").exists() or list((tmpfs_root / "local").iterdir()) in ([], [tmpfs_root / "local" / ".cleaned"])
    filler.unlink()  # space freed: the next submit works without a hand-made fix
    assert aifsdk.submit(["true"]).result(timeout=60).exit_code == 0
    assert aifsdk.submit(["true"], snapshot=False).result(timeout=60).exit_code == 0


def test_a_result_that_cannot_be_written_fails_the_job_saying_so(tmpfs_root: Path) -> None:
    job = aifsdk.submit(big_result, 8, snapshot=False)  # 8 MB does not fit on a 3 MB disk
    with pytest.raises(aifsdk.JobFailedError) as err:
        job.result(timeout=120)
    text = str(err.value)
    assert "ResultNotWritten" in text and "could not be written" in text and "MB free there" in text
    assert "No space left on device" in text  # the OSError's traceback, chained
    assert leftovers(tmpfs_root) == []  # no half-written result
    assert aifsdk.submit(small_result, snapshot=False).result(timeout=60) == "fits"


def test_leftovers_of_killed_submits_are_cleaned_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project)
    aifsdk.submit(["true"]).result(timeout=60)
    root = Path(os.environ["AIFSDK_JOB_ROOT"])
    packs, site = root / ".snapshots" / "packs", root / "local"
    hour_ago = time.time() - 7200
    old_part, new_part, theirs = packs / ".a.pack.part", packs / ".b.pack.part", packs / ".c.pack.part"
    for path in (old_part, new_part, theirs):
        path.write_bytes(b"x" * 1000)
    os.chown(theirs, pwd.getpwnam("nobody").pw_uid, -1) if os.geteuid() == 0 else theirs.unlink()
    half, queued, fresh = site / "20260101-000000-half-aaaaaa", site / "20260101-000000-queued-bbbbbb", site / "now-cccccc"
    for folder in (half, queued, fresh):
        (folder / "code").mkdir(parents=True)
        (folder / "snapshot.json").write_text("{}")
    (queued / "4242_submitted.pkl").write_bytes(b"payload")  # its job may be running: kept
    for path in (old_part, theirs, half, queued):
        if path.exists():
            os.utime(path, (hour_ago, hour_ago))
    (site / ".cleaned").unlink(missing_ok=True)  # the once-a-day sweep is due
    (project / "new.py").write_text("x = 1\n")  # a new pack is written, so the store is swept
    aifsdk.submit(["true"]).result(timeout=60)
    assert not old_part.exists() and new_part.exists()
    assert theirs.exists() or os.geteuid() != 0  # another user's file is never touched
    assert not half.exists() and queued.exists() and fresh.exists()
