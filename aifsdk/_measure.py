"""Measure your own training step, for :func:`aifsdk.size`.

    m = aifsdk.measure(lambda: train_step(batch), items_per_step=batch_size, site="lumi-g")

Warm-up steps run untimed (compilation, allocator, cuDNN/MIOpen autotuning), then each timed
step ends with a device synchronisation, so a step's time covers its kernels and not only their
launch. The measurement keeps the median step (for reporting) and the mean step with its 95 %
confidence interval: a run's wall time is the sum of its steps, so :func:`aifsdk.size` predicts it
from the mean. In a torch.distributed job each rank runs its own batch: the job's throughput counts
``items_per_step`` on every rank (``world_size`` of the default process group).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from ._errors import Problem, RequestError
from ._sizing import Measurement
from ._stats import mean_ci, percentile


def _torch_device() -> tuple[Callable[[], None] | None, str, int]:
    """(synchronise, device name, world size) from torch, if this process uses it."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None, platform.processor() or platform.machine() or "cpu", 1
    world = 1
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # NVIDIA, and AMD through ROCm/HIP
        return torch.cuda.synchronize, torch.cuda.get_device_name(), world
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return xpu.synchronize, xpu.get_device_name(), world
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and hasattr(torch, "mps"):
        return torch.mps.synchronize, "Apple MPS", world
    return None, platform.processor() or platform.machine() or "cpu", world


def measure(
    step: Callable[[], Any],
    *,
    items_per_step: int,
    steps: int = 20,
    warmup: int = 3,
    unit: str = "samples",
    site: str = "",
    device: str | None = None,
    devices: int | None = None,
    sync: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time ``step()`` and return the job's throughput as an :class:`aifsdk.Measurement`.

    ``items_per_step``: samples (or tokens) one call processes on this rank. ``devices``: the
    job's devices (default: torch.distributed's world size, else 1). ``sync``: the device
    synchronisation (default: torch's for the device in use). ``site``: the site this runs on,
    so that sizing for that site needs no projection (default: ``AIFSDK_SITE``, which aifsdk
    sets in every Slurm job it submits). ``clock``: a seam for tests.
    """
    problems = []
    if items_per_step < 1:
        problems.append(Problem("items_per_step", items_per_step, "at least 1", "the batch size (or tokens per batch) of one step"))
    if steps < 5:
        problems.append(Problem("steps", steps, "at least 5 timed steps", "P10 and P90 need samples; 20 or more is better"))
    if warmup < 0:
        problems.append(Problem("warmup", warmup, "0 or more", "e.g. warmup=3"))
    if unit not in ("samples", "tokens"):
        problems.append(Problem("unit", unit, "'samples' or 'tokens'", "tokens for language models"))
    if problems:
        raise RequestError(problems)
    site = site or os.environ.get("AIFSDK_SITE", "")
    default_sync, name, world = _torch_device()
    sync = sync or default_sync or (lambda: None)
    devices = devices or world
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(steps):
        start = clock()
        step()
        sync()
        times.append(clock() - start)
    median = percentile(times, 0.5)
    mean, low, high = mean_ci(times)
    per_s = items_per_step * devices
    return Measurement(
        devices=devices, items_per_s=per_s / median, p10=per_s / percentile(times, 0.9), p90=per_s / percentile(times, 0.1),
        unit=unit, device=device or name, site=site, mean_items_per_s=per_s / mean,
        mean_ci=(per_s / high, per_s / low if low > 0 else math.inf),
        source=(f"aifsdk.measure on {platform.node()} (pid {os.getpid()}): {steps} steps after {warmup} warm-up, "
                f"median {median * 1e3:.3f} ms, mean {mean * 1e3:.3f} ms (95% CI {low * 1e3:.3f}-{high * 1e3:.3f})"),
    )
