"""The request: one typed, keyword-only dataclass, and the checks that need no site.

Field names follow submitit's generic parameters (``nodes``, ``gpus_per_node``,
``tasks_per_node``, ``cpus_per_task``, ``mem_gb``) so that values pass through untranslated.
``None`` means "the site decides"; :func:`aifsdk.plan` shows what it decided and why.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import Problem

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_CONSTRAINT_RE = re.compile(r"^[A-Za-z0-9_.:\[\]()&|*,!-]+$")


@dataclass(frozen=True, kw_only=True)
class Resources:
    """What a job asks the scheduler for.

    Attributes:
        nodes: number of nodes (>= 1).
        gpus_per_node: GPUs (or GCDs on AMD MI250X) per node (>= 0).
        tasks_per_node: processes started per node by srun (>= 1).
        cpus_per_task: CPU cores per task (>= 1).
        mem_gb: memory per node in GB (> 0).
        time: wall-time limit: minutes as an int, or "90min", "2h", "1d", "1-12:00:00",
            "HH:MM:SS", "MM:SS", "D-HH", "D-HH:MM". ``None`` takes the site's default.
        partition, account, qos, constraint: passed to sbatch as given.
        extra: further sbatch options, e.g. ``{"mail-type": "END", "exclusive": True}``.
    """

    nodes: int | None = None
    gpus_per_node: int | None = None
    tasks_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time: int | str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: Mapping[str, str | int | bool] = field(default_factory=dict)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> Resources:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["extra"] = dict(self.extra)
        return out

    @property
    def time_minutes(self) -> int | None:
        """``time`` in whole minutes (``None`` when not set). Raises ValueError if malformed."""
        return None if self.time is None else parse_time(self.time)

    def problems(self) -> list[Problem]:
        """Every problem visible without knowing the site."""
        out: list[Problem] = []
        for name, minimum in (("nodes", 1), ("gpus_per_node", 0), ("tasks_per_node", 1), ("cpus_per_task", 1)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                out.append(Problem(name, value, f"an integer >= {minimum}", f"pass {name}={minimum} or more, as an int"))
            elif value < minimum:
                out.append(Problem(name, value, f"an integer >= {minimum}", f"pass {name}={minimum} or more"))
        if self.mem_gb is not None:
            if isinstance(self.mem_gb, bool) or not isinstance(self.mem_gb, (int, float)) or not self.mem_gb > 0:
                out.append(Problem("mem_gb", self.mem_gb, "a number of GB > 0", "pass e.g. mem_gb=16, or leave it unset for the site default"))
        if self.time is not None:
            try:
                if parse_time(self.time) < 1:
                    out.append(Problem("time", self.time, "at least 1 minute", "pass e.g. time='30min'"))
            except ValueError as exc:
                out.append(Problem("time", self.time, TIME_FORMATS, str(exc)))
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _NAME_RE.match(value)):
                out.append(Problem(name, value, "a name of letters, digits, '_', '-', '.', '+'", f"pass the {name} name exactly as the site spells it"))
        if self.constraint is not None and (not isinstance(self.constraint, str) or not _CONSTRAINT_RE.match(self.constraint)):
            out.append(Problem("constraint", self.constraint, "a Slurm feature expression such as 'a100&ib'", "remove spaces and shell characters"))
        out += _extra_problems(self.extra)
        return out


TIME_FORMATS = "minutes (int), '90min', '2h', '1d', '1-12:00:00', 'HH:MM:SS', 'MM:SS', 'D-HH', 'D-HH:MM'"

_UNIT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)\s*$", re.I)
_CLOCK_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(value: int | str) -> int:
    """Convert a wall-time to whole minutes, rounding seconds up (Slurm does the same)."""
    if isinstance(value, bool):
        raise ValueError("a bool is not a time")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a negative number of minutes")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{type(value).__name__} is not a time; use an int of minutes or a string")
    text = value.strip()
    if text.isdigit():
        return int(text)
    unit = _UNIT_RE.match(text)
    if unit:
        number, suffix = float(unit.group(1)), unit.group(2).lower()
        seconds = number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[suffix[0]]
        return -(-int(round(seconds)) // 60)
    clock = _CLOCK_RE.match(text)
    if not clock:
        raise ValueError(f"cannot read {value!r} as a time; write e.g. '2h', '90min' or '1-12:00:00'")
    days, a, b, c = clock.groups()
    parts = [int(x) for x in (a, b, c) if x is not None]
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = (parts + [0, 0])[:3]
        total_s = ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
        bounds = {"hours": (hours, 23), "minutes": (minutes, 59), "seconds": (seconds, 59)}
    elif len(parts) == 3:  # HH:MM:SS
        hours, minutes, seconds = parts
        total_s = (hours * 60 + minutes) * 60 + seconds
        bounds = {"minutes": (minutes, 59), "seconds": (seconds, 59)}
    else:  # MM:SS (Slurm reads two fields as minutes:seconds)
        minutes, seconds = parts
        total_s = minutes * 60 + seconds
        bounds = {"seconds": (seconds, 59)}
    for name, (number, top) in bounds.items():
        if number > top:
            raise ValueError(f"{name} field {number} in {value!r} is above {top}")
    return -(-total_s // 60)


def format_time(minutes: int) -> str:
    """Minutes as Slurm's ``D-HH:MM:SS`` (``HH:MM:SS`` under a day)."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    clock = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{clock}" if days else clock


# Long options of sbatch (Slurm 22.05 to 24.11) that may go through `extra`. Options that
# aifsdk sets itself from first-class fields or from its own machinery are refused there.
SBATCH_OPTIONS = frozenset(
    """
    acctg-freq array batch bb bbf begin chdir cluster-constraint clusters comment container
    container-id contiguous core-spec cores-per-socket cpu-freq cpus-per-gpu deadline delay-boot
    dependency distribution exclude exclusive export export-file extra get-user-env gid
    gpu-bind gpu-freq gpus gpus-per-socket gpus-per-task gres gres-flags hint hold ignore-pbs
    kill-on-invalid-dep licenses mail-type mail-user mcs-label mem-bind mem-per-cpu mem-per-gpu
    mincpus network nice no-kill no-requeue nodefile nodelist ntasks ntasks-per-core
    ntasks-per-gpu ntasks-per-socket overcommit oversubscribe power prefer priority profile
    propagate reboot requeue reservation sockets-per-node spread-job switches thread-spec
    threads-per-core tmp tres-per-task uid use-min-nodes wait-all-nodes wckey
    """.split()
)
RESERVED_OPTIONS = {
    "nodes": "nodes", "N": "nodes", "ntasks-per-node": "tasks_per_node", "cpus-per-task": "cpus_per_task",
    "gpus-per-node": "gpus_per_node", "mem": "mem_gb", "time": "time", "t": "time",
    "partition": "partition", "p": "partition", "account": "account", "A": "account", "qos": "qos",
    "constraint": "constraint", "C": "constraint", "job-name": "name", "J": "name",
    "output": "folder", "o": "folder", "error": "folder", "e": "folder", "open-mode": "folder",
    "signal": "(set by aifsdk for checkpointing)", "wait": "Job.wait()", "parsable": "(set by aifsdk)",
}


def _extra_problems(extra: Any) -> list[Problem]:
    if not isinstance(extra, Mapping):
        return [Problem("extra", extra, "a dict of sbatch long options to values", "pass e.g. extra={'mail-type': 'END'}")]
    out = []
    for key, value in extra.items():
        name = str(key).lstrip("-").replace("_", "-")
        if name in RESERVED_OPTIONS or key in RESERVED_OPTIONS:
            owner = RESERVED_OPTIONS.get(name, RESERVED_OPTIONS.get(key))
            out.append(Problem(f"extra[{key!r}]", value, "an sbatch option aifsdk does not set itself", f"use {owner}= instead of extra"))
        elif name not in SBATCH_OPTIONS:
            close = difflib.get_close_matches(name, sorted(SBATCH_OPTIONS | set(RESERVED_OPTIONS)), n=3)
            close = [c if c in SBATCH_OPTIONS else f"{RESERVED_OPTIONS[c]}= (not extra)" for c in close]
            hint = f"did you mean {', '.join(close)}?" if close else "check `man sbatch` for the long option name"
            out.append(Problem(f"extra[{key!r}]", value, "a long sbatch option (see `man sbatch`)", hint))
        elif not isinstance(value, (str, int, bool)) or isinstance(value, str) and "\n" in value:
            out.append(Problem(f"extra[{key!r}]", value, "a str, int or True, on one line", "pass a plain value"))
    return out
