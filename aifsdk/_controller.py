"""The ``local`` site's job controller: submitit's local controller (``Controller`` in
submitit/local/local.py, which starts the tasks, sends the time-out signal and stops them), in
which an interrupt is a cancel.

    python -m aifsdk._controller <job folder>

SIGINT (Ctrl-C in the terminal the job was started from, which reaches every process of the
command, or :meth:`aifsdk.Job.cancel`) marks the job cancelled in its folder, stops the tasks
started so far (SIGKILL for any still running 5 s later), and keeps any task from starting or
being requeued after it; the controller then exits once its tasks have. The handler is installed
before submitit is imported. It raises nothing (it sets a mark and forwards the signal), so the
cancel cannot be swallowed by whatever code runs when it arrives, and a second SIGINT is harmless:
a cancel sends it again while the controller still runs.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

CANCEL_MARK = "aifsdk-cancelled"  # a job cancelled through aifsdk: <folder>/<mark> (local), <folder>/<id>.<mark> (Slurm)
CANCEL_GRACE_S = 5  # after a cancel, the tasks get this long to stop on SIGINT, then SIGKILL
CANCELLED_EXIT = 128 + signal.SIGINT  # the controller's exit status after a cancel, as a shell reports an interrupt


def mark_cancelled(mark: Path) -> None:
    """Write a cancel mark (the job's state where the scheduler no longer knows it; its time, how
    long ago the cancel came). A folder that cannot be written (a full disk, a read-only one, one
    removed meanwhile) does not stop the cancel itself."""
    try:
        mark.write_text(f"{time.time()}\n")
    except OSError:
        pass


class _State:
    """What the handler needs: the job folder, whether a cancel came, the controller once made."""

    folder: Path
    cancelled = False
    controller: Any = None


def _on_interrupt(signum: int, frame: object) -> None:
    if not _State.cancelled:
        _State.cancelled = True
        mark_cancelled(_State.folder / CANCEL_MARK)
        signal.signal(signal.SIGALRM, _on_grace_over)
        signal.alarm(CANCEL_GRACE_S)
    _forward(signal.SIGINT)  # the tasks stop; the controller's loop sees them exit


def _on_grace_over(signum: int, frame: object) -> None:
    _forward(signal.SIGKILL)  # a task still running after the grace (one waiting for its own child, say)


def _forward(sig: int) -> None:
    if _State.controller is not None:
        _State.controller._forward_signal(sig)


def main() -> None:
    _State.folder = Path(sys.argv[1])
    signal.signal(signal.SIGINT, _on_interrupt)
    from submitit.local.local import LOCAL_REQUEUE_RETURN_CODE, Controller

    class CancellableController(Controller):  # type: ignore[misc]
        def run(self, max_retry: int = 6) -> None:
            """submitit's ``Controller.run`` (start the tasks, wait, start them again after a
            requeue, stop them), stopping at a cancel: nothing is started or requeued after it."""
            for _ in range(max_retry):
                if _State.cancelled:
                    return
                try:
                    self.start_tasks()
                    if _State.cancelled:  # it came while the tasks started: the ones started after it get it now
                        self._forward_signal(signal.SIGINT)
                    exit_codes = self.wait()
                    if _State.cancelled or not any(e == LOCAL_REQUEUE_RETURN_CODE for e in exit_codes):
                        break
                finally:
                    self.kill_tasks()

    controller = CancellableController(_State.folder)
    _State.controller = controller
    controller.run()
    sys.exit(CANCELLED_EXIT if _State.cancelled else 0)


if __name__ == "__main__":
    main()
