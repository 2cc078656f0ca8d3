"""Telemetry sampled in a background thread during every measurement.

Samplers, each reading one source and returning a flat dict of numbers:

- :class:`NvmlSampler` (NVIDIA, pynvml): power (W), total energy counter (J, Volta+),
  GPU/memory utilisation (%), memory used (bytes), SM and memory clocks (MHz), temperature (C),
  clock throttle reasons (bit mask), the enforced power limit (W);
- :class:`AmdSmiSampler` (AMD, amdsmi when importable): power, energy counter, activity, VRAM,
  clock, temperature; the energy counter is checked against power x time as Zeus does and
  dropped when implausible (counters that stall or run backwards are known amdsmi problems);
- :class:`CpuSampler` (everywhere): CPU utilisation of the machine from /proc/stat deltas (or of
  this process from os.times where /proc is missing), and this process's resident memory.

:class:`Monitor` runs the samplers every ``interval_s`` in a daemon thread; its summary holds the
samples, mean and max of each field and, when a cumulative energy counter exists, the energy
spent during the window (counter delta read in the caller's thread, after the device sync).
The NVML and amdsmi libraries come in through the ``library`` constructor argument (a seam):
the tests pass fake library objects since neither library can run on this CPU-only machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol


class Sampler(Protocol):
    source: str

    def read(self) -> dict[str, float]: ...

    def energy_j(self) -> float | None: ...


class CpuSampler:
    """Machine CPU utilisation (%) between two reads, from /proc/stat; process RSS (bytes)."""

    source = "cpu"

    def __init__(self, proc_stat: Path = Path("/proc/stat"), clock: Callable[[], float] = time.monotonic) -> None:
        self.proc_stat, self.clock = proc_stat, clock
        self._last = self._counters()

    def _counters(self) -> tuple[float, float]:
        """(busy, total) jiffies from /proc/stat, or (process CPU s, wall s) from os.times."""
        try:
            fields = self.proc_stat.read_text().splitlines()[0].split()
            values = [float(v) for v in fields[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
            return sum(values) - idle, sum(values)
        except (OSError, IndexError, ValueError):
            t = os.times()
            return (t.user + t.system) / (os.cpu_count() or 1), self.clock()

    def read(self) -> dict[str, float]:
        busy, total = self._counters()
        last_busy, last_total = self._last
        self._last = (busy, total)
        out = {"rss_bytes": float(_rss_bytes())}
        if total > last_total:
            out["cpu_util_pct"] = 100.0 * (busy - last_busy) / (total - last_total)
        return out

    def energy_j(self) -> float | None:
        return None


def _rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _try(fn: Callable[[], Any]) -> float | None:
    """The number ``fn`` reads, or None when the device does not support that field ("N/A", error)."""
    try:
        value = fn()
        return None if value is None or value == "N/A" else float(value)
    except Exception:  # noqa: BLE001 - an unsupported field is left out of the sample
        return None


class NvmlSampler:
    """One NVIDIA GPU through NVML. ``library`` is the pynvml module (or a fake with its names)."""

    source = "nvml"

    def __init__(self, index: int = 0, library: Any = None) -> None:
        if library is None:
            import pynvml as library
        self.nvml = library
        self.nvml.nvmlInit()
        self.handle = self.nvml.nvmlDeviceGetHandleByIndex(index)

    def read(self) -> dict[str, float]:
        n, h = self.nvml, self.handle
        fields: dict[str, float | None] = {
            "power_w": _try(lambda: n.nvmlDeviceGetPowerUsage(h) / 1e3),
            "gpu_util_pct": _try(lambda: n.nvmlDeviceGetUtilizationRates(h).gpu),
            "mem_util_pct": _try(lambda: n.nvmlDeviceGetUtilizationRates(h).memory),
            "mem_used_bytes": _try(lambda: n.nvmlDeviceGetMemoryInfo(h).used),
            "sm_clock_mhz": _try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            "mem_clock_mhz": _try(lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            "temp_c": _try(lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            "throttle_reasons": _try(lambda: _throttle_call(n)(h)),  # bit mask of nvmlClocksEventReason*
            "power_limit_w": _try(lambda: n.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3),
            "energy_j": self.energy_j(),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def energy_j(self) -> float | None:
        """Total energy since the driver loaded (NVML counts mJ; Volta and newer)."""
        value = _try(lambda: self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        return None if value is None else value / 1e3


def _throttle_call(nvml: Any) -> Callable[[Any], int]:
    """NVML's current clock-event (throttle) reasons call, by its new name or its older one."""
    return getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons


class AmdSmiSampler:
    """One AMD GPU through amdsmi. ``library`` is the amdsmi module (or a fake with its names)."""

    source = "amdsmi"

    def __init__(self, index: int = 0, library: Any = None) -> None:
        if library is None:
            import amdsmi as library  # type: ignore[import-not-found]
        self.smi = library
        self.smi.amdsmi_init()
        self.handle = self.smi.amdsmi_get_processor_handles()[index]

    def read(self) -> dict[str, float]:
        s, h = self.smi, self.handle

        def power() -> Any:
            info = s.amdsmi_get_power_info(h)
            return next((info[k] for k in ("current_socket_power", "average_socket_power") if info.get(k) not in (None, "N/A")), None)

        fields: dict[str, float | None] = {
            "power_w": _try(power),
            "gpu_util_pct": _try(lambda: s.amdsmi_get_gpu_activity(h)["gfx_activity"]),
            "mem_util_pct": _try(lambda: s.amdsmi_get_gpu_activity(h)["umc_activity"]),
            "mem_used_bytes": _try(lambda: s.amdsmi_get_gpu_vram_usage(h)["vram_used"] * 2**20),
            "sm_clock_mhz": _try(lambda: s.amdsmi_get_clock_info(h, s.AmdSmiClkType.GFX)["clk"]),
            "temp_c": _try(lambda: s.amdsmi_get_temp_metric(h, s.AmdSmiTemperatureType.EDGE, s.AmdSmiTemperatureMetric.CURRENT)),
            "energy_j": self.energy_j(),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def energy_j(self) -> float | None:
        """energy_accumulator x counter_resolution (uJ) in joules."""
        def joules() -> float:
            e = self.smi.amdsmi_get_energy_count(self.handle)
            acc = e.get("energy_accumulator", e.get("power"))
            return float(acc) * float(e["counter_resolution"]) / 1e6

        return _try(joules)


def default_samplers(device_kind: str, index: int = 0) -> list[Sampler]:
    """CPU always; NVML on CUDA and amdsmi on ROCm when their library imports."""
    samplers: list[Sampler] = [CpuSampler()]
    try:
        if device_kind == "cuda":
            samplers.append(NvmlSampler(index))
        elif device_kind == "rocm":
            samplers.append(AmdSmiSampler(index))
    except Exception:  # noqa: BLE001 - library missing or no permission: CPU telemetry only, said in the summary
        pass
    return samplers


class Monitor:
    """Background sampling of ``samplers`` every ``interval_s`` while the ``with`` block runs."""

    def __init__(self, samplers: Sequence[Sampler], interval_s: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.samplers, self.interval_s, self.clock = list(samplers), interval_s, clock
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._energy0: dict[str, float | None] = {}
        self._t0 = 0.0
        self.duration_s = 0.0
        self._energy: dict[str, float | None] = {}

    def _take(self) -> None:
        row: dict[str, Any] = {"t": self.clock() - self._t0}
        for sampler in self.samplers:
            try:
                row.update({f"{sampler.source}.{k}": v for k, v in sampler.read().items()})
            except Exception as exc:  # noqa: BLE001 - one failing read is recorded, not fatal
                row[f"{sampler.source}.error"] = str(exc)
        self.samples.append(row)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def __enter__(self) -> Monitor:
        self._t0 = self.clock()
        self._energy0 = {s.source: s.energy_j() for s in self.samplers}
        self._take()
        self._thread = threading.Thread(target=self._loop, name="bench-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._take()
        self.duration_s = self.clock() - self._t0
        end = {s.source: s.energy_j() for s in self.samplers}
        self._energy = {k: (end[k] - v) if v is not None and end.get(k) is not None else None for k, v in self._energy0.items()}

    def energy_j(self) -> float | None:
        """Energy over the window from the counters (summed over sources), None without one.
        A delta that is negative, or off by 10x from mean power x time, is dropped (Zeus's check)."""
        total, found = 0.0, False
        for source, delta in self._energy.items():
            if delta is None:
                continue
            powers = [r[f"{source}.power_w"] for r in self.samples if f"{source}.power_w" in r]
            expected = (sum(powers) / len(powers)) * self.duration_s if powers else None
            if delta < 0 or (expected and not 0.1 < delta / expected < 10):
                continue
            total, found = total + delta, True
        return total if found else None

    def summary(self) -> dict[str, Any]:
        """Mean and max of each field, the energy of the window, and the raw samples."""
        fields: dict[str, list[float]] = {}
        for row in self.samples:
            for key, value in row.items():
                if key != "t" and isinstance(value, (int, float)):
                    fields.setdefault(key, []).append(float(value))
        stats = {k: {"mean": sum(v) / len(v), "max": max(v)} for k, v in fields.items()}
        return {"sources": [s.source for s in self.samplers], "interval_s": self.interval_s, "duration_s": self.duration_s,
                "energy_j": self.energy_j(), "fields": stats, "samples": self.samples}
