"""The SSH layer against a real OpenSSH server on 127.0.0.1:2222 (tests/cluster/ssh-remote), logging
in as a second Unix user with a key this test generates. Nothing here is faked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aifsdk import RequestError, SchedulerError
from aifsdk._profile import Ssh
from aifsdk._ssh import SSH

from conftest import REMOTE_HOME, REMOTE_PYTHON, REMOTE_USER, SSH_SCRIPT, write_ssh_config

pytestmark = pytest.mark.cluster


@pytest.fixture
def ssh(ssh_host: Path) -> SSH:
    conn = SSH(Ssh(host="aifsdk-test", config=str(ssh_host), python=REMOTE_PYTHON))
    yield conn
    conn.close()


def master_alive(conn: SSH) -> bool:
    argv = ["ssh", *conn.options(), "-O", "check", conn.spec.host]
    return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL).returncode == 0


def test_commands_run_as_the_remote_user_over_one_reused_connection(ssh: SSH) -> None:
    assert ssh.run(["id", "-un"]).stdout.strip() == REMOTE_USER
    assert master_alive(ssh)  # the master stays up for the next commands
    assert ssh.run("echo $HOME").stdout.strip() == str(REMOTE_HOME)
    failed = ssh.run(["sh", "-c", "echo oops >&2; exit 3"], check=False)
    assert failed.returncode == 3 and "oops" in failed.stderr
    with pytest.raises(SchedulerError, match="exit code 3"):
        ssh.run(["sh", "-c", "exit 3"])


def test_job_root_is_expanded_by_the_remote_shell(ssh: SSH) -> None:
    assert ssh.expand("~/aifsdk/jobs") == f"{REMOTE_HOME}/aifsdk/jobs"
    assert ssh.expand("$HOME/x") == f"{REMOTE_HOME}/x"
    with pytest.raises(RequestError, match="ssh.job_root"):
        ssh.expand("$AIFSDK_UNSET_VARIABLE_X/jobs")


def test_push_and_pull_files(ssh: SSH, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("x = 1\n")
    (src / "big.txt").write_text("y" * 10000)
    remote = ssh.expand("~/aifsdk/test-push") + f"/{os.getpid()}-{tmp_path.name}"
    ssh.push(src, f"{remote}/a")
    ssh.push(src, f"{remote}/b", link_dest=f"{remote}/a")  # unchanged files: hard links there
    a, b = Path(f"{remote}/a/pkg/mod.py"), Path(f"{remote}/b/pkg/mod.py")  # the "remote" is this machine
    assert b.read_text() == "x = 1\n" and a.stat().st_ino == b.stat().st_ino
    assert a.stat().st_uid != os.getuid()  # written by the remote user, not by us
    ssh.run(["sh", "-c", f"echo result > {remote}/b/out.txt"])
    back = tmp_path / "back"
    ssh.pull(f"{remote}/b", back)
    assert (back / "out.txt").read_text() == "result\n" and (back / "pkg" / "mod.py").exists()
    ssh.run(["rm", "-rf", remote])


@pytest.mark.exclusive
def test_a_dropped_connection_is_recovered(ssh: SSH) -> None:
    assert ssh.run(["true"]).returncode == 0 and master_alive(ssh)
    subprocess.run(["bash", str(SSH_SCRIPT), "drop"], check=True, capture_output=True)  # the server cuts every connection
    assert ssh.run(["echo", "back"]).stdout.strip() == "back"
    assert master_alive(ssh)


def test_unauthorized_key_fails_with_what_to_check(ssh_host: Path, tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    config = write_ssh_config(tmp_path, other)
    conn = SSH(Ssh(host="aifsdk-test", config=str(config)), retries=0)
    with pytest.raises(SchedulerError) as info:
        conn.run(["true"])
    text = str(info.value)
    assert "cannot reach aifsdk-test" in text and "Permission denied" in text and "`ssh aifsdk-test` works" in text


def test_remote_environment_versions_are_checked(ssh: SSH, ssh_host: Path) -> None:
    import cloudpickle

    import aifsdk

    env = ssh.environment()
    assert env["aifsdk"] == aifsdk.__version__ and env["cloudpickle"] == cloudpickle.__version__
    assert env["python"].startswith("3.")
    assert ssh.check_environment("function") == []  # the test venv matches this one
    bare = SSH(Ssh(host="aifsdk-test", config=str(ssh_host), python="/usr/bin/python3"))
    problems = bare.check_environment("command")
    named = {p.allowed: p.fix for p in problems}
    assert "aifsdk importable there" in named and "pip install aifsdk==" in named["aifsdk importable there"]
    missing = SSH(Ssh(host="aifsdk-test", config=str(ssh_host), python="/nonexistent/bin/python"))
    with pytest.raises(RequestError, match="ssh.python") as info:
        missing.environment()
    assert "/nonexistent/bin/python" in str(info.value)
