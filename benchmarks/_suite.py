"""Run a composed suite: detect the device, validate, warm up, call each benchmark, collect rows.

Each entry of ``suite.benchmarks`` names its callable with ``_target_`` (torchtune's
``_component_``); the other keys are its keyword arguments, with ``by_device.gpu`` or
``by_device.cpu`` merged over them for the device class at hand. The workload benchmark gets the
``workload`` node's fields (nulls dropped) as the params of the workload it names; the
all-reduce gets the ``site=`` choice when one was made. Everything is validated before the first
measurement; a benchmark that fails while running is recorded as a row with its error and the
run goes on, so nothing measured is lost.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from . import micro
from ._device import DeviceInfo, detect, torch_dtype
from ._measure import Context, Progress
from ._rounds import merge_rounds
from ._timing import TimingConfig
from .results import Row, new_document, provenance

#: benchmarks that submit jobs through aifsdk: their site is the `site=` choice when one is made
SUBMITTING = ("benchmarks.allreduce.allreduce", "benchmarks.scaling.scaling")


def benchmark_calls(cfg: DictConfig, device: DeviceInfo, site_choice: str | None = None) -> list[tuple[str, Callable[..., Any], dict[str, Any]]]:
    """(name, callable, kwargs) for every benchmark of the suite, checked; raises ValueError listing
    every problem before anything runs."""
    calls, problems = [], []
    benchmarks = OmegaConf.to_container(cfg.suite.benchmarks, resolve=True) or {}
    device_class = "gpu" if device.is_gpu else "cpu"
    for name, node in benchmarks.items():  # type: ignore[union-attr]
        node = dict(node)
        target = node.pop("_target_", None)
        by_device = node.pop("by_device", {}) or {}
        node.update(by_device.get(device_class, {}) or {})
        try:
            fn = get_method(str(target))
        except Exception as exc:  # noqa: BLE001 - reported with the fix below
            problems.append(f"suite.benchmarks.{name}._target_={target!r}: cannot import ({exc}). Fix: name a function, e.g. benchmarks.micro.matmul")
            continue
        if name == "workloads" or target == "benchmarks.domain.workloads":
            wl = {k: v for k, v in OmegaConf.to_container(cfg.workload, resolve=True).items() if v is not None}  # type: ignore[union-attr]
            node["params"] = {wl.pop("name"): wl}
        if target == "benchmarks.scaling.scaling":
            wl = {k: v for k, v in OmegaConf.to_container(cfg.workload, resolve=True).items() if v is not None}  # type: ignore[union-attr]
            node["params"] = {k: v for k, v in wl.items() if k != "name"}
        if target in SUBMITTING and site_choice:
            node["site"] = site_choice
        problems += _check(name, target, node)
        calls.append((name, fn, node))
    if problems:
        raise ValueError(f"{len(problems)} problem(s) with the benchmark config (nothing was run):\n  - " + "\n  - ".join(problems))
    return calls


def _check(name: str, target: str | None, node: dict[str, Any]) -> list[str]:
    problems = []
    for dt in list(node.get("dtypes", [])) + ([node["dtype"]] if "dtype" in node else []):
        try:
            torch_dtype(dt)
        except ValueError as exc:
            problems.append(f"suite.benchmarks.{name}: {exc}")
    if target == "benchmarks.micro.matmul":
        try:
            micro.shape_grid(node.get("mode", "quick"), node.get("m_range", (1,)), node.get("n_range", (1,)), node.get("k_range", (1,)))
        except ValueError as exc:
            problems.append(f"suite.benchmarks.{name}: {exc}")
    if target in SUBMITTING:
        import aifsdk

        try:
            aifsdk.load_site(str(node.get("site", "slurm")))
        except aifsdk.AifsdkError as exc:
            problems.append(f"suite.benchmarks.{name}.site: {str(exc).splitlines()[-1].strip()}")
    if target == "benchmarks.domain.workloads":
        from benchmarks.workloads import WORKLOADS

        unknown = [n for n in node.get("names", []) if n not in WORKLOADS]
        if unknown:
            problems.append(f"suite.benchmarks.{name}.names: unknown {unknown}; allowed {', '.join(WORKLOADS)}. Fix: workload=<one of them>")
    return problems


def _submits(fn: Callable[..., Any]) -> bool:
    return f"{fn.__module__}.{fn.__name__}" in SUBMITTING


def count_steps(calls: list[tuple[str, Callable[..., Any], dict[str, Any]]], device: DeviceInfo, rounds: int = 1) -> int:
    """How many progress steps the suite will take (shapes, kernels, workloads, jobs; every round)."""
    total = 0
    for _, fn, node in calls:
        before = total
        if fn is micro.matmul:
            shapes = micro.shape_grid(node.get("mode", "quick"), node.get("m_range", (256, 1024, 256)), node.get("n_range", (1024,)),
                                      node.get("k_range", (1024,)))
            devices = device.count if node.get("devices") == "all" and device.kind in ("cuda", "rocm", "xpu") else 1
            total += len(shapes) * len(node.get("dtypes", ["fp32"])) * devices
        elif fn is micro.membw:
            total += len(node.get("kernels", ["copy", "triad"]))
        elif fn is micro.hostcopy:
            total += 2 if device.is_gpu else 1
        elif "nodes" in node and isinstance(node["nodes"], list):
            total += len(set(node["nodes"])) + (1 if node.get("validate_steps") else 0)
        elif "names" in node:
            total += len(node["names"])
        else:
            total += 1
        if not _submits(fn):
            total += (total - before) * (rounds - 1)
    return total


def run_suite(cfg: DictConfig, overrides: list[str], site_choice: str | None = None, *, progress_stream: Any = None,
              ctx_factory: Callable[..., Context] = Context) -> tuple[dict[str, Any], int]:
    """Run the composed suite; return the results document and the number of failed benchmarks."""
    import torch

    if cfg.threads is not None:
        if int(cfg.threads) < 1:
            raise ValueError(f"threads={cfg.threads}: allowed >= 1 or null. Fix: threads=2")
        torch.set_num_threads(int(cfg.threads))
    device = detect(str(cfg.device), int(cfg.device_index))
    calls = benchmark_calls(cfg, device, site_choice)
    timing_node = OmegaConf.to_container(cfg.timing, resolve=True)
    warm = cfg.suite.get("device_warmup_s")
    if warm is not None:
        timing_node["device_warmup_s"] = float(warm.get("gpu" if device.is_gpu else "cpu", 0))  # type: ignore[index]
    timing = TimingConfig(**timing_node)  # type: ignore[arg-type]
    rounds = int(cfg.get("rounds") or 1)
    if rounds < 1:
        raise ValueError(f"rounds={rounds}: allowed >= 1. Fix: rounds=3 (each local benchmark measured in 3 interleaved windows)")
    progress = Progress(count_steps(calls, device, rounds), **({"stream": progress_stream} if progress_stream else {}))
    ctx = ctx_factory(device, timing, telemetry_interval_s=float(cfg.telemetry_interval_s), progress=progress)
    prov = provenance(device.to_dict(), overrides, torch.get_num_threads())
    started = time.perf_counter()
    if timing.device_warmup_s > 0:
        progress.note(f"device warm-up: {timing.device_warmup_s:g} s of 4096^3 matmuls on {device.name}")
        x = torch.randn(4096, 4096, device=device.torch_device)
        ctx.timer.warm_device(lambda: torch.mm(x, x))
    per_round: list[list[Row]] = []
    failed = 0
    broken: set[str] = set()
    for index in range(rounds):
        rows: list[Row] = []
        for name, fn, kwargs in calls:
            if name in broken or (index > 0 and _submits(fn)):  # a job-submitting benchmark runs once
                continue
            try:
                rows += fn(ctx, **kwargs)
            except Exception as exc:  # noqa: BLE001 - recorded, the suite goes on
                failed += 1
                broken.add(name)
                progress.note(f"error: benchmark {name} failed: {exc!r}")
                rows.append(Row.skip(name, "error", f"failed: {exc!r}", traceback.format_exc()))
        per_round.append(rows)
    rows = merge_rounds(per_round)
    progress.close()
    config = OmegaConf.to_container(cfg, resolve=True)
    return new_document(rows, prov, config, time.perf_counter() - started), failed  # type: ignore[arg-type]
