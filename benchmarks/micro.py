"""Microbenchmarks: matmul throughput with a shape search, device memory bandwidth, host<->device copy.

Each is a :class:`benchmarks.protocol.Benchmark` named by a suite config's ``_target_``.

- :func:`matmul` follows mamf-finder (v2): ``torch.mm(A, B, out=C)`` with B transposed
  (``randn(n, k).t()``), random-normal inputs (fp8: ``torch._scaled_mm`` with unit scales and a
  bf16 output, since ``torch.mm`` has no fp8 kernel), the last-level cache flushed and C re-randomised
  before every timed call, FLOPs = 2*M*N*K. ``mode=quick`` sweeps M over a range with N and K
  fixed; ``mode=exhaustive`` sweeps all three. The best shape's median is the figure reported,
  beside the device's peak and best-known achievable (MAMF) figure. ``devices=all`` runs every
  device of the node at once (one thread each) and reports the slowest.
- :func:`membw` is BabelStream's copy (``c = a``, 2 arrays moved) and triad (``a = b + s*c``,
  3 arrays moved) on arrays far larger than the last-level cache.
- :func:`hostcopy` times pinned host -> device and device -> host copies; skipped on CPU, where
  there is no separate device memory (a row says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Sequence
from typing import Any

from ._device import DeviceInfo, event_factory, flush_bytes, synchronizer, torch_dtype
from ._measure import Context
from ._timing import CacheFlusher, Timer
from .protocol import benchmark
from .results import Row


def shape_grid(mode: str, m_range: Sequence[int], n_range: Sequence[int], k_range: Sequence[int]) -> list[tuple[int, int, int]]:
    """The (M, N, K) shapes to try. Ranges are ``[start, stop, step]`` (stop inclusive; a zero
    start is skipped, as mamf-finder's ``0 20480 256``); ``quick`` uses only the first value of
    the N and K ranges, ``exhaustive`` the full product."""
    if mode not in ("quick", "exhaustive"):
        raise ValueError(f"matmul mode={mode!r}: allowed quick, exhaustive. Fix: mode=quick for a sweep of M only")

    def expand(name: str, r: Sequence[int]) -> list[int]:
        if len(r) == 1:
            return [int(r[0])]
        if len(r) != 3 or int(r[2]) <= 0:
            raise ValueError(f"{name}_range={list(r)!r}: allowed [value] or [start, stop, step] with step > 0. Fix: e.g. [256, 1024, 256]")
        start, stop, step = (int(v) for v in r)
        return [v for v in range(start, stop + 1, step) if v > 0]

    ms, ns, ks = expand("m", m_range), expand("n", n_range), expand("k", k_range)
    if mode == "quick":
        ns, ks = ns[:1], ks[:1]
    shapes = list(itertools.product(ms, ns, ks))
    if not shapes:
        raise ValueError(f"matmul shape ranges m={list(m_range)}, n={list(n_range)}, k={list(k_range)} give no shape. Fix: widen them")
    return shapes


def _devices(ctx: Context, devices: str | None) -> list[str]:
    """The torch devices to run on: the suite's device (None), or every device of the node ("all")."""
    if devices is None:
        return [ctx.device.torch_device]
    if devices == "all":
        if ctx.device.kind in ("cuda", "rocm", "xpu"):
            prefix = ctx.device.torch_device.split(":")[0]
            return [f"{prefix}:{i}" for i in range(ctx.device.count)]
        return [ctx.device.torch_device]
    raise ValueError(f"devices={devices!r}: allowed null (the suite's device) or 'all' (every device of the node, slowest reported). "
                     "Fix: devices=all, or pick one device with device_index=N")


def _device_scope(ctx: Context, device: str) -> contextlib.AbstractContextManager[Any]:
    """Make ``device`` current in this thread: events record on the current device's stream, and
    the current device is per thread."""
    if ctx.device.kind in ("cuda", "rocm"):
        return ctx.torch.cuda.device(ctx.torch.device(device))
    if ctx.device.kind == "xpu":
        return ctx.torch.xpu.device(ctx.torch.device(device))
    return contextlib.nullcontext()


def _timer_for(ctx: Context, device: str) -> Timer:
    """A timer on ``device`` (its own events, sync and flush buffer), made once per device."""
    if device == ctx.device.torch_device:
        return ctx.timer
    timers: dict[str, Timer] = ctx.__dict__.setdefault("device_timers", {})
    if device not in timers:
        torch = ctx.torch
        flush = CacheFlusher(flush_bytes(ctx.device), device, torch) if ctx.timing.flush_cache else None
        timers[device] = Timer(ctx.timing, sync=synchronizer(ctx.device, torch), events=event_factory(ctx.device, torch), flush=flush)
    return timers[device]


def _one_matmul(ctx: Context, device: str, dtype_name: str, m: int, n: int, k: int) -> Row:
    torch = ctx.torch
    dtype = torch_dtype(dtype_name, torch)
    gen = torch.Generator(device="cpu").manual_seed(1234 + m + n + k)
    a = torch.randn(m, k, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, k, generator=gen).to(device=device, dtype=dtype).t()
    if dtype_name == "fp8":  # torch.mm has no fp8 kernel: scaled matmul (B column-major, as here), bf16 output
        scale = torch.tensor(1.0, device=device)
        out = torch.bfloat16

        def call() -> Any:
            return torch._scaled_mm(a, b, scale_a=scale, scale_b=scale, out_dtype=out)

        setup = None
    else:
        c = torch.empty(m, n, device=device, dtype=dtype)
        c_rand = torch.randn(m, n, generator=gen).to(device=device, dtype=dtype)

        def call() -> Any:
            return torch.mm(a, b, out=c)

        def setup() -> Any:
            return c.copy_(c_rand)
    with _device_scope(ctx, device):
        return ctx.measure("matmul", f"{dtype_name} {m}x{n}x{k}", call, work=2.0 * m * n * k / 1e12,
                           unit="TFLOPS", metric="throughput", params={"dtype": dtype_name, "m": m, "n": n, "k": k, "device": device},
                           setup=setup, reference_key=f"matmul_tflops.{dtype_name}", timer=_timer_for(ctx, device))


def slowest(rows: Sequence[Row]) -> Row:
    """The row with the lowest median throughput: the figure a node can be counted on for."""
    if not rows:
        raise ValueError("no rows to pick the slowest device from")
    return min(rows, key=lambda r: r.stats.median)


MATMUL_DEFAULTS = {"mode": "quick", "m_range": (256, 1024, 256), "n_range": (1024,), "k_range": (1024,)}


def _matmul_shapes(kwargs: dict[str, Any]) -> list[tuple[int, int, int]]:
    spec = {**MATMUL_DEFAULTS, **{k: kwargs[k] for k in MATMUL_DEFAULTS if k in kwargs}}
    return shape_grid(spec["mode"], spec["m_range"], spec["n_range"], spec["k_range"])


def _matmul_check(kwargs: dict[str, Any]) -> list[str]:
    try:
        _matmul_shapes(kwargs)
    except ValueError as exc:
        return [str(exc)]
    return []


def _matmul_steps(kwargs: dict[str, Any], device: DeviceInfo) -> int:
    devices = device.count if kwargs.get("devices") == "all" and device.kind in ("cuda", "rocm", "xpu") else 1
    return len(_matmul_shapes(kwargs)) * len(kwargs.get("dtypes", ["fp32"])) * devices


def _matmul_notes(row: dict[str, Any]) -> list[str]:
    extra = row.get("extra") or {}
    if "best_shape" not in extra:
        return []
    p = extra["best_shape"]
    return [f"best shape {p['m']}x{p['n']}x{p['k']}; slowest of {extra['devices_measured']} device(s)"]


@benchmark("matmul", check=_matmul_check, steps=_matmul_steps, notes=_matmul_notes)
def matmul(ctx: Context, *, dtypes: Sequence[str] = ("fp32",), mode: str = MATMUL_DEFAULTS["mode"],
           m_range: Sequence[int] = MATMUL_DEFAULTS["m_range"], n_range: Sequence[int] = MATMUL_DEFAULTS["n_range"],
           k_range: Sequence[int] = MATMUL_DEFAULTS["k_range"], devices: str | None = None,
           tf32: bool = False) -> list[Row]:
    """Matmul TFLOPS per dtype over a shape search; one row per shape and device, plus a ``best``
    row per dtype (the best shape's median; with several devices, the slowest device's best)."""
    shapes = shape_grid(mode, m_range, n_range, k_range)
    indices = _devices(ctx, devices)
    torch = ctx.torch
    for dtype_name in dtypes:
        torch_dtype(dtype_name, torch)  # an unknown dtype fails here, before anything runs
    rows: list[Row] = []
    for dtype_name in dtypes:
        if ctx.device.kind in ("cuda", "rocm"):  # "tf32" is fp32 storage on TF32 tensor cores
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32) or dtype_name == "tf32"
        per_device: dict[str, list[Row]] = {i: [] for i in indices}
        for m, n, k in shapes:
            if len(indices) == 1:
                per_device[indices[0]].append(_one_matmul(ctx, indices[0], dtype_name, m, n, k))
                continue
            results: dict[str, Row] = {}
            threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, _one_matmul(ctx, i, dtype_name, m, n, k)))
                       for i in indices]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for i in indices:
                per_device[i].append(results[i])
        best_each = [max(per_device[i], key=lambda r: r.stats.median) for i in indices]
        worst = slowest(best_each)
        rows += [r for i in indices for r in per_device[i]]
        best = dataclasses.replace(worst, case=f"{dtype_name} best", extra={"best_shape": worst.params, "devices_measured": len(indices),
                                                                            "slowest_device": worst.params["device"],
                                                                            "per_device_best_median": [r.stats.median for r in best_each]})
        rows.append(best)
    return rows


@benchmark("membw", steps=lambda kwargs, device: len(kwargs.get("kernels", ["copy", "triad"])))
def membw(ctx: Context, *, size_mb: float | None = None, dtype: str = "fp32", kernels: Sequence[str] = ("copy", "triad")) -> list[Row]:
    """Device memory bandwidth (GB/s) by BabelStream's copy and triad."""
    torch = ctx.torch
    dt = torch_dtype(dtype, torch)
    elem = torch.empty((), dtype=dt).element_size()
    llc = ctx.device.llc_bytes or 32 * 2**20
    nbytes = int(size_mb * 2**20) if size_mb else max(4 * llc, 128 * 2**20)
    n = nbytes // elem
    dev = ctx.device.torch_device
    a = torch.randn(n, device=dev).to(dt)
    b = torch.randn(n, device=dev).to(dt)
    c = torch.randn(n, device=dev).to(dt)
    scalar = 0.4
    ops = {"copy": (lambda: c.copy_(a), 2), "triad": (lambda: torch.add(b, c, alpha=scalar, out=a), 3)}
    rows = []
    for name in kernels:
        if name not in ops:
            raise ValueError(f"membw kernels={list(kernels)!r}: {name!r} unknown; allowed {', '.join(ops)}. Fix: kernels=[copy,triad]")
        fn, arrays = ops[name]
        rows.append(ctx.measure("membw", f"{name} {nbytes / 2**20:.0f}MiB", fn, work=arrays * n * elem / 1e9, unit="GB/s",
                                metric="bandwidth", params={"kernel": name, "bytes_per_array": n * elem, "dtype": dtype},
                                reference_key=f"membw_gbs.{name}", items_per_call=arrays * n * elem))
    return rows


@benchmark("hostcopy", steps=lambda kwargs, device: 2 if device.is_gpu else 1)
def hostcopy(ctx: Context, *, size_mb: float = 256, pinned: bool = True) -> list[Row]:
    """Host -> device and device -> host copy bandwidth (GB/s) of one ``size_mb`` buffer."""
    if not ctx.device.is_gpu:
        ctx.step("hostcopy skipped")
        return [Row.skip("hostcopy", "skipped", f"device {ctx.device.kind}: no separate device memory to copy to")]
    torch = ctx.torch
    nbytes = int(size_mb * 2**20)
    host = torch.randn(nbytes // 4)
    if pinned and ctx.device.kind != "mps":
        host = host.pin_memory()
    dev = torch.empty_like(host, device=ctx.device.torch_device)
    back = torch.empty_like(host).pin_memory() if pinned and ctx.device.kind != "mps" else torch.empty_like(host)
    params = {"bytes": nbytes, "pinned": pinned}
    return [
        ctx.measure("hostcopy", f"h2d {size_mb:g}MiB", lambda: dev.copy_(host, non_blocking=True), work=nbytes / 1e9, unit="GB/s",
                    metric="bandwidth", params=dict(params, direction="h2d"), reference_key="h2d_gbs"),
        ctx.measure("hostcopy", f"d2h {size_mb:g}MiB", lambda: back.copy_(dev, non_blocking=True), work=nbytes / 1e9, unit="GB/s",
                    metric="bandwidth", params=dict(params, direction="d2h"), reference_key="d2h_gbs"),
    ]
