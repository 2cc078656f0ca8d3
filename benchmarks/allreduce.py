"""All-reduce bus bandwidth over a payload sweep, across processes and nodes (nccl-tests' method).

:func:`allreduce` (the suite's callable) submits :func:`rank_main` through ``aifsdk.submit`` to
a site (``slurm`` with 2 nodes on the local test cluster) and waits; every rank joins
``aifsdk.distributed()`` (nccl on GPUs, gloo on CPU). For each payload: a warm-up (nccl-tests
runs 5 iterations; mandatory, the first large all-reduce can be several times slower), then
``iters`` timed all-reduces, each bracketed by device syncs. A collective is as slow as its
slowest rank, so the time of iteration i is the maximum over ranks (gathered at the end).
``algbw = S / t`` and ``busbw = algbw * 2 (n - 1) / n`` (nccl-tests doc/PERFORMANCE.md), with S
the payload in bytes and n the number of ranks. One result correctness check per payload (the
reduced value equals the sum of the ranks' fills) plays nccl-tests' ``#wrong`` column.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any

from ._measure import Context
from ._stats import summarize
from .protocol import benchmark
from .results import Row


def bus_factor(n: int) -> float:
    """nccl-tests' all-reduce factor 2 (n - 1) / n."""
    if n < 1:
        raise ValueError(f"ranks={n}: allowed >= 1")
    return 2.0 * (n - 1) / n


def payload_sweep(min_bytes: int, max_bytes: int, factor: int = 4) -> list[int]:
    """Payload sizes from ``min_bytes`` to ``max_bytes`` multiplying by ``factor`` (nccl-tests -b/-e/-f)."""
    if min_bytes < 4 or max_bytes < min_bytes or factor < 2:
        raise ValueError(f"payloads min_bytes={min_bytes}, max_bytes={max_bytes}, factor={factor}: allowed 4 <= min <= max, factor >= 2. "
                         "Fix: e.g. min_bytes=1024 max_bytes=16777216 factor=4")
    out, size = [], min_bytes
    while size <= max_bytes:
        out.append(size)
        size *= factor
    return out


def rank_main(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs on every rank. Returns per-payload rows (rank 0's carry the slowest-rank times)."""
    import torch
    import torch.distributed as dist

    import aifsdk

    with aifsdk.distributed() as d:
        device = torch.device(d["device"])
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        rank, world = d["rank"], d["world_size"]
        rows = []
        for nbytes in cfg["payloads"]:
            numel = max(nbytes // 4, 1)
            x = torch.full((numel,), float(rank + 1), device=device)
            for _ in range(cfg["warmup"]):
                dist.all_reduce(x)
            x.fill_(float(rank + 1))
            dist.all_reduce(x)
            expected = world * (world + 1) / 2
            wrong = int((x != expected).sum().item())
            times = []
            dist.barrier()
            for _ in range(cfg["iters"]):
                sync()
                start = time.perf_counter()
                dist.all_reduce(x)
                sync()
                times.append(time.perf_counter() - start)
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, {"times": times, "host": os.environ.get("SLURMD_NODENAME") or socket.gethostname(), "wrong": wrong})
            slowest = [max(g["times"][i] for g in gathered) for i in range(len(times))]
            rows.append({"bytes": numel * 4, "times_s": slowest, "wrong": sum(g["wrong"] for g in gathered),
                         "hosts": sorted(g["host"] for g in gathered)})
        return {"rank": rank, "world_size": world, "backend": dist.get_backend(), "device": str(device), "rows": rows,
                "job_id": os.environ.get("SLURM_JOB_ID"), "nodelist": os.environ.get("SLURM_JOB_NODELIST")}


def rows_from_result(ctx_device: str, result: dict[str, Any], extra: dict[str, Any] | None = None) -> list[Row]:
    """Result rows (busbw in GB/s per iteration as the samples) from rank 0's return value."""
    n = result["world_size"]
    factor = bus_factor(n)
    out = []
    for r in result["rows"]:
        times = r["times_s"]
        algbw = [r["bytes"] / t / 1e9 for t in times]
        out.append(Row("allreduce", f"{r['bytes']}B x{n}", values=[a * factor for a in algbw], times_s=times, unit="GB/s", metric="busbw",
                       params={"bytes": r["bytes"], "ranks": n, "backend": result["backend"]}, work_per_call=r["bytes"] * factor / 1e9,
                       device=ctx_device, extra=dict(extra or {}, algbw_median_gbs=summarize(algbw).median, wrong=r["wrong"], hosts=r["hosts"],
                                                     slurm_job_id=result.get("job_id"), nodelist=result.get("nodelist"))))
    return out


@benchmark("allreduce", submits_jobs=True)
def allreduce(ctx: Context, *, site: str = "slurm", nodes: int = 2, tasks_per_node: int = 1, gpus_per_node: int | None = None,
              min_bytes: int = 1024, max_bytes: int = 16 * 2**20, factor: int = 4, warmup: int = 5, iters: int = 20,
              time_limit: str | int = 10, timeout_s: float = 600, submit_options: dict[str, Any] | None = None) -> list[Row]:
    """Submit the all-reduce sweep through aifsdk and return busbw rows (one per payload)."""
    import aifsdk

    payloads = payload_sweep(min_bytes, max_bytes, factor)
    if warmup < 0 or iters < 1:
        raise ValueError(f"allreduce warmup={warmup}, iters={iters}: allowed warmup >= 0, iters >= 1. Fix: warmup=5 iters=20 (nccl-tests)")
    ctx.step(f"allreduce {len(payloads)} payloads on {site} ({nodes} nodes x {tasks_per_node})")
    options: dict[str, Any] = dict(site=site, nodes=nodes, tasks_per_node=tasks_per_node, time=time_limit, name="bench-allreduce",
                                   **(submit_options or {}))
    if gpus_per_node:
        options["gpus_per_node"] = gpus_per_node
    job = aifsdk.submit(rank_main, {"payloads": payloads, "warmup": warmup, "iters": iters}, **options)
    results = job.results(timeout=timeout_s)
    first = next(r for r in results if r["rank"] == 0)
    return rows_from_result(ctx.device.name, first, {"site": site, "nodes": nodes, "tasks_per_node": tasks_per_node,
                                                     "job_id": str(job.job_id), "warmup": warmup, "iters": iters})


def run_local(payloads: Sequence[int], warmup: int = 2, iters: int = 5) -> dict[str, Any]:
    """One process, world size 1 (for tests and a laptop): the same code path as a job rank."""
    return rank_main({"payloads": list(payloads), "warmup": warmup, "iters": iters})
