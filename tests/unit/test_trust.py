"""aifsdk runs only what the user owns: private folders whatever the umask, a folder per user on a
shared job root, registry links followed only to the user's own folders, nothing unpickled to
answer a state. Real files, real processes; the two-user tests use two real Unix accounts
(created with useradd; they need root, as CI has)."""

from __future__ import annotations

import json
import os
import pickle
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

import aifsdk
from aifsdk._paths import aifsdk_home

REPO = Path(__file__).resolve().parents[2]
NOBODY = pwd.getpwnam("nobody").pw_uid


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def double(x: int) -> int:
    return 2 * x


class RunsCode:
    """Unpickling this runs a command: what an attacker's result file would hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def fake_job(folder: Path, job_id: str, marker: Path) -> Path:
    """A finished local job folder whose result, once unpickled, creates ``marker``."""
    folder.mkdir(mode=0o700, parents=True)
    record = {"schema": 2, "job_id": job_id, "site": "local", "executor": "local", "kind": "function", "name": "x",
              "folder": str(folder), "tasks": 1}
    (folder / "aifsdk-job.json").write_text(json.dumps(record))
    (folder / f"{job_id}_0_result.pkl").write_bytes(pickle.dumps(("success", RunsCode(marker))))
    return folder


def link(job_id: str, folder: Path) -> None:
    reg = aifsdk_home() / "registry" / "local"
    reg.mkdir(parents=True, exist_ok=True, mode=0o700)
    (reg / job_id).symlink_to(folder)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aifsdk", *args], capture_output=True, text=True, timeout=120)


def test_folders_are_private_whatever_the_umask() -> None:
    old = os.umask(0o002)
    try:
        job = aifsdk.submit(double, 21, name="umask")
        assert job.result(timeout=60) == 42
    finally:
        os.umask(old)
    root = Path(os.environ["AIFSDK_JOB_ROOT"])
    home = aifsdk_home()
    for folder in (home, home / "registry", home / "registry" / "local", home / "cache", root, root / "local",
                   root / ".snapshots", job.folder):
        assert mode(folder) == 0o700, folder


def test_a_group_writable_home_is_refused_naming_the_fix() -> None:
    home = aifsdk_home()
    home.mkdir(exist_ok=True)
    os.chmod(home, 0o775)
    with pytest.raises(aifsdk.StorageError) as err:
        aifsdk.submit(double, 1)
    assert str(home) in str(err.value) and f"chmod 700 {home}" in str(err.value) and err.value.path == home
    assert not (home / "registry").exists()


def test_a_job_root_of_someone_else_gets_a_folder_per_user() -> None:
    shared = Path(os.environ["AIFSDK_JOB_ROOT"])
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a shared scratch
    job = aifsdk.submit(double, 4)
    assert job.result(timeout=60) == 8
    mine = shared / pwd.getpwuid(os.getuid()).pw_name
    assert mine in job.folder.parents and mode(mine) == 0o700
    assert (mine / ".snapshots").is_dir() and not (shared / ".snapshots").exists()


def test_a_user_folder_made_by_someone_else_is_refused() -> None:
    shared = Path(os.environ["AIFSDK_JOB_ROOT"])
    shared.mkdir()
    os.chmod(shared, 0o1777)
    planted = shared / pwd.getpwuid(os.getuid()).pw_name
    planted.mkdir(mode=0o777)
    os.chown(planted, NOBODY, -1)
    with pytest.raises(aifsdk.StorageError, match="belongs to nobody") as err:
        aifsdk.submit(double, 1)
    assert err.value.path == planted and not any(planted.iterdir())


def test_registry_links_to_folders_of_others_are_not_followed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    theirs = fake_job(tmp_path / "theirs", "999001", marker)
    for path in (theirs, *theirs.iterdir()):
        os.chown(path, NOBODY, -1)
    link("999001", theirs)
    out = cli("status", "999001")
    assert out.returncode == 4 and "no aifsdk job" in out.stderr
    assert cli("jobs", "--json").stdout.strip() == "[]"
    with pytest.raises(aifsdk.StorageError, match="belongs to nobody"):
        aifsdk.Job.attach(theirs)  # by its folder: refused, naming the owner
    assert not marker.exists()


def test_status_and_jobs_unpickle_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    link("999002", fake_job(tmp_path / "mine", "999002", marker))
    out = cli("status", "999002")
    assert out.returncode == 0 and out.stdout.split() == ["999002", "COMPLETED"], out
    rows = json.loads(cli("jobs", "--json").stdout)
    assert [r["state"] for r in rows] == ["COMPLETED"]
    assert not marker.exists()  # the state came from the head of the file, not from unpickling it


def test_a_damaged_result_is_a_clear_failure(tmp_path: Path) -> None:
    folder = fake_job(tmp_path / "mine", "999003", tmp_path / "ran")
    result = folder / "999003_0_result.pkl"
    result.write_bytes(result.read_bytes()[:20])  # cut short
    job = aifsdk.Job.attach(folder)
    assert job.state == "COMPLETED"
    with pytest.raises(aifsdk.JobFailedError, match="result file of task 0 is damaged"):
        job.result()


def test_a_job_refuses_a_store_it_does_not_own() -> None:
    from aifsdk._launch import _take_snapshot, make_job_folder
    from aifsdk._pack import SnapshotIntegrityError, materialise

    plan = aifsdk.plan(double, 1, snapshot=str(REPO / "tests"))
    make_job_folder(plan, plan.folder)
    _take_snapshot(plan)
    store = Path(os.environ["AIFSDK_JOB_ROOT"]) / ".snapshots"
    os.chown(store, NOBODY, -1)
    with pytest.raises(SnapshotIntegrityError, match="does not run code from it"):
        materialise(plan.folder)
    assert not any((plan.folder / "code").iterdir())


# -- two real users on one shared job root --------------------------------------------------------
USERS = ("aifsdk-alice", "aifsdk-bob")
# The system's Python, which every user may run, with this checkout and this environment's packages
# on its path (this interpreter may live in a folder only its owner can enter)
PYTHON = "/usr/bin/python3"
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


@pytest.fixture(scope="module")
def two_users() -> tuple[str, str]:
    if os.geteuid() != 0 or shutil.which("useradd") is None or shutil.which("runuser") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the two-user tests need root and useradd/runuser")
        pytest.skip("needs root and useradd/runuser (two real Unix users)")
    same = subprocess.run([PYTHON, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    if same.stdout.strip() != str(sys.version_info[:2]):
        pytest.skip(f"{PYTHON} is not Python {sys.version_info[0]}.{sys.version_info[1]}, so it cannot use this environment's packages")
    for user in USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", user], check=True)
    return USERS


def as_user(user: str, root: Path, code: str) -> subprocess.CompletedProcess[str]:
    home = Path(pwd.getpwnam(user).pw_dir)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "AIFSDK_HOME": str(home / ".aifsdk"),
           "AIFSDK_JOB_ROOT": str(root), "PYTHONPATH": os.pathsep.join([str(REPO), SITE_PACKAGES])}
    return subprocess.run(["runuser", "-u", user, "--", PYTHON, "-c", code], capture_output=True, text=True,
                          timeout=180, env=env, cwd="/")


SUBMIT = """
import os, pathlib, aifsdk
proj = pathlib.Path.home() / "proj"
proj.mkdir(exist_ok=True)
(proj / "pyproject.toml").write_text("")
(proj / "who.py").write_text("import getpass\\nprint('code of', getpass.getuser())\\n")
os.chdir(proj)
try:
    job = aifsdk.submit(["python3", "who.py"], snapshot=str(proj))
    said = [ln for ln in job.result(timeout=120).stdout.splitlines() if ln.startswith("code of")]
    print(said[0].strip(), "|", job.folder)
except aifsdk.StorageError as exc:
    print("REFUSED", exc)
"""


@pytest.fixture
def shared_root(two_users: tuple[str, str]) -> Path:
    for user in two_users:  # what an earlier run left in their homes
        for leftover in (".aifsdk", "proj"):
            shutil.rmtree(Path(pwd.getpwnam(user).pw_dir) / leftover, ignore_errors=True)
    root = Path(tempfile.mkdtemp(prefix="aifsdk-shared-", dir="/tmp"))
    os.chmod(root, 0o1777)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_two_users_on_a_shared_root_each_run_their_own_code(two_users: tuple[str, str], shared_root: Path) -> None:
    alice, bob = two_users
    # bob plants a world-writable snapshot store and a user folder for alice before she ever submits
    planted = as_user(bob, shared_root, f"""
import os, pathlib
root = pathlib.Path({str(shared_root)!r})
for d in (root / ".snapshots" / "trees", root / "{alice}"):
    d.mkdir(parents=True); os.chmod(d, 0o777)
(root / "{alice}" / ".snapshots").mkdir(mode=0o777)
""")
    assert planted.returncode == 0, planted.stderr
    refused = as_user(alice, shared_root, SUBMIT)
    assert refused.stdout.startswith("REFUSED"), refused
    assert f"{shared_root / alice} belongs to {bob}" in refused.stdout and "Fix:" in refused.stdout
    # bob's code never ran as alice: nothing of alice's went into his folders
    assert not any(p.stat().st_uid == pwd.getpwnam(alice).pw_uid for p in shared_root.rglob("*"))
    # once the planted folder is gone (an admin removed it), alice runs her own code, in her own folder
    shutil.rmtree(shared_root / alice)
    ran = as_user(alice, shared_root, SUBMIT)
    assert ran.stdout.startswith(f"code of {alice} | {shared_root / alice}/"), ran
    assert mode(shared_root / alice) == 0o700
    # bob submits too: his own folder, his own code; he cannot read alice's job folders
    ran = as_user(bob, shared_root, SUBMIT)
    assert ran.stdout.startswith(f"code of {bob} | {shared_root / bob}/"), ran
    peek = as_user(bob, shared_root, f"import os; os.listdir({str(shared_root / alice)!r})")
    assert "PermissionError" in peek.stderr


def test_a_registry_entry_planted_for_another_user_runs_nothing(two_users: tuple[str, str], shared_root: Path) -> None:
    alice, bob = two_users
    marker = shared_root / "bob-code-ran"
    made = as_user(bob, shared_root, f"""
import json, os, pickle, pathlib
folder = pathlib.Path({str(shared_root)!r}) / "bobjob"
folder.mkdir(mode=0o700)
class Evil:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
(folder / "aifsdk-job.json").write_text(json.dumps({{"job_id": "999004", "site": "local", "executor": "local",
    "kind": "function", "name": "x", "folder": str(folder), "tasks": 1}}))
(folder / "999004_0_result.pkl").write_bytes(pickle.dumps(("success", Evil())))
os.chmod(folder, 0o755)
""")
    assert made.returncode == 0, made.stderr
    reg = Path(pwd.getpwnam(alice).pw_dir) / ".aifsdk" / "registry" / "local"
    as_user(alice, shared_root, f"import pathlib; pathlib.Path({str(reg)!r}).mkdir(parents=True, exist_ok=True, mode=0o700)")
    (reg / "999004").symlink_to(shared_root / "bobjob")  # the tampered entry
    status = as_user(alice, shared_root, "import sys, aifsdk.cli; sys.exit(aifsdk.cli.run(['status', '999004']))")
    assert status.returncode == 4 and "no aifsdk job" in status.stderr, status
    result = as_user(alice, shared_root, f"""
import aifsdk
try:
    aifsdk.Job.attach({str(shared_root / "bobjob")!r}).result()
except aifsdk.StorageError as exc:
    print("REFUSED", exc)
""")
    assert result.stdout.startswith("REFUSED") and f"belongs to {bob}" in result.stdout, result
    assert not marker.exists()
