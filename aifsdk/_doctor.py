"""``aifsdk doctor``: the live check of a site profile, and of a request, against the cluster.

On a machine with Slurm it reads ``sinfo`` and ``scontrol`` (partitions with MaxTime, MaxNodes,
DefaultTime and node-exclusivity; nodes with their CPUs, memory and GRES; MaxArraySize) through
the scheduler seam, then reports

- where the cluster and the site's profile disagree (a partition the profile declares that the
  cluster lacks, a different time or node limit, a different node shape...), each with a fix;
- for a request (``-N 1 --gpus-per-node 4``), whether it fits what the cluster really has (its
  nodes, not the profile's claims), naming the node size when it does not, and the profile's
  own checks (account format, QoS, cores per GPU...);
- the site's own account and budget tools (the profile's ``commands.accounts`` and
  ``commands.budget``: ``lumi-allocations``, ``saldo -b``, ``jutil``...), run where the site's
  Slurm is (this machine, or the login node over SSH), their answer shown beside the request's
  cost in the site's billing unit; a tool that is not there is named as missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._cost import Cost, estimate_cost
from ._errors import Problem, SchedulerError
from ._profile import Partition, SiteProfile, load_site
from ._resources import Resources, build, format_time
from ._scheduler import ClusterInfo, Slurm, _fields, _gpus_in_gres, parse_scontrol


@dataclass(frozen=True)
class Node:
    """One node as ``scontrol show node`` reports it."""

    name: str
    cpus: int
    mem_gb: float
    gpus: int
    gres: str
    partitions: tuple[str, ...]
    state: str

    def size(self) -> str:
        return f"{self.cpus} CPUs, {self.mem_gb:g} GB, {self.gpus} GPUs ({self.gres or 'no GRES'})"


@dataclass
class Report:
    """What the doctor found. ``disagreements`` and ``problems`` are empty when all is well."""

    site: str
    cluster: ClusterInfo
    nodes: list[Node]
    max_array_size: int | None
    disagreements: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    request: Resources | None = None
    where: str = "this machine's Slurm cluster"
    budget: list[Budget] = field(default_factory=list)
    budget_skipped: str = ""  # why the site's budget tools were not run
    cost: Cost | None = None

    def text(self) -> str:
        lines = [f"site {self.site} against {self.where}:"]
        for name, part in self.cluster.partitions.items():
            total = self.cluster.total_nodes.get(name)
            lines.append(f"  partition {name}{' (default)' if part.default else ''}: {total} nodes, MaxTime {_t(part.max_minutes)}, "
                         f"DefaultTime {_t(part.default_minutes)}, MaxNodes {part.max_nodes or 'UNLIMITED'}"
                         + (", node-exclusive" if part.exclusive else ""))
        for node in self.nodes:
            lines.append(f"  node {node.name}: {node.size()}, state {node.state}, partitions {','.join(node.partitions)}")
        lines.append(f"  MaxArraySize {self.max_array_size if self.max_array_size is not None else 'unknown'}")
        lines.append("profile vs cluster:" + ("" if self.disagreements else " they agree"))
        lines += [f"  differs: {d}" for d in self.disagreements]
        lines += [f"  note: {n}" for n in self.notes]
        if self.request is not None:
            r = self.request
            asked = ", ".join(f"{k}={v}" for k, v in r.as_dict().items() if v not in (None, {}))
            lines.append(f"request ({asked or 'defaults'}): " + ("fits" if not self.problems else f"{len(self.problems)} problem(s)"))
            lines += [f"  - {p}" for p in self.problems]
        if self.budget or self.budget_skipped or self.cost is not None:
            head = f" not run: {self.budget_skipped}" if self.budget_skipped else "" if self.budget else " none declared in the profile (commands.budget)"
            lines.append("budget (the site's own tools):" + head)
            for answer in self.budget:
                lines += [f"  {line}" for line in answer.text().splitlines()]
            if self.cost is not None:
                lines.append(f"  this request: {self.cost}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Budget:
    """One account or budget tool of the site and what it answered (``missing``: not installed there)."""

    key: str  # the profile's commands.<key>
    command: str
    output: str = ""
    missing: bool = False
    error: str = ""

    def text(self) -> str:
        if self.missing:
            return (f"$ {self.command}: not found where the site's Slurm runs (commands.{self.key} of the profile); "
                    "run the doctor on the site's login node, or fix the command in your copy of the profile")
        if self.error:
            return f"$ {self.command}: failed ({self.error})"
        body = self.output.rstrip().splitlines() or ["(no output)"]
        shown = body[:BUDGET_LINES] + ([f"... {len(body) - BUDGET_LINES} more lines"] if len(body) > BUDGET_LINES else [])
        return "\n".join([f"$ {self.command}", *(f"  {line}" for line in shown)])


BUDGET_LINES = 30
BUDGET_KEYS = ("budget", "accounts")  # read-only tools; never e.g. commands.switch_default_project


def read_budget(profile: SiteProfile, slurm: Slurm) -> list[Budget]:
    """Run the profile's account and budget tools once each, where its Slurm runs."""
    out: list[Budget] = []
    seen: set[str] = set()
    for key in BUDGET_KEYS:
        command = profile.commands.get(key)
        if not command or command in seen:
            continue
        seen.add(command)
        try:
            proc = slurm.site_command(command)
        except SchedulerError as exc:
            out.append(Budget(key, command, error=str(exc)))
            continue
        if proc.returncode == 127:
            out.append(Budget(key, command, missing=True))
        elif proc.returncode != 0:
            out.append(Budget(key, command, proc.stdout, error=f"exit code {proc.returncode}: {proc.stderr.strip()[-300:]}"))
        else:
            out.append(Budget(key, command, proc.stdout))
    return out


def _t(minutes: int | None) -> str:
    return "UNLIMITED" if minutes is None else format_time(minutes)


def parse_nodes(text: str) -> list[Node]:
    nodes = []
    for line in text.splitlines():
        f = _fields(line)
        if "NodeName" not in f:
            continue
        gres = "" if f.get("Gres") in (None, "(null)") else f["Gres"]
        nodes.append(Node(f["NodeName"], int(f.get("CPUTot", "0") or 0), round(int(f.get("RealMemory", "0") or 0) / 1024, 2), _gpus_in_gres(gres), gres,
                          tuple(p for p in f.get("Partitions", "").split(",") if p), f.get("State", "?")))
    return nodes


def read_cluster(slurm: Slurm) -> tuple[ClusterInfo, list[Node], int | None]:
    """Partitions, nodes and MaxArraySize, read live (no cache): sinfo must answer first."""
    slurm.run(["sinfo", "-h", "-o", "%P %a %l %D"], timeout=30)  # slurmctld answers, or a SchedulerError says why
    partitions = slurm.run(["scontrol", "--oneliner", "show", "partition"])
    nodes_text = slurm.run(["scontrol", "--oneliner", "show", "node"])
    config = slurm.run(["scontrol", "show", "config"])
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.M)
    return parse_scontrol(partitions, nodes_text), parse_nodes(nodes_text), int(match.group(1)) if match else None


def compare(profile: SiteProfile, info: ClusterInfo, nodes: list[Node], max_array: int | None) -> tuple[list[str], list[str]]:
    """Where the profile and the cluster disagree (each with a fix), and notes."""
    out: list[str] = []
    notes: list[str] = []
    fix = f"update {profile.source_file or 'the profile'} (or your copy in the user config folder)"
    if profile.partitions and not set(profile.partitions) & set(info.partitions):
        notes.append(f"none of site {profile.name}'s partitions is on this cluster: this machine's Slurm is probably not {profile.name} "
                     "(run the doctor on the site's login node)")
    if not profile.partitions:
        notes.append(f"profile {profile.name} declares no partitions: every limit is read from the cluster (discover: {profile.discover})")
    for name, declared in profile.partitions.items():
        live = info.partitions.get(name)
        if live is None:
            out.append(f"partition {name}: in the profile, not on the cluster (it has {', '.join(info.partitions) or 'none'}); {fix}")
            continue
        members = [n for n in nodes if name in n.partitions]
        checks: list[tuple[str, Any, Any]] = [
            ("max_time", declared.max_minutes, live.max_minutes), ("default_time", declared.default_minutes, live.default_minutes),
            ("max_nodes", declared.max_nodes, live.max_nodes), ("node_count", declared.node_count, info.total_nodes.get(name)),
            ("gpus_per_node", declared.gpus_per_node, max((n.gpus for n in members), default=None)),
            ("cpus_per_node", declared.cpus_per_node, max((n.cpus for n in members), default=None)),
            ("mem_gb", declared.mem_gb, max((n.mem_gb for n in members), default=None)),
        ]
        for key, mine, theirs in checks:
            if mine is not None and mine != theirs:
                show = _t if key.endswith("time") else (lambda v: "UNLIMITED" if v is None else f"{v:g}")
                out.append(f"partitions.{name}.{key}: profile {show(mine)}, cluster {show(theirs)}; {fix}")
        if declared.exclusive != live.exclusive and live.description == "discovered with scontrol":
            out.append(f"partitions.{name}.exclusive: profile {declared.exclusive}, cluster {live.exclusive} (OverSubscribe/ExclusiveUser); {fix}")
        if declared.default != live.default and declared.default:
            out.append(f"partitions.{name}.default: the profile's default partition is not the cluster's ({info.default_partition}); {fix}")
    extra = sorted(set(info.partitions) - set(profile.partitions))
    if profile.partitions and extra:
        notes.append(f"partitions on the cluster the profile does not declare: {', '.join(extra)}")
    node = profile.node
    for key, mine, theirs in (("node.gpus", node.gpus, max((n.gpus for n in nodes), default=None)),
                              ("node.cpus", node.cpus, max((n.cpus for n in nodes), default=None))):
        if mine is not None and mine != theirs:
            out.append(f"{key}: profile {mine}, cluster nodes have at most {theirs}; {fix}")
    if profile.max_array_size is not None and max_array is not None and profile.max_array_size != max_array:
        out.append(f"max_array_size: profile {profile.max_array_size}, cluster MaxArraySize {max_array}; {fix}")
    return out, notes


def check_request(request: Resources, info: ClusterInfo, nodes: list[Node], default_partition: str | None) -> list[Problem]:
    """The request against what the cluster really has (not what the profile claims)."""
    problems: list[Problem] = []
    name = request.partition or default_partition or info.default_partition
    part: Partition | None = info.partitions.get(name) if name else None
    if part is None:
        problems.append(Problem("partition", name, f"one of {', '.join(info.partitions)} (on this cluster)", "pick a partition `sinfo -s` lists"))
        return problems
    members = [n for n in nodes if name in n.partitions]
    want_nodes, gpus = request.nodes or 1, request.gpus_per_node or 0
    cores = (request.tasks_per_node or 1) * request.cpus_per_task if request.cpus_per_task else 0
    sizes = "; ".join(sorted({n.size() for n in members})) or "no nodes"
    names = ",".join(n.name for n in members)
    total = info.total_nodes.get(name, len(members))
    if want_nodes > total or part.max_nodes is not None and want_nodes > part.max_nodes:
        top = min(total, part.max_nodes or total)
        problems.append(Problem("nodes", want_nodes, f"at most {top} on partition {name} (its nodes: {names})", f"use nodes<={top}"))
    for param, value, key, unit in (("gpus_per_node", gpus, "gpus", "GPUs"), ("cpus_per_task", cores, "cpus", "CPUs"),
                                    ("mem_gb", request.mem_gb or 0, "mem_gb", "GB")):
        fitting = [n for n in members if getattr(n, key) >= value]
        if value and len(fitting) < min(want_nodes, len(members)):  # too many nodes is reported above
            top = max((getattr(n, key) for n in members), default=0)
            asked = request.cpus_per_task if param == "cpus_per_task" else value
            per_task = f" ({request.tasks_per_node or 1} tasks x {request.cpus_per_task} CPUs = {value})" if param == "cpus_per_task" else ""
            problems.append(Problem(param, asked, f"at most {top:g} {unit} per node{per_task}: the nodes of partition {name} are "
                                    f"{names}, each {sizes}", f"ask for at most {top:g} {unit} per node, or more nodes with fewer each"))
    if request.time_minutes is not None and part.max_minutes is not None:
        if request.time_minutes > part.max_minutes:
            problems.append(Problem("time", request.time, f"at most {_t(part.max_minutes)} (MaxTime of partition {name})", f"lower time to {_t(part.max_minutes)}"))
    return problems


def doctor(site: str = "slurm", request: dict[str, Any] | None = None, slurm: Slurm | None = None) -> Report:
    """Check ``site``'s profile, and ``request`` if given, against its Slurm cluster (this
    machine's, or the login node's over SSH for a profile with an ``ssh`` block).

    Raises :class:`~aifsdk.SchedulerError` when Slurm does not answer, and
    :class:`~aifsdk.SiteNotFoundError` for an unknown site.
    """
    from ._backends import backend_for
    from ._resolve import resolve

    profile = load_site(site)
    backend = backend_for(profile)
    scheduler = backend.slurm()
    if scheduler is None:
        raise SchedulerError(f"site {site} does not run on Slurm (executor {profile.executor}); run `aifsdk doctor --site slurm` "
                             "or name a Slurm site")
    slurm = slurm or scheduler
    info, nodes, max_array = read_cluster(slurm)
    disagreements, notes = compare(profile, info, nodes, max_array)
    report = Report(site, info, nodes, max_array, disagreements, notes=notes, where=backend.where())
    from ._resolve import wrong_cluster

    elsewhere = wrong_cluster(profile)
    if elsewhere is None:
        report.budget = read_budget(profile, slurm)
    elif any(profile.commands.get(k) for k in BUDGET_KEYS):
        tools = ", ".join(dict.fromkeys(profile.commands[k] for k in BUDGET_KEYS if profile.commands.get(k)))
        report.budget_skipped = f"{tools} run on the site's login node or over ssh, and {elsewhere}"
    if request is not None:
        req, bad = build(request)
        report.request = req
        report.problems = bad or check_request(req, info, nodes, profile.default_partition)
        if not bad:
            seen = {p.param for p in report.problems}
            res = resolve(req, profile, set())
            report.problems += [p for p in res.problems if p.param not in seen]
            report.notes += [f"warning: {w}" for w in res.warnings]
            if not res.problems and res.resources is not None:
                report.cost = estimate_cost(profile, res.resources, res.partition, res.minutes)
    return report
