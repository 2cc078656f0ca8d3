"""Daily use on the real local cluster: following a 2-node job's logs, and the confirmation asked
in a real terminal (a pty) before a costly submit."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import aifsdk

from conftest import SSH_SCRIPT

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]

TALKER = ("for i in 1 2 3; do echo out-$i-rank$RANK-$SLURMD_NODENAME; echo err-$i-rank$RANK-$SLURMD_NODENAME >&2; sleep 1; done")


def aifsdk_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aifsdk", *args], capture_output=True, text=True, timeout=timeout)


def _prefixed(text: str) -> dict[tuple[str, str], list[str]]:
    """[rank host] line -> {(rank, host): [line, ...]}"""
    out: dict[tuple[str, str], list[str]] = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\[(\d+) (\S+)\] (.*)", line)
        assert m, f"a line without its [rank host] prefix: {line!r}"
        out.setdefault((m.group(1), m.group(2)), []).append(m.group(3))
    return out


def test_logs_follow_every_task_of_a_two_node_job_until_it_ends() -> None:
    job = aifsdk.submit(["bash", "-c", TALKER], site="slurm", nodes=2, time=5)
    followed = aifsdk_cli("logs", "-f", job.job_id)  # started while the job is queued or running; returns at its end
    assert followed.returncode == 0, followed.stderr
    assert job.done()
    by_task = _prefixed(followed.stdout)
    assert {rank for rank, _ in by_task} == {"0", "1"}
    hosts = {host for _, host in by_task}
    assert hosts == {"n1", "n2"}, by_task  # one task per node, each named by its own host
    for (rank, host), lines in by_task.items():
        for i in (1, 2, 3):  # stdout and stderr merged, in each stream's order
            assert f"out-{i}-rank{rank}-{host}" in lines and f"err-{i}-rank{rank}-{host}" in lines
        outs = [ln for ln in lines if ln.startswith("out-")]
        assert outs == sorted(outs)
    assert "submitit INFO" not in followed.stdout  # submitit's own lines are hidden ...
    everything = aifsdk_cli("logs", "-f", "--all", job.job_id)
    assert "submitit INFO" in everything.stdout  # ... unless --all
    one = _prefixed(aifsdk_cli("logs", "-f", "--task", "1", job.job_id).stdout)
    assert {rank for rank, _ in one} == {"1"} and len(next(iter(one.values()))) == 6


def test_submit_follow_streams_then_exits_with_the_command_code() -> None:
    out = aifsdk_cli("submit", "--site", "slurm", "--time", "5", "--follow", "--", "bash", "-c", "echo step-1; echo step-2; exit 4")
    assert out.returncode == 4, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].isdigit()  # the job id first, then its output as it comes
    shown = [ln.split("] ", 1)[1] for ln in lines[1:]]
    assert shown[:2] == ["step-1", "step-2"], shown  # submitit's error report of the exit follows them (not hidden)


def _in_a_terminal(args: list[str], answer: str | None, env: dict[str, str], timeout: float = 120,
                   replies: tuple[tuple[bytes, str], ...] = ()) -> tuple[int, str]:
    """Run the command with a real pty as its terminal; type ``answer`` when it asks, and each
    reply's text once its trigger has been shown."""
    replies = ((b"Submit? [y/N]", answer),) + replies if answer is not None else replies
    master, slave = pty.openpty()
    # a session of its own with the pty as its controlling terminal, as a login shell has (salloc needs one)
    proc = subprocess.Popen([sys.executable, "-m", "aifsdk", *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen = b""
    pending = list(replies)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if pending and pending[0][0] in seen:
            os.write(master, pending.pop(0)[1].encode() + b"\n")
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, seen.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def terminal_env(clean_env: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["AIFSDK_CONFIRM_ABOVE"] = "5"  # GPU-h; the request below may cost 2 nodes x 2 GPUs x 2 h = 8
    return env


REQUEST = ["submit", "--site", "slurm", "-N", "2", "--gpus-per-node", "2", "-t", "2h", "--", "true"]


def test_a_costly_submit_asks_in_a_terminal_and_no_submits_nothing(terminal_env: dict[str, str]) -> None:
    jobs = Path(terminal_env["AIFSDK_JOB_ROOT"])
    code, screen = _in_a_terminal(REQUEST, "n", terminal_env)
    assert "cost:" in screen and "8 GPU-h at most" in screen
    assert "nodes:         2" in screen and "gpus_per_node: 2" in screen  # the resolved request, then its cost
    assert "more than 5 GPU-h" in screen and "Submit? [y/N]" in screen
    assert code == 1 and "not submitted" in screen
    assert not jobs.exists() or not any(jobs.rglob("aifsdk-job.json"))


def test_a_costly_submit_goes_on_with_yes_typed_or_given(terminal_env: dict[str, str]) -> None:
    code, screen = _in_a_terminal(REQUEST, "y", terminal_env)
    assert code == 0 and "Submit? [y/N]" in screen
    job_id = re.search(r"^(\d+)$", screen, re.M)
    assert job_id, screen
    aifsdk.wait([aifsdk.Job.attach(job_id.group(1))], timeout=240)
    code, screen = _in_a_terminal([*REQUEST[:1], "--yes", *REQUEST[1:]], None, terminal_env)
    assert code == 0 and "Submit?" not in screen and "cost:" in screen  # shown, not asked


def test_a_cheap_submit_and_a_script_are_never_asked(terminal_env: dict[str, str]) -> None:
    cheap = ["submit", "--site", "slurm", "-t", "10", "--", "true"]  # 1 node, no GPU: 0 GPU-h
    code, screen = _in_a_terminal(cheap, None, terminal_env)
    assert code == 0 and "cost:" in screen and "Submit?" not in screen
    piped = subprocess.run([sys.executable, "-m", "aifsdk", *REQUEST], capture_output=True, text=True, env=terminal_env,
                           stdin=subprocess.DEVNULL, timeout=120)
    assert piped.returncode == 0 and "Submit?" not in piped.stderr and piped.stdout.strip().isdigit()


def test_shell_opens_an_interactive_shell_on_a_compute_node(terminal_env: dict[str, str]) -> None:
    code, screen = _in_a_terminal(
        ["shell", "--site", "slurm", "--time", "5"], None, terminal_env, timeout=180,
        replies=((b"Granted job allocation", "echo on-node=$SLURMD_NODENAME in-job=$SLURM_JOB_ID site=$AIFSDK_SITE tty=$(tty); exit 3"),),
    )
    assert "salloc --job-name=shell --partition=debug --nodes=1" in screen and "srun --pty" in screen  # what runs, shown first
    assert "cost:" in screen  # the request and its cost, as submit shows them
    found = re.search(r"on-node=(n[12]) in-job=(\d+) site=slurm tty=(/dev/pts/\d+)", screen)
    assert found, screen  # a shell on a compute node, inside the allocation, on a terminal
    assert code == 3  # the shell's own exit status comes back
    assert "Relinquishing job allocation" in screen or "revoked" in screen


def test_jupyter_starts_on_a_compute_node_and_answers_through_the_tunnel(ssh_host: Path) -> None:
    out = aifsdk_cli("jupyter", "--site", "slurm", "--time", "10", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    tunnel = None
    try:
        assert info["host"] in ("n1", "n2")  # the compute node, where the job runs
        printed = shlex.split(info["tunnel"])
        assert printed[:4] == ["ssh", "-N", "-L", f"{info['local_port']}:{info['host']}:{info['port']}"]
        # This machine's own sshd does not let tests in as root: the same forward goes through the
        # test login node (127.0.0.1:2222), as it would through a site's login node.
        # The test login node lets one key in; other SSH tests may have put theirs there since.
        subprocess.run(["bash", str(SSH_SCRIPT), "authorize", f"{ssh_host.parent / 'id_ed25519'}.pub"], check=True, capture_output=True)
        tunnel = subprocess.Popen([*printed[:4], "-F", str(ssh_host), "-o", "ExitOnForwardFailure=yes", "aifsdk-test"],
                                  stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://localhost:{info['local_port']}"
        status = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={info['token']}", timeout=5) as answer:
                    status = json.loads(answer.read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert tunnel.poll() is None, tunnel.stderr.read().decode() if tunnel.stderr else ""
                time.sleep(0.5)
        assert status is not None and "started" in status  # Jupyter's own REST API answered, over the tunnel
        assert info["url"] == f"{base}/?token={info['token']}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/status", timeout=5)  # without the token: refused
        assert refused.value.code == 403
    finally:
        if tunnel is not None:
            tunnel.terminate()
            tunnel.wait(timeout=10)
        aifsdk_cli("cancel", str(info["job_id"]))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_requeued_job_keeps_its_tracker_run() -> None:
    """Slurm requeues the job (as after a node failure or a preemption): the second attempt runs
    the script again and gets the same W&B run ID, and the MLflow run ID it was given."""
    report = ("echo attempt-${SLURM_RESTART_COUNT:-0} wandb=$WANDB_RUN_ID resume=$WANDB_RESUME mlflow=$MLFLOW_RUN_ID; "
              "if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then sleep 120; fi")
    job = aifsdk.submit(["bash", "-c", report], site="slurm", time=10, mlflow_run_id="0123456789abcdef0123456789abcdef")
    deadline = time.time() + 240
    while "attempt-0" not in (job.stdout() or "") and time.time() < deadline:
        time.sleep(0.5)
    assert "attempt-0" in (job.stdout() or ""), job.stderr()
    subprocess.run(["scontrol", "requeue", job.job_id], check=True)
    deadline = time.time() + 480  # Slurm makes a requeued job eligible again about 2 minutes later
    while "attempt-1" not in (job.stdout() or "") and time.time() < deadline:
        time.sleep(1)
    lines = [ln for ln in (job.stdout() or "").splitlines() if ln.startswith("attempt-")]
    assert [ln.split()[0] for ln in lines] == ["attempt-0", "attempt-1"], lines
    first, second = (dict(kv.split("=", 1) for kv in ln.split()[1:]) for ln in lines)
    assert first == second  # the same tracker runs across the requeue
    assert first["wandb"] == job.folder.name and first["resume"] == "allow"
    assert first["mlflow"] == "0123456789abcdef0123456789abcdef"
    assert aifsdk.submit(["true"], site="slurm", time=5).folder.name != job.folder.name  # and a new submission, a new run


@pytest.mark.slow
def test_logs_follow_a_job_submitted_over_ssh(ssh_host: Path) -> None:
    """The job runs as the SSH test user on n1 and n2; its logs come back through the usual pull."""
    from conftest import REMOTE_PYTHON

    site_dir = Path(os.environ["AIFSDK_CONFIG_DIR"]) / "site"
    site_dir.mkdir(parents=True, exist_ok=True)
    (site_dir / "followssh.yaml").write_text(
        "title: the local test cluster over SSH\nexecutor: slurm\ndiscover: true\ndefault_time: 10\n"
        f"ssh:\n  host: aifsdk-test\n  config: {ssh_host}\n  python: {REMOTE_PYTHON}\n  job_root: ~/aifsdk/jobs\n"
    )
    subprocess.run(["bash", str(SSH_SCRIPT), "authorize", f"{ssh_host.parent / 'id_ed25519'}.pub"], check=True, capture_output=True)
    job = aifsdk.submit(["bash", "-c", "echo remote-rank$RANK-$SLURMD_NODENAME; sleep 2; echo done-rank$RANK"],
                        site="followssh", nodes=2, time=5)
    followed = aifsdk_cli("logs", "-f", job.job_id)
    assert followed.returncode == 0, followed.stderr
    by_task = _prefixed(followed.stdout)
    assert {rank for rank, _ in by_task} == {"0", "1"}
    for (rank, host), lines in by_task.items():
        assert lines == [f"remote-rank{rank}-{host}", f"done-rank{rank}"], by_task
