"""Ctrl-C on the `local` site, typed into a real terminal (a pty): the kernel sends SIGINT to the
terminal's foreground process group, which holds the submitting process, the local controller and
the job's tasks. The job must end CANCELLED, and the command say so, exit 130 and name the logs.
Each step waits for what it needs to see (the job's own output), not for a fixed time."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aifsdk

from conftest import processes_with

HERE = Path(__file__).resolve().parents[1]  # tests/, for jobfns


class Terminal:
    """A process with a pty as its controlling terminal, in a session of its own (as a login shell)."""

    def __init__(self, argv: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.screen = b""

    def read_until(self, done: Callable[[], bool], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                self.screen += chunk
        assert done(), f"not seen in {timeout} s; the terminal shows:\n{self.text}"

    @property
    def text(self) -> str:
        return self.screen.decode(errors="replace").replace("\r\n", "\n")

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal's interrupt character: SIGINT to its foreground group

    def finish(self, timeout: float = 120) -> int:
        self.read_until(lambda: self.proc.poll() is not None, timeout)
        try:
            while True:  # what is left on the screen
                ready, _, _ = select.select([self.master], [], [], 0.2)
                chunk = os.read(self.master, 4096) if ready else b""
                if not chunk:
                    break
                self.screen += chunk
        except OSError:
            pass
        os.close(self.master)
        return self.proc.wait()


def _job_id_on(term: Terminal) -> str:
    """The job id the command prints on a line of its own once the job is submitted."""
    found: list[str] = []

    def shown() -> bool:
        found[:] = [ln.strip() for ln in term.text.splitlines() if ln.strip().isdigit()]
        return bool(found)

    term.read_until(shown)
    return found[0]


def _started(job_id: str, word: str) -> Callable[[], bool]:
    job = aifsdk.Job.attach(job_id)
    return lambda: word in (job.stdout() or "")


def test_ctrl_c_on_a_local_submit_cancels_the_job_and_exits_130() -> None:
    marker = f"job-{uuid.uuid4().hex[:12]}"
    term = Terminal([sys.executable, "-m", "aifsdk", "submit", "--yes", "--", "python3", "-c",
                     "import sys, time; print('started', flush=True); time.sleep(120)", marker])
    job_id = _job_id_on(term)
    term.read_until(_started(job_id, "started"))  # the command runs
    term.ctrl_c()
    code = term.finish()
    screen = term.text
    job = aifsdk.Job.attach(job_id)
    assert code == 130, screen
    assert f"job {job_id} CANCELLED" in screen, screen
    assert str(job.log_paths()[0]) in screen and f"aifsdk logs {job_id}" in screen  # where the logs are
    assert job.state == "CANCELLED"
    assert processes_with(marker) == [] and processes_with(str(job.folder)) == []  # nothing of the job runs on


def test_ctrl_c_on_a_python_script_waiting_on_a_local_job_cancels_it() -> None:
    script = ("import aifsdk\n"
              "from jobfns import sleep_then\n"
              "job = aifsdk.submit(sleep_then, 120, 'never', name='interrupted')\n"
              "print(job.job_id, flush=True)\n"
              "job.result()\n")
    term = Terminal([sys.executable, "-c", script])
    job_id = _job_id_on(term)
    job = aifsdk.Job.attach(job_id)
    term.read_until(lambda: "Loading pickle" in (job.stderr() or "") + (job.stdout() or ""))  # the task runs
    term.ctrl_c()
    code = term.finish()
    assert code != 0 and "KeyboardInterrupt" in term.text, term.text  # the script itself stops as Python does
    deadline = time.monotonic() + 30
    while job.state == "RUNNING" and time.monotonic() < deadline:  # the controller stops its tasks, then exits
        time.sleep(0.1)
    assert job.state == "CANCELLED"
    assert processes_with(str(job.folder)) == []  # neither the controller nor the task runs on
