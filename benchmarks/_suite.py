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

import os
import time
import traceback
from collections.abc import Callable
from pathlib import Path
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


def check_options(cfg: DictConfig) -> None:
    """The suite's own options, checked before any benchmark runs: aifsdk.RequestError naming each
    bad override (as written on the command line) and its fix."""
    import math

    from aifsdk import Problem, RequestError

    problems = []

    def whole(key: str, value: Any, fix: str, allow_none: bool = False) -> None:
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(Problem(key, value, "a whole number >= 1" + (" or null" if allow_none else ""), fix))

    whole("rounds", cfg.get("rounds", 1), "rounds=3 (each local benchmark measured in 3 interleaved windows), or rounds=1")
    whole("threads", cfg.get("threads"), "threads=2, or threads=null for torch's default", allow_none=True)
    interval = cfg.get("telemetry_interval_s", 0.1)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not math.isfinite(interval) or interval < 0.01:
        problems.append(Problem("telemetry_interval_s", interval, "a number of seconds >= 0.01 (the sampler reads the "
                                "device that often; shorter spins a core)", "telemetry_interval_s=0.1"))
    results_dir = cfg.get("results_dir")
    if not isinstance(results_dir, str) or not results_dir.strip():
        problems.append(Problem("results_dir", results_dir, "a folder to write the results under", "results_dir=results"))
    else:
        folder = Path(results_dir).expanduser()
        made = [p for p in (folder, *folder.parents) if not p.exists()]
        try:  # made and written to once, then removed: a folder that cannot hold the results fails now, not after the suite
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
            for path in made:
                path.rmdir()
        except OSError as exc:
            problems.append(Problem("results_dir", results_dir, "a folder this user can create and write to",
                                    f"{exc.strerror or exc}; pick another, e.g. results_dir=$HOME/aifsdk-results"))
    if problems:
        raise RequestError(problems)


def run_suite(cfg: DictConfig, overrides: list[str], site_choice: str | None = None, *, progress_stream: Any = None,
              ctx_factory: Callable[..., Context] = Context) -> tuple[dict[str, Any], int]:
    """Run the composed suite; return the results document and the number of failed benchmarks."""
    check_options(cfg)  # before anything runs: a bad override must not cost a whole suite
    import torch

    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    device = detect(str(cfg.device), int(cfg.device_index))
    calls = benchmark_calls(cfg, device, site_choice)
    timing_node = OmegaConf.to_container(cfg.timing, resolve=True)
    warm = cfg.suite.get("device_warmup_s")
    if warm is not None:
        timing_node["device_warmup_s"] = float(warm.get("gpu" if device.is_gpu else "cpu", 0))  # type: ignore[index]
    timing = TimingConfig(**timing_node)  # type: ignore[arg-type]
    rounds = int(cfg.get("rounds", 1))
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
