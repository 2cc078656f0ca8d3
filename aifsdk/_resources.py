"""The request: one typed, keyword-only dataclass, and the checks that need no site.

A :class:`Resources` is checked when it is built: a bad field, an unknown keyword (with the field
it most likely meant) or a positional argument raises :class:`~aifsdk.RequestError` listing every
problem at once.

Field names follow submitit's generic parameters (``nodes``, ``gpus_per_node``,
``tasks_per_node``, ``cpus_per_task``, ``mem_gb``) so that values pass through untranslated.
``None`` means "the site decides"; :func:`aifsdk.plan` shows what it decided and why.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import Problem, RequestError, suggest

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

    def __repr__(self) -> str:  # only the fields that are set: the rest is "the site decides"
        shown = {k: v for k, v in self.as_dict().items() if v is not None and not (k == "extra" and not v)}
        return f"Resources({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise RequestError(problems)

    @classmethod
    @functools.cache
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> Resources:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["extra"] = dict(self.extra)
        return out

    @functools.cached_property
    def time_minutes(self) -> int | None:
        """``time`` in whole minutes (``None`` when not set), read once: the request is checked
        when it is built, so this is the one place its time is parsed."""
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
            elif not math.isfinite(self.mem_gb) or self.mem_gb * 1024 < 1:  # sbatch takes whole MB; --mem=0 means the whole node
                out.append(Problem("mem_gb", self.mem_gb, "a finite number of GB, at least 1/1024 (1 MB: sbatch's --mem=0 would "
                                   "mean all of the node's memory)", "pass e.g. mem_gb=16, or leave it unset for the site default"))
        if self.time is not None:
            try:
                if (self.time_minutes or 0) < 1:
                    out.append(Problem("time", self.time, "at least 1 minute", "pass e.g. time='30min'"))
            except ValueError as exc:
                out.append(Problem("time", self.time, TIME_FORMATS, str(exc)))
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _NAME_RE.match(value)):
                out.append(Problem(name, value, "a name of letters, digits, '_', '-', '.', '+'", f"pass the {name} name exactly as the site spells it"))
        if self.constraint is not None and (not isinstance(self.constraint, str) or not _CONSTRAINT_RE.match(self.constraint)):
            out.append(Problem("constraint", self.constraint, "a Slurm feature expression such as 'a100&ib'", "remove spaces and shell characters"))
        out += _extra_problems(self.extra, self)
        return out


# Words users reach for, and the field they mean (Slurm's and other launchers' spellings).
FIELD_ALIASES = {
    "gpus": "gpus_per_node", "gpu": "gpus_per_node", "ngpus": "gpus_per_node", "gres": "gpus_per_node",
    "ntasks": "tasks_per_node", "ntasks_per_node": "tasks_per_node", "nproc_per_node": "tasks_per_node", "tasks": "tasks_per_node",
    "cpus": "cpus_per_task", "ncpus": "cpus_per_task", "mem": "mem_gb", "memory": "mem_gb", "mem_per_node": "mem_gb",
    "num_nodes": "nodes", "nnodes": "nodes", "node": "nodes", "n": "nodes", "walltime": "time", "time_limit": "time",
    "timeout_min": "time", "project": "account", "queue": "partition",
}


def _checked_init(generated: Any) -> Any:
    """Wrap the dataclass's __init__: positional arguments and unknown keywords become RequestError
    problems with the field meant, instead of a bare TypeError."""
    import functools

    @functools.wraps(generated)
    def __init__(self: Resources, *args: Any, **kwargs: Any) -> None:
        names = Resources.field_names()
        problems = []
        if args:
            problems.append(Problem("Resources", args, f"keyword arguments only ({', '.join(names)})",
                                    "name each value, e.g. Resources(nodes=2, gpus_per_node=4)"))
        for key in [k for k in kwargs if k not in names]:
            close = suggest(key, names, FIELD_ALIASES)
            problems.append(Problem(key, kwargs.pop(key), f"a field of Resources ({', '.join(names)})",
                                    f"did you mean {close[0]}=?" if close else "remove it; see help(aifsdk.Resources)"))
        if problems:
            try:
                generated(self, **kwargs)
            except RequestError as exc:
                problems += exc.problems
            raise RequestError(problems)
        generated(self, **kwargs)

    return __init__


Resources.__init__ = _checked_init(Resources.__init__)  # type: ignore[method-assign]


def build(values: Mapping[str, Any]) -> tuple[Resources, list[Problem]]:
    """A Resources of the good fields of ``values``, and the problems of the others (nothing raised),
    so that a caller can report them together with its own."""
    try:
        return Resources(**values), []
    except RequestError as exc:
        bad = {p.param.split("[")[0] for p in exc.problems}
        good = {k: v for k, v in values.items() if k not in bad and k in Resources.field_names()}
        return Resources(**good), list(exc.problems)


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
    gpu-bind gpu-freq gpus-per-socket gpus-per-task gres gres-flags hint hold ignore-pbs
    kill-on-invalid-dep licenses mail-type mail-user mcs-label mem-bind mem-per-cpu mem-per-gpu
    mincpus network nice no-kill no-requeue nodefile nodelist ntasks-per-core
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
    "gpus": "gpus_per_node", "G": "gpus_per_node", "ntasks": "tasks_per_node", "n": "tasks_per_node", "c": "cpus_per_task",
    "signal": "(set by aifsdk for checkpointing)", "wait": "Job.wait()", "parsable": "(set by aifsdk)",
    "array": "aifsdk.map (it submits job arrays and waits on each task)", "a": "aifsdk.map (it submits job arrays and waits on each task)",
    "chdir": "snapshot= (the job starts in its snapshot's copy of your working folder; set by aifsdk)",
    "D": "snapshot= (the job starts in its snapshot's copy of your working folder; set by aifsdk)",
}


def _extra_problems(extra: Any, request: Resources) -> list[Problem]:
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
        elif name == "gres" and "gpu" in str(value):
            out.append(Problem(f"extra[{key!r}]", value, "gres other than GPUs (aifsdk requests GPUs itself)",
                               "use gpus_per_node= instead (the site's profile says whether it becomes --gres or --gpus-per-node)"))
        elif name in ("mem-per-cpu", "mem-per-gpu") and request.mem_gb is not None:
            out.append(Problem(f"extra[{key!r}]", value, f"no {name} together with mem_gb (sbatch takes one of --mem, --mem-per-cpu, --mem-per-gpu)",
                               f"drop mem_gb={request.mem_gb!r} or extra {name}"))
        elif not isinstance(value, (str, int, bool)) or isinstance(value, str) and any(c in value for c in "\r\n\0"):
            out.append(Problem(f"extra[{key!r}]", value, "a str, int or True, on one line (no newline, carriage return or NUL)",
                               "pass a plain value"))
    return out
