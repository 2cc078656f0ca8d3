"""Jobs without a scheduler: ``local`` (submitit's LocalExecutor: a controller process on this
machine starts the tasks) and ``debug`` (submitit's DebugExecutor: the job runs in this process)."""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path
from typing import Any

import submitit

from .base import CANCEL_MARK, Backend, Submission, record_payload_hash

SETTLE_POLL_S = 0.05


class _CheckedLocalExecutor(submitit.LocalExecutor):
    """submitit's LocalExecutor, running aifsdk's payload check before submitit's runner."""

    @property
    def _submitit_command_str(self) -> str:
        return " ".join([self.python, "-u -m aifsdk._run", shlex.quote(str(self.folder))])

    def _submit_command(self, command: str) -> Any:
        record_payload_hash(self.folder)
        return super()._submit_command(command)


class LocalBackend(Backend):
    """This machine, one node, no scheduler."""

    child_of_submitter = True

    def executor(self, sub: Submission) -> Any:
        assert self.profile is not None
        ex = _CheckedLocalExecutor(sub.folder, python=sub.python)
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
        if self._running(job_id, folder, handle):
            return "RUNNING", ""
        if (folder / CANCEL_MARK).exists():
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
        return b"submitit.local._local" in cmdline and str(folder).encode() in cmdline

    def settle(self, job_id: str, folder: Path, handle: Any, limit_s: float = 5.0) -> None:
        """The controller exits just after its tasks; wait so that the state reads COMPLETED."""
        deadline = time.monotonic() + limit_s
        while self._running(job_id, folder, handle) and time.monotonic() < deadline:
            time.sleep(SETTLE_POLL_S)

    def cancel(self, job_id: str, folder: Path, handle: Any) -> None:
        (folder / CANCEL_MARK).write_text(f"{time.time()}\n")
        process = getattr(handle, "_process", None)
        if process is not None:
            process.send_signal(signal.SIGINT)  # the controller then stops its tasks
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
