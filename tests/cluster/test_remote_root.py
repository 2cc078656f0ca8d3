"""The job root of a site reached over SSH is trusted like a job root here: on a shared root (a
1777 folder on the cluster, as a project's scratch can be) the cluster account gets a folder of its
own under it, created 0700 over SSH; a folder someone else made there first, or one its group or
others may write to, is refused, naming it and the fix, before anything is sent or queued.

For real: the OpenSSH server on 127.0.0.1:2222 and the Unix user aifsdk-remote
(tests/cluster/ssh-remote), submitting to the local Slurm cluster. The "cluster" is this machine,
so the test makes the shared root as root and looks at what the remote user's submit made there."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_remote import remote_site

import aifsdk

from conftest import REMOTE_USER, squeue_ids

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A 1777 folder owned by root, which the remote user may enter (unlike pytest's own tmp folders)."""
    root = Path(tempfile.mkdtemp(prefix="aifsdk-shared-", dir="/tmp"))
    root.chmod(0o1777)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def site_on(config: Path, job_root: Path) -> str:
    return remote_site(config, name="sharedssh", job_root=str(job_root))


def command(site: str, name: str) -> aifsdk.Plan:
    return aifsdk.plan(["python3", "-c", "import getpass; print('ran as', getpass.getuser())"], site=site, time=5, name=name)


def test_a_shared_remote_root_gets_a_private_folder_of_the_remote_user(ssh_host: Path, shared_root: Path) -> None:
    site = site_on(ssh_host, shared_root)
    plan = command(site, "shared-root-ok")
    mine = shared_root / REMOTE_USER
    assert plan.folder.parent.parent == mine and not mine.exists()  # planning writes nothing there
    job = plan.submit()
    assert f"ran as {REMOTE_USER}" in job.result(timeout=180).stdout
    remote = pwd.getpwnam(REMOTE_USER).pw_uid
    for folder in (mine, mine / site, mine / ".snapshots", plan.folder):
        st = folder.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (remote, 0o700), (folder, st.st_uid, oct(st.st_mode))


@pytest.mark.parametrize("owner, mode, said", [
    ("root", 0o755, f"belongs to root, not to you ({REMOTE_USER})"),
    (REMOTE_USER, 0o775, "may be written by its group (mode 0775)"),
    (REMOTE_USER, 0o777, "may be written by others (mode 0777)"),
], ids=["someone-elses", "group-writable", "world-writable"])
def test_a_remote_folder_others_made_or_may_write_to_is_refused(ssh_host: Path, shared_root: Path, owner: str, mode: int,
                                                                  said: str) -> None:
    site = site_on(ssh_host, shared_root)
    mine = shared_root / REMOTE_USER
    mine.mkdir()
    os.chown(mine, pwd.getpwnam(owner).pw_uid, -1)
    mine.chmod(mode)
    plan = command(site, "shared-root-refused")
    assert plan.folder.parent.parent == mine
    with pytest.raises(aifsdk.StorageError) as err:
        plan.submit()
    message = str(err.value)
    assert f"on aifsdk-test, the job root {mine} {said}" in message and "Fix:" in message, message
    if owner == REMOTE_USER:
        assert f"ssh aifsdk-test chmod 700 {mine}" in message, message
    assert list(mine.iterdir()) == [], "something was sent into the refused folder"
    assert not squeue_ids(name="shared-root-refused")


def test_the_remote_users_own_private_root_is_used_as_it_is(ssh_host: Path, shared_root: Path) -> None:
    own = shared_root / "own-root"
    subprocess.run(["runuser", "-u", REMOTE_USER, "--", "mkdir", "-m", "700", str(own)], check=True)
    site = site_on(ssh_host, own)
    plan = command(site, "own-root")
    assert plan.folder.parent.parent == own
    assert f"ran as {REMOTE_USER}" in plan.submit().result(timeout=180).stdout
