"""The one seam around Slurm's commands: discovery of partitions and nodes, job states, cancel.

Everything that runs ``scontrol``, ``squeue``, ``sacct`` or ``scancel`` goes through
:class:`Slurm`, so tests run it against the real local cluster and a laptop without Slurm gets
one clear :class:`~aifsdk.SchedulerError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ._errors import SchedulerError
from ._profile import Partition
from ._resources import parse_time

log = logging.getLogger("aifsdk")

TERMINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED_FINAL", "SPECIAL_EXIT", "REVOKED"}
)
ACTIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "PREEMPTED", "RESV_DEL_HOLD"}
)


def normalise_state(raw: str) -> str:
    """'CANCELLED by 0' -> 'CANCELLED'; 'OUT_OF_ME+' -> 'OUT_OF_MEMORY'."""
    word = raw.strip().split(" ")[0].rstrip("+").upper()
    if word.startswith("OUT_OF_ME"):
        return "OUT_OF_MEMORY"
    return word or "UNKNOWN"


@dataclass(frozen=True)
class ClusterInfo:
    """What ``scontrol`` says about partitions, read once and cached."""

    partitions: dict[str, Partition]
    total_nodes: dict[str, int]

    @property
    def default_partition(self) -> str | None:
        return next((n for n, p in self.partitions.items() if p.default), None)


def _slurm_time(text: str | None) -> int | None:
    if not text or text.upper() in {"UNLIMITED", "INFINITE", "NONE", "N/A"}:
        return None
    return parse_time(text)


def _fields(line: str) -> dict[str, str]:
    # scontrol --oneliner: KEY=VALUE pairs separated by spaces; values have no spaces except a
    # few free-text keys (Reason, Comment) that we do not read.
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", line))


def _gpus_in_gres(gres: str) -> int:
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = item.split(":")
        if parts[0] == "gpu":
            count = parts[-1] if len(parts) > 1 else "1"
            total += int(count) if count.isdigit() else 1
    return total


def parse_scontrol(partitions_text: str, nodes_text: str) -> ClusterInfo:
    nodes = {}
    for line in nodes_text.splitlines():
        f = _fields(line)
        if "NodeName" in f:
            nodes[f["NodeName"]] = f
    parts: dict[str, Partition] = {}
    totals: dict[str, int] = {}
    for line in partitions_text.splitlines():
        f = _fields(line)
        if "PartitionName" not in f:
            continue
        name = f["PartitionName"]
        members = [n for n in nodes.values() if name in n.get("Partitions", "").split(",")]
        max_nodes = f.get("MaxNodes", "UNLIMITED")
        parts[name] = Partition(
            description="discovered with scontrol",
            default=f.get("Default") == "YES",
            max_nodes=int(max_nodes) if max_nodes.isdigit() else None,
            max_time=_slurm_time(f.get("MaxTime")),
            default_time=_slurm_time(f.get("DefaultTime")),
            exclusive=f.get("OverSubscribe", "").startswith("EXCLUSIVE") or f.get("ExclusiveUser") == "YES",
            gpus_per_node=max((_gpus_in_gres(n.get("Gres", "")) for n in members), default=0),
            cpus_per_node=max((int(n.get("CPUTot", 0)) for n in members), default=None),
            mem_gb=max((int(n.get("RealMemory", 0)) / 1024 for n in members), default=None),
        )
        totals[name] = int(f.get("TotalNodes", len(members)) or len(members))
    return ClusterInfo(partitions=parts, total_nodes=totals)


class Slurm:
    """Runs Slurm's commands. ``cache_ttl_s`` bounds how stale discovered limits may be."""

    def __init__(self, cache_ttl_s: float = 120.0, cache_dir: Path | None = None) -> None:
        self.cache_ttl_s = cache_ttl_s
        self.cache_dir = cache_dir
        self._info: tuple[float, ClusterInfo] | None = None
        self._sacct_broken = False
        self.calls = 0

    @staticmethod
    def available() -> bool:
        return shutil.which("sbatch") is not None

    def run(self, argv: list[str], timeout: float = 60.0) -> str:
        self.calls += 1
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise SchedulerError(
                f"{argv[0]} is not installed on this machine; run aifsdk where Slurm's commands are "
                "(a login node), or start the local test cluster: tests/cluster/slurm-cluster up"
            ) from None
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"`{' '.join(argv)}` did not answer within {timeout:.0f} s; is slurmctld up?") from None
        if proc.returncode != 0:
            raise SchedulerError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    # -- discovery -------------------------------------------------------------------------
    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        key = re.sub(r"[^\w.-]", "_", os.environ.get("SLURM_CONF", "default"))
        return self.cache_dir / f"slurm-info-{key}.json"

    def cluster_info(self, refresh: bool = False) -> ClusterInfo:
        now = time.time()
        if not refresh and self._info and now - self._info[0] < self.cache_ttl_s:
            return self._info[1]
        cache = self._cache_file()
        if not refresh and cache and cache.exists() and now - cache.stat().st_mtime < self.cache_ttl_s:
            try:
                raw = json.loads(cache.read_text())
                info = ClusterInfo({k: Partition(**v) for k, v in raw["partitions"].items()}, raw["total_nodes"])
                self._info = (cache.stat().st_mtime, info)
                return info
            except (ValueError, KeyError, TypeError):
                pass
        info = parse_scontrol(
            self.run(["scontrol", "--oneliner", "show", "partition"]),
            self.run(["scontrol", "--oneliner", "show", "node"]),
        )
        self._info = (now, info)
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"partitions": {k: asdict(v) for k, v in info.partitions.items()}, "total_nodes": info.total_nodes}))
            tmp.replace(cache)
        return info

    # -- jobs ------------------------------------------------------------------------------
    def states(self, job_ids: list[str]) -> dict[str, str]:
        """State of each job. slurmctld first (live, and it keeps ended jobs for MinJobAge), in one
        squeue call for all of them; sacct only for jobs slurmctld has forgotten; UNKNOWN when
        neither knows (accounting disabled or down)."""
        if not job_ids:
            return {}
        out: dict[str, str] = {}
        text = self.run(["squeue", "-h", "-t", "all", "-u", _user(), "-o", "%i|%T"], timeout=30)
        wanted = set(job_ids)
        for line in text.splitlines():
            jid, _, state = line.partition("|")
            if jid.strip() in wanted:
                out[jid.strip()] = normalise_state(state)
        missing = [j for j in job_ids if j not in out]
        if missing and not self._sacct_broken:
            try:
                text = self.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(missing)])
                for line in text.splitlines():
                    jid, _, state = line.partition("|")
                    out[jid.strip()] = normalise_state(state)
            except SchedulerError as exc:
                self._sacct_broken = True
                log.warning("sacct is not usable (%s); states of jobs slurmctld has forgotten come from their files", exc)
        return {j: out.get(j, "UNKNOWN") for j in job_ids}

    def cancel(self, job_id: str) -> None:
        self.run(["scancel", job_id])


def _user() -> str:
    import getpass

    return getpass.getuser()


_DEFAULT: Slurm | None = None


def default_slurm() -> Slurm:
    global _DEFAULT
    if _DEFAULT is None:
        from ._paths import aifsdk_home

        _DEFAULT = Slurm(cache_dir=aifsdk_home() / "cache")
    return _DEFAULT
