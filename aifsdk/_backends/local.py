"""Jobs without a scheduler: ``local`` (submitit's LocalExecutor: a controller process on this
machine starts the tasks) and ``debug`` (submitit's DebugExecutor: the job runs in this process)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import submitit
from submitit.local.local import LocalJob

from .base import CANCEL_MARK, Backend, Submission, mark_cancelled, record_payload_hash

SETTLE_POLL_S = 0.05
CONTROLLER = "aifsdk._controller"
CANCEL_AGAIN_S = 5.0  # a cancelled controller still running after this long is sent the interrupt again


class _CheckedLocalExecutor(submitit.LocalExecutor):
    """submitit's LocalExecutor, running aifsdk's payload check before submitit's runner, and
    starting its controller with the job's environment and working folder (``env``, ``cwd``)
    rather than this process's."""

    def __init__(self, folder: Path, python: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        super().__init__(folder, python=python)
        self._env, self._cwd = env, cwd

    @property
    def _submitit_command_str(self) -> str:
        return " ".join([self.python, "-u -m aifsdk._run", shlex.quote(str(self.folder))])

    def _submit_command(self, command: str) -> Any:
        """submitit's ``LocalExecutor._submit_command`` and ``start_controller``
        (submitit/local/local.py), with ``env`` and ``cwd`` given to the controller process, and
        aifsdk's controller (:mod:`aifsdk._controller`) started instead of submitit's."""
        record_payload_hash(self.folder)
        ntasks = self.parameters.get("tasks_per_node", 1)
        n_gpus = self.parameters.get("gpus_per_node", 0)
        visible = self.parameters.get("visible_gpus", ())
        gpus = range(n_gpus) if visible == () else visible[:n_gpus]
        setup = list(self.parameters.get("setup", ()))
        env = dict(os.environ if self._env is None else self._env)
        env.update(controller_environment(
            ntasks=ntasks, command=command, timeout_min=self.parameters.get("timeout_min", 2.0),
            signal_delay_s=self.parameters.get("signal_delay_s", 30), stderr_to_stdout=self.parameters.get("stderr_to_stdout", False),
            cuda_devices=",".join(str(k) for k in gpus), with_shell=bool(setup)))
        argv = [sys.executable, "-m", CONTROLLER, str(self.folder)]  # submitit's controller, where an interrupt is a cancel
        started: Any = " && ".join([*setup, shlex.join(argv)]) if setup else argv
        process = subprocess.Popen(started, shell=bool(setup), env=env, cwd=self._cwd)
        return LocalJob(folder=self.folder, job_id=str(process.pid), process=process, tasks=list(range(ntasks)))


def controller_environment(*, ntasks: int, command: str, timeout_min: float, signal_delay_s: int, stderr_to_stdout: bool,
                           cuda_devices: str, with_shell: bool) -> dict[str, str]:
    """The variables submitit's local controller (``python -m submitit.local._local``) reads, as
    submitit's ``start_controller`` sets them."""
    return {
        "SUBMITIT_LOCAL_NTASKS": str(ntasks), "SUBMITIT_LOCAL_COMMAND": command,
        "SUBMITIT_LOCAL_TIMEOUT_S": str(int(60 * timeout_min)), "SUBMITIT_LOCAL_SIGNAL_DELAY_S": str(int(signal_delay_s)),
        "SUBMITIT_LOCAL_NODEID": "0", "SUBMITIT_LOCAL_JOB_NUM_NODES": "1", "SUBMITIT_STDERR_TO_STDOUT": "1" if stderr_to_stdout else "",
        "SUBMITIT_EXECUTOR": "local", "CUDA_VISIBLE_DEVICES": cuda_devices, "SUBMITIT_LOCAL_WITH_SHELL": "1" if with_shell else "",
    }


class LocalBackend(Backend):
    """This machine, one node, no scheduler."""

    child_of_submitter = True

    def executor(self, sub: Submission) -> Any:
        assert self.profile is not None
        ex = _CheckedLocalExecutor(sub.folder, python=sub.python, env=sub.env, cwd=sub.cwd)
        ex.update_parameters(timeout_min=sub.minutes, tasks_per_node=sub.tasks_per_node, gpus_per_node=sub.gpus_per_node,
                             nodes=1, signal_delay_s=sub.signal_delay_s)
        if self.profile.setup:  # shell lines: submitit then starts its controller through `sh -c`
            ex.update_parameters(setup=list(sub.shell_setup))
        return ex

    def launch_environment(self, pythonpath: list[str], workdir: Path | None) -> tuple[dict[str, str], Path | None]:
        """The controller is started by this process: without setup lines (no shell, so that cancel
        reaches it) it gets the site's variables and PYTHONPATH from here, and starts in the copy of
        the working folder."""
        assert self.profile is not None
        updates: dict[str, str] = {}
        if not self.profile.setup:
            updates = dict(self.profile.env)
            if pythonpath:
                updates["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [os.environ.get("PYTHONPATH")])])
        return updates, workdir

    def state(self, job_id: str, folder: Path, handle: Any) -> tuple[str, str]:
        mark = folder / CANCEL_MARK
        if self._running(job_id, folder, handle):
            try:
                if time.time() - mark.stat().st_mtime > CANCEL_AGAIN_S:  # cancelled, and still running
                    self._interrupt(job_id, folder, handle)
            except OSError:
                pass
            return "RUNNING", ""
        if mark.exists():
            return "CANCELLED", ""
        process = getattr(handle, "_process", None)
        if process is not None and process.returncode == -signal.SIGINT:
            mark_cancelled(mark)  # interrupted while it started, before its handler was in place
            return "CANCELLED", ""
        return "ENDED", ""

    def _running(self, job_id: str, folder: Path, handle: Any) -> bool:
        process = getattr(handle, "_process", None)
        if process is not None:
            return bool(process.poll() is None)
        try:
            cmdline = Path(f"/proc/{int(job_id)}/cmdline").read_bytes()
        except (OSError, ValueError):
            return False
        # aifsdk's controller; submitit's own for jobs started by an earlier aifsdk
        return (CONTROLLER.encode() in cmdline or b"submitit.local._local" in cmdline) and str(folder).encode() in cmdline

    def settle(self, job_id: str, folder: Path, handle: Any, limit_s: float = 5.0) -> None:
        """The controller exits just after its tasks; wait so that the state reads COMPLETED."""
        deadline = time.monotonic() + limit_s
        while self._running(job_id, folder, handle) and time.monotonic() < deadline:
            time.sleep(SETTLE_POLL_S)

    def cancel(self, job_id: str, folder: Path, handle: Any) -> None:
        mark_cancelled(folder / CANCEL_MARK)
        self._interrupt(job_id, folder, handle)

    def _interrupt(self, job_id: str, folder: Path, handle: Any) -> None:
        """SIGINT to the controller, which then stops its tasks (a second one is harmless)."""
        process = getattr(handle, "_process", None)
        if process is not None:
            process.send_signal(signal.SIGINT)
        elif self._running(job_id, folder, handle):
            os.kill(int(job_id), signal.SIGINT)


class DebugBackend(Backend):
    """This process: the job runs when its result is asked for."""

    in_process = True

    def executor(self, sub: Submission) -> Any:
        return submitit.DebugExecutor(sub.folder)

    def state(self, job_id: str, folder: Path, handle: Any) -> tuple[str, str]:
        return ("COMPLETED" if handle is not None and handle.state == "DONE" else "PENDING"), ""

    def cancel(self, job_id: str, folder: Path, handle: Any) -> None:
        if handle is not None:
            handle.cancel()
