"""The `aifsdk` command on the local site: output and exit codes a shell user relies on."""

from __future__ import annotations

import json
import subprocess
import sys


def aifsdk(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aifsdk", *args], capture_output=True, text=True, timeout=timeout)


def test_plan_prints_script_and_json() -> None:
    out = aifsdk("plan", "--time", "90min", "--", "echo", "hi")
    assert out.returncode == 0, out.stderr
    assert "time:" in out.stdout and "01:30:00" in out.stdout and "--- script ---" in out.stdout
    data = json.loads(aifsdk("plan", "--json", "--", "echo", "hi").stdout)
    assert data["kind"] == "command" and data["resources"]["time"] == "01:00:00" and data["site"] == "local"


def test_bad_request_exits_2_and_names_every_problem() -> None:
    out = aifsdk("submit", "--nodes", "0", "--time", "soon", "--extra", "tiem=3", "--", "echo", "x")
    assert out.returncode == 2
    for fragment in ("--nodes 0", "--time soon", "--extra tiem=3", "did you mean --time", "nothing was submitted"):
        assert fragment in out.stderr, fragment
    assert "nodes=" not in out.stderr and "time=" not in out.stderr  # the command speaks in flags


def test_cli_fixes_name_flags() -> None:
    out = aifsdk("plan", "--site", "lumi-g", "--gpus-per-node", "9", "--", "true")
    assert out.returncode == 2
    assert "--gpus-per-node 8 (or less)" in out.stderr and "pass --account ..." in out.stderr
    assert "account=" not in out.stderr and "gpus_per_node" not in out.stderr


def test_cli_names_the_qos_that_allows_the_time() -> None:
    """MeluXina's default QoS allows 48 h, QoS long 144 h: the fix names long as a flag."""
    out = aifsdk("plan", "--site", "meluxina-gpu", "-A", "p200301", "--qos", "default", "--time", "72h", "--", "true")
    assert out.returncode == 2
    assert "--time 72h" in out.stderr and "2-00:00:00 with QoS default" in out.stderr and "use --qos long" in out.stderr
    assert "qos=" not in out.stderr


def test_missing_command_exits_2() -> None:
    assert aifsdk("submit").returncode == 2


def test_unknown_job_exits_4() -> None:
    out = aifsdk("status", "123456789")
    assert out.returncode == 4 and "no aifsdk job" in out.stderr


def test_submit_wait_passes_the_exit_code_through() -> None:
    ok = aifsdk("submit", "--wait", "--", "bash", "-c", "echo fine")
    assert ok.returncode == 0 and ok.stdout.strip().isdigit()
    bad = aifsdk("submit", "--wait", "--", "bash", "-c", "exit 9")
    assert bad.returncode == 9
    assert "exited with code 9" in bad.stderr


def test_sites_lists_the_builtin_profiles() -> None:
    rows = json.loads(aifsdk("sites", "--json").stdout)
    names = {r["name"] for r in rows}
    assert {"local", "debug", "slurm"} <= names
    assert all(r["status"] != "invalid" for r in rows)


def test_plan_shows_budget_warnings_and_strict_refuses_them() -> None:
    """A CPU-only job on LUMI-G's node-exclusive standard-g runs there, billed whole nodes: the plan
    warns and names the cheaper partition; --strict makes it an error (exit 2, nothing submitted)."""
    request = ("--site", "lumi-g", "-p", "standard-g", "-A", "project_465001926", "-t", "1h", "--", "echo", "hi")
    out = aifsdk("plan", *request)
    assert out.returncode == 0, out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith("WARNING:")]
    assert "--partition standard-g" in line and "--partition small-g" in line  # the command's words
    data = json.loads(aifsdk("plan", "--json", *request).stdout)
    assert [w["param"] for w in data["warnings"]] == ["partition"] and "small-g" in data["warnings"][0]["cheaper"]
    strict = aifsdk("submit", "--strict", *request)
    assert strict.returncode == 2 and "strict" in strict.stderr and "nothing was submitted" in strict.stderr


def test_every_listing_survives_a_closed_pipe() -> None:
    """`aifsdk sites | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    for args in ("sites", "sites show lumi-g", "jobs --limit 0", "plan -- echo hi"):
        out = subprocess.run(f"{sys.executable} -m aifsdk {args} | head -c 1 >/dev/null", shell=True, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr, (args, out.stderr)


def test_logs_follow_merges_the_tasks_of_a_local_job_with_rank_and_host() -> None:
    import socket

    sub = aifsdk("submit", "--tasks-per-node", "2", "--", "bash", "-c", "echo out-$RANK; echo err-$RANK >&2")
    assert sub.returncode == 0, sub.stderr
    assert "waits until the job ends" in sub.stderr  # said before the wait, not after
    job = sub.stdout.strip()
    followed = aifsdk("logs", "-f", job)
    assert followed.returncode == 0, followed.stderr
    host = socket.gethostname()
    assert sorted(followed.stdout.splitlines()) == [f"[0 {host}] err-0", f"[0 {host}] out-0", f"[1 {host}] err-1", f"[1 {host}] out-1"]
    bad = aifsdk("logs", "-f", "--task", "2", job)
    assert bad.returncode == 2 and "--task 2" in bad.stderr and "from 0 to 1" in bad.stderr
