"""``aifsdk logs -f``: follow every task of a job (or one), stdout and stderr merged, each line
prefixed by the task's rank and host, until the job ends.

Lines are read as they are appended to the task log files (``%j_%t_log.out`` / ``.err``), in
bounded chunks: memory stays constant whatever the log size. A remote (SSH) job's files are pulled
from the cluster on each round (the backend's ``pull``, at most once a second). submitit's
own lines (``submitit INFO ...``) are hidden unless ``all_lines``; the host is read from the line
in which submitit names the task's environment, before it is hidden.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._job import Job

CHUNK = 64 * 1024  # bytes read from a file at a time
LONGEST_LINE = 1 << 20  # a line without a newline this long is shown in pieces
POLL_S = 0.5
_HOST_RE = re.compile(rb"JobEnvironment\(.*?hostname=([^,) ]+).*?node=(\d+)\(")
_SUBMITIT_RE = re.compile(rb"^submitit (?:INFO|DEBUG) \(")  # its warnings and errors stay


@dataclass
class _Stream:
    path: Path
    offset: int = 0
    partial: bytes = b""


@dataclass
class _Task:
    rank: int
    streams: list[_Stream]
    host: str = "?"
    node: int | None = None  # the task's node index in the allocation, from submitit's line
    held: list[bytes] = field(default_factory=list)  # lines read before the host is known


def follow(job: Job, tasks: Sequence[int] | None = None, *, all_lines: bool = False, write: Callable[[str], None] | None = None,
           poll_s: float = POLL_S) -> None:
    """Write each new line of ``job``'s tasks as ``[rank host] line`` until the job ends."""
    import sys

    out = write or (lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    ranks = list(tasks) if tasks is not None else list(range(job.num_tasks))
    names = _NodeNames(job)
    followed = []
    for rank in ranks:
        stdout, stderr = job.log_paths(rank)
        followed.append(_Task(rank, [_Stream(stdout), _Stream(stderr)]))  # lines wait for the host submitit names in stderr
    while True:
        ended = job.done()  # also pulls a remote job's files; read after it so nothing written before the end is missed
        read = sum(_drain(task, all_lines, out, ended, names) for task in followed)
        if ended and not read:
            return
        if ended or read:
            continue  # at the end: read on until every file is drained; else more may be waiting
        time.sleep(poll_s)


class _NodeNames:
    """The Slurm node names of a job's allocation, in order (squeue while it runs, sacct after),
    asked at most every few seconds until known; a task's host is the name of its node (the
    scheduler's name, which the machine's own hostname need not be)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.names: list[str] | None = None if job._backend.scheduled else []
        self.asked = float("-inf")

    def get(self) -> list[str]:
        if self.names is None and time.monotonic() - self.asked > 3:
            self.asked = time.monotonic()
            try:
                slurm = self.job._slurm()
                listed = slurm.run(["squeue", "-h", "-j", self.job.job_id, "-o", "%N"]).strip()
                if not listed or listed.startswith("("):
                    listed = slurm.run(["sacct", "-X", "-n", "-P", "-j", self.job.job_id, "-o", "NodeList"]).strip()
                if listed and not listed.startswith(("None", "(")):
                    self.names = slurm.run(["scontrol", "show", "hostnames", listed.splitlines()[0]]).split()
            except Exception:  # noqa: BLE001 - the names are a nicety; the machine's hostname stands in
                pass
        return self.names or []


def _drain(task: _Task, all_lines: bool, out: Callable[[str], None], final: bool, names: _NodeNames) -> int:
    """Write the task's new lines; return how many were read."""
    read = 0
    for stream in task.streams:
        lines = _new_lines(stream, final)
        read += len(lines)
        for line in lines:
            if task.node is None:
                found = _HOST_RE.search(line)
                if found:
                    task.host, task.node = found.group(1).decode(errors="replace"), int(found.group(2))
            if not all_lines and _SUBMITIT_RE.match(line):
                continue
            task.held.append(line)
    if task.node is not None and not task.host.startswith("="):
        known = names.get()
        if task.node < len(known):
            task.host = "=" + known[task.node]  # '=': settled
    if task.held and (task.host != "?" or final or len(task.held) > 1000):
        prefix = f"[{task.rank} {task.host.lstrip('=')}] "
        out("".join(prefix + line.decode("utf-8", errors="replace") + "\n" for line in task.held))
        task.held.clear()
    return read


def _new_lines(stream: _Stream, final: bool) -> list[bytes]:
    """Complete lines appended since the last call (the last, unfinished one too at the end)."""
    try:
        fd = os.open(stream.path, os.O_RDONLY)
    except OSError:
        return []  # not created yet
    lines: list[bytes] = []
    try:
        if os.fstat(fd).st_size < stream.offset:  # truncated or replaced: start over
            stream.offset, stream.partial = 0, b""
        while True:
            chunk = os.pread(fd, CHUNK, stream.offset)
            if not chunk:
                break
            stream.offset += len(chunk)
            pieces = (stream.partial + chunk).split(b"\n")
            stream.partial = pieces.pop()
            lines += pieces
            if len(stream.partial) > LONGEST_LINE:
                lines.append(stream.partial)
                stream.partial = b""
            if len(lines) > 10_000:
                break  # let the caller write these before reading on
    finally:
        os.close(fd)
    if final and stream.partial:
        lines.append(stream.partial)
        stream.partial = b""
    return [line.rstrip(b"\r") for line in lines]
