"""Domain workloads run by the harness: full training steps timed like any other benchmark.

The workloads themselves live in :mod:`benchmarks.workloads` (the contract is
``build_workload(name, device, dtype, **params) -> Workload`` with ``step()``, ``unit``,
``items_per_step``, ``params``, ``flops_per_step``, ``config``). Here each one is built, its
``step()`` is timed by the context's timer (warm-up, sync, many samples; no cache flush, a
training step is not a cache-cold kernel), and the row reports items/s (samples/s or tokens/s),
the step time median and IQR, peak memory and the model size. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA/ROCm (``device_peak_allocated``), the XPU
equivalent on XPU, and the process's peak RSS on CPU and MPS (``process_peak_rss``: it includes
everything the process allocated before, so read it as an upper bound); ``memory_kind`` says which.
"""

from __future__ import annotations

import dataclasses
import resource
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._device import torch_dtype
from ._measure import Context
from ._stats import summarize
from ._timing import Timer
from .protocol import benchmark
from .results import Row


def _load_builder() -> tuple[Callable[..., Any], Mapping[str, str]]:
    from benchmarks.workloads import WORKLOADS, build_workload

    return build_workload, WORKLOADS


def peak_memory(ctx: Context) -> tuple[int, str]:
    """(bytes, kind) of peak memory since the last reset (see the module docstring)."""
    torch = ctx.torch
    if ctx.device.kind in ("cuda", "rocm"):
        return int(torch.cuda.max_memory_allocated(ctx.device.torch_device)), "device_peak_allocated"
    if ctx.device.kind == "xpu":
        return int(torch.xpu.max_memory_allocated(ctx.device.torch_device)), "device_peak_allocated"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process_peak_rss"


def _reset_peak(ctx: Context) -> None:
    if ctx.device.kind in ("cuda", "rocm"):
        ctx.torch.cuda.reset_peak_memory_stats(ctx.device.torch_device)
    elif ctx.device.kind == "xpu":
        ctx.torch.xpu.reset_peak_memory_stats(ctx.device.torch_device)


def _configure(kwargs: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The ``workload`` group's fields (nulls dropped) become the params of the workload it names."""
    chosen = {k: v for k, v in (config.get("workload") or {}).items() if v is not None}
    if "name" in chosen:
        kwargs = dict(kwargs, params={chosen.pop("name"): chosen})
    return kwargs


def _check(kwargs: dict[str, Any]) -> list[str]:
    _, known = _load_builder()
    unknown = [n for n in kwargs.get("names", []) if n not in known]
    return [f"names: unknown {unknown}; allowed {', '.join(known)}. Fix: workload=<one of them>"] if unknown else []


def _notes(row: dict[str, Any]) -> list[str]:
    extra = row.get("extra") or {}
    if "peak_memory_bytes" not in extra:
        return []
    return [f"step {extra['step_time_median_s'] * 1e3:.1f} ms (IQR {extra['step_time_iqr_s'] * 1e3:.1f}), "
            f"{extra['peak_memory_bytes'] / 2**20:.0f} MiB {extra['memory_kind']}, {extra['model_params'] / 1e6:.2f} M params"]


@benchmark("workload", configure=_configure, check=_check, steps=lambda kwargs, device: len(kwargs.get("names", [])), notes=_notes)
def workloads(ctx: Context, *, names: Sequence[str], dtype: str = "fp32", params: Mapping[str, Mapping[str, Any]] | None = None,
              builder: Callable[..., Any] | None = None, known: Mapping[str, str] | None = None) -> list[Row]:
    """One row per workload in ``names``; ``params[name]`` are passed to its builder.
    ``builder``/``known`` are seams for tests (default: the benchmarks.workloads package)."""
    if builder is None or known is None:
        builder, known = _load_builder()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"workloads {unknown!r}: unknown; allowed {', '.join(known)}. Fix: pick names from that list")
    torch_dt = torch_dtype(dtype, ctx.torch)
    device = ctx.torch.device(ctx.device.torch_device)
    # Steps are timed warm (no cache flush), with the suite's sample counts.
    timer = Timer(dataclasses.replace(ctx.timing, flush_cache=False), sync=ctx.timer.sync,
                  events=ctx.timer.events, clock=ctx.timer.clock)
    rows = []
    for name in names:
        _reset_peak(ctx)
        wl = builder(name, device, torch_dt, **dict((params or {}).get(name, {})))
        row = ctx.measure("workload", f"{name} {dtype}", wl.step, work=float(wl.items_per_step), unit=f"{wl.unit}/s",
                          metric="throughput", params={"workload": name, "dtype": dtype, **dict(wl.config)},
                          items_per_call=float(wl.items_per_step), timer=timer)
        mem, kind = peak_memory(ctx)
        step = summarize(row.times_s)
        flops = wl.flops_per_step
        row.extra = {"domain": wl.domain, "unit": wl.unit, "items_per_step": wl.items_per_step, "model_params": wl.params,
                        "flops_per_step": flops, "step_time_median_s": step.median, "step_time_iqr_s": step.iqr,
                        "step_time_p10_s": step.p10, "step_time_p90_s": step.p90,
                        "achieved_tflops": flops / step.median / 1e12 if flops and step.median else None,
                        "peak_memory_bytes": mem, "memory_kind": kind}
        rows.append(row)
        del wl
    return rows
