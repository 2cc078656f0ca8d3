"""``aifsdk.map``: one function (or command) over many items, as Slurm job arrays.

    jobs = aifsdk.map(score, range(1000), site="slurm", time=5, max_parallel=50)
    values = [job.result() for job in aifsdk.wait(jobs)]      # in item order

By default items are packed, many per Slurm job (:mod:`aifsdk._sweep` submits them,
:mod:`aifsdk._packrun` runs them). With ``pack=1`` each item is one array task, as follows.

The plan is made once (for the first item) and its script rendered as usual; the array version
of that script differs only by ``#SBATCH --array=0-<k-1>[%max_parallel]`` and the ``%A_%a`` log
patterns. Each item is pickled once into the one job folder and hashed (``<payload>.sha256``),
so the node refuses a payload changed after submission, as for a single job.

An array larger than the cluster's ``MaxArraySize`` (``scontrol show config``) or the user's
``MaxSubmitJobs`` is split into several arrays, submitted one after the other; the returned jobs
keep item order across them. On the ``local`` and ``debug`` sites (no scheduler), each item is
its own job.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from submitit.core.utils import DelayedSubmission

from ._backends import backend_for
from ._errors import Problem, RequestError, SchedulerError
from ._job import Job
from ._paths import register, registry_folder
from ._plan import Plan, plan
from ._scheduler import Slurm, chunk_cap

MAX_NUM_TIMEOUT = 3  # requeues after a time-out, as for single jobs (submitit's default)


def map(  # noqa: A001 - aifsdk.map mirrors the builtin on purpose
    target: Callable[..., Any] | Sequence[str],
    items: Iterable[Any],
    *,
    site: str = "local",
    max_parallel: int | None = None,
    pack: int | str = "auto",
    retries: int = 0,
    items_per_worker: int | str = "auto",
    cores_per_worker: int = 1,
    **options: Any,
) -> list[Job]:
    """Run ``target(item)`` for every item (or, for a command, the command followed by each
    item's arguments: a string or a list of strings) on a Slurm site; one Job per item, in item order.

    ``pack``: items per Slurm job. ``"auto"`` (the default) packs into as few jobs as fill the
    partition once, within the site's limits; ``pack=1`` is one array task per item. A packed job
    runs its items concurrently: one worker per GPU of the job (``gpus_per_node``), else per
    ``cores_per_worker`` cores of it (``cpus_per_task``), each running ``items_per_worker`` items at
    a time. ``items_per_worker="auto"`` (the default) runs one item at a time per GPU, and on
    cores one at first, more (up to 4) while the items leave the cores mostly idle (waiting on
    files, the network or sleep). ``retries`` tries a failed item again (a raised exception or a dead worker).
    ``max_parallel`` caps how many jobs run at once (Slurm's ``--array=...%N``). Every other
    keyword is a :func:`aifsdk.submit` option or resource, applied to each job. On the ``local``
    and ``debug`` sites each item is its own job.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise RequestError([Problem("items", items, "a list (or other iterable) of the items to map over",
                                    f"e.g. aifsdk.map(fn, [{items!r}]) for one item, or aifsdk.map(fn, range(...))")])
    items = list(items)
    command = isinstance(target, (list, tuple))
    problems = []
    if not items:
        problems.append(Problem("items", items, "at least one item", "pass a non-empty list"))
    if max_parallel is not None and (not isinstance(max_parallel, int) or isinstance(max_parallel, bool) or max_parallel < 1):
        problems.append(Problem("max_parallel", max_parallel, "a whole number >= 1, or None for no cap", "e.g. max_parallel=20"))
    if pack != "auto" and (not isinstance(pack, int) or isinstance(pack, bool) or pack < 1):
        problems.append(Problem("pack", pack, 'a whole number >= 1 (items per job) or "auto"', 'e.g. pack=50, or pack=1 for one job per item'))
    for name, value, low in (("retries", retries, 0), ("items_per_worker", items_per_worker, 1), ("cores_per_worker", cores_per_worker, 1)):
        if name == "items_per_worker" and value == "auto":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            allowed = f"a whole number >= {low}" + (' or "auto"' if name == "items_per_worker" else "")
            problems.append(Problem(name, value, allowed, f"e.g. {name}={max(low, 1)}"))
    packed = pack != 1
    if packed and any(options.get(k) not in (None, 1) for k in ("nodes", "tasks_per_node")):
        problems.append(Problem("pack", pack, "packed items run on one node, one task (nodes=1, tasks_per_node=1)",
                                "use pack=1 for one multi-node or multi-task job per item"))
    if command:
        bad = [i for i in items if not isinstance(i, str) and not (isinstance(i, (list, tuple)) and all(isinstance(a, str) for a in i))]
        if bad:
            problems.append(Problem("items", bad[0], "for a command: a string or a list of strings per item (its arguments)",
                                    "e.g. aifsdk.map(['python', 'train.py'], [['--lr', '0.1'], ['--lr', '0.2']])"))
    if problems:
        raise RequestError(problems, site=site)
    if packed:  # one runner per job, on one node, whatever a site's launch recipe would choose for a job of its own
        options = {"nodes": 1, "tasks_per_node": 1, **{k: v for k, v in options.items() if v is not None}}
    argv = [_args(i) for i in items] if command else []
    first = plan([*target, *argv[0]], site=site, **options) if command else plan(target, items[0], site=site, **options)  # type: ignore[misc]
    backend = backend_for(first.profile)
    over_ssh = backend.cluster_paths and first.num_tasks == 1 and (first.resources.nodes or 1) == 1
    if backend.scheduled and (packed or over_ssh):  # over SSH, pack=1 too: arrays, not one job per item
        from ._sweep import submit_packed

        call = first.callable
        template = dataclasses.replace(call, argv=tuple(call.argv[: len(call.argv) - len(argv[0])])) if command else call
        return submit_packed(first, template, argv if command else items, command=command, pack=pack, retries=retries,  # type: ignore[return-value]
                             items_per_worker=items_per_worker, cores_per_worker=cores_per_worker, max_parallel=max_parallel)
    if not backend.arrays:  # no scheduler, or over SSH multi-node or multi-task: one job per item
        return [first.submit()] + [
            plan([*target, *a], site=site, **options).submit() if command else plan(target, i, site=site, **options).submit()  # type: ignore[misc]
            for i, a in zip(items[1:], argv[1:] or [()] * (len(items) - 1))
        ]
    payloads = [_payload(first, item, argv[k] if command else None, len(argv[0]) if command else 0) for k, item in enumerate(items)]
    return submit_array(first, payloads, max_parallel)


def _args(item: str | Sequence[str]) -> list[str]:
    return [item] if isinstance(item, str) else list(item)


def _payload(first: Plan, item: Any, args: list[str] | None, first_count: int) -> DelayedSubmission:
    if args is not None:  # the planned command (paths mapped into the snapshot) with this item's arguments
        call = first.callable
        return DelayedSubmission(dataclasses.replace(call, argv=(*call.argv[: len(call.argv) - first_count], *args)))
    from ._distributed import RankedCall

    return DelayedSubmission(RankedCall.wrap(first.callable), item)


def chunk_size(slurm: Slurm) -> int:
    """How many tasks one array may hold on ``slurm``'s cluster: MaxArraySize (indices run
    0..MaxArraySize-1), and at most the user's MaxSubmitJobs."""
    size = chunk_cap(slurm)
    limit = slurm.submit_limit()
    return max(1, min(size, limit) if limit else size)


def array_script(script: str, folder: Path, count: int, max_parallel: int | None) -> str:
    """The planned script as an array of ``count`` tasks: ``--array`` and per-task log names."""
    throttle = f"%{max_parallel}" if max_parallel and max_parallel < count else ""
    text = script.replace(f"{folder}/%j_", f"{folder}/%A_%a_")
    return re.sub(r"^(#SBATCH --job-name=.*)$", rf"\1\n#SBATCH --array=0-{count - 1}{throttle}", text, count=1, flags=re.M)


def submit_array(first: Plan, payloads: list[DelayedSubmission], max_parallel: int | None = None) -> list[Job]:
    """Pickle every payload into the plan's folder, submit them as one or more arrays, record."""
    from ._launch import (
        _submission_environment,
        _take_snapshot,
        cancelled_unless_recorded,
        job_record,
        make_job_folder,
        refuse_wrong_cluster,
        write_manifest,
    )

    folder = first.folder
    refuse_wrong_cluster(first)
    registry_folder(first.site)  # checked before anything is queued (and again at register)
    make_job_folder(first, folder)
    snap = _take_snapshot(first)
    pending = []
    for k, payload in enumerate(payloads):
        payload.set_timeout(first.time_minutes, MAX_NUM_TIMEOUT)
        path = folder / f".item-{k}.pkl"
        payload.dump(path)
        pending.append((path, hashlib.sha256(path.read_bytes()).hexdigest()))
    backend = backend_for(first.profile)
    slurm = backend.slurm()
    if slurm is None:
        raise SchedulerError(f"site {first.site!r} has no scheduler to queue job arrays; submit one job per item")
    size = chunk_size(slurm)
    env, _ = _submission_environment(first)
    chunks: list[dict[str, Any]] = []
    jobs: list[Job] = []
    record = job_record(first, "", snap)
    for start in range(0, len(payloads), size):
        count = min(size, len(payloads) - start)
        script = folder / f"array-{len(chunks)}.sh"
        script.write_text(array_script(first.script, folder, count, max_parallel))
        try:
            array_id = slurm.sbatch(script, env=env)
        except SchedulerError as exc:
            done = f"; items 0-{start - 1} were submitted as arrays {[c['job_id'] for c in chunks]}" if chunks else "; nothing was queued"
            raise SchedulerError(f"sbatch refused the array of items {start}-{start + count - 1}: {exc}{done}") from None
        with cancelled_unless_recorded(backend, array_id, folder):  # queued: the array runs from these files
            for index in range(count):
                path, digest = pending[start + index]
                name = f"{array_id}_{index}_submitted.pkl"
                (folder / f"{name}.sha256").write_text(f"{digest}  {name}\n")  # before the payload appears
                path.rename(folder / name)
            script.rename(folder / f"{array_id}_submission.sh")
            chunks.append({"job_id": array_id, "start": start, "count": count})
            record.update(job_id=chunks[0]["job_id"], array={"items": len(payloads), "chunks": chunks, "max_parallel": max_parallel})
            write_manifest(folder, record)
            register(first.site, array_id, folder)
        jobs += [Job._from_record(dict(record, job_id=f"{array_id}_{i}", array_index=start + i)) for i in range(count)]
    return jobs
