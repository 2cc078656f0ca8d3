"""Timing done right: warm-up, cache control, device-side timing, many samples.

One :class:`Timer` per device. For each call of :meth:`Timer.measure`:

1. library warm-up: ``warmup_iters`` untimed calls (lazy init, BLAS heuristics, allocator), one
   sync; their host time estimates the cost of one call;
2. the number of samples is fixed from that estimate: enough to fill ``min_time_s``, between
   ``min_samples`` and ``max_samples`` (Triton do_bench's rule, so that event timing needs one
   sync only), and no more than fit in ``max_time_s`` when that is set (but at least 3), so that
   a slow training step cannot stretch a quick suite;
3. before every timed call: the cache flush (a buffer twice the last-level cache, zeroed) and the
   caller's ``setup`` (e.g. re-randomise the output), both outside the timed region;
4. device events where they exist (CUDA, ROCm, XPU): all start/end events recorded, one
   synchronise, then ``elapsed_time``; else synchronise before and after each call with the
   host clock (MPS, CPU).

Device warm-up (thermal and power steady state, mamf-finder's 30 s) is :meth:`Timer.warm_device`,
run once per suite. Clock, synchronisation, events and flush are constructor seams, so the loop
is tested with a fake clock and fake events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

METHOD_VERSION = 1  # bump when anything here changes what a sample means


@dataclass(frozen=True, kw_only=True)
class TimingConfig:
    """How many samples to take and how to prepare each one (the Hydra ``timing`` node)."""

    warmup_iters: int = 3        # untimed calls before sampling (library warm-up)
    min_samples: int = 10
    max_samples: int = 200
    min_time_s: float = 0.5      # aim for this much timed work per measurement
    max_time_s: float | None = None  # cap on timed work: fewer samples (never below 3) for slow calls
    device_warmup_s: float = 0.0  # whole-device warm-up once per suite (mamf-finder: 30 s on GPUs)
    flush_cache: bool = True

    def __post_init__(self) -> None:
        problems = []
        if self.warmup_iters < 0:
            problems.append(f"warmup_iters={self.warmup_iters}: allowed >= 0")
        if self.min_samples < 1 or self.max_samples < self.min_samples:
            problems.append(f"min_samples={self.min_samples}, max_samples={self.max_samples}: allowed 1 <= min_samples <= max_samples")
        if self.max_time_s is not None and self.max_time_s <= 0:
            problems.append(f"max_time_s={self.max_time_s}: allowed > 0 or null")
        if self.min_time_s < 0 or self.device_warmup_s < 0:
            problems.append(f"min_time_s={self.min_time_s}, device_warmup_s={self.device_warmup_s}: allowed >= 0")
        if problems:
            raise ValueError("timing: " + "; ".join(problems) + ". Fix: correct the timing.* overrides")


class CacheFlusher:
    """Zeroes a buffer larger than the last-level cache, evicting what the last call left there."""

    def __init__(self, nbytes: int, device: str, torch_module: Any = None) -> None:
        if torch_module is None:
            import torch as torch_module
        self.nbytes = nbytes
        self.buffer = torch_module.empty(max(nbytes // 4, 1), dtype=torch_module.int32, device=device)

    def __call__(self) -> None:
        self.buffer.zero_()


class Timer:
    """Takes timed samples of a callable on one device; see the module docstring."""

    def __init__(self, config: TimingConfig | None = None, *, sync: Callable[[], None] = lambda: None,
                 events: Callable[[], Any] | None = None, flush: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config or TimingConfig()
        self.sync, self.events, self.clock, self.sleep = sync, events, clock, sleep
        self.flush = flush if self.config.flush_cache else None

    def sample_count(self, per_call_s: float) -> int:
        """Samples to take for calls of ``per_call_s`` seconds each."""
        cfg = self.config
        if per_call_s <= 0:
            return cfg.max_samples
        wanted = int(cfg.min_time_s / per_call_s) + 1
        n = max(cfg.min_samples, min(cfg.max_samples, wanted))
        if cfg.max_time_s is not None:
            n = min(n, max(3, int(cfg.max_time_s / per_call_s)))
        return n

    def estimate(self, fn: Callable[[], Any]) -> float:
        """Run the warm-up calls; return the host time per call (at least one call is made)."""
        n = max(self.config.warmup_iters, 1)
        self.sync()
        start = self.clock()
        for _ in range(n):
            fn()
        self.sync()
        return (self.clock() - start) / n

    def measure(self, fn: Callable[[], Any], setup: Callable[[], Any] | None = None, samples: int | None = None) -> list[float]:
        """Seconds per call of ``fn``, one value per sample (see the module docstring)."""
        per_call = self.estimate(fn)
        n = samples or self.sample_count(per_call)
        if self.events is not None:
            return self._with_events(fn, setup, n)
        out: list[float] = []
        for _ in range(n):
            self._prepare(setup)
            self.sync()
            start = self.clock()
            fn()
            self.sync()
            out.append(self.clock() - start)
        return out

    def _prepare(self, setup: Callable[[], Any] | None) -> None:
        if self.flush is not None:
            self.flush()
        if setup is not None:
            setup()

    def _with_events(self, fn: Callable[[], Any], setup: Callable[[], Any] | None, n: int) -> list[float]:
        assert self.events is not None
        pairs = [(self.events(), self.events()) for _ in range(n)]
        for start, end in pairs:
            self._prepare(setup)
            start.record()
            fn()
            end.record()
        self.sync()
        return [start.elapsed_time(end) / 1e3 for start, end in pairs]

    def warm_device(self, fn: Callable[[], Any], seconds: float | None = None) -> int:
        """Call ``fn`` repeatedly for ``seconds`` (default ``device_warmup_s``) to reach thermal and
        clock steady state; return how many calls were made."""
        budget = self.config.device_warmup_s if seconds is None else seconds
        calls = 0
        start = self.clock()
        while self.clock() - start < budget:
            fn()
            calls += 1
            if calls % 8 == 0:
                self.sync()
        self.sync()
        return calls
