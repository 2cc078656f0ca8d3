"""Resolve a request against its site: fill every default (saying where it came from) and check
every limit the site declares or the cluster reports. Problems are collected, never raised here.

Checks, all reported at once, each with a fix: the partition and QoS exist and go together; time,
nodes and GPUs within the partition's and the QoS's limits; whole nodes on node-exclusive
partitions (a warning naming both cheaper ways: the site runs such a job on whole nodes); CPUs, memory and tasks within a
node and within the site's cores-per-GPU policy; the account present and in the site's format.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._backends import backend_for
from ._choose import Need, by_role, choose_partition, debug_intent, need_of, partition_misfit, pick_qos, qos_for, qos_ways
from ._cost import Cost, estimate_cost
from ._errors import PlanWarning, Problem, SchedulerError
from ._profile import Partition, Qos, SiteProfile
from ._resources import Resources, format_time
from ._scheduler import ClusterInfo

FALLBACK_TIME_MIN = 60
__all__ = ["Cost", "Resolution", "Resolved", "estimate_cost", "resolve"]  # Cost and estimate_cost live in _cost


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
    warnings: list[PlanWarning] = field(default_factory=list)
    partition: Partition | None = None
    qos: Qos | None = None
    minutes: int | None = None  # the time limit, decided once

    def fail(self, param: str, value: Any, allowed: str, fix: str) -> None:
        self.problems.append(Problem(param, value, allowed, fix))

    def warn(self, param: str, value: Any, waste: str, cheaper: str) -> None:
        """The site accepts it, but it bills for what the job cannot use: say so, with the cheaper way."""
        self.warnings.append(PlanWarning(param, value, waste, cheaper))


@dataclass(frozen=True)
class Resolved:
    """A request resolved on its site, once: every field filled in, the time limit in whole
    minutes, where each value came from, the notes and warnings. The script, the cost and the
    manifest are read from it; nothing changes it afterwards."""

    resources: Resources
    minutes: int
    origins: Mapping[str, str]
    notes: tuple[str, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    partition: Partition | None = None
    qos: Qos | None = None

    @classmethod
    def of(cls, resolution: Resolution, *, origins: Mapping[str, str], notes: Sequence[str], warnings: Sequence[PlanWarning]) -> Resolved:
        """The outcome of a resolution without problems, with the planner's own origins and notes."""
        assert resolution.resources is not None and resolution.minutes is not None and not resolution.problems
        return cls(resolution.resources, resolution.minutes, MappingProxyType(dict(origins)), tuple(notes), tuple(warnings),
                   resolution.partition, resolution.qos)


def resolve(request: Resources, profile: SiteProfile, bad: set[str] | frozenset[str] = frozenset()) -> Resolution:
    """Resolve ``request`` on ``profile``. ``bad`` names fields already known to be malformed."""
    res = Resolution(request, profile, set(bad))
    res.resources, res.minutes, res.partition, res.qos = _resolve(res, request, profile)
    return res


def _resolve(self: Resolution, req: Resources, profile: SiteProfile) -> tuple[Resources, int | None, Partition | None, Qos | None]:
    """The request filled in, its time limit in minutes, its partition and QoS. One step at a
    time: each step takes the request as it stands and returns a new one (``Resources`` is
    frozen), and says in ``self`` where its values came from and what is wrong."""
    if profile.status == "announced":
        others = f"use {' or '.join(profile.alternatives)} meanwhile" if profile.alternatives else "pick another site from `aifsdk sites`"
        self.fail("site", profile.name, "a site that is in service (this one is announced, its hardware not published)",
                  f"{profile.title or profile.name}: {profile.notice} Nothing can be submitted here yet; {others}")
        return req, None, None, None
    bad = self.bad
    info = _cluster_info(self, profile)
    partitions: dict[str, Partition] = dict(info.partitions) if info else {}
    for pname, declared in profile.partitions.items():
        partitions[pname] = _overlay(partitions.get(pname), declared)
    need = need_of(req, bad)
    debug, r = debug_intent(self, req, profile, partitions)
    part_name = r.partition
    if part_name is None:
        part_name = choose_partition(self, profile, partitions, info, need, debug, r.qos)
        bound = profile.qos.get(r.qos) if isinstance(r.qos, str) else None
        if bound is not None and bound.partitions and part_name in bound.partitions and profile.default_partition not in bound.partitions:
            self.origins["partition"] = f"the partition of QoS {r.qos}"
        if part_name:
            r = r.replace(partition=part_name)
    part = partitions.get(part_name) if part_name else None
    if part_name and partitions and part is None and "partition" not in bad:
        self.fail("partition", part_name, f"one of {', '.join(sorted(partitions))}", "pick a partition the site has (`sinfo -s` lists them)")
    local = not backend_for(profile).scheduled  # one machine, no scheduler
    qos_name, qos = None, None
    if not local:
        qos_name, qos, r = _choose_qos(self, profile, r, part_name, part, need, debug)
    minutes, r = _resolve_time(self, r, need, profile, partitions, part_name, part, qos_name, qos)
    r = _tasks_and_nodes(self, r, req, profile, part_name, part, local)
    nodes, tasks, gpus, cpus = r.nodes, r.tasks_per_node, r.gpus_per_node, r.cpus_per_task
    assert nodes is not None and tasks is not None and gpus is not None  # filled in by _tasks_and_nodes
    node = profile.node
    if local:
        if "nodes" not in bad and nodes != 1:
            self.fail("nodes", nodes, f"1 on site {profile.name} (one machine)", "use site='slurm' (or a cluster site) for several nodes")
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(r, key) is not None:
                self.notes.append(f"{key}={getattr(r, key)!r} is ignored on site {profile.name}")
        if req.extra:
            self.notes.append(f"extra sbatch options are ignored on site {profile.name}")
    elif "nodes" not in bad:
        _check_nodes(self, nodes, gpus if "gpus_per_node" not in bad else 0, partitions, part_name, part, info, qos_name, qos, need)

    gpu_cap = (part.gpus_per_node if part and part.gpus_per_node is not None else node.gpus)
    if gpu_cap is None and local:
        gpu_cap = local_gpu_count()
    if "gpus_per_node" not in bad and gpu_cap is not None and gpus > gpu_cap:
        fix = "use gpus_per_node<=%d" % gpu_cap + ("" if gpu_cap else f", or a GPU site/partition (site {profile.name} has none here)")
        self.fail("gpus_per_node", gpus, f"at most {gpu_cap} per node on {profile.name}" + (f" partition {part_name}" if part_name else ""), fix)
    elif part and part.exclusive and part.gpus_per_node and "gpus_per_node" not in bad:
        if gpus == 0:
            self.notes.append(f"partition {part_name} is node-exclusive: the whole node ({part.gpus_per_node} GPUs) is allocated and billed")
        elif gpus != part.gpus_per_node:
            _partial_exclusive_node(self, gpus, nodes, partitions, part_name, part)

    cpu_cap = (part.cpus_per_node if part and part.cpus_per_node else node.cpus_usable or node.cpus) or (os.cpu_count() if local else None)
    if cpus is None and not local and gpus and not {"cpus_per_task", "tasks_per_node", "gpus_per_node"} & bad:
        cpus = _cores_per_task(self, profile, tasks, gpus, cpu_cap)
        r = r.replace(cpus_per_task=cpus)
    # what a job may request per node, else what is installed: more than that can never start
    mem_cap = part.mem_gb if part and part.mem_gb else node.mem_gb or node.mem_total_gb
    per_gpu_mem = profile.gpu_policy.mem_gb_per_gpu_default
    if r.mem_gb is None and per_gpu_mem and not local and gpus and profile.gpu_policy.mem_request and "gpus_per_node" not in bad:
        r = r.replace(mem_gb=min(per_gpu_mem * gpus, mem_cap) if mem_cap else per_gpu_mem * gpus)
        self.origins["mem_gb"] = f"site {profile.name}: {per_gpu_mem:g} GB per GPU (gpu_policy.mem_gb_per_gpu_default)"
    if cpus is not None and cpu_cap and not {"cpus_per_task", "tasks_per_node"} & bad and tasks * cpus > cpu_cap:
        self.fail("cpus_per_task", cpus, f"tasks_per_node x cpus_per_task <= {cpu_cap} CPUs per node", f"use cpus_per_task<={max(cpu_cap // tasks, 1)} with tasks_per_node={tasks}")
    elif tasks > (cpu_cap or tasks) and "tasks_per_node" not in bad:
        self.fail("tasks_per_node", tasks, f"at most {cpu_cap} (CPUs per node)", f"use tasks_per_node<={cpu_cap}")
    elif not local and not {"cpus_per_task", "tasks_per_node", "gpus_per_node"} & bad:
        _check_cpus_per_gpu(self, profile, tasks, cpus, gpus)
    mem = r.mem_gb
    if mem is not None and "mem_gb" not in bad:
        if not profile.gpu_policy.mem_request and not local:
            self.fail("mem_gb", mem, f"no memory request on {profile.name} (memory follows the GPUs)", "leave mem_gb unset; ask for more GPUs for more memory")
        elif mem_cap and mem > mem_cap:
            self.fail("mem_gb", mem, f"at most {mem_cap:g} GB per node", f"use mem_gb<={mem_cap:g}, or more nodes")
        elif profile.gpu_policy.mem_gb_per_gpu_max and gpus and mem > profile.gpu_policy.mem_gb_per_gpu_max * gpus:
            top = profile.gpu_policy.mem_gb_per_gpu_max * gpus
            self.fail("mem_gb", mem, f"at most {profile.gpu_policy.mem_gb_per_gpu_max:g} GB per GPU on {profile.name} ({top:g} GB for {gpus} GPUs)",
                      f"use mem_gb<={top:g}, or more GPUs")

    if not local and "account" not in bad:
        _check_account(self, profile, r.account, qos_name, qos)
    if not local and profile.launcher == "srun-per-gpu" and gpus > 1 and tasks == 1 and self.origins.get("tasks_per_node") == "default":
        self.notes.append(f"site {profile.name} recommends one task per GPU: pass tasks_per_node={gpus} for a distributed run")
    if not local and req.partition is not None and part is not None and not self.problems and not self.warnings:
        _costlier_partition(self, profile, r, minutes, partitions, part, info, need)
    if not local and part is not None and not part.exclusive and not self.problems:
        _sliced_waste(self, profile, r)
    if gpus and tasks and gpus % tasks and tasks % gpus and not {"gpus_per_node", "tasks_per_node"} & bad:
        self.warn("tasks_per_node", tasks, f"{tasks} tasks per node do not divide {gpus} GPUs per node: ranks get unequal GPU shares "
                  "or some GPUs sit idle", f"use tasks_per_node={gpus} (one per GPU) or a divisor of {gpus}")
    return r, minutes, part, qos


def _tasks_and_nodes(self: Resolution, r: Resources, req: Resources, profile: SiteProfile, part_name: str | None,
                     part: Partition | None, local: bool) -> Resources:
    """Tasks, nodes and GPUs per node filled in: the site's launch recipe (one rank per GPU), else
    the defaults; the partition's MinNodes for a request that names no node count."""
    bad = self.bad
    asked_gpus, changes = r.gpus_per_node, {}
    if profile.launch_recipe and not local and r.tasks_per_node is None and not {"gpus_per_node", "cpus_per_task"} & bad \
            and isinstance(asked_gpus, int) and asked_gpus >= 1:
        asked_cpus = r.cpus_per_task
        node_cpus = part.cpus_per_node if part and part.cpus_per_node else profile.node.cpus_usable or profile.node.cpus
        if asked_cpus is not None and node_cpus and asked_gpus * asked_cpus > node_cpus:  # the request's cores say one task
            self.notes.append(f"one rank per GPU would take {asked_gpus} x {asked_cpus} cores, more than the node's {node_cpus}: "
                              "1 task per node (pass tasks_per_node to choose)")
        else:
            changes["tasks_per_node"] = asked_gpus
            self.origins["tasks_per_node"] = f"site {profile.name} launch recipe: one rank per GPU"
    for key, default in (("nodes", 1), ("tasks_per_node", 1), ("gpus_per_node", 0)):
        if getattr(r, key) is None and key not in changes:
            changes[key] = default
            self.origins[key] = "default"
    if req.nodes is None and part and part.min_nodes and part.min_nodes > 1:
        changes["nodes"] = part.min_nodes  # what Slurm gives a job that names no node count there
        self.origins["nodes"] = f"partition {part_name} MinNodes"
    return r.replace(**changes) if changes else r


# -- partition, QoS and time --------------------------------------------------------------------
def _choose_qos(self: Resolution, profile: SiteProfile, r: Resources, part_name: str | None,
                part: Partition | None, need: Need, debug: bool) -> tuple[str | None, Qos | None, Resources]:
    """The QoS whose limits apply, and the request with the QoS it names: the request's, else the
    site's default for this partition and account when it fits, else the smallest general QoS that
    fits (the debug QoS when asked for). The default is written into the script only where the
    site requires a QoS; any other chosen QoS always is (the scheduler would apply its default
    otherwise)."""
    here = qos_for(profile, part_name, part)
    name = r.qos
    account = r.account if isinstance(r.account, str) else None
    if name is None and len(here) == 1 and profile.qos_required:
        (only,) = here
        self.origins["qos"] = f"the only QoS of partition {part_name}"
        self.notes.append(f"QoS {only} chosen: the only QoS of partition {part_name}")
        return only, here[only], r.replace(qos=only)
    if name is None and here:
        picked = pick_qos(profile, here, need, debug)
        if picked is not None and not (profile.qos[picked[0]].default and not debug):
            chosen, reason = picked
            self.origins["qos"] = reason
            self.notes.append(f"QoS {chosen} chosen: {reason}")
            return chosen, profile.qos[chosen], r.replace(qos=chosen)
    name, qos = _named_or_default_qos(self, profile, name, account, here, part_name)
    return name, qos, (r.replace(qos=name) if name is not None and r.qos is None and profile.qos_required else r)


def _named_or_default_qos(self: Resolution, profile: SiteProfile, name: str | None, account: str | None, here: dict[str, Qos],
                          part_name: str | None) -> tuple[str | None, Qos | None]:
    """The QoS the request names, checked; else the site's default QoS for this partition and account."""
    if name is not None:
        if "qos" in self.bad:
            return name, None
        if not profile.qos:
            if profile.partitions:  # a described site (not the generic `slurm`) that lists no QoS
                self.fail("qos", name, f"no QoS on site {profile.name} (its profile declares none)",
                          _with_command(profile, "qos", f"leave qos unset; if your project was given one, declare it under `qos:` "
                                        f"in your copy of the profile (`aifsdk sites show {profile.name}` names the file)"))
            return name, None
        if name not in profile.qos:
            self.fail("qos", name, f"one of {', '.join(profile.qos)}", _with_command(profile, "qos", "pass a QoS the site has"))
            return name, None
        if name not in here:
            self.fail("qos", name, f"a QoS of partition {part_name} ({', '.join(here) or 'none'})",
                      f"use one of {', '.join(here)} on partition {part_name}" if here else "pick the partition this QoS belongs to")
        return name, profile.qos[name]
    defaults = [(n, q) for n, q in here.items() if q.default and (not q.account_pattern or account and re.fullmatch(q.account_pattern, account))]
    if defaults:
        name, qos = defaults[0]
        if profile.qos_required:
            self.origins["qos"] = f"site {profile.name} default QoS" + (f" for accounts like {qos.account_pattern}" if qos.account_pattern else "")
        else:
            self.notes.append(f"the limits of QoS {name} (the default on partition {part_name}) were checked")
        return name, qos
    if profile.qos_required:
        self.fail("qos", None, f"a QoS on site {profile.name} (one of {', '.join(here) or ', '.join(profile.qos)})",
                  _with_command(profile, "qos", "pass qos=... matching your account"))
    return None, None


def _resolve_time(self: Resolution, req: Resources, need: Need, profile: SiteProfile, partitions: dict[str, Partition],
                  part_name: str | None, part: Partition | None, qos_name: str | None, qos: Qos | None) -> tuple[int | None, Resources]:
    """The time limit in whole minutes, and the request with it as Slurm writes it: the request's,
    else the site's default, else the partition's, else the fallback (never submitit's silent 5
    minutes); within the partition's and the QoS's maximum. ``None`` when the request's time is
    malformed (a problem says so already)."""
    limits = []
    if part and part.max_minutes:
        limits.append((part.max_minutes, f"partition {part_name} MaxTime"))
    if qos and qos.max_minutes:
        limits.append((qos.max_minutes, f"QoS {qos_name} MaxWall"))
    if req.time is None:
        if profile.default_minutes is not None:
            minutes, origin = profile.default_minutes, f"site {profile.name} default_time"
        elif part and part.default_minutes:
            minutes, origin = part.default_minutes, f"partition {part_name} DefaultTime"
        else:
            minutes, origin = FALLBACK_TIME_MIN, "aifsdk fallback (the site sets no default)"
        for top, what in limits:
            if minutes > top:
                minutes, origin = top, f"{what} (the default was higher)"
        self.origins["time"] = origin
        return minutes, req.replace(time=format_time(minutes))
    if "time" in self.bad:
        return None, req
    minutes = req.time_minutes
    assert minutes is not None  # a Resources' time is well-formed
    if part and part.max_minutes and minutes > part.max_minutes:
        better = _prefer_known(partitions, lambda p: p.max_minutes is None or p.max_minutes >= minutes, lambda p: p.max_minutes is not None)
        alt = f", or use {_keywords('partition', better)}" if better else ""
        self.fail("time", req.time, f"at most {format_time(part.max_minutes)} on partition {part_name}", f"lower time to {format_time(part.max_minutes)}{alt}; split longer runs into checkpointed jobs")
    elif qos and qos.max_minutes and minutes > qos.max_minutes:
        top = qos.max_minutes
        ways = (qos_ways(profile, part_name, part, qos_name, need, lambda q: q.max_minutes is None or q.max_minutes >= minutes)
                or qos_ways(profile, part_name, part, qos_name, need, lambda q: q.max_minutes is None or q.max_minutes > top))
        alt = f", or use {' or '.join(ways)}" if ways else ""
        self.fail("time", req.time, f"at most {format_time(top)} with QoS {qos_name}", f"lower time to {format_time(top)}{alt}; split longer runs into checkpointed jobs")
    return minutes, req.replace(time=format_time(minutes))


def _check_nodes(self: Resolution, nodes: int, gpus: int, partitions: dict[str, Partition], part_name: str | None, part: Partition | None,
                 info: ClusterInfo | None, qos_name: str | None, qos: Qos | None, need: Need) -> None:
    total = info.total_nodes.get(part_name) if info and part_name else None
    for bound, what in ((part.max_nodes if part else None, "MaxNodes"), (total or (part.node_count if part else None), "nodes")):
        if bound is not None and nodes > bound:
            bigger = _prefer_known({n: p for n, p in partitions.items() if n != part_name},
                                   lambda p: (p.max_nodes or p.node_count or nodes) >= nodes and (p.min_nodes or 1) <= nodes and (p.gpus_per_node or 0) >= gpus,
                                   lambda p: p.max_nodes is not None or p.min_nodes is not None or p.node_count is not None)
            alt = _keywords("partition", bigger) if bigger else "a partition that allows more"
            self.fail("nodes", nodes, f"at most {bound} ({what} of partition {part_name})", f"use nodes<={bound}, or {alt}")
            return
    if part and part.min_nodes and nodes < part.min_nodes:
        smaller = by_role({n: p for n, p in partitions.items() if n != part_name and (p.min_nodes or 1) <= nodes <= (p.max_nodes or nodes)})
        self.fail("nodes", nodes, f"at least {part.min_nodes} on partition {part_name}",
                  f"use nodes>={part.min_nodes}, or {_keywords('partition', smaller)}" if smaller else f"use nodes>={part.min_nodes}")
        return
    if qos is None:
        return
    profile = self.profile
    too_many = qos.max_nodes is not None and nodes > qos.max_nodes
    if too_many or qos.min_nodes is not None and nodes < qos.min_nodes:
        ways = qos_ways(profile, part_name, part, qos_name, need,
                        lambda q: (q.max_nodes is None or q.max_nodes >= nodes) and (q.min_nodes is None or q.min_nodes <= nodes))
        if qos.min_nodes is not None and qos.max_nodes is not None:
            span = f"{qos.min_nodes}-{qos.max_nodes}"
        else:
            span = f"at most {qos.max_nodes}" if qos.max_nodes is not None else f"at least {qos.min_nodes}"
        within = f"nodes<={qos.max_nodes}" if too_many else f"nodes>={qos.min_nodes}"
        if ways:
            fix = f"use {' or '.join(ways)} for {nodes} nodes, or {within}"
        else:
            # no QoS allows that many (or that few): the nearest ones, with the node count each allows
            bound = qos.max_nodes if too_many else qos.min_nodes
            nearer = qos_ways(profile, part_name, part, qos_name, need,
                              (lambda q: q.max_nodes is None or q.max_nodes > bound) if too_many else (lambda q: (q.min_nodes or 1) < bound))
            fix = f"use {within}" + (f", or {' or '.join(nearer)}" if nearer else "") + f" (no QoS in the profile of site {profile.name} allows {nodes} nodes)"
        self.fail("nodes", nodes, f"{span} nodes with QoS {qos_name}", fix)
    elif qos.max_gpus is not None and gpus and nodes * gpus > qos.max_gpus:
        ways = qos_ways(profile, part_name, part, qos_name, need, lambda q: q.max_gpus is None or q.max_gpus >= nodes * gpus)
        self.fail("gpus_per_node", gpus, f"at most {qos.max_gpus} GPUs in all with QoS {qos_name} (asked {nodes} x {gpus})",
                  f"use nodes x gpus_per_node <= {qos.max_gpus}" + (f", or {' or '.join(ways)}" if ways else ""))


def _keywords(key: str, names: list[str]) -> str:
    """``partition='a' or partition='b'``: the ways out as the keywords that choose them (the
    command shows them as its flags)."""
    return " or ".join(f"{key}={n!r}" for n in names)


def _prefer_known(partitions: dict[str, Partition], fits: Any, known: Any) -> list[str]:
    """Partitions that fit (for more nodes or time: never a debug one); those whose limit is
    declared (known to fit) first, else the rest; general partitions before special ones."""
    candidates = by_role({n: p for n, p in partitions.items() if p.role != "debug" and fits(p)})
    return [n for n in candidates if known(partitions[n])] or [f"{n} (limit not declared: check sinfo)" for n in candidates]


def _partial_exclusive_node(self: Resolution, gpus: int, nodes: int, partitions: dict[str, Partition], part_name: str | None, part: Partition) -> None:
    """A node-exclusive partition allocates (and bills) whole nodes: the site runs the job, so
    this is a warning that names both cheaper ways, not a refusal."""
    full = part.gpus_per_node
    shared = [n for n, p in partitions.items()
              if not p.exclusive and (p.gpus_per_node or 0) >= gpus and (p.max_nodes is None or p.max_nodes >= nodes) and (p.min_nodes or 1) <= nodes]
    moves = [f"partition={n!r} ({partitions[n].description or 'shared nodes'})" for n in shared]
    cheaper = f"use gpus_per_node={full} (the same bill, all the GPUs)"
    cheaper += f", or {' or '.join(moves)} for {gpus} GPUs per node" if moves else f"; no shared partition takes {nodes} node(s) of {gpus} GPUs"
    self.warn("gpus_per_node", gpus, f"partition {part_name} is node-exclusive: each node's {full} GPUs are allocated and billed, "
              f"{gpus} are asked for", cheaper)


def _sliced_waste(self: Resolution, profile: SiteProfile, r: Resources) -> None:
    """Where the site bills cores and memory in slices of one GPU's share (LUMI small-g: 8 cores,
    64 GB), a job whose cores or memory round up to more slices than its GPUs pays for GPUs it
    does not get: say so, with the most it can have for its GPUs' price."""
    b = profile.billing
    gpus, tasks = r.gpus_per_node or 0, r.tasks_per_node or 1
    if b.shared_by != "max-share" or not gpus:
        return
    for param, value, used, size, unit in (("cpus_per_task", r.cpus_per_task, tasks * (r.cpus_per_task or 1), b.slice_cpus, "cores"),
                                           ("mem_gb", r.mem_gb, r.mem_gb or 0, b.slice_mem_gb, "GB")):
        if not size or not used or self.origins.get(param, "request") != "request":
            continue
        slices = -(-used // size)
        if slices > gpus:
            top = size * gpus
            fix = f"use cpus_per_task<={max(top // tasks, 1):g} ({top:g} cores for {gpus} GPU{'s' if gpus != 1 else ''})" if param == "cpus_per_task" else f"use mem_gb<={top:g}"
            self.warn(param, value, f"{used:g} {unit} per node are {slices:g} billing slices of {size:g} {unit}: billed as {slices:g} GPUs, "
                      f"{gpus} asked for", f"{fix}, or gpus_per_node={slices:g} for the same bill")
            return


def _costlier_partition(self: Resolution, profile: SiteProfile, r: Resources, minutes: int | None, partitions: dict[str, Partition],
                        part: Partition, info: ClusterInfo | None, need: Need) -> None:
    """The named partition bills more than another general partition the same request fits."""
    here = estimate_cost(profile, r, part, minutes).amount
    cheaper = []
    for name, other in partitions.items():
        if name == r.partition or other.role != "general" or partition_misfit(other, need, info.total_nodes.get(name) if info else None, profile.node.gpus):
            continue
        if r.qos is not None and profile.qos and r.qos not in qos_for(profile, name, other):
            continue
        cost = estimate_cost(profile, r.replace(partition=name), other, minutes)
        if cost.amount < here * 0.999:
            cheaper.append((cost.amount, name))
    if cheaper:
        amount, name = min(cheaper)
        from ._cost import UNIT_LABEL

        unit = UNIT_LABEL[profile.billing.unit]
        self.warn("partition", r.partition, f"partition {r.partition} bills {here:.4g} {unit} for this job at its time limit, partition {name} {amount:.4g} {unit}",
                  f"use partition={name!r}")


def _cores_per_task(self: Resolution, profile: SiteProfile, tasks: int, gpus: int, cpu_cap: int | None) -> int | None:
    """The site's cores-per-GPU rule as cpus_per_task (None when the site has no rule): the cores
    of the job's GPUs shared by its tasks, within the node."""
    policy = profile.gpu_policy
    per_gpu = policy.cpus_per_gpu_fixed or policy.cpus_per_gpu_default
    if not per_gpu:
        return None
    cores = max(per_gpu * gpus // tasks, 1)
    if cpu_cap:
        cores = min(cores, max(cpu_cap // tasks, 1))
    key = "cpus_per_gpu_fixed" if policy.cpus_per_gpu_fixed else "cpus_per_gpu_default"
    self.origins["cpus_per_task"] = f"site {profile.name}: {per_gpu} cores per GPU (gpu_policy.{key})"
    return cores


def _check_cpus_per_gpu(self: Resolution, profile: SiteProfile, tasks: int, cpus: int | None, gpus: int) -> None:
    policy = profile.gpu_policy
    top = policy.cpus_per_gpu_fixed or policy.cpus_per_gpu_max
    if not gpus or cpus is None or not (top or policy.cpus_per_gpu_min):
        return
    total = tasks * cpus
    if top and total > top * gpus:
        kind = "exactly" if policy.cpus_per_gpu_fixed else "at most"
        self.fail("cpus_per_task", cpus, f"{kind} {top} CPU cores per GPU on {profile.name} ({tasks} tasks x {cpus} = {total} cores for {gpus} GPUs)",
                  f"use cpus_per_task<={max(top * gpus // tasks, 1)} with tasks_per_node={tasks}, or ask for more GPUs")
    elif policy.cpus_per_gpu_min and total < policy.cpus_per_gpu_min * gpus:
        low = policy.cpus_per_gpu_min
        self.fail("cpus_per_task", cpus, f"at least {low} CPU cores per GPU on {profile.name} ({tasks} tasks x {cpus} = {total} cores for {gpus} GPUs)",
                  f"use cpus_per_task>={-(-low * gpus // tasks)} with tasks_per_node={tasks}, or leave cpus_per_task unset")
    elif policy.cpus_per_gpu_fixed and total < top * gpus:
        self.notes.append(f"site {profile.name} gives {top} cores per GPU ({top * gpus} for {gpus} GPUs) whatever cpus_per_task asks")


def _check_account(self: Resolution, profile: SiteProfile, account: Any, qos_name: str | None, qos: Qos | None) -> None:
    acc = profile.account
    if account is None and acc.required:
        self.fail("account", None, f"a project account{f' like {acc.example!r}' if acc.example else ''}",
                  _with_command(profile, "accounts", f"pass account=... (site {profile.name} requires one)"))
    elif account is not None and acc.pattern and not re.fullmatch(acc.pattern, account):
        self.fail("account", account, f"an account matching {acc.pattern}" + (f" (e.g. {acc.example!r})" if acc.example else ""),
                  _with_command(profile, "accounts", "use the project account the site gave you (not the proposal id)"))
    elif account is not None and qos and qos.account_pattern and "qos" not in self.bad and not re.fullmatch(qos.account_pattern, account):
        self.fail("qos", qos_name, f"QoS {qos_name} only with accounts matching {qos.account_pattern}",
                  _with_command(profile, "qos", "use the QoS that goes with your account"))


def _with_command(profile: SiteProfile, key: str, fix: str) -> str:
    command = profile.commands.get(key)
    return f"{fix}; `{command}` lists yours" if command else fix


# -- the cluster --------------------------------------------------------------------------------
def _cluster_info(self: Resolution, profile: SiteProfile) -> ClusterInfo | None:
    try:
        info = backend_for(profile).cluster_info()  # None: no scheduler, or the profile says not to ask
    except SchedulerError as exc:
        self.notes.append(f"limits not discovered from the cluster ({exc}); only the profile's were checked")
        return None
    if info is None:
        return None
    if profile.partitions and not set(profile.partitions) & set(info.partitions):
        # This machine's Slurm is another cluster (a laptop's test cluster, another site):
        # its partitions must not mix with this site's.
        self.notes.append(f"this machine's Slurm (partitions {', '.join(sorted(info.partitions)) or 'none'}) is not site {profile.name}; "
                          "only the profile's limits were checked")
        return None
    return info


def wrong_cluster(profile: SiteProfile) -> str | None:
    """Why this machine's Slurm cannot be site ``profile`` (None when it may be, or when the site
    is reached over ``ssh``): no Slurm commands here, a ClusterName other than the profile's
    ``cluster_name``, or (without one) a cluster none of whose partitions is one of the site's (a
    laptop's test cluster, another site)."""
    backend = backend_for(profile)
    slurm = backend.slurm()
    if slurm is None or backend.cluster_paths or not (profile.partitions or profile.cluster_name):
        return None
    if shutil.which("scontrol") is None or shutil.which("sbatch") is None:
        return "this machine has no Slurm commands (sbatch, scontrol)"
    try:
        info = slurm.cluster_info()  # cached: plan has read it already
        name = slurm.config_value("ClusterName") if profile.cluster_name else None
    except SchedulerError:
        return None  # the controller does not answer: sbatch will say why
    if profile.cluster_name and name:
        if name == profile.cluster_name:
            return None
        return (f"this machine's Slurm is cluster {name!r} with partitions {', '.join(sorted(info.partitions)) or 'none'}, "
                f"site {profile.name}'s is {profile.cluster_name!r}")
    if set(profile.partitions) & set(info.partitions):
        return None
    try:
        name = name or slurm.config_value("ClusterName")  # only to name it in the message
    except SchedulerError:
        name = None
    cluster = f"cluster {name!r}" if name else "its cluster"
    return (f"this machine's Slurm is {cluster} with partitions {', '.join(sorted(info.partitions)) or 'none'}, "
            f"none of site {profile.name}'s ({', '.join(profile.partitions)})")


def _overlay(base: Partition | None, top: Partition) -> Partition:
    if base is None:
        return top
    changes = {f.name: getattr(top, f.name) for f in dataclasses.fields(top) if getattr(top, f.name) not in (None, "", False, [])}
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
