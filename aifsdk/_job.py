"""Job: follow a submitted job, from the process that submitted it or from any other; and
:func:`wait`, for many jobs at once.

Two sources tell that a job ended:

- its own result files (``<id>_<task>_result.pkl``), with one directory read per job folder
  whatever the number of jobs in it (a 1,000-task array is one ``listdir``), every 0.02 s for up
  to 10 folders, less often above (0.1 s at 50 folders: ~500 reads a second), at most 0.5 s apart;
- the job's backend (:mod:`aifsdk._backends`), for jobs that end without a result (cancelled,
  killed, out of memory, a dependency that can never be met). On Slurm every wait in the process
  shares one :class:`~aifsdk._backends.Poller` per cluster: one ``squeue`` call for all of the
  user's jobs, at most one per second, backing off to one every 10 s, however many jobs or
  threads wait.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pickle
import re
import signal
import sys
import time
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from submitit.core.utils import JobPaths, pickle_load

from ._backends import CANCEL_MARK, SCHEDULER_POLL_MAX_S, SCHEDULER_POLL_MIN_S, Backend, Poller, backend_of
from ._command import exit_code_file
from ._deps import failed_dependency
from ._errors import (
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    Problem,
    RequestError,
    RequestTypeError,
    SchedulerError,
)
from ._paths import JOB_FILE, ensure_private, lookup, trusted
from ._scheduler import TERMINAL_STATES, Slurm

log = logging.getLogger("aifsdk")
NEVER_SATISFIED = "DependencyNeverSatisfied"
FILE_POLL_S = 0.1  # the pause between two looks at the result files of 50 job folders
FILE_POLL_MIN_S = 0.02  # the shortest: a few folders cost a few directory reads
FILE_POLL_MAX_S = 0.5  # the longest, with hundreds of folders: a job's end is still seen within 1 s
FILE_POLL_PER_FOLDER_S = FILE_POLL_S / 50
RESULT_GRACE_S = 5.0  # a shared filesystem may show result files a little after the job ends


class Job:
    """A submitted job. Get one from :func:`aifsdk.submit` or :meth:`Job.attach`.

    ``result()`` returns the value of task 0 (for a command job: a :class:`CommandResult`);
    ``results()`` returns every task's. A job that fails raises :class:`JobFailedError`
    with the remote traceback or exit code, the log paths and a command to inspect it.
    """

    def __init__(self, record: dict[str, Any], submitit_job: Any = None) -> None:
        self._record = record
        self._sub = submitit_job
        self._outcomes: dict[int, tuple[str, Any]] = {}
        self._last_state: tuple[float, str] | None = None
        self._reason = ""  # why the scheduler holds or ended the job (squeue's reason)
        self.state_note = ""  # set when the last state came from the files because the scheduler did not answer

    #: Subclasses that attach references of their own (``map-<id>.<index>``: an item of a packed map),
    #: each with a classmethod ``_attach_own(ref)`` that :meth:`attach` asks first. They register by
    #: being defined: ``aifsdk.Job`` is read from :mod:`aifsdk._sweep`, which defines the map item.
    _kinds: ClassVar[list[type[Job]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_attach_own" in cls.__dict__:
            Job._kinds.append(cls)

    @classmethod
    def _attach_own(cls, ref: str) -> Job | None:
        return None

    @classmethod
    def _from_record(cls, record: dict[str, Any], submitit_job: Any = None) -> Job:
        return cls(record, submitit_job)

    @classmethod
    def attach(cls, ref: str | os.PathLike[str]) -> Job:
        """Reattach to a job by its id (as printed by submit) or by its folder."""
        for kind in Job._kinds:  # the items of packed maps (aifsdk._sweep.Item), ...
            found = kind._attach_own(str(ref))
            if found is not None:
                return found
        path = Path(ref).expanduser()
        array_id, _, index = str(ref).partition("_")
        if (path / JOB_FILE).is_file():
            if not trusted(path):  # its payload and results would be unpickled: code of whoever can write there
                ensure_private(path, "the job folder")  # raises StorageError naming the owner or the mode, and the fix
            candidates = [path]
        else:
            candidates = lookup(str(ref)) or (lookup(array_id) if index else [])
        for folder in candidates:
            try:
                record = json.loads((folder / JOB_FILE).read_text())
            except (OSError, ValueError):
                continue
            chunks = record.get("array", {}).get("chunks", [])
            if chunks and not index and array_id in [c["job_id"] for c in chunks]:
                count = next(c["count"] for c in chunks if c["job_id"] == array_id)
                raise JobNotFoundError(
                    f"{ref} is a job array of {count} task(s) (aifsdk.map, folder {folder}); attach one task by its id, "
                    f"{array_id}_0 .. {array_id}_{count - 1}, or list them with `aifsdk jobs`"
                )
            if str(ref) in (record.get("job_id"), str(folder)) or folder == path:
                return cls(record)
            for chunk in record.get("array", {}).get("chunks", []):  # one task of an array (aifsdk.map)
                if chunk["job_id"] == array_id and index.isdigit() and int(index) < chunk["count"]:
                    return cls(dict(record, job_id=str(ref), array_index=chunk["start"] + int(index)))
        raise JobNotFoundError(
            f"no aifsdk job with id or folder {str(ref)!r} (looked in the registry under {os.environ.get('AIFSDK_HOME', '~/.aifsdk')}); "
            "pass the job folder path, or check the id with `squeue --me`"
        )

    # -- identity ------------------------------------------------------------------------------
    @property
    def job_id(self) -> str:
        return str(self._record["job_id"])

    @property
    def folder(self) -> Path:
        return Path(self._record["folder"])

    @property
    def site(self) -> str:
        return str(self._record["site"])

    @property
    def name(self) -> str:
        return str(self._record.get("name", ""))

    @property
    def kind(self) -> str:
        return str(self._record.get("kind", "function"))

    @property
    def num_tasks(self) -> int:
        return int(self._record.get("tasks", 1))

    @cached_property
    def _backend(self) -> Backend:
        """Where the job runs, from its manifest: asked for its state, results, cancel."""
        return backend_of(self._record)

    def _slurm(self) -> Slurm | None:
        """The scheduler's commands for this job (None: no scheduler)."""
        return self._backend.slurm()

    def _poller(self) -> Poller | None:
        """The shared view of this job's cluster queue (None: no scheduler)."""
        return self._backend.poller()

    def paths(self, task: int = 0) -> JobPaths:
        return JobPaths(self.folder, self.job_id, task)

    def log_paths(self, task: int = 0) -> tuple[Path, Path]:
        p = self.paths(task)
        return p.stdout, p.stderr

    def __repr__(self) -> str:
        return f"Job(job_id={self.job_id!r}, site={self.site!r}, name={self.name!r}, folder='{self.folder}')"

    # -- state ---------------------------------------------------------------------------------
    def _finished_tasks(self) -> set[int]:
        self._backend.pull([self._record])  # over SSH: new results and logs, at most once a second
        try:
            names = set(os.listdir(self.folder))  # one directory read also refreshes NFS caches
        except OSError:
            return set()
        return {t for t in range(self.num_tasks) if self.paths(t).result_pickle.name in names}

    def _complete_in(self, names: set[str] | None) -> bool:
        """True if every task's result file is among ``names`` (one listing of the job folder)."""
        return names is not None and all(f"{self.job_id}_{t}_result.pkl" in names for t in range(self.num_tasks))

    def _note_scheduler(self, state: str, reason: str) -> bool:
        """Take a state from the shared poller; True if it changed. A job whose dependency can never
        be met is cancelled here (Slurm would keep it pending forever without kill-on-invalid-dep)."""
        if state == "PENDING" and NEVER_SATISFIED in reason:
            try:
                self._backend.cancel(self.job_id, self.folder, self._sub)
            except SchedulerError:
                pass
            state = "CANCELLED"
        if state == "UNKNOWN" or (state not in TERMINAL_STATES and len(self._finished_tasks()) == self.num_tasks):
            state = self._state_from_files(state)
        before = self._last_state[1] if self._last_state else None
        told = self._reason
        self._last_state, self._reason = (time.monotonic(), state), reason or self._reason
        if state == "PENDING" and self._reason != told and explain_reason(self._reason):
            level = logging.WARNING if _is_trouble(self._reason) else logging.INFO
            log.log(level, "job %s (%s) is pending: %s", self.job_id, self.name, explain_reason(self._reason))
        return before != state

    def _state_from_files(self, scheduler_state: str) -> str:
        if len(self._finished_tasks()) == self.num_tasks:
            if scheduler_state == "UNKNOWN":  # slurmctld forgot the job and accounting is off: its files tell
                return "FAILED" if any(self._outcome_kind(t) != "success" for t in range(self.num_tasks)) else "COMPLETED"
            return "COMPLETING"  # every task is done; Slurm is still cleaning up
        if scheduler_state == "UNKNOWN" and (self.folder / f"{self.job_id}.{CANCEL_MARK}").exists():
            return "CANCELLED"
        return scheduler_state

    def _cancelled_state(self) -> bool:
        return bool(self._last_state and self._last_state[1] == "CANCELLED")

    def _scheduler_state(self) -> str:
        backend = self._backend
        if backend.poller() is None:  # no scheduler: the job's process and files tell
            state, _ = backend.state(self.job_id, self.folder, self._sub)
            if state == "ENDED":
                if len(self._finished_tasks()) == self.num_tasks:
                    return "FAILED" if any(self._outcome_kind(t) != "success" for t in range(self.num_tasks)) else "COMPLETED"
                return "FAILED"
            return state
        try:
            found = backend.state(self.job_id, self.folder, self._sub)
        except SchedulerError as exc:  # slurmctld restarting or busy, an SSH link down: the job's files answer
            self.state_note = (f"the scheduler did not answer ({str(exc).splitlines()[0]}); this state comes from the job's "
                               "files and what was seen before, and may be old")
            return self._state_when_unreachable()
        self.state_note = ""
        self._note_scheduler(*found)
        return self._last_state[1]  # type: ignore[index]

    def _state_when_unreachable(self) -> str:
        if len(self._finished_tasks()) == self.num_tasks:
            return "FAILED" if any(self._outcome_kind(t) != "success" for t in range(self.num_tasks)) else "COMPLETED"
        if (self.folder / f"{self.job_id}.{CANCEL_MARK}").exists():
            return "CANCELLED"
        return self._last_state[1] if self._last_state else "UNKNOWN"

    @property
    def reason(self) -> str:
        """Why the scheduler holds the job or ended it, as Slurm says it (squeue's reason, e.g.
        ``Resources``, ``Priority``, ``Dependency``, ``ReqNodeNotAvail, UnavailableNodes:n2``) with
        its meaning in words; "" when it gives none. Updated by ``state`` and while waiting."""
        return explain_reason(self._reason)

    @property
    def state(self) -> str:
        """The scheduler's state (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...)."""
        state = self._scheduler_state()
        self._last_state = (time.monotonic(), state)
        return state

    def consumed_energy_j(self) -> float | None:
        """Joules the job's nodes drew, from Slurm's energy accounting where the site collects it
        (``sacct -o ConsumedEnergyRaw``); None where it does not, or off Slurm."""
        slurm = self._backend.slurm()
        if slurm is None:
            return None
        return slurm.consumed_energy([self.job_id]).get(self.job_id)

    def done(self) -> bool:
        """True once every task has written its result, or the scheduler says the job ended."""
        if self._backend.in_process:
            return self._sub is not None and self._sub.state == "DONE"
        if len(self._finished_tasks()) == self.num_tasks:
            return True
        return self.state in TERMINAL_STATES

    def wait(self, timeout: float | None = None) -> None:
        """Block until the job ends. Raises JobTimeoutError after ``timeout`` seconds."""
        wait([self], timeout)

    # -- results -------------------------------------------------------------------------------
    def _outcome_kind(self, task: int) -> str:
        """"success" or "error" from the head of a task's result file, without unpickling it (a state
        is answered without running anything the file holds); "unreadable" for an empty or foreign file."""
        if task in self._outcomes:
            return str(self._outcomes[task][0])
        try:
            with open(self.paths(task).result_pickle, "rb") as f:
                head = f.read(64)
        except OSError:
            return "unreadable"
        # pickle protocol 2-5 of the tuple (outcome, value): the outcome is the first short string
        for kind in ("success", "error"):
            if bytes([0x8C, len(kind)]) + kind.encode() in head or b"X" + len(kind).to_bytes(4, "little") + kind.encode() in head:
                return kind
        return "unreadable"

    def _outcome(self, task: int) -> tuple[str, Any]:
        if task not in self._outcomes:
            path = self.paths(task).result_pickle
            try:
                try:
                    self._outcomes[task] = pickle_load(path)
                except EOFError:  # still being moved into place
                    time.sleep(0.5)
                    self._outcomes[task] = pickle_load(path)
            except (EOFError, pickle.UnpicklingError, ValueError, IndexError) as exc:
                size = path.stat().st_size if path.exists() else 0
                raise JobFailedError(
                    f"job {self.job_id}: the result file of task {task} is damaged ({size} bytes; "
                    f"{type(exc).__name__}: {exc or 'empty or cut short'}); the result is lost. Run the job again "
                    f"(`aifsdk resubmit {self.job_id}`); its logs may tell why the write failed",
                    job_id=self.job_id, folder=self.folder, logs=list(self.log_paths(task)), inspect=f"aifsdk logs {self.job_id} --task {task}",
                ) from None
        return self._outcomes[task]

    def result(self, timeout: float | None = None) -> Any:
        """Wait, then return task 0's value. Raises JobFailedError if any task failed."""
        return self.results(timeout)[0]

    def results(self, timeout: float | None = None) -> list[Any]:
        """Wait, then return every task's value, in task order."""
        if self._backend.in_process:
            return [self._run_debug()]
        self.wait(timeout)
        finished = self._finished_tasks()
        outcomes = {task: self._outcome(task) for task in range(self.num_tasks) if task in finished}
        # A task that failed is the cause; a task stopped from outside (srun ends a step's other
        # tasks when one fails) has no result or an error of its own, so it is reported last.
        failed = [task for task, (outcome, _) in outcomes.items() if outcome != "success"]
        for task in sorted(failed, key=lambda t: (self._stopped_from_outside(t), t)):
            raise self._failure(task, traceback=str(outcomes[task][1]))
        for task in range(self.num_tasks):
            if task not in outcomes:
                raise self._failure(task)
        return [outcomes[task][1] for task in range(self.num_tasks)]

    def _exit_code(self, task: int) -> int | None:
        """A command task's exit code, from the file it writes (None without a readable one)."""
        try:
            return int(exit_code_file(self.folder, self.job_id, task).read_text().strip())
        except (OSError, ValueError):
            return None

    def _stopped_from_outside(self, task: int) -> bool:
        """The task's exit code says SIGTERM, SIGINT or SIGKILL ended it."""
        return self._exit_code(task) in (-15, -2, -9)

    def _run_debug(self) -> Any:
        if self._sub is None:
            raise JobNotFoundError(f"debug job {self.job_id} ran in another process; debug jobs cannot be reattached")
        return self._sub.result()

    def _failure(self, task: int, traceback: str | None = None) -> JobFailedError:
        state = self.state
        exit_code = self._exit_code(task)
        if state not in TERMINAL_STATES and (traceback or exit_code):
            state = "FAILED"  # the task failed; the scheduler has not caught up yet
        queue = self._backend.poller()
        why = None
        if queue is not None and state == "CANCELLED" and not traceback and exit_code is None:
            why = failed_dependency(self._record, queue)
        if why:
            return JobCancelledError(
                f"job {self.job_id} ({self.name}, site {self.site}) was cancelled before it started: {why}",
                job_id=self.job_id, folder=self.folder, state=state, logs=list(self.log_paths(task)),
                inspect=f"aifsdk status {self.job_id}",
            )
        stdout, stderr = self.log_paths(task)
        if exit_code is not None and traceback:
            traceback = None  # for a command, the exit code and its stderr say more than our wrapper's traceback
        head = f"job {self.job_id} ({self.name}, site {self.site}) ended {state}"
        if exit_code is None and not traceback:
            killed = _signal_in_log(stderr) or _signal_in_log(stdout)
            if killed:  # the task's process died of a signal (a crash, the OOM killer): no result, no exit code file
                exit_code = -killed
        if exit_code is not None and exit_code < 0:
            head += f": task {task} was killed by signal {-exit_code} ({_signal_name(-exit_code)})"
        elif exit_code is not None:
            head += f": the command exited with code {exit_code} (task {task})"
        elif traceback:
            head += f": task {task} raised"
        else:
            head += f" without a result from task {task}"
        if not traceback:
            tail = _tail(stderr, own_output=exit_code is not None) or _tail(stdout)
            if tail:
                head += f"\nLast lines of {stderr.name if _tail(stderr) else stdout.name}:\n{tail}"
        cls = JobCancelledError if state == "CANCELLED" else JobFailedError
        return cls(
            head, job_id=self.job_id, folder=self.folder, state=state, exit_code=exit_code,
            remote_traceback=traceback, logs=[stdout, stderr], inspect=f"aifsdk logs {self.job_id} --task {task}",
        )

    def requeues(self) -> list[str]:
        """Why the job was requeued, one entry per requeue, oldest first: "preempted" or "timed-out"
        (submitit's own requeues, read from task 0's log, which every run of the job appends to; the
        log is read line by line, never whole), and "node-failure on NODES" where Slurm requeued the
        job itself because a node failed (from accounting, where it answers)."""
        pattern = re.compile(r"Caught signal \w+ on \S+: this job is (preempted|timed-out)")
        found: list[str] = []
        for path in self.log_paths(0)[::-1]:  # submitit logs the line to stderr, stdout or both
            found = _grep(path, pattern)
            if found:
                break
        slurm = self._backend.slurm()
        if slurm is not None:
            try:
                found += [f"node-failure on {nodes}" for nodes in slurm.node_failures(self.job_id)]
            except SchedulerError:
                pass
        return found

    def manifest(self) -> dict[str, Any]:
        """What was submitted: site, resources, script hash, payload hash, snapshot (files, git
        commit, hash of the uncommitted diff), Python, platform and installed packages."""
        return dict(self._record)

    def resubmit(self, **changes: Any) -> Job:
        """Run the same code snapshot, target, arguments and resources again, as a new job.

        ``changes`` override submit options (e.g. ``time="4h"``). The stored payload is checked
        against its submit-time hash before it is loaded.
        """
        from submitit.core.utils import DelayedSubmission

        from ._command import CommandTarget
        from ._distributed import RankedCall
        from ._launch import launch
        from ._pack import SnapshotIntegrityError, materialise
        from ._planner import plan_again
        from ._run import verify
        from ._snapshot import SnapshotOptions

        if self._backend.in_process:
            raise JobNotFoundError(f"debug job {self.job_id} kept nothing to resubmit")
        problem = verify(self.folder, self.job_id, wait_s=0)
        if problem:
            raise JobFailedError(f"cannot resubmit job {self.job_id}: {problem}", job_id=self.job_id, folder=self.folder)
        rec = self._record
        added = [p for p in rec.get("pythonpath") or [] if p not in sys.path]
        sys.path[:0] = added  # the snapshot's modules, to unpickle a function target
        try:
            delayed = DelayedSubmission.load(self.paths().submitted_pickle)
        finally:
            for p in added:
                sys.path.remove(p)
        target, args = delayed.function, delayed.args
        if isinstance(target, RankedCall):
            target = target.fn
        code = self.folder / "code"
        try:
            materialise(self.folder)  # a job that has not started yet has not extracted its snapshot
        except SnapshotIntegrityError as exc:
            raise JobFailedError(f"cannot resubmit job {self.job_id}: {exc}", job_id=self.job_id, folder=self.folder) from None
        options: dict[str, Any] = {k: v for k, v in rec.get("resources", {}).items() if v not in (None, {})}
        options.update(site=self.site, name=self.name, launcher=rec.get("launcher"),
                       snapshot=SnapshotOptions(root=code) if code.is_dir() else False)
        options.update(changes)
        if isinstance(target, CommandTarget):
            run_in, target, args = target.cwd, list(target.argv), ()
        else:
            run_in = rec.get("workdir") or os.getcwd()
        # the copy's folders as the job saw them (on the cluster for a job reached over SSH)
        old_code = self._backend.code_folder(rec)
        inside = None
        if old_code and code.is_dir():
            inside = [os.path.relpath(p, old_code) for p in rec.get("pythonpath") or []
                      if p == old_code or p.startswith(old_code.rstrip("/") + "/")]
        # relative paths resolve in the copy's working folder, so that they map into the new copy
        planned = plan_again(target, args, options, cwd=run_in if os.path.isdir(run_in) else os.getcwd(), pythonpath_in_copy=inside)
        record, handle = launch(planned)
        return Job._from_record(record, submitit_job=handle)

    # -- logs and control ----------------------------------------------------------------------
    def stdout(self, task: int = 0) -> str | None:
        """The task's standard output so far (None before it starts)."""
        self._finished_tasks()  # a remote job's logs are pulled on the way
        return _read(self.log_paths(task)[0])

    def stderr(self, task: int = 0) -> str | None:
        self._finished_tasks()
        return _read(self.log_paths(task)[1])

    def cancel(self) -> None:
        """Cancel the job; its state becomes CANCELLED."""
        self._backend.cancel(self.job_id, self.folder, self._sub)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _grep(path: Path, pattern: re.Pattern[str]) -> list[str]:
    """The first group of every line of a log matching ``pattern``, the file read line by line."""
    try:
        with open(path, errors="replace") as f:
            return [m.group(1) for line in f if (m := pattern.search(line))]
    except OSError:
        return []


TAIL_BYTES = 256 * 1024  # what a tail reads from the end of a log, however big it is

# what tells a fatal signal in a task's log: Python's faulthandler (enabled by the job runner),
# srun's report of a task that died, the shell's report of a killed command
_SIGNAL_WORDS = {
    "Segmentation fault": signal.SIGSEGV, "Aborted": signal.SIGABRT, "Bus error": signal.SIGBUS,
    "Floating point exception": signal.SIGFPE, "Illegal instruction": signal.SIGILL, "Killed": signal.SIGKILL,
}
_SIGNAL_LINE = re.compile(r"(?:Fatal Python error: |srun: error: .*task \d+: )(" + "|".join(_SIGNAL_WORDS) + ")")


def _signal_in_log(path: Path) -> int | None:
    """The fatal signal a log's end reports, if any."""
    found = _SIGNAL_LINE.findall(_tail(path, lines=200))
    return int(_SIGNAL_WORDS[found[-1]]) if found else None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "an unknown signal"


def _tail(path: Path, lines: int = 20, own_output: bool = False) -> str:
    """Last lines of a log (read from its last 256 KB); with ``own_output``, only what the command
    wrote (not submitit's report)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    if not text:
        return ""
    rows = text.rstrip().splitlines()
    if size > TAIL_BYTES:
        rows = rows[1:]  # the first row may be cut
    if own_output:  # submitit logs "submitit ERROR ... triggered an exception" then its traceback
        cut = next((i for i, r in enumerate(rows) if r.startswith("submitit ERROR")), len(rows))
        rows = [r for r in rows[:cut] if not r.startswith("submitit ")]
    return "\n".join(rows[-lines:])


# squeue's pending reasons (see `man squeue`, JOB REASON CODES) in words; the ones that mean the job
# will not start by itself soon are logged as warnings while waiting
REASONS = {
    "Resources": "waiting for resources to become free",
    "Priority": "jobs of higher priority go first",
    "Dependency": "waiting for the jobs it depends on",
    "DependencyNeverSatisfied": "a job it depends on failed, so it can never start",
    "BeginTime": "its start time has not come yet",
    "JobHeldUser": "held by you (scontrol release ID)",
    "JobHeldAdmin": "held by an administrator",
    "ReqNodeNotAvail": "a node it needs is down, drained or reserved",
    "NodeDown": "a node it needs is down",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "PartitionTimeLimit": "it asks for more time than the partition allows",
    "AssocGrpCPUMinutesLimit": "the account's CPU-minutes budget is spent",
    "AssocGrpGRESMinutes": "the account's GPU-minutes budget is spent",
    "AssocGrpBillingMinutes": "the account's billing budget is spent",
    "AssocMaxJobsLimit": "the account runs as many jobs as it may",
    "QOSMaxJobsPerUserLimit": "your QoS runs as many of your jobs as it allows",
    "QOSMaxGRESPerUser": "your QoS's GPU limit per user is reached",
    "QOSGrpNodeLimit": "the QoS's node limit is reached",
    "QOSMaxWallDurationPerJobLimit": "the time asked for is above the QoS's limit",
    "launch failed requeued held": "its start failed on a node; Slurm requeued and held it",
}
_TROUBLE = ("DependencyNeverSatisfied", "JobHeldAdmin", "ReqNodeNotAvail", "NodeDown", "PartitionDown", "PartitionInactive",
            "PartitionNodeLimit", "PartitionTimeLimit", "AssocGrp", "launch failed")


def explain_reason(reason: str) -> str:
    """Slurm's reason code with its meaning: 'ReqNodeNotAvail, UnavailableNodes:n2 (a node it needs is down, ...)'."""
    if not reason or reason == "None":
        return ""
    code = reason.split(",")[0].strip()
    words = REASONS.get(code) or next((w for c, w in REASONS.items() if reason.startswith(c)), "")
    return f"{reason} ({words})" if words else reason


def _is_trouble(reason: str) -> bool:
    return reason.startswith(_TROUBLE)


# -- waiting on many jobs ------------------------------------------------------------------------
def wait(jobs: Job | Iterable[Job], timeout: float | None = None, progress: bool | None = None) -> list[Job]:
    """Block until every job has ended (succeeded, failed or been cancelled); return them.

    Returns within 0.02 s (a few job folders) to 0.1 s (50 folders) of the last result file
    appearing, 0.5 s at most (hundreds of folders). Raises
    :class:`~aifsdk.JobTimeoutError` after ``timeout`` seconds; the jobs go on.

    Items of packed maps (:func:`aifsdk.map`) show a progress bar (``progress=False``: none), and
    waiting on them submits what the map holds back. Ctrl-C stops the waiting: jobs a scheduler
    queued go on, and jobs that run as children of this process (site ``local``) are cancelled,
    as a terminal's Ctrl-C, which reaches them too, does.
    """
    check_timeout(timeout)
    items = [jobs] if isinstance(jobs, Job) else list(jobs)
    bad = [j for j in items if not isinstance(j, Job)]
    if bad:
        raise RequestTypeError([Problem("jobs", bad[0], "aifsdk.Job objects (from submit, map or Job.attach)",
                                        "pass the jobs submit or map returned, or aifsdk.Job.attach(job_id)")])
    for job in items:
        if job._backend.in_process:
            job._run_debug()
    pending = {id(j): j for j in items if not j._backend.in_process}
    sweeps = {id(j.sweep): j.sweep for j in pending.values() if hasattr(j, "sweep")}  # items of packed maps
    bar = None
    if sweeps and progress is not False:
        from ._progress import Progress

        bar = Progress(list(sweeps.values()))
    try:
        return _wait_loop(items, pending, list(sweeps.values()), bar, timeout)
    except KeyboardInterrupt:
        children = [j for j in pending.values() if j._backend.child_of_submitter and j._sub is not None]
        for job in children:
            job.cancel()
        if children:
            print(f"\naifsdk: interrupted: cancelled {' '.join(j.job_id for j in children)} (run by this process)", file=sys.stderr, flush=True)
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

    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout < 0:
        raise RequestError([Problem(param, timeout, "None (wait as long as it takes) or a finite number of seconds >= 0",
                                    f"e.g. {param}=3600" if not param.startswith("-") else f"e.g. {param} 3600")])


def _wait_loop(items: list[Job], pending: dict[int, Job], sweeps: list[Any], bar: Any, timeout: float | None) -> list[Job]:
    start = time.monotonic()
    next_query, interval = start, SCHEDULER_POLL_MIN_S
    ended_at: dict[int, float] = {}  # the scheduler said the job ended; its files may lag
    items_of = _items_by_sweep(pending)
    looked: dict[int, tuple[Any, ...]] = {}  # per map: what its last full look at its items saw
    while pending:
        for sweep in sweeps:
            sweep.tick()
        if bar is not None:
            bar.update()
        for sweep in sweeps:
            _drop_ended_items(sweep, items_of.get(id(sweep), {}), pending, looked)
        _pull([j for j in pending.values() if not hasattr(j, "sweep")])
        listings: dict[str, set[str] | None] = {}
        for key, job in list(pending.items()):
            if hasattr(job, "sweep"):
                continue  # looked at above, map by map
            folder = str(job.folder)
            if folder not in listings:
                listings[folder] = _listdir(folder)
            if job._complete_in(listings.get(folder)):
                job._backend.settle(job.job_id, job.folder, job._sub)
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


def _items_by_sweep(pending: dict[int, Job]) -> dict[int, dict[int, int]]:
    """The items of packed maps among ``pending``: per map, item index -> key in ``pending``."""
    out: dict[int, dict[int, int]] = {}
    for key, job in pending.items():
        sweep = getattr(job, "sweep", None)
        if sweep is not None:
            out.setdefault(id(sweep), {})[job.index] = key  # type: ignore[attr-defined]
    return out


def _drop_ended_items(sweep: Any, items: dict[int, int], pending: dict[int, Job], looked: dict[int, tuple[Any, ...]]) -> None:
    """Take the ended items of one map out of ``pending``, at a cost that follows what changed: the
    items with new outcomes, and all of its items only when the scheduler was asked again (a job
    ended without finishing its items), an item was given up or the map was cancelled."""
    if not items:
        return
    key = (sweep._ticked, sweep.cancelled, len(sweep._lost))
    if looked.get(id(sweep), (None,))[0] != key:
        indices: Any = list(items)
    else:
        indices = [i for i in itertools.islice(sweep.outcomes, looked[id(sweep)][1], None) if i in items]
    looked[id(sweep)] = (key, len(sweep.outcomes))
    for index in indices:
        if sweep.ended(index):
            pending.pop(items.pop(index), None)


def file_poll_interval(folders: int) -> float:
    """Pause between two looks at the result files of ``folders`` job folders."""
    return min(FILE_POLL_MAX_S, max(FILE_POLL_MIN_S, folders * FILE_POLL_PER_FOLDER_S))


def _pull(jobs: list[Job]) -> None:
    """Results and logs of jobs whose files are written elsewhere (over SSH): one copy per backend,
    at most once a second. A dropped connection is retried on the next round."""
    by_backend: dict[int, tuple[Backend, list[dict[str, Any]]]] = {}
    try:
        for job in jobs:
            by_backend.setdefault(id(job._backend), (job._backend, []))[1].append(job._record)
        for backend, records in by_backend.values():
            backend.pull(records)
    except SchedulerError:
        pass


def _ask_scheduler(jobs: list[Job], interval: float, ended_at: dict[int, float]) -> None:
    """One batched look at the scheduler for the jobs still pending."""
    by_poller: dict[int, tuple[Poller, list[Job]]] = {}  # this cluster, and each site reached over SSH
    for job in jobs:
        shared = job._backend.poller()
        if shared is not None:
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
        if job._backend.poller() is None:
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
