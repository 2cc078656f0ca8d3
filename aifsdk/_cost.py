"""Cost of a plan in the site's billing unit, with every figure derived from one billed share.

The site bills a share of each node for each hour (:class:`aifsdk._profile.Billing`): the whole
node on node-exclusive partitions (or where ``shared_by: node``), else the job's share of the
node (its GPUs, or the largest of its GPU, core and memory shares, cores and memory counted in
whole slices where the site bills so). Every figure of a
:class:`Cost` follows from the billed node-hours, so they never disagree:

    billed node-h = nodes x hours x share
    GPU-h         = billed node-h x the node's GPUs / Slurm GPUs per billed GPU (LUMI: 2 GCDs)
    core-h        = billed node-h x the node's cores
    amount        = billed node-h x per_node_hour, or the figure in the site's unit

When the profile does not know the node's size (generic sites), the request itself is counted
(GPUs x h, nodes x h, tasks x cores x h) and the detail says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._profile import Partition, SiteProfile
from ._resources import Resources

UNIT_LABEL = {"gpu-hours": "GPU-h", "node-hours": "node-h", "core-hours": "core-h"}


@dataclass(frozen=True)
class Cost:
    """What the job may consume at its full time limit (an upper bound), as the site bills it.

    ``amount`` is in ``unit`` (the site's billing unit). ``node_hours``, ``gpu_hours`` and
    ``core_hours`` are the same bill counted in node-hours, GPU-hours (GPUs as the site bills
    them: LUMI counts MI250X modules, 2 GCDs each) and core-hours. ``detail`` says how
    ``amount`` was reached, e.g. "2 nodes x 4 h on LUMI-G standard-g (node-exclusive) = 8 node-h
    x 4 GPU-h per node-h = 32 billed GPU-h".
    """

    unit: str
    amount: float
    gpu_hours: float
    node_hours: float
    core_hours: float
    detail: str = ""

    def __str__(self) -> str:
        label = UNIT_LABEL.get(self.unit, self.unit)
        counted = f"{self.node_hours:.4g} node-h = {self.gpu_hours:.4g} GPU-h = {self.core_hours:.4g} core-h"
        return f"{self.amount:.4g} {label} at most (at the full time limit): {self.detail}; as billed: {counted}"


def _plural(n: float, word: str) -> str:
    return f"{n:g} {word}{'' if n == 1 else 's'}"


def _sliced(amount: float, slice_size: float | None) -> float:
    """``amount`` rounded up to whole slices (LUMI small-g bills 9 cores as two 8-core slices)."""
    if not slice_size or not amount:
        return amount
    return math.ceil(amount / slice_size - 1e-9) * slice_size


def _share(profile: SiteProfile, r: Resources, exclusive: bool, node_gpus: int | None, node_cpus: int | None,
           node_mem: float | None) -> tuple[float | None, str]:
    """The billed share of each node and why; None when the node's size is unknown."""
    b = profile.billing
    if exclusive:
        return 1.0, " (node-exclusive)"
    if b.shared_by == "node":
        return 1.0, " (billed by whole nodes)"
    cores = (r.tasks_per_node or 1) * (r.cpus_per_task or 1)
    shares = {"GPUs": (r.gpus_per_node or 0, node_gpus)}
    if b.shared_by == "max-share":
        core_key = f"cores: {cores} in {b.slice_cpus}-core slices" if _sliced(cores, b.slice_cpus) != cores else "cores"
        mem = r.mem_gb or 0
        mem_key = f"memory: {mem:g} GB in {b.slice_mem_gb:g} GB slices" if b.slice_mem_gb and _sliced(mem, b.slice_mem_gb) != mem else "memory"
        shares.update({core_key: (_sliced(cores, b.slice_cpus), node_cpus), mem_key: (_sliced(mem, b.slice_mem_gb), node_mem)})
    known = {k: (used, whole) for k, (used, whole) in shares.items() if whole}
    if not known or all(used == 0 for used, _ in known.values()):
        if node_gpus and b.shared_by == "gpus" and node_cpus:  # a CPU-only job on a GPU site: its cores
            return min(cores / node_cpus, 1.0), f" x {cores}/{node_cpus} of a node (its cores)"
        return None, ""
    key = max(known, key=lambda k: known[k][0] / known[k][1])
    used, whole = known[key]
    share = min(used / whole, 1.0)
    return share, "" if share == 1 else f" x {used:g}/{whole:g} of a node (its {key})"


def estimate_cost(profile: SiteProfile, r: Resources, part: Partition | None, minutes: int | None = None) -> Cost:
    """Upper bound at the time limit (``minutes``, else ``r.time``), in the site's unit (see the module docstring)."""
    if minutes is None:
        minutes = r.time_minutes or 0
    hours = minutes / 60
    nodes = r.nodes or 1
    exclusive = bool(part and part.exclusive)
    node_gpus = part.gpus_per_node if part and part.gpus_per_node is not None else profile.node.gpus
    node_cpus = part.cpus_per_node if part and part.cpus_per_node else profile.node.cpus
    node_mem = part.mem_gb if part and part.mem_gb else profile.node.mem_total_gb or profile.node.mem_gb
    b = profile.billing
    share, why = _share(profile, r, exclusive, node_gpus, node_cpus, node_mem)
    site = profile.title.split(" (")[0].split(",")[0] if profile.title else profile.name
    site = site if len(site) <= 24 else profile.name
    where = f" on {site} {r.partition}" if r.partition else f" on {site}"
    label = UNIT_LABEL[b.unit]
    if part is not None and part.free:
        detail = f"{_plural(nodes, 'node')} x {hours:.4g} h{where} (free: no allocation is consumed)"
        return Cost(b.unit, 0.0, 0.0, 0.0, 0.0, detail)
    if share is None:  # the node's size is unknown: count what the job asks for
        node_h = nodes * hours
        gpu_h = nodes * (r.gpus_per_node or 0) * hours / b.gpus_per_billed_gpu
        cores = (r.tasks_per_node or 1) * (r.cpus_per_task or 1)
        core_h = nodes * cores * hours
        amount = {"gpu-hours": gpu_h, "node-hours": node_h, "core-hours": core_h}[b.unit]
        if b.per_node_hour is not None:
            amount = node_h * b.per_node_hour
        counted = {"gpu-hours": f" x {r.gpus_per_node or 0} GPUs", "core-hours": f" x {_plural(cores, 'core')}", "node-hours": ""}[b.unit]
        detail = (f"{_plural(nodes, 'node')}{counted} x {hours:.4g} h{where} = {amount:.4g} {label} "
                  "(the node's size is not in the profile: what the job asks for is counted)")
    else:
        node_h = nodes * hours * share
        gpu_h = node_h * (node_gpus or 0) / b.gpus_per_billed_gpu
        core_h = node_h * (node_cpus or (r.tasks_per_node or 1) * (r.cpus_per_task or 1))
        rate = b.per_node_hour
        if rate is None:
            rate = {"gpu-hours": (node_gpus or 0) / b.gpus_per_billed_gpu, "core-hours": float(node_cpus or 0), "node-hours": 1.0}[b.unit]
        amount = node_h * rate
        head = f"{_plural(nodes, 'node')} x {hours:.4g} h{where}{why} = {node_h:.4g} node-h"
        detail = head if b.unit == "node-hours" and rate == 1 else f"{head} x {rate:g} {label} per node-h"
        detail += f" = {amount:.4g} billed {label}"
    return Cost(b.unit, round(amount, 4), round(gpu_h, 4), round(node_h, 4), round(core_h, 4), detail)
