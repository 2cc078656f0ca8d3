"""``aifsdk jobs``: the user's jobs known to aifsdk, read from the registry (works from any process).

State comes from the shared poller (one squeue for all, sacct for jobs slurmctld forgot, the
job's files where accounting is off); elapsed time and GPU-hours from sacct when accounting
answers (``-`` otherwise). An array (``aifsdk.map``) is one row: its tasks' states counted, their
elapsed times and GPU-hours summed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from ._backends import Backend, backend_of
from ._errors import SchedulerError
from ._job import Job
from ._paths import JOB_FILE, aifsdk_home, glob_escape, registry_links


def registered(site: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The records of registered jobs, newest first (one per job folder; only folders of the user's own)."""
    links = registry_links(aifsdk_home() / "registry", f"{glob_escape(site)}/*" if site else "*/*")
    links.sort(key=lambda hit: hit[0], reverse=True)
    seen, out = set(), []
    for _, folder in links:
        if folder in seen:
            continue
        seen.add(folder)
        try:
            out.append(json.loads((folder / JOB_FILE).read_text()))
        except (OSError, ValueError):
            continue  # a folder removed by the user: nothing to list
        if limit and len(out) >= limit:
            break
    return out


def _task_ids(record: dict[str, Any]) -> list[str]:
    chunks = record.get("array", {}).get("chunks")
    if chunks:
        return [f"{c['job_id']}_{i}" for c in chunks for i in range(c["count"])]
    return [str(record["job_id"])]


def _gpus(tres: str) -> int:
    match = re.search(r"gres/gpu=(\d+)", tres or "")
    return int(match.group(1)) if match else 0


def _map_row(record: dict[str, Any]) -> dict[str, Any]:
    """A packed map's row: its items counted by state. Looking at it also submits what it holds back."""
    from ._sweep import sweep_of

    sweep = sweep_of(Path(record["folder"]))
    try:
        sweep.tick(force=True)
    except SchedulerError:
        sweep.refresh()
    counts = sweep.counts()
    states = {"COMPLETED": counts["done"], "RUNNING": counts["running"], "PENDING": counts["pending"],
              "FAILED": counts["failed"], "CANCELLED": counts["cancelled"]}
    live = {k: v for k, v in states.items() if v}
    return {"job_id": sweep.id, "name": record.get("name", ""), "site": record.get("site", ""),
            "state": next(iter(live)) if len(live) == 1 else ", ".join(f"{v} {k}" for k, v in live.items()),
            "states": live, "tasks": sweep.n, "elapsed_s": None, "gpu_hours": None,
            "submitted_at": record.get("submitted_at"), "folder": record.get("folder"),
            "held_back": len(sweep.held_back()) if not sweep.cancelled else 0}


def rows(site: str | None = None, limit: int | None = 50, state: str | None = None) -> list[dict[str, Any]]:
    """One row per job (an array or a map is one row): id, name, site, state, elapsed, GPU-hours, ...
    ``state``: only the jobs with an item or task in that state (RUNNING, PENDING, FAILED, ...)."""
    listing = _rows(site, None if state else limit)
    if state:
        listing = [r for r in listing if state in r.get("states", {r["state"]: 1})]
        listing = listing[:limit] if limit else listing
    return listing


def _rows(site: str | None, limit: int | None) -> list[dict[str, Any]]:
    records = registered(site, limit)
    maps = {id(r) for r in records if "map" in r}
    by_cluster: dict[int, tuple[Backend, list[str]]] = {}
    for r in records:
        if id(r) in maps:
            continue
        try:
            backend = backend_of(r)
        except SchedulerError:
            continue  # its state reads UNKNOWN below
        if backend.poller() is not None:
            by_cluster.setdefault(id(backend), (backend, []))[1].extend(_task_ids(r))
    usage: dict[str, dict[str, str]] = {}
    for backend, ids in by_cluster.values():
        try:
            backend.poller().states(ids)  # type: ignore[union-attr]  # one squeue (and one sacct) for every job listed
            usage.update(backend.slurm().usage(sorted({j.split("_")[0] for j in ids})))  # type: ignore[union-attr]
        except SchedulerError:
            pass
    out = []
    for record in records:
        if id(record) in maps:
            out.append(_map_row(record))
            continue
        ids = _task_ids(record)
        states: Counter[str] = Counter()
        reasons = set()
        for job_id in ids:
            job = Job(dict(record, job_id=job_id))
            state = job.state  # from the job's files when the scheduler does not answer
            states[state] += 1
            if state == "PENDING" and job.reason:
                reasons.add(job.reason)
        used = [usage[j] for j in ids if j in usage]
        elapsed = sum(int(u["elapsed_s"]) for u in used if u["elapsed_s"].isdigit()) if used else None
        gpu_hours = sum(_gpus(u["tres"]) * int(u["elapsed_s"]) / 3600 for u in used if u["elapsed_s"].isdigit()) if used else None
        out.append({
            "job_id": str(record["job_id"]), "name": record.get("name", ""), "site": record.get("site", ""),
            "state": next(iter(states)) if len(states) == 1 else ", ".join(f"{n} {s}" for s, n in states.most_common()),
            "reason": "; ".join(sorted(reasons)),
            "states": {_family(s): n for s, n in states.items()},
            "tasks": len(ids), "elapsed_s": elapsed, "gpu_hours": None if gpu_hours is None else round(gpu_hours, 3),
            "submitted_at": record.get("submitted_at"), "folder": record.get("folder"),
        })
    return out


def _family(state: str) -> str:
    """The filter's name for a state: FAILED for every way of ending without success."""
    if state in ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"):
        return "FAILED"
    return "COMPLETED" if state == "COMPLETING" else state


def table(listing: list[dict[str, Any]]) -> str:
    head = ("JOB", "NAME", "SITE", "TASKS", "STATE", "ELAPSED", "GPU-H", "SUBMITTED")
    body = [(r["job_id"], r["name"][:24], r["site"], str(r["tasks"]),
             r["state"] + (f" ({r['reason'].split(' (')[0]})" if r.get("reason") else ""),
             "-" if r["elapsed_s"] is None else _clock(r["elapsed_s"]),
             "-" if r["gpu_hours"] is None else f"{r['gpu_hours']:.2f}", (r["submitted_at"] or "")[:19]) for r in listing]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [head, *body])


def _clock(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"
