"""Dependencies between jobs: ``submit(..., after=[job_a, job_b])``.

A plain job (or job id) in ``after`` means *afterok*: run only if it succeeded. Wrap jobs in
:func:`afterany` to run once they ended, whatever their outcome; :func:`afterok` says the
default out loud. Mixed lists combine (Slurm's ``,``: all must hold)::

    train = aifsdk.submit(fit, cfg, site="slurm")
    evals = aifsdk.submit(evaluate, site="slurm", after=train)
    report = aifsdk.submit(summarise, site="slurm", after=[aifsdk.afterany(evals), train])

Rendered as ``#SBATCH --dependency=afterok:<ids>,afterany:<ids>`` with
``--kill-on-invalid-dep=yes``: when an *afterok* dependency fails, Slurm cancels the dependant
at once (even with nobody waiting), and waiting on it raises :class:`~aifsdk.JobCancelledError`
naming the dependency and how it ended.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import Problem, RequestError

if TYPE_CHECKING:
    from ._backends import Poller
    from ._job import Job

MODES = ("afterok", "afterany")
_JOB_ID = re.compile(r"\d+(_\d+)?")


@dataclass(frozen=True)
class After:
    """Jobs another job waits for, and the condition (``afterok`` or ``afterany``)."""

    mode: str
    job_ids: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.mode}:{':'.join(self.job_ids)}"


def afterok(*jobs: Job | str | Iterable[Job | str]) -> After:
    """Run the dependant only if every one of ``jobs`` completed successfully (the default)."""
    return After("afterok", _ids(jobs))


def afterany(*jobs: Job | str | Iterable[Job | str]) -> After:
    """Run the dependant once every one of ``jobs`` has ended, whatever its outcome."""
    return After("afterany", _ids(jobs))


def _ids(jobs: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for item in jobs:
        if isinstance(item, (list, tuple)):
            out += _ids(item)
        else:
            out.append(item.job_id if hasattr(item, "job_id") else str(item))
    return tuple(out)


def dependency_extra(after: Any, site: str, scheduled: bool | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The sbatch options for ``after``, merged into ``extra``; a RequestError names what is wrong.
    ``scheduled``: whether the site has a scheduler (None: the site is unknown, reported elsewhere)."""
    items = list(after) if isinstance(after, (list, tuple)) else [after]
    groups: dict[str, list[str]] = {}
    problems = []
    for item in items:
        group = item if isinstance(item, After) else After("afterok", _ids([item]))
        bad = [j for j in group.job_ids if not _JOB_ID.fullmatch(j)]
        if bad:
            problems.append(Problem("after", item, "Slurm jobs (aifsdk.Job), job ids such as '1234' or '1234_5', "
                                    "or aifsdk.afterok(...)/aifsdk.afterany(...) of them",
                                    f"{bad[0]!r} is not a Slurm job id; pass the Job returned by submit"))
        groups.setdefault(group.mode, []).extend(j for j in group.job_ids if j not in groups.get(group.mode, []))
    if scheduled is False:
        problems.append(Problem("after", after, "dependencies on a Slurm site only",
                                f"site {site!r} runs jobs without a scheduler; call job.wait() first, then submit"))
    if "dependency" in extra:
        problems.append(Problem("extra['dependency']", extra["dependency"], "after= or extra['dependency'], not both",
                                "keep one of them"))
    if not any(groups.values()) and not problems:
        problems.append(Problem("after", after, "at least one job", "pass after=None for no dependency"))
    if problems:
        raise RequestError(problems, site=site)
    merged = dict(extra)
    merged["dependency"] = ",".join(f"{mode}:{':'.join(ids)}" for mode, ids in groups.items() if ids)
    merged.setdefault("kill-on-invalid-dep", "yes")
    return merged


def parse_dependency(text: str) -> list[tuple[str, str]]:
    """'afterok:1:2,afterany:3' -> [('afterok', '1'), ('afterok', '2'), ('afterany', '3')]."""
    out = []
    for part in re.split(r"[,?]", text or ""):
        mode, *ids = part.split(":")
        out += [(mode, i.split("+")[0]) for i in ids if i]
    return out


def failed_dependency(record: Mapping[str, Any], queue: Poller) -> str | None:
    """Why a job that was cancelled while pending never ran: the afterok dependency that did not
    complete, and how it ended (``queue``: the view of its cluster's queue). None if the job has no
    afterok dependency that failed."""
    extra = (record.get("resources") or {}).get("extra") or {}
    needs = [j for mode, j in parse_dependency(str(extra.get("dependency", ""))) if mode == "afterok"]
    if not needs:
        return None
    states = queue.states(needs)
    failed = [(j, s) for j, (s, _) in states.items() if s not in ("COMPLETED", "PENDING", "RUNNING", "COMPLETING", "UNKNOWN")]
    if not failed:
        return None
    return ", ".join(f"dependency job {j} ended {s}" for j, s in failed) + " (afterok), so Slurm never started it"
