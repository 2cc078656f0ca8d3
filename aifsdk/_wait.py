"""Waiting on many jobs: results the moment they land, and a scheduler that is asked gently.

Two sources tell that a job ended:

- its own result files (``<id>_<task>_result.pkl``), with one directory read per job folder
  whatever the number of jobs in it (a 1,000-task array is one ``listdir``), every 0.02 s for up
  to 10 folders, less often above (0.1 s at 50 folders: ~500 reads a second), at most 0.5 s apart;
- the scheduler, for jobs that end without a result (cancelled, killed, out of memory, a
  dependency that can never be met). Every wait in the process shares one :class:`Poller`: one
  ``squeue`` call for all of the user's jobs, at most one per second, backing off to one every
  10 s, however many jobs or threads wait.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._errors import JobTimeoutError, SchedulerError
from ._scheduler import TERMINAL_STATES, Slurm, default_slurm

if TYPE_CHECKING:
    from ._job import Job

FILE_POLL_S = 0.1  # the pause between two looks at the result files of 50 job folders
FILE_POLL_MIN_S = 0.02  # the shortest: a few folders cost a few directory reads
FILE_POLL_MAX_S = 0.5  # the longest, with hundreds of folders: a job's end is still seen within 1 s
FILE_POLL_PER_FOLDER_S = FILE_POLL_S / 50
SCHEDULER_POLL_MIN_S = 1.0
SCHEDULER_POLL_MAX_S = 10.0
MISS_REFRESH_S = 0.25  # a job missing from a snapshot (just submitted) may refresh it this often
RESULT_GRACE_S = 5.0  # a shared filesystem may show result files a little after the job ends


class Poller:
    """The process-wide view of the scheduler's queue, refreshed by one squeue call at a time."""

    def __init__(self, slurm: Callable[[], Slurm] = default_slurm) -> None:
        self._slurm = slurm
        self._lock = threading.Lock()
        self._queue: dict[str, tuple[str, str]] = {}
        self._taken = float("-inf")  # monotonic time of the last squeue
        self._accounted: dict[str, str] = {}  # ended jobs slurmctld forgot, from sacct (final)
        self._checked: set[str] = set()  # missing from the current snapshot, accounting already asked

    def states(self, job_ids: list[str], max_age: float = SCHEDULER_POLL_MIN_S) -> dict[str, tuple[str, str]]:
        """(state, reason) of each job, from a queue snapshot at most ``max_age`` old (never
        younger than one second between refreshes). UNKNOWN where neither slurmctld nor accounting
        knows the job (the caller then reads its files)."""
        max_age = max(max_age, SCHEDULER_POLL_MIN_S)
        with self._lock:
            now = time.monotonic()
            if now - self._taken >= max_age:
                self._refresh()
            missing = [j for j in job_ids if j not in self._queue and j not in self._accounted and j not in self._checked]
            if missing and time.monotonic() - self._taken >= MISS_REFRESH_S:
                self._refresh()  # submitted after the last snapshot?
                missing = [j for j in missing if j not in self._queue]
            if missing:  # forgotten by slurmctld: accounting, once per snapshot
                found = self._slurm().accounting(missing)
                self._accounted.update({j: s for j, s in found.items() if s in TERMINAL_STATES})
                self._checked.update(missing)
            out = {}
            for j in job_ids:
                if j in self._queue:
                    out[j] = self._queue[j]
                else:
                    out[j] = (self._accounted.get(j, "UNKNOWN"), "")
            return out

    def _refresh(self) -> None:
        self._queue = self._slurm().queue()
        self._taken = time.monotonic()
        self._checked = set()

    def forget(self) -> None:
        """Drop every snapshot (the next call asks the scheduler)."""
        with self._lock:
            self._queue, self._taken, self._accounted, self._checked = {}, float("-inf"), {}, set()


_POLLER = Poller()


def poller() -> Poller:
    return _POLLER


def wait(jobs: Job | Iterable[Job], timeout: float | None = None, progress: bool | None = None) -> list[Job]:
    """Block until every job has ended (succeeded, failed or been cancelled); return them.

    Returns within 0.02 s (a few job folders) to 0.1 s (50 folders) of the last result file
    appearing, 0.5 s at most (hundreds of folders). Raises
    :class:`~aifsdk.JobTimeoutError` after ``timeout`` seconds; the jobs go on.

    Items of packed maps (:func:`aifsdk.map`) show a progress bar (``progress=False``: none), and
    waiting on them submits what the map holds back. Ctrl-C stops the waiting, not the jobs.
    """
    from ._job import Job

    check_timeout(timeout)
    items = [jobs] if isinstance(jobs, Job) else list(jobs)
    bad = [j for j in items if not isinstance(j, Job)]
    if bad:
        raise TypeError(f"wait() takes aifsdk.Job objects (from submit, map or Job.attach); got {bad[0]!r}")
    for job in items:
        if job._executor == "debug":
            job._run_debug()
    pending = {id(j): j for j in items if j._executor != "debug"}
    sweeps = {id(j.sweep): j.sweep for j in pending.values() if hasattr(j, "sweep")}  # items of packed maps
    bar = None
    if sweeps and progress is not False:
        from ._progress import Progress

        bar = Progress(list(sweeps.values()))
    try:
        return _wait_loop(items, pending, list(sweeps.values()), bar, timeout)
    except KeyboardInterrupt:
        if sweeps:
            ids = " ".join(s.id for s in sweeps.values())
            print(f"\naifsdk: stopped waiting; the jobs go on. Wait again with `aifsdk wait {ids}`, cancel them with "
                  f"`aifsdk cancel {ids}`", file=sys.stderr, flush=True)
        raise
    finally:
        if bar is not None:
            bar.close()


def check_timeout(timeout: object, param: str = "timeout") -> None:
    """None (no limit) or a finite number of seconds >= 0; else RequestError naming the value."""
    import math

    from ._errors import Problem, RequestError

    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout < 0:
        raise RequestError([Problem(param, timeout, "None (wait as long as it takes) or a finite number of seconds >= 0",
                                    f"e.g. {param}=3600" if not param.startswith("-") else f"e.g. {param} 3600")])


def _wait_loop(items: list[Job], pending: dict[int, Job], sweeps: list[Any], bar: Any, timeout: float | None) -> list[Job]:
    start = time.monotonic()
    next_query, interval = start, SCHEDULER_POLL_MIN_S
    ended_at: dict[int, float] = {}  # the scheduler said the job ended; its files may lag
    while pending:
        for sweep in sweeps:
            sweep.tick()
        if bar is not None:
            bar.update()
        remote = [j for j in pending.values() if j._remote and not hasattr(j, "sweep")]
        if remote:  # results and logs of jobs run over SSH: one rsync per site, at most once a second
            from . import _remote

            try:
                _remote.pull(remote)
            except SchedulerError:
                pass  # the connection dropped: the next round reconnects
        listings: dict[str, set[str] | None] = {}
        for key, job in list(pending.items()):
            folder = str(job.folder)
            if folder not in listings and not hasattr(job, "sweep"):
                listings[folder] = _listdir(folder)
            if job._complete_in(listings.get(folder)):
                job._let_local_controller_exit()
                del pending[key]
            elif key in ended_at and (time.monotonic() - ended_at[key] > RESULT_GRACE_S or job._cancelled_state()):
                del pending[key]
        if not pending:
            break
        now = time.monotonic()
        if now >= next_query:
            _ask_scheduler([j for j in pending.values() if not hasattr(j, "sweep")], interval, ended_at)
            # Results come from the files; the scheduler only catches jobs that end without one
            # (cancelled, killed), so its queries back off whatever happens: 1 s, 1.5 s, ... 10 s.
            interval = min(interval * 1.5, SCHEDULER_POLL_MAX_S)
            next_query = now + interval
        if timeout is not None and now - start > timeout:
            first = next(iter(pending.values()))
            state = first._last_state[1] if first._last_state else "running"
            raise JobTimeoutError(
                f"{len(pending)} of {len(items)} job(s) still running after {timeout:.0f} s (job {first.job_id} {state}); "
                f"they go on. Wait again with aifsdk.Job.attach({first.job_id!r}).wait()",
                job_id=first.job_id, folder=first.folder,
            )
        time.sleep(max(file_poll_interval(len(listings)), FILE_POLL_S if sweeps else 0.0))
    return items


def file_poll_interval(folders: int) -> float:
    """Pause between two looks at the result files of ``folders`` job folders."""
    return min(FILE_POLL_MAX_S, max(FILE_POLL_MIN_S, folders * FILE_POLL_PER_FOLDER_S))


def _ask_scheduler(jobs: list[Job], interval: float, ended_at: dict[int, float]) -> None:
    """One batched look at the scheduler for the jobs still pending."""
    by_poller: dict[int, tuple[Poller, list[Job]]] = {}  # this cluster, and each site reached over SSH
    for job in jobs:
        if job._executor == "slurm":
            shared = job._poller()
            by_poller.setdefault(id(shared), (shared, []))[1].append(job)
    for shared, slurm_jobs in by_poller.values():
        try:
            states = shared.states([j.job_id for j in slurm_jobs], max_age=interval)
        except SchedulerError:
            states = {}  # slurmctld busy or restarting, or the SSH link down: the files still tell, try again later
        for job in slurm_jobs:
            if job.job_id in states:
                job._note_scheduler(*states[job.job_id])
    for job in jobs:
        if job._executor != "slurm":
            job.state  # noqa: B018 - a local job's state is a cheap /proc read
    now = time.monotonic()
    for job in jobs:
        if job._last_state and job._last_state[1] in TERMINAL_STATES:
            ended_at.setdefault(id(job), now)


def _listdir(folder: str) -> set[str] | None:
    try:
        return set(os.listdir(folder))  # one directory read also refreshes NFS caches
    except OSError:
        return None
