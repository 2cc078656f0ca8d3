"""Choosing a partition and a QoS when the request names none.

The site's default class when the request fits it, else the smallest class that fits (fewest
nodes, then shortest time); a class's ``role`` decides whether it may be chosen at all:
``general`` ones automatically, ``debug`` ones only when the request asks for the debug class
(``partition="debug"`` or ``qos="debug"`` on a site without a class of that name), ``special``
ones only when named. Each choice is recorded with its reason in the resolution's origins and
notes, so a plan never changes a request silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._backends import backend_for
from ._profile import Partition, Qos, SiteProfile
from ._resources import Resources, format_time
from ._scheduler import ClusterInfo

if TYPE_CHECKING:
    from ._resolve import Resolution


def qos_for(profile: SiteProfile, part_name: str | None, part: Partition | None) -> dict[str, Qos]:
    """The site's QoS usable on this partition."""
    allowed = set(part.qos) if part and part.qos else None
    return {n: q for n, q in profile.qos.items() if (allowed is None or n in allowed) and (not q.partitions or part_name in q.partitions)}


def by_role(classes: dict[str, Any]) -> list[str]:
    """Names to suggest: the general classes; debug and special ones only when no general one fits."""
    general = [n for n, c in classes.items() if c.role == "general"]
    return general or list(classes)


@dataclass(frozen=True)
class Need:
    """What the request needs, as far as it is known, to choose a partition and QoS."""

    nodes: int
    gpus: int
    minutes: int | None
    account: str | None


def need_of(req: Resources, bad: set[str]) -> Need:
    def number(key: str, default: int) -> int:
        value = getattr(req, key)
        return value if isinstance(value, int) and not isinstance(value, bool) and key not in bad and value > 0 else default

    minutes = req.time_minutes if "time" not in bad else None
    account = req.account if isinstance(req.account, str) and "account" not in bad else None
    return Need(number("nodes", 1), number("gpus_per_node", 0), minutes, account)


def debug_intent(self: Resolution, req: Resources, profile: SiteProfile, partitions: dict[str, Partition]) -> tuple[bool, Resources]:
    """partition="debug" or qos="debug" on a site without a class of that name asks for the
    site's debug class (its debug partition, else its debug QoS). Returns whether it does, and
    the request without that placeholder name (the site's class is chosen for it)."""
    asked = [key for key, names in (("partition", partitions), ("qos", profile.qos)) if getattr(req, key) == "debug" and "debug" not in names]
    if not asked or not backend_for(profile).scheduled or not (profile.partitions or profile.qos):
        return False, req  # a site that declares no classes (generic Slurm): the name goes to Slurm as it is
    if not any(p.role == "debug" for p in partitions.values()) and not any(q.role == "debug" for q in profile.qos.values()):
        self.fail(asked[0], "debug", f"a debug class on site {profile.name} (it declares none)",
                  f"name a partition ({', '.join(partitions) or 'see sinfo -s'}) or leave {asked[0]} unset")
        self.bad.add(asked[0])
        return False, req
    return True, req.replace(**dict.fromkeys(asked))


def _size(limit: int | None) -> float:
    return float("inf") if limit is None else float(limit)


def partition_misfit(p: Partition, need: Need, total: int | None, node_gpus: int | None) -> str | None:
    """Why ``need`` does not fit partition ``p`` (None: it fits, as far as the limits are known)."""
    top = p.max_nodes or total or p.node_count
    if top is not None and need.nodes > top:
        return f"at most {top} nodes"
    if p.min_nodes and need.nodes < p.min_nodes:
        return f"at least {p.min_nodes} nodes"
    cap = p.gpus_per_node if p.gpus_per_node is not None else node_gpus
    if cap is not None and need.gpus > cap:
        return f"at most {cap} GPUs per node"
    if p.exclusive and cap and need.gpus and need.gpus != cap:
        return f"node-exclusive with {cap} GPUs per node (pass gpus_per_node={cap} to use it: the whole node is billed anyway)"
    if need.minutes and p.max_minutes and need.minutes > p.max_minutes:
        return f"at most {format_time(p.max_minutes)}"
    return None


def qos_misfit(q: Qos, need: Need) -> str | None:
    if q.max_nodes is not None and need.nodes > q.max_nodes:
        return f"at most {q.max_nodes} nodes"
    if q.min_nodes is not None and need.nodes < q.min_nodes:
        return f"at least {q.min_nodes} nodes"
    if q.max_gpus is not None and need.nodes * need.gpus > q.max_gpus:
        return f"at most {q.max_gpus} GPUs in all"
    if need.minutes and q.max_minutes and need.minutes > q.max_minutes:
        return f"at most {format_time(q.max_minutes)}"
    if q.account_pattern and not (need.account and re.fullmatch(q.account_pattern, need.account)):
        return f"only accounts matching {q.account_pattern}"
    return None


def qos_ways(profile: SiteProfile, part_name: str | None, part: Partition | None, qos_name: str | None, need: Need,
             allows: Any) -> list[str]:
    """The other QoS that allow what ``allows(qos)`` tests (the time, or the node count, the
    request's QoS refused), as the keywords that choose them: ``qos='long'``, with the request's
    other values each of them needs (``nodes<=10``) and its partition when it is another one.
    QoS of the request's partition first (of another partition only when none of it does), general
    ones before debug and special ones, those that need nothing else alone when there are any; QoS
    the account cannot use are left out."""
    def usable(name: str, q: Qos) -> bool:
        return name != qos_name and allows(q) and not (q.account_pattern and not (need.account and re.fullmatch(q.account_pattern, need.account)))

    def way(name: str, q: Qos, partition: str | None) -> str:
        needs = []
        if q.max_nodes is not None and need.nodes > q.max_nodes:
            needs.append(f"nodes<={q.max_nodes}")
        if q.min_nodes is not None and need.nodes < q.min_nodes:
            needs.append(f"nodes>={q.min_nodes}")
        if q.max_gpus is not None and need.nodes * need.gpus > q.max_gpus:
            needs.append(f"at most {q.max_gpus} GPUs in all")
        if need.minutes and q.max_minutes and need.minutes > q.max_minutes:
            needs.append(f"time<={format_time(q.max_minutes)}")
        if partition:
            needs.append(f"partition={partition!r}")
        return f"qos={name!r}" + (f" with {' and '.join(needs)}" if needs else "")

    mine = qos_for(profile, part_name, part)
    here = {n: q for n, q in mine.items() if usable(n, q)}
    ways = [way(n, here[n], None) for n in by_role(here)]
    if not ways:  # a QoS of another partition, named with it
        elsewhere = {n: q for n, q in profile.qos.items() if n not in mine and q.partitions and usable(n, q)}
        ways = [way(n, elsewhere[n], elsewhere[n].partitions[0]) for n in by_role(elsewhere)]
    # those that need nothing else, when there are any
    return [w for w in ways if " with " not in w] or ways


def ordered(pool: dict[str, Any], default: str | None) -> list[str]:
    """The default class first, then the smallest (fewest nodes, then shortest time) first."""
    rest = sorted((n for n in pool if n != default),
                  key=lambda n: (_size(pool[n].max_nodes or getattr(pool[n], "node_count", None)), _size(pool[n].max_minutes)))
    return ([default] if default in pool else []) + rest


def pick_qos(profile: SiteProfile, here: dict[str, Qos], need: Need, debug: bool) -> tuple[str, str] | None:
    """The QoS to use when none is named, and why; None to keep the old default rule."""
    role = "debug" if debug and any(q.role == "debug" for q in here.values()) else "general"
    pool = {n: q for n, q in here.items() if q.role == role}
    default = next((n for n, q in pool.items() if q.default), None)
    misfits = {}
    for name in ordered(pool, default):
        why = qos_misfit(pool[name], need)
        if why is None:
            if role == "debug":
                return name, "the site's debug QoS (the request asked for debug)"
            if name == default:
                return name, "site default QoS"
            told = f" ({default} does not fit: {misfits[default]})" if default in misfits else ""
            return name, f"the smallest QoS that fits{told}"
        misfits[name] = why
    if role == "debug" and pool:
        name = next(iter(pool))
        return name, "the site's debug QoS (the request asked for debug; its limits are checked below)"
    return None


def choose_partition(self: Resolution, profile: SiteProfile, partitions: dict[str, Partition], info: ClusterInfo | None,
                      need: Need, debug: bool, qos_name: Any = None) -> str | None:
    """The partition when the request names none: the site's default when it fits, else the
    smallest general partition that fits (its QoS too), never a debug or special one unless asked.
    When nothing fits, the default: the checks then say why, with the ways out."""
    default = profile.default_partition or (info.default_partition if info else None)
    named_qos = profile.qos.get(qos_name) if isinstance(qos_name, str) else None
    if named_qos is not None and named_qos.partitions and default not in named_qos.partitions:
        # the QoS the request names belongs to other partitions: choose among those
        partitions = {n: p for n, p in partitions.items() if n in named_qos.partitions}
        default = next(iter(partitions), default)
    role = "debug" if debug and any(p.role == "debug" for p in partitions.values()) else "general"
    pool = {n: p for n, p in partitions.items() if p.role == role} or ({} if debug else dict(partitions))
    misfits: dict[str, str] = {}
    for name in ordered(pool, default if role == "general" else None):
        p = pool[name]
        total = info.total_nodes.get(name) if info else None
        why = partition_misfit(p, need, total, profile.node.gpus)
        if why is None and profile.qos:
            here = qos_for(profile, name, p)
            if here and pick_qos(profile, here, need, debug) is None and not any(q.default for q in here.values()):
                why = "no QoS of it fits"
        if why is None:
            if role == "debug":
                self.origins["partition"] = "the site's debug partition (the request asked for debug)"
            elif name == default:
                self.origins["partition"] = "site default partition"
            else:
                told = f"; {default} does not fit: {misfits[default]}" if default in misfits else ""
                self.origins["partition"] = f"the smallest partition that fits{told}"
                self.notes.append(f"partition {name} ({p.description or 'no description'}) chosen: the smallest that fits{told}")
            return name
        misfits[name] = why
    if role == "debug" and pool:
        self.origins["partition"] = "the site's debug partition (the request asked for debug; its limits are checked below)"
        return next(iter(pool))
    if default:
        self.origins["partition"] = "site default partition" + (" (no partition fits the request: see the problems)" if misfits else "")
    return default
