"""The measurement context every benchmark callable receives, and the one way a row is made.

A benchmark is a callable ``fn(ctx, **params) -> list[Row]`` named by its config's ``_target_``.
It builds its inputs, then calls :meth:`Context.measure` for each case; that runs the timer under
background telemetry and returns a :class:`benchmarks.results.Row`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ._device import DeviceInfo, event_factory, flush_bytes, synchronizer
from ._reference import ReferenceTable
from ._stats import summarize
from ._telemetry import Monitor, Sampler, default_samplers
from ._timing import CacheFlusher, Timer, TimingConfig
from .results import Row


@dataclass
class Progress:
    """What runs and what is left, on stderr (one line per step; redrawn in place on a terminal)."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0

    def step(self, label: str) -> None:
        self.done += 1
        left = self.total - self.done
        width = 24
        filled = int(width * (self.done - 1) / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        text = f"[{bar}] {self.done}/{self.total} {label} ({left} left after this)"
        if self.stream.isatty():
            self.stream.write("\r\033[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(("\n" if self.stream.isatty() else "") + text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream.isatty():
            self.stream.write("\n")
        self.stream.flush()


def energy_of(telemetry: dict[str, Any]) -> tuple[float | None, str | None]:
    """(joules, basis) of a measurement window: the device's energy counter where it exists
    (NVML, amdsmi), else an ESTIMATE from the device's mean power over the window, else an
    ESTIMATE from its enforced power limit x its mean utilisation (an upper-end figure: a busy
    board draws at most its limit), each labelled with its basis; (None, None) when the device
    reports none of these (CPU)."""
    if telemetry.get("energy_j") is not None:
        sources = [s for s in telemetry.get("sources", []) if s != "cpu"]
        return telemetry["energy_j"], f"{'/'.join(sources) or 'device'} energy counter over the window"
    for source in telemetry.get("sources", []):
        power = (telemetry.get("fields") or {}).get(f"{source}.power_w")
        if power and telemetry.get("duration_s"):
            samples = sum(1 for r in telemetry.get("samples", []) if f"{source}.power_w" in r)
            joules = power["mean"] * telemetry["duration_s"]
            return joules, (f"ESTIMATE: mean {source} power {power['mean']:.0f} W ({samples} samples every "
                            f"{telemetry.get('interval_s', 0):g} s) x {telemetry['duration_s']:.2f} s; no energy counter on this device")
    for source in telemetry.get("sources", []):
        fields = telemetry.get("fields") or {}
        limit, util = fields.get(f"{source}.power_limit_w"), fields.get(f"{source}.gpu_util_pct")
        if limit and util and telemetry.get("duration_s"):
            joules = limit["mean"] * util["mean"] / 100 * telemetry["duration_s"]
            return joules, (f"ESTIMATE: {source} power limit {limit['mean']:.0f} W x mean utilisation {util['mean']:.0f}% x "
                            f"{telemetry['duration_s']:.2f} s; no energy counter or power reading on this device")
    return None, None


class Context:
    """Device, timer, telemetry and reference figures for one suite run."""

    def __init__(self, device: DeviceInfo, timing: TimingConfig, *, references: ReferenceTable | None = None,
                 samplers: Callable[[], list[Sampler]] | None = None, telemetry_interval_s: float = 0.1,
                 progress: Progress | None = None, timer: Timer | None = None, torch_module: Any = None) -> None:
        if torch_module is None:
            import torch as torch_module
        self.torch = torch_module
        self.device = device
        self.timing = timing
        self.references = references or ReferenceTable()
        self.make_samplers = samplers or (lambda: default_samplers(device.kind))
        self.telemetry_interval_s = telemetry_interval_s
        self.progress = progress
        self.sync = synchronizer(device, torch_module)
        if timer is None:
            flush = CacheFlusher(flush_bytes(device), device.torch_device, torch_module) if timing.flush_cache else None
            timer = Timer(timing, sync=self.sync, events=event_factory(device, torch_module), flush=flush)
        self.timer = timer

    def step(self, label: str) -> None:
        if self.progress is not None:
            self.progress.step(label)

    def measure(self, benchmark: str, case: str, fn: Callable[[], Any], *, work: float, unit: str, metric: str,
                params: dict[str, Any] | None = None, setup: Callable[[], Any] | None = None,
                reference_key: str | None = None, items_per_call: float | None = None, timer: Timer | None = None,
                extra: dict[str, Any] | None = None) -> Row:
        """Time ``fn`` and make a result row; each sample's value is ``work / seconds`` in ``unit``.

        ``items_per_call`` (samples, tokens, bytes) turns the window's energy into energy per item.
        """
        self.step(f"{benchmark} {case}")
        with Monitor(self.make_samplers(), self.telemetry_interval_s) as monitor:
            times = (timer or self.timer).measure(fn, setup=setup)
        values = [work / t if t > 0 else float("inf") for t in times]
        stats = summarize(values)
        reference = self.references.lookup(self.device.name, reference_key) if reference_key else None
        telemetry = monitor.summary()
        energy, basis = energy_of(telemetry)
        per_item = None
        if energy is not None and items_per_call:
            per_item = energy / (items_per_call * (len(times) + max(self.timing.warmup_iters, 1)))
        if stats.warning and self.progress is not None:
            self.progress.note(f"warning: {benchmark} {case}: {stats.warning}")
        return Row(benchmark, case, values=values, times_s=times, unit=unit, metric=metric, params=params or {}, work_per_call=work,
                   reference=reference.to_dict() if reference else None, telemetry=telemetry, energy_per_item_j=per_item,
                   energy_basis=basis if per_item is not None else None, device=self.device.name, extra=extra or {})
