"""Run a composed suite: detect the device, validate, warm up, call each benchmark, collect rows.

Each entry of ``suite.benchmarks`` names a :class:`benchmarks.protocol.Benchmark` with
``_target_`` (torchtune's ``_component_``); the other keys are its keyword arguments, with
``by_device.gpu`` or ``by_device.cpu`` merged over them for the device class at hand. Each
benchmark completes its arguments from the composed config and checks them; a benchmark that
submits jobs gets the ``site=`` choice when one was made. Everything is validated before the
first measurement; a benchmark that fails while running is recorded as a row with its error and
the run goes on, so nothing measured is lost.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ._device import DeviceInfo, detect, torch_dtype
from ._measure import Context, Progress
from ._rounds import merge_rounds
from ._timing import TimingConfig
from .protocol import Benchmark, load_benchmark
from .results import Row, new_document, provenance

Call = tuple[str, Benchmark, dict[str, Any]]


def benchmark_calls(cfg: DictConfig, device: DeviceInfo, site_choice: str | None = None) -> list[Call]:
    """(name, benchmark, kwargs) for every benchmark of the suite, checked; raises ValueError
    listing every problem before anything runs."""
    calls, problems = [], []
    entries = OmegaConf.to_container(cfg.suite.benchmarks, resolve=True) or {}
    config = OmegaConf.to_container(cfg, resolve=True)
    device_class = "gpu" if device.is_gpu else "cpu"
    for name, node in entries.items():  # type: ignore[union-attr]
        node = dict(node)
        target = node.pop("_target_", None)
        by_device = node.pop("by_device", {}) or {}
        node.update(by_device.get(device_class, {}) or {})
        try:
            bench = load_benchmark(str(target))
        except Exception as exc:  # noqa: BLE001 - reported with the fix below
            problems.append(f"suite.benchmarks.{name}._target_={target!r}: cannot import ({exc}). Fix: name a Benchmark (benchmarks.protocol) or a function by its module path")
            continue
        node = bench.configure(node, config)  # type: ignore[arg-type]
        if bench.submits_jobs and site_choice:
            node["site"] = site_choice
        problems += [f"suite.benchmarks.{name}{p}" for p in _common_problems(bench, node)]
        problems += [f"suite.benchmarks.{name}: {p}" for p in bench.check(node)]
        calls.append((name, bench, node))
    if problems:
        raise ValueError(f"{len(problems)} problem(s) with the benchmark config (nothing was run):\n  - " + "\n  - ".join(problems))
    return calls


def _common_problems(bench: Benchmark, node: dict[str, Any]) -> list[str]:
    """The arguments every benchmark may take: dtype(s), and the site of one that submits jobs."""
    problems = []
    for dt in list(node.get("dtypes", [])) + ([node["dtype"]] if "dtype" in node else []):
        try:
            torch_dtype(dt)
        except ValueError as exc:
            problems.append(f": {exc}")
    if bench.submits_jobs:
        import aifsdk

        try:
            aifsdk.load_site(str(node.get("site", "slurm")))
        except aifsdk.AifsdkError as exc:
            problems.append(f".site: {str(exc).splitlines()[-1].strip()}")
    return problems


def count_steps(calls: list[Call], device: DeviceInfo, rounds: int = 1) -> int:
    """How many progress steps the suite will take (every round; job-submitting benchmarks once)."""
    return sum(bench.steps(node, device) * (1 if bench.submits_jobs else rounds) for _, bench, node in calls)


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
        progress.note(f"device warm-up: {timing.device_warmup_s:g} s of 4096x4096 matrix products on {device.name}")
        x = torch.randn(4096, 4096, device=device.torch_device)
        ctx.timer.warm_device(lambda: torch.mm(x, x))
    per_round: list[list[Row]] = []
    failed = 0
    broken: set[str] = set()
    for index in range(rounds):
        rows: list[Row] = []
        for name, bench, kwargs in calls:
            if name in broken or (index > 0 and bench.submits_jobs):  # a job-submitting benchmark runs once
                continue
            try:
                rows += bench.run(ctx, **kwargs)
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
