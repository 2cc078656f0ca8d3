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
import shlex
import subprocess
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ._errors import SchedulerError
from ._profile import Partition
from ._resources import parse_time

log = logging.getLogger("aifsdk")
SACCT_RETRY_S = 300.0  # after sacct fails, use the jobs' files and try it again this much later
_SACCT_WARNED = False  # one warning per process, not one per poll

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


def guarded_command(command: str) -> str:
    """``command`` for ``sh -c``, exiting 127 (command not found) when its program is missing."""
    program = shlex.split(command)[0]
    return f"command -v {shlex.quote(program)} >/dev/null 2>&1 || exit 127; {command}"


class Slurm:
    """Runs Slurm's commands. ``cache_ttl_s`` bounds how stale discovered limits may be."""

    def __init__(self, cache_ttl_s: float = 120.0, cache_dir: Path | None = None) -> None:
        self.cache_ttl_s = cache_ttl_s
        self.cache_dir = cache_dir
        self._info: tuple[float, ClusterInfo] | None = None
        self._sacct_retry_at = 0.0
        self._config: tuple[float, dict[str, str]] | None = None
        self._submit_limit: tuple[float, int | None] | None = None
        self._map_limits: dict[tuple[str | None, str | None], tuple[float, tuple[int | None, dict[str, str]]]] = {}
        self.calls = 0
        self.counts: Counter[str] = Counter()  # calls per command (squeue, sacct, ...), for benchmarks

    def run(self, argv: list[str], timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
        """Run one of Slurm's commands; ``env``: its whole environment (None: this process's)."""
        self.calls += 1
        self.counts[argv[0]] += 1
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
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

    def site_command(self, command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """A site tool's command line (``lumi-allocations``, ``saldo -b``...) run by the shell where
        Slurm runs. Exit code 127 means the tool is not there."""
        self.calls += 1
        text = guarded_command(command)
        try:
            return subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"`{command}` did not answer within {timeout:.0f} s") from None

    # -- discovery -------------------------------------------------------------------------
    def _cache_file(self, what: str = "info") -> Path | None:
        if self.cache_dir is None:
            return None
        key = re.sub(r"[^\w.-]", "_", os.environ.get("SLURM_CONF", "default"))
        return self.cache_dir / f"slurm-{what}-{key}.json"

    def _fresh_cache(self, what: str) -> tuple[float, Any] | None:
        """(mtime, value) of a cache file younger than ``cache_ttl_s``, else None."""
        cache = self._cache_file(what)
        try:
            mtime = cache.stat().st_mtime if cache else 0.0
            if cache and time.time() - mtime < self.cache_ttl_s:
                return mtime, json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
        return None

    def _write_cache(self, what: str, value: Any) -> None:
        cache = self._cache_file(what)
        if cache is not None:
            from ._paths import write_cache

            write_cache(cache, value)

    def cluster_info(self, refresh: bool = False) -> ClusterInfo:
        now = time.time()
        if not refresh and self._info and now - self._info[0] < self.cache_ttl_s:
            return self._info[1]
        cached = None if refresh else self._fresh_cache("info")
        if cached is not None:
            try:
                raw = cached[1]
                info = ClusterInfo({k: Partition(**v) for k, v in raw["partitions"].items()}, raw["total_nodes"])
                self._info = (cached[0], info)
                return info
            except (KeyError, TypeError, AttributeError):
                pass
        info = parse_scontrol(
            self.run(["scontrol", "--oneliner", "show", "partition"]),
            self.run(["scontrol", "--oneliner", "show", "node"]),
        )
        self._info = (now, info)
        self._write_cache("info", {"partitions": {k: asdict(v) for k, v in info.partitions.items()}, "total_nodes": info.total_nodes})
        return info

    # -- jobs ------------------------------------------------------------------------------
    def queue(self) -> dict[str, tuple[str, str]]:
        """Every job of this user slurmctld knows (pending, running, or ended within MinJobAge),
        one line per array task, in ONE squeue call: job id -> (state, reason)."""
        text = self.run(["squeue", "-h", "-r", "-t", "all", "-u", _user(), "-o", "%i|%T|%r"], timeout=30)
        out: dict[str, tuple[str, str]] = {}
        for line in text.splitlines():
            jid, _, rest = line.partition("|")
            state, _, reason = rest.partition("|")
            out[jid.strip()] = (normalise_state(state), reason.strip())
        return out

    def accounting(self, job_ids: list[str]) -> dict[str, str]:
        """States from sacct for jobs slurmctld has forgotten. Where accounting fails or is disabled:
        {} (the caller falls back to the jobs' files), with ONE warning per process, and sacct is
        tried again only after ``SACCT_RETRY_S``."""
        global _SACCT_WARNED
        if not job_ids or time.monotonic() < self._sacct_retry_at:
            return {}
        try:
            text = self.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)])
        except SchedulerError as exc:
            self._sacct_retry_at = time.monotonic() + SACCT_RETRY_S
            if not _SACCT_WARNED:
                _SACCT_WARNED = True
                log.warning("sacct is not usable (%s); states of jobs slurmctld has forgotten come from their files "
                            "(this warning is shown once)", exc)
            return {}
        out = {}
        for line in text.splitlines():
            jid, _, state = line.partition("|")
            out[jid.strip()] = normalise_state(state)
        return out

    def states(self, job_ids: list[str]) -> dict[str, str]:
        """State of each job: slurmctld first (live, one squeue call for all), sacct only for jobs
        slurmctld has forgotten; UNKNOWN when neither knows (accounting disabled or down)."""
        if not job_ids:
            return {}
        queue = self.queue()
        out = {j: queue[j][0] for j in job_ids if j in queue}
        out.update(self.accounting([j for j in job_ids if j not in out]))
        return {j: out.get(j, "UNKNOWN") for j in job_ids}

    def node_failures(self, job_id: str) -> list[str]:
        """The nodes of each earlier run of a job that ended because a node failed (Slurm then
        requeues the job itself), oldest first, from accounting (``sacct --duplicates``); [] where
        accounting is not usable."""
        if time.monotonic() < self._sacct_retry_at:
            return []
        try:
            text = self.run(["sacct", "-D", "-X", "-n", "-P", "-o", "JobID,State,NodeList", "-j", job_id])
        except SchedulerError:
            self._sacct_retry_at = time.monotonic() + SACCT_RETRY_S
            return []
        rows = [line.split("|") for line in text.splitlines() if line.count("|") >= 2]
        return [nodes for jid, state, nodes in (r[:3] for r in rows) if jid.strip() == job_id and state.startswith("NODE_FAIL")]

    def usage(self, job_ids: list[str]) -> dict[str, dict[str, str]]:
        """sacct's elapsed time and allocated TRES per job ({} where accounting is not usable)."""
        if not job_ids or time.monotonic() < self._sacct_retry_at:
            return {}
        try:
            text = self.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,ElapsedRaw,AllocTRES", "-j", ",".join(job_ids)])
        except SchedulerError:
            self._sacct_retry_at = time.monotonic() + SACCT_RETRY_S
            return {}
        out = {}
        for line in text.splitlines():
            jid, state, elapsed, tres = (line.split("|") + ["", "", ""])[:4]
            out[jid.strip()] = {"state": normalise_state(state), "elapsed_s": elapsed, "tres": tres}
        return out

    def consumed_energy(self, job_ids: list[str]) -> dict[str, float | None]:
        """Joules each job's nodes drew, from Slurm's energy accounting (``sacct -o
        ConsumedEnergyRaw``: node-level, every node of the job, the whole job). None for a job
        whose site does not collect it (no AcctGatherEnergyType plugin: sacct shows 0 or nothing),
        and for every job when accounting is not usable."""
        if not job_ids:
            return {}
        try:
            text = self.run(["sacct", "-X", "-n", "-P", "-o", "JobID,ConsumedEnergyRaw", "-j", ",".join(job_ids)])
        except SchedulerError:
            return dict.fromkeys(job_ids)
        out: dict[str, float | None] = dict.fromkeys(job_ids)
        for line in text.splitlines():
            jid, _, raw = line.partition("|")
            try:
                joules = float(raw.strip())
            except ValueError:
                continue
            if jid.strip() in out and joules > 0:
                out[jid.strip()] = joules
        return out

    def config_value(self, key: str) -> str | None:
        """One value of ``scontrol show config`` (read again after ``cache_ttl_s``)."""
        if self._config is None or time.monotonic() - self._config[0] > self.cache_ttl_s:
            config = {}
            for line in self.run(["scontrol", "show", "config"]).splitlines():
                name, sep, value = line.partition("=")
                if sep:
                    config[name.strip()] = value.strip()
            self._config = (time.monotonic(), config)
        return self._config[1].get(key)

    def submit_limit(self) -> int | None:
        """The user's MaxSubmitJobs (the smallest one of their associations), None if unlimited or unknown.
        sacctmgr asks slurmdbd (0.2 s), so the answer is kept for ``cache_ttl_s``, in this process
        and in ``cache_dir`` (an unknown one is asked again next time)."""
        what = "submit-limit-" + re.sub(r"[^\w.-]", "_", _user())
        if self._submit_limit is None or time.time() - self._submit_limit[0] >= self.cache_ttl_s:
            cached = self._fresh_cache(what)
            if cached is not None and isinstance(cached[1], dict) and "max_submit" in cached[1]:
                self._submit_limit = (cached[0], cached[1]["max_submit"])
            else:
                try:
                    text = self.run(["sacctmgr", "-n", "-P", "show", "assoc", f"user={_user()}", "format=MaxSubmit"])
                except SchedulerError:
                    return None
                limits = [int(v) for v in text.split() if v.strip().isdigit()]
                self._submit_limit = (time.time(), min(limits) if limits else None)
                self._write_cache(what, {"max_submit": self._submit_limit[1]})
        return self._submit_limit[1]

    def user(self) -> str:
        """The user whose jobs these are."""
        return _user()

    def map_limit(self, account: str | None = None, qos: str | None = None) -> tuple[int | None, dict[str, str]]:
        """How many jobs (array tasks count one each) the user may have queued for a job of this
        account and QoS: the smallest of the association's MaxSubmitJobs and the QoS's
        MaxSubmitJobsPerUser; and the scope it counts in ({"account": ...} or {"qos": ...}) for
        :meth:`queued`. (None, {}) when unlimited or when sacctmgr cannot be read. Kept for ``cache_ttl_s``."""
        key = (account, qos)
        cached = self._map_limits.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_ttl_s:
            return cached[1]
        try:
            if account is None:
                account = self.run(["sacctmgr", "-n", "-P", "show", "user", self.user(), "format=DefaultAccount"]).strip() or None
            where = [f"user={self.user()}", *([f"account={account}"] if account else [])]
            rows = [line.split("|") for line in self.run(["sacctmgr", "-n", "-P", "show", "assoc", *where, "format=MaxSubmit,QOS"]).splitlines()]
            found: list[tuple[int, dict[str, str]]] = [(int(r[0]), {"account": account} if account else {}) for r in rows if r[0].isdigit()]
            names = [qos] if qos else sorted({q for r in rows if len(r) > 1 for q in r[1].split(",") if q})
            if len(names) == 1:  # the QoS the job runs under (requested, or the association's only one)
                for line in self.run(["sacctmgr", "-n", "-P", "show", "qos", names[0], "format=MaxSubmitPU"]).splitlines():
                    if line.strip().isdigit():
                        found.append((int(line.strip()), {"qos": names[0]}))
        except SchedulerError:
            return None, {}
        answer = min(found, key=lambda f: f[0]) if found else (None, {})
        self._map_limits[key] = (time.monotonic(), answer)
        return answer

    def queued(self, account: str | None = None, qos: str | None = None) -> int:
        """How many of the user's jobs (each array task one) are pending or running, in an account or QoS."""
        argv = ["squeue", "-h", "-r", "-u", self.user(), "-t", "PENDING,RUNNING,SUSPENDED,CONFIGURING,COMPLETING,REQUEUED", "-o", "%i"]
        argv += [*(["-A", account] if account else []), *(["-q", qos] if qos else [])]
        return len(self.run(argv, timeout=30).split())

    def sbatch(self, script: Path, env: dict[str, str] | None = None) -> str:
        """Submit a batch script file; returns the job id. ``env``: sbatch's environment (None: this process's)."""
        out = self.run(["sbatch", "--parsable", str(script)], env=env)
        return out.strip().split(";")[0]

    def cancel(self, job_id: str) -> None:
        self.run(["scancel", job_id])


def _user() -> str:
    import getpass

    return getpass.getuser()


_DEFAULT: Slurm | None = None


DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default MaxArraySize


def chunk_cap(slurm: Any) -> int:
    """How many tasks one array may hold on a cluster: MaxArraySize (indices run 0..MaxArraySize-1)."""
    try:
        raw = slurm.config_value("MaxArraySize")
    except SchedulerError:
        raw = None
    return int(raw) if raw and raw.isdigit() else DEFAULT_MAX_ARRAY_SIZE


def default_slurm() -> Slurm:
    global _DEFAULT
    if _DEFAULT is None:
        from ._paths import aifsdk_home

        _DEFAULT = Slurm(cache_dir=aifsdk_home() / "cache")
    return _DEFAULT
