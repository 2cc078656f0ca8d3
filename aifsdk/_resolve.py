"""Resolve a request against its site: fill every default (saying where it came from) and check
every limit the site declares or the cluster reports. Problems are collected, never raised here.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ._errors import Problem, SchedulerError
from ._profile import Partition, SiteProfile
from ._resources import Resources, format_time, parse_time
from ._scheduler import ClusterInfo, Slurm, default_slurm

FALLBACK_TIME_MIN = 60


@dataclass(frozen=True)
class Cost:
    """What the job may consume at its full time limit (an upper bound), in the site's unit."""

    unit: str
    amount: float
    gpu_hours: float
    node_hours: float
    core_hours: float

    def __str__(self) -> str:
        return (
            f"{self.amount:.2f} {self.unit} at most (the full time limit): "
            f"{self.gpu_hours:.2f} GPU-h, {self.node_hours:.2f} node-h, {self.core_hours:.2f} core-h"
        )


@dataclass
class Resolution:
    """The outcome of resolving: the filled-in request, and what was decided or is wrong."""

    request: Resources
    profile: SiteProfile
    bad: set[str]
    resources: Resources | None = None
    origins: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    partition: Partition | None = None

    def fail(self, param: str, value: Any, allowed: str, fix: str) -> None:
        self.problems.append(Problem(param, value, allowed, fix))


def resolve(request: Resources, profile: SiteProfile, bad: set[str] | frozenset[str] = frozenset()) -> Resolution:
    """Resolve ``request`` on ``profile``. ``bad`` names fields already known to be malformed."""
    res = Resolution(request, profile, set(bad))
    res.resources = _resolve(res, request, profile)
    return res


def _resolve(self: Resolution, req: Resources, profile: SiteProfile) -> Resources:
    if profile.status == "announced":
        self.fail("site", profile.name, "a site whose hardware is published", f"{profile.title}: not open yet; pick another site from `aifsdk sites`")
    values = req.as_dict()
    bad = self.bad
    info = _cluster_info(self, profile)
    partitions: dict[str, Partition] = dict(info.partitions) if info else {}
    for pname, declared in profile.partitions.items():
        partitions[pname] = _overlay(partitions.get(pname), declared)
    part_name = req.partition
    if part_name is None:
        part_name = profile.default_partition or (info.default_partition if info else None)
        if part_name:
            values["partition"] = part_name
            self.origins["partition"] = "site default partition"
    part = partitions.get(part_name) if part_name else None
    if part_name and partitions and part is None and "partition" not in bad:
        self.fail("partition", part_name, f"one of {', '.join(sorted(partitions))}", "pick a partition the site has (`sinfo -s` lists them)")
    self.partition = part
    local = profile.executor in ("local", "debug")

    # time: request, else site default, else partition default, else the fallback; never
    # submitit's silent 5 minutes.
    if req.time is None:
        if profile.default_time is not None:
            minutes, origin = parse_time(profile.default_time), f"site {profile.name} default_time"
        elif part and part.default_minutes:
            minutes, origin = part.default_minutes, f"partition {part_name} DefaultTime"
        else:
            minutes, origin = FALLBACK_TIME_MIN, "aifsdk fallback (the site sets no default)"
        if part and part.max_minutes and minutes > part.max_minutes:
            minutes, origin = part.max_minutes, f"partition {part_name} MaxTime (the default was higher)"
        values["time"] = format_time(minutes)
        self.origins["time"] = origin
    elif "time" not in bad:
        minutes = parse_time(req.time)
        values["time"] = format_time(minutes)
        if part and part.max_minutes and minutes > part.max_minutes:
            better = [n for n, p in partitions.items() if p.max_minutes is None or p.max_minutes >= minutes]
            alt = f", or use partition {' / '.join(better)}" if better else ""
            self.fail("time", req.time, f"at most {format_time(part.max_minutes)} on partition {part_name}", f"lower time to {format_time(part.max_minutes)}{alt}; split longer runs into checkpointed jobs")

    for key, default in (("nodes", 1), ("tasks_per_node", 1), ("gpus_per_node", 0)):
        if values[key] is None:
            values[key] = default
            self.origins[key] = "default"
    nodes, tasks, gpus, cpus = values["nodes"], values["tasks_per_node"], values["gpus_per_node"], values["cpus_per_task"]
    node = profile.node
    if local:
        if "nodes" not in bad and nodes != 1:
            self.fail("nodes", nodes, f"1 on site {profile.name} (one machine)", "use site='slurm' (or a cluster site) for several nodes")
        for key in ("partition", "account", "qos", "constraint"):
            if values[key] is not None:
                self.notes.append(f"{key}={values[key]!r} is ignored on site {profile.name}")
        if req.extra:
            self.notes.append(f"extra sbatch options are ignored on site {profile.name}")
    elif "nodes" not in bad:
        limit = part.max_nodes if part else None
        total = info.total_nodes.get(part_name) if info and part_name else None
        for bound, what in ((limit, "MaxNodes"), (total, "nodes in the partition")):
            if bound is not None and nodes > bound:
                self.fail("nodes", nodes, f"at most {bound} ({what} of partition {part_name})", f"use nodes<={bound}, or a partition that allows more")
                break

    gpu_cap = (part.gpus_per_node if part and part.gpus_per_node is not None else node.gpus)
    if gpu_cap is None and local:
        gpu_cap = local_gpu_count()
    if "gpus_per_node" not in bad and gpu_cap is not None and gpus > gpu_cap:
        fix = "use gpus_per_node<=%d" % gpu_cap + ("" if gpu_cap else f", or a GPU site/partition (site {profile.name} has none here)")
        self.fail("gpus_per_node", gpus, f"at most {gpu_cap} per node on {profile.name}" + (f" partition {part_name}" if part_name else ""), fix)
    if part and part.exclusive and part.gpus_per_node and gpus not in (0, part.gpus_per_node) and "gpus_per_node" not in bad:
        self.notes.append(f"partition {part_name} is node-exclusive: the whole node ({part.gpus_per_node} GPUs) is allocated and billed")

    cpu_cap = (part.cpus_per_node if part and part.cpus_per_node else node.cpus) or (os.cpu_count() if local else None)
    if cpus is not None and cpu_cap and not {"cpus_per_task", "tasks_per_node"} & bad and tasks * cpus > cpu_cap:
        self.fail("cpus_per_task", cpus, f"tasks_per_node x cpus_per_task <= {cpu_cap} CPUs per node", f"use cpus_per_task<={max(cpu_cap // tasks, 1)} with tasks_per_node={tasks}")
    elif tasks > (cpu_cap or tasks) and "tasks_per_node" not in bad:
        self.fail("tasks_per_node", tasks, f"at most {cpu_cap} (CPUs per node)", f"use tasks_per_node<={cpu_cap}")
    mem_cap = part.mem_gb if part and part.mem_gb else node.mem_gb
    if values["mem_gb"] is not None and mem_cap and "mem_gb" not in bad and values["mem_gb"] > mem_cap:
        self.fail("mem_gb", values["mem_gb"], f"at most {mem_cap:g} GB per node", f"use mem_gb<={mem_cap:g}, or more nodes")

    if not local and "account" not in bad:
        acc = profile.account
        if values["account"] is None and acc.required:
            self.fail("account", None, f"a project account{f' like {acc.example!r}' if acc.example else ''}", f"pass account=... (site {profile.name} requires one)")
        elif values["account"] is not None and acc.pattern and not re.fullmatch(acc.pattern, values["account"]):
            self.fail("account", values["account"], f"an account matching {acc.pattern}" + (f" (e.g. {acc.example!r})" if acc.example else ""), "use the project account the site gave you")
    return Resources(**values)

def _cluster_info(self: Resolution, profile: SiteProfile) -> ClusterInfo | None:
    if profile.executor != "slurm" or not profile.discover:
        return None
    try:
        return slurm_for(profile).cluster_info()
    except SchedulerError as exc:
        self.notes.append(f"limits not discovered from the cluster ({exc}); only the profile's were checked")
        return None



def slurm_for(profile: SiteProfile) -> Slurm:
    """The scheduler seam for a site (one per process; remote sites will differ)."""
    return default_slurm()


def _overlay(base: Partition | None, top: Partition) -> Partition:
    if base is None:
        return top
    changes = {f.name: getattr(top, f.name) for f in dataclasses.fields(top) if getattr(top, f.name) not in (None, "", False)}
    return dataclasses.replace(base, **changes)


@functools.lru_cache(maxsize=1)
def local_gpu_count() -> int:
    """GPUs on this machine, counted by the vendor tools (0 when none answer)."""
    for argv, pattern in ((["nvidia-smi", "-L"], r"^GPU \d+"), (["rocm-smi", "--showid"], r"^GPU\[\d+\]")):
        if shutil.which(argv[0]):
            try:
                out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.TimeoutExpired):
                continue
            ids = {m.group(0) for m in re.finditer(pattern, out, re.M)}
            if ids:
                return len(ids)
    return 0


def estimate_cost(profile: SiteProfile, r: Resources, part: Partition | None) -> Cost:
    hours = parse_time(r.time) / 60 if r.time is not None else 0.0  # type: ignore[arg-type]
    nodes = r.nodes or 1
    gpus = r.gpus_per_node or 0
    if part and part.exclusive and part.gpus_per_node:
        gpus = part.gpus_per_node
    node_cpus = (part.cpus_per_node if part and part.cpus_per_node else profile.node.cpus)
    cores = node_cpus if part and part.exclusive and node_cpus else (r.tasks_per_node or 1) * (r.cpus_per_task or 1)
    gpu_h, node_h, core_h = nodes * gpus * hours, nodes * hours, nodes * cores * hours
    amount = {"gpu-hours": gpu_h, "node-hours": node_h, "core-hours": core_h}[profile.billing.unit]
    return Cost(profile.billing.unit, round(amount, 4), round(gpu_h, 4), round(node_h, 4), round(core_h, 4))
