"""Differential tests: aifsdk's verdict on a request equals the verdict of a site twin.

A site twin (tests/cluster/twins/SITE.conf, started by ``slurm-cluster twins up``) is a real
slurmctld configured like the site from the site's own documentation. For each twin a seeded
generator makes requests on both sides of every limit it knows (the twin's and the profile's:
nodes, GPUs, tasks, cores, memory, time, partition and QoS), and:

- a request aifsdk accepts: its rendered script must pass ``sbatch --test-only`` on the twin;
- a request aifsdk refuses, written as plain sbatch options, must fail on the twin in the named
  partition and QoS, or in every one of them when the request names none.

Any other outcome is a disagreement, and fails the test, unless it is one of the deliberate
differences listed in DELIBERATE with its reason. Nothing is faked: the twins are real
slurmctld processes; only their nodes are powered down (CLOUD), so nothing runs.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import aifsdk
from aifsdk._resources import parse_time

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]

HERE = Path(__file__).resolve().parent
CLUSTER_SCRIPT = HERE / "slurm-cluster"
TWIN_DIR = HERE / "twins"
REQUESTS_PER_SITE = 240
SEED = 20261130

# The account each twin's QoS association holds (tests/cluster/twins/SITE.qos); twins without
# accounting accept any account, so the profile's example is used.
ACCOUNTS = {
    "lumi-g": "project_465001926",
    "leonardo-booster": "EUHPC_D35_189",
    "jupiter-booster": "e-dev-2026d09-128",
    "mn5-acc": "ehpc123",
    "meluxina-gpu": "p200301",
    "karolina-gpu": "EU-25-92",
}
SITES = sorted(ACCOUNTS)


def train(cfg: dict[str, Any]) -> float:
    return 0.0


# -- the twin, read from its own files (not from aifsdk's profile) ---------------------------------
@dataclass
class Twin:
    site: str
    conf: Path
    partitions: dict[str, dict[str, str]] = field(default_factory=dict)
    node: dict[str, str] = field(default_factory=dict)
    qos: dict[str, dict[str, str]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def _keys(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", text))


def read_twin(site: str) -> Twin:
    conf = Path(subprocess.run(["bash", str(CLUSTER_SCRIPT), "twin", site, "conf"], capture_output=True, text=True, check=True).stdout.strip())
    twin = Twin(site, conf)
    for line in (TWIN_DIR / f"{site}.conf").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("PartitionName="):
            keys = _keys(line)
            twin.partitions[keys.pop("PartitionName")] = keys
        elif line.startswith("NodeName=") and not twin.node:
            twin.node = _keys(line)
    qos_file = TWIN_DIR / f"{site}.qos"
    if qos_file.exists():
        for line in qos_file.read_text().splitlines():
            words = line.split("#")[0].split()
            if words[:1] == ["qos"]:  # granted QoS (`restricted` ones are not the account's)
                twin.qos[words[1]] = _keys(" ".join(words[2:]))
    return twin


def _twin_up(site: str) -> None:
    out = subprocess.run(["bash", str(CLUSTER_SCRIPT), "twin", site, "up"], capture_output=True, text=True)
    if out.returncode != 0:
        message = f"twin {site} did not start: {out.stdout}{out.stderr}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


# -- requests on both sides of every limit ----------------------------------------------------------
def _minutes(value: str | None) -> int | None:
    if value is None or value.upper() == "UNLIMITED":
        return None
    return parse_time(value)


def _tres(text: str | None, key: str) -> int | None:
    m = re.search(rf"(?:^|,){re.escape(key)}=(\d+)", text or "")
    return int(m.group(1)) if m else None


def limits(twin: Twin) -> dict[str, set[Any]]:
    """Values on both sides of every limit the twin or the profile knows."""
    profile = aifsdk.load_site(twin.site)
    gpus = max(_tres(twin.node.get("Gres", "").replace(":", "="), "gpu") or 0, profile.node.gpus or 0)
    cpus = {int(twin.node.get("CPUs", 1)), profile.node.cpus_usable or 0, profile.node.cpus or 0} - {0}
    mem = {int(twin.node.get("RealMemory", 1024)) // 1024, int(profile.node.mem_gb or 0)} - {0}
    nodes: set[Any] = {None, 1, 2}
    times: set[Any] = {None, 30}
    for p in twin.partitions.values():
        for key in ("MaxNodes", "MinNodes"):
            if p.get(key, "UNLIMITED").isdigit():
                n = int(p[key])
                nodes |= {n - 1, n, n + 1} - {0}
        if (m := _minutes(p.get("MaxTime"))) is not None:
            times |= {m, m + 1}
    for q in twin.qos.values():
        for key in ("MaxTRESPerJob", "MinTRESPerJob"):
            if (n := _tres(q.get(key), "node")) is not None:
                nodes |= {n - 1, n, n + 1} - {0}
        if (m := _minutes(q.get("MaxWall"))) is not None:
            times |= {m, m + 1}
    for p in profile.partitions.values():
        for n in (p.max_nodes, p.min_nodes, p.node_count):
            if n:
                nodes |= {n - 1, n, n + 1} - {0}
        if p.max_minutes:
            times |= {p.max_minutes, p.max_minutes + 1}
    for q in profile.qos.values():
        for n in (q.max_nodes, q.min_nodes):
            if n:
                nodes |= {n - 1, n, n + 1} - {0}
        if q.max_minutes:
            times |= {q.max_minutes, q.max_minutes + 1}
    cores = {None, 1}
    for c in cpus:
        cores |= {c, c + 1} | ({c // gpus, c // gpus + 1} if gpus else set())
    return {
        "nodes": nodes,
        "gpus_per_node": {None, 0, 1, gpus // 2, gpus, gpus + 1} if gpus else {None, 0, 1},
        "tasks_per_node": {None, 1, gpus or 1, *cpus, *(c + 1 for c in cpus)},
        "cpus_per_task": cores,
        "mem_gb": {None, *mem, *(m + 1 for m in mem), min(mem) // 2},
        "time": times,
        # partitions the twin does not model are not compared (the docs list them for each twin)
        "partition": {None, *twin.partitions},
        "qos": {None, *twin.qos, *profile.qos},
    }


# How often each field is set (the rest of the time it is left to the defaults).
SET_SHARE = {"nodes": 0.7, "gpus_per_node": 0.8, "tasks_per_node": 0.4, "cpus_per_task": 0.5, "mem_gb": 0.25,
             "time": 0.7, "partition": 0.6, "qos": 0.4}


def edges(twin: Twin) -> list[dict[str, Any]]:
    """One request at and one just past each of the twin's own limits, the rest left to defaults
    (whole nodes where the partition is node-exclusive)."""
    gpus = _tres(twin.node.get("Gres", "").replace(":", "="), "gpu") or 0
    cpus, mem = int(twin.node["CPUs"]), int(twin.node["RealMemory"]) // 1024
    out: list[dict[str, Any]] = []
    for name, p in twin.partitions.items():
        base = {"partition": name, "gpus_per_node": gpus, "time": 30}
        for key, value in (("MaxNodes", "nodes"), ("MinNodes", "nodes")):
            if p.get(key, "").isdigit():
                n = int(p[key])
                out += [{**base, value: n}, {**base, value: n + 1 if key == "MaxNodes" else n - 1}]
        if (m := _minutes(p.get("MaxTime"))) is not None:
            out += [{**base, "time": m}, {**base, "time": m + 1}]
        out += [{**base, "tasks_per_node": 1, "cpus_per_task": c} for c in (cpus, cpus + 1)]
        out += [{**base, "mem_gb": g} for g in (mem, mem + 1)]
        out += [{**base, "gpus_per_node": g} for g in (gpus, gpus + 1)]
    for name, q in twin.qos.items():
        base = {"qos": name, "gpus_per_node": gpus, "time": 30}
        if (n := _tres(q.get("MaxTRESPerJob"), "node")) is not None:
            out += [{**base, "nodes": n}, {**base, "nodes": n + 1}]
        if (n := _tres(q.get("MinTRESPerJob"), "node")) is not None:
            out += [{**base, "nodes": n}, {**base, "nodes": n - 1}]
        if (m := _minutes(q.get("MaxWall"))) is not None:
            out += [{**base, "time": m}, {**base, "time": m + 1}]
    return out


def requests(twin: Twin, count: int, seed: int) -> list[dict[str, Any]]:
    """Both sides of each of the twin's limits, then seeded random mixes of every limit's values."""
    rng = random.Random(f"{seed}-{twin.site}")
    values = {k: sorted((v for v in vs if v is not None), key=str) for k, vs in limits(twin).items()}
    out: list[dict[str, Any]] = []
    for req in edges(twin):
        if req not in out:
            out.append(req)
    while len(out) < count:
        req = {k: rng.choice(vs) for k, vs in values.items() if vs and rng.random() < SET_SHARE[k]}
        if req not in out:
            out.append(req)
    return out


# -- the two verdicts ---------------------------------------------------------------------------
def aifsdk_verdict(site: str, req: dict[str, Any], folder: Path) -> tuple[bool, str]:
    """(accepted, the script or the RequestError's text)."""
    try:
        p = aifsdk.plan(train, {}, site=site, snapshot=False, folder=folder, account=ACCOUNTS[site], **req)
    except aifsdk.RequestError as exc:
        return False, str(exc)
    return True, p.script


def plain_options(site: str, req: dict[str, Any]) -> list[str]:
    """The request as a user would write it for sbatch, with the site's GPU flag."""
    profile = aifsdk.load_site(site)
    opts = [f"--account={ACCOUNTS[site]}"]
    flags = {"nodes": "--nodes", "tasks_per_node": "--ntasks-per-node", "cpus_per_task": "--cpus-per-task",
             "partition": "--partition", "qos": "--qos"}
    for key, flag in flags.items():
        if req.get(key) is not None:
            opts.append(f"{flag}={req[key]}")
    if req.get("gpus_per_node"):
        gpus = req["gpus_per_node"]
        opts.append(f"--gres={profile.gres_name}:{gpus}" if profile.gpu_request == "gres" else f"--gpus-per-node={gpus}")
    if req.get("mem_gb") is not None:
        opts.append(f"--mem={req['mem_gb']}G")
    if req.get("time") is not None:
        opts.append(f"--time={req['time']}")
    return opts


# sbatch's answers when the controller was not reached (a busy machine): asked again, never a verdict
UNREACHED = ("Socket timed out", "Unable to contact slurm controller", "Zero Bytes were transmitted", "Connection refused")


def sbatch_test(twin: Twin, args: list[str], script: str | None = None) -> tuple[bool, str]:
    argv = ["sbatch", "--test-only", *args] + ([] if script is not None else ["--wrap", "true"])
    for _ in range(5):
        out = subprocess.run(argv, input=script, capture_output=True, text=True, env=twin.env(), timeout=120)
        text = (out.stderr or out.stdout).strip()
        if not any(u in text for u in UNREACHED):
            break
    return out.returncode == 0, text.splitlines()[-1] if text else ""


def twin_verdict(twin: Twin, req: dict[str, Any], accepted: bool, script: str) -> tuple[bool, str]:
    """For an accepted request: does the twin accept the script? For a refused one: does the twin
    accept the plain options in some partition/QoS (the named ones, else any)?"""
    if accepted:
        return sbatch_test(twin, [], script)
    parts = [req["partition"]] if req.get("partition") is not None else list(twin.partitions)
    qoses = [req["qos"]] if req.get("qos") is not None else ([None, *twin.qos] if twin.qos else [None])
    base = plain_options(twin.site, {k: v for k, v in req.items() if k not in ("partition", "qos")})
    last = ""
    for part in parts:
        for qos in qoses:
            ok, last = sbatch_test(twin, [*base, f"--partition={part}", *([f"--qos={qos}"] if qos else [])])
            if ok:
                return True, f"accepted with --partition={part}{f' --qos={qos}' if qos else ''}: {last}"
    return False, last


# Deliberate differences: (site, predicate on the request and aifsdk's message, reason).
Deliberate = tuple[str, Callable[[dict[str, Any], str], bool], str]
DELIBERATE: list[Deliberate] = [
    ("mn5-acc", lambda _, msg: "CPU cores per GPU" in msg,
     "at least 20 CPU cores per GPU: a minimum BSC's administrators enforce at submission (J. Torres, Supercomputing "
     "for AI, ch. 3: too few cores per GPU 'will result in submission errors'), not a partition or QoS limit a twin can "
     "hold; aifsdk refuses fewer than 20 cores per GPU (more is accepted, as by the twin: no maximum is documented)"),
]


def deliberate(site: str, req: dict[str, Any], message: str) -> str | None:
    return next((reason for s, applies, reason in DELIBERATE if s == site and applies(req, message)), None)


@dataclass
class Outcome:
    req: dict[str, Any]
    aifsdk: bool
    twin: bool
    detail: str
    reason: str | None = None

    @property
    def agree(self) -> bool:
        return self.aifsdk == self.twin


def judge(site: str, folder: Path, count: int = REQUESTS_PER_SITE, seed: int = SEED) -> list[Outcome]:
    _twin_up(site)
    twin = read_twin(site)
    reqs = requests(twin, count, seed)
    verdicts = [aifsdk_verdict(site, req, folder / f"job-{i}") for i, req in enumerate(reqs)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda rv: twin_verdict(twin, rv[0], *rv[1]), zip(reqs, verdicts)))
    outcomes = []
    for req, (accepted, text), (twin_ok, detail) in zip(reqs, verdicts, answers):
        out = Outcome(req, accepted, twin_ok, detail if accepted else f"aifsdk: {' '.join(text.splitlines()[1:])} | twin: {detail}")
        if not out.agree:
            out.reason = deliberate(site, req, text)
        outcomes.append(out)
    return outcomes


@pytest.mark.parametrize("site", SITES)
def test_aifsdk_and_the_site_twin_agree(site: str, tmp_path: Path) -> None:
    outcomes = judge(site, tmp_path)
    accepted = sum(o.aifsdk for o in outcomes)
    assert len(outcomes) >= 200 and 0 < accepted < len(outcomes), "requests on both sides of the limits"
    agree = [o for o in outcomes if o.agree]
    listed = [o for o in outcomes if not o.agree and o.reason]
    wrong = [o for o in outcomes if not o.agree and not o.reason]
    print(f"\n{site}: {len(outcomes)} requests ({accepted} accepted by aifsdk), {len(agree)} agree "
          f"({100 * len(agree) / len(outcomes):.1f} %), {len(listed)} deliberate differences, {len(wrong)} disagreements")
    report = "\n".join(f"  aifsdk {'accepts' if o.aifsdk else 'refuses'}, twin {'accepts' if o.twin else 'refuses'}: {o.req}\n    {o.detail}"
                       for o in wrong[:15])
    assert not wrong, f"{len(wrong)} disagreements with twin {site}:\n{report}"
