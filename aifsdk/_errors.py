"""The aifsdk error tree.

Every error aifsdk raises on purpose derives from :class:`AifsdkError`::

    AifsdkError
    ├── RequestError (also ValueError)      a bad request, raised before anything is submitted
    │   ├── SiteNotFoundError                the site name matches no profile
    │   └── RequestTypeError (also TypeError) an argument of the wrong type (wait() given a non-Job)
    ├── ProfileError (also ValueError)      a site profile YAML breaks the schema
    ├── SchedulerError                      sbatch/squeue/scancel failed or is missing
    ├── StorageError (also OSError)         a folder aifsdk keeps is not private to you, full or not writable
    ├── JobNotFoundError (also LookupError) no job with that id or folder is known
    ├── JobError                            something about one submitted job
    │   ├── JobFailedError                  the job ended without a result
    │   │   └── JobCancelledError           ... because it was cancelled
    │   └── JobTimeoutError (also TimeoutError)  wait(timeout=...) ran out; the job goes on
    └── raised inside a running job (seen as its traceback by whoever waits on it):
        ├── SnapshotIntegrityError (also RuntimeError)  the stored code no longer matches what was submitted
        ├── CommandFailed (also RuntimeError)           a command job's command exited non-zero
        ├── NodeError (also RuntimeError)               the node lacks what the job needs (a free port)
        └── ResultNotWritten (also RuntimeError)        a task's result could not be written (full disk, quota)

    (and, caught inside aifsdk: PackChanged, a file that changed while its snapshot was packed)

Request problems are collected, not raised one by one: a :class:`RequestError` carries a list of
:class:`Problem` objects, each naming the parameter, the value, what is allowed and the fix.

aifsdk refuses only what the site refuses or what can never start there. What the site accepts
but bills for nothing (e.g. a node-exclusive partition billed whole for half its GPUs) is a
:class:`PlanWarning` on the plan, with the cheaper way; ``strict=True`` makes warnings errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class AifsdkError(Exception):
    """Root of every error raised by aifsdk."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request."""

    param: str
    value: object
    allowed: str
    fix: str

    def __str__(self) -> str:
        return f"{self.param}={self.value!r}: allowed {self.allowed}. Fix: {self.fix}"


@dataclass(frozen=True)
class PlanWarning:
    """Something the site accepts but that wastes budget, and the cheaper way.

    A plan carries these in ``Plan.warnings``; ``strict=True`` (``--strict`` on the command line)
    turns each into a :class:`Problem` of a :class:`RequestError` instead.
    """

    param: str
    value: object
    waste: str
    cheaper: str

    def __str__(self) -> str:
        return f"{self.param}={self.value!r}: {self.waste}. Cheaper: {self.cheaper}"

    def as_problem(self) -> Problem:
        return Problem(self.param, self.value, f"no budget waste under strict=True ({self.waste})",
                       f"{self.cheaper}; or drop strict=True (--strict) to accept it")


def suggest(word: object, options: Sequence[str], aliases: dict[str, str] | None = None) -> list[str]:
    """Options close to ``word``, in any case and with '-' or '_': an alias, a prefix match, else difflib's."""
    text = str(word).strip().lower().replace("-", "_").lstrip("_")
    folded = {o.lower().replace("-", "_"): o for o in options}
    if text in folded:
        return [folded[text]]
    if aliases and text in aliases:
        return [aliases[text]]
    import difflib

    prefix = [f for f in folded if len(text) >= 3 and (f.startswith(text) or text.startswith(f))]
    prefix.sort(key=lambda f: -difflib.SequenceMatcher(None, text, f).ratio())
    return [folded[f] for f in prefix[:3]] or [folded[c] for c in difflib.get_close_matches(text, list(folded), n=3, cutoff=0.6)]


class RequestError(AifsdkError, ValueError):
    """A request that cannot be submitted. Nothing reached the scheduler."""

    def __init__(self, problems: Sequence[Problem], *, site: str | None = None) -> None:
        self.problems = list(problems)
        self.site = site
        where = f" for site {site!r}" if site else ""
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} with the request{where} (nothing was submitted):"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class SiteNotFoundError(RequestError):
    """The site name matches no shipped or user profile."""


class RequestTypeError(RequestError, TypeError):
    """An argument of the wrong type (still a TypeError for code that catches one)."""


class ProfileError(AifsdkError, ValueError):
    """A site profile does not follow the schema."""

    def __init__(self, source: str | Path, problems: Sequence[str]) -> None:
        self.source = str(source)
        self.problems = list(problems)
        lines = [f"site profile {self.source} is invalid:", *(f"  - {p}" for p in self.problems)]
        super().__init__("\n".join(lines))


class SchedulerError(AifsdkError):
    """A scheduler command failed (sbatch, squeue, scancel, ...) or is not installed."""


class StorageError(AifsdkError, OSError):
    """A folder aifsdk keeps (AIFSDK_HOME, the registry, a job root, the snapshot store, a job
    folder) cannot be used: it belongs to someone else or others may write to it, or the disk is
    full or not writable. The message names the path and the fix; ``path`` holds it."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)

    def __str__(self) -> str:  # OSError's own formatting would drop the message's text
        return str(self.args[0]) if self.args else ""


class JobNotFoundError(AifsdkError, LookupError):
    """No job known to aifsdk matches the id or folder."""


class JobError(AifsdkError):
    """An error about one submitted job."""

    def __init__(self, message: str, *, job_id: str, folder: str | Path | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.folder = Path(folder) if folder is not None else None


class JobFailedError(JobError):
    """The job ended without a result.

    Carries what is needed to understand why: ``state`` (scheduler state), ``exit_code`` (a command
    job's exit status, when known), ``remote_traceback`` (the traceback raised inside the job),
    ``logs`` (paths of stdout and stderr) and ``inspect`` (one command that shows the job).
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        folder: str | Path | None = None,
        state: str = "FAILED",
        exit_code: int | None = None,
        remote_traceback: str | None = None,
        logs: Sequence[str | Path] = (),
        inspect: str = "",
    ) -> None:
        self.state = state
        self.exit_code = exit_code
        self.remote_traceback = remote_traceback
        self.logs = [Path(p) for p in logs]
        self.inspect = inspect
        parts = [message]
        if remote_traceback:
            parts += ["Traceback raised in the job:", remote_traceback.rstrip()]
        if self.logs:
            parts += ["Logs:", *(f"  {p}" for p in self.logs)]
        if inspect:
            parts.append(f"Inspect with: {inspect}")
        super().__init__("\n".join(parts), job_id=job_id, folder=folder)


class JobCancelledError(JobFailedError):
    """The job was cancelled (by the user, an admin or the scheduler)."""


class JobTimeoutError(JobError, TimeoutError):
    """Waiting for the job ran out of time. The job itself was not touched."""


# -- raised inside a running job -----------------------------------------------------------------
class SnapshotIntegrityError(AifsdkError, RuntimeError):
    """The stored snapshot no longer matches what was submitted (raised on the node, or by resubmit)."""

    def __init__(self, message: str, pack: str | None = None) -> None:
        super().__init__(message)
        self.pack = pack  # the pack whose bytes did not match, if any


class CommandFailed(AifsdkError, RuntimeError):
    """Raised inside the job when the command exits non-zero, so that Slurm marks it FAILED."""


class NodeError(AifsdkError, RuntimeError):
    """The node the job runs on lacks what the job needs (e.g. a free port for the rendezvous)."""
