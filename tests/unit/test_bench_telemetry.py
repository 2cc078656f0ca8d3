"""Telemetry samplers and the background monitor.

NVML and amdsmi cannot run on this CPU-only machine: their samplers are tested with fake library
objects (FakeNvml, FakeAmdSmi) passed through the samplers' ``library`` argument, implementing
only the calls the samplers make, with the units the real libraries use (mW, mJ, uJ, MB). The
CPU sampler reads the real /proc/stat and is tested for real under real load.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks._telemetry import AmdSmiSampler, CpuSampler, Monitor, NvmlSampler


class FakeNvml:
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, watts: float = 300.0) -> None:
        self.watts, self.t0, self.inited = watts, time.monotonic(), False

    def nvmlInit(self) -> None:
        self.inited = True

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        return int(self.watts * 1000)  # mW

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:
        return int((time.monotonic() - self.t0) * self.watts * 1000)  # mJ since "driver load"

    def nvmlDeviceGetUtilizationRates(self, h: str) -> SimpleNamespace:
        return SimpleNamespace(gpu=97, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: str) -> SimpleNamespace:
        return SimpleNamespace(used=12 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetClockInfo(self, h: str, which: int) -> int:
        return {1: 1755, 2: 2619}[which]

    def nvmlDeviceGetTemperature(self, h: str, sensor: int) -> int:
        return 64

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h: str) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")  # a field the device lacks is left out


def test_nvml_sampler_reads_every_field_in_si_units() -> None:
    lib = FakeNvml()
    s = NvmlSampler(0, library=lib)
    row = s.read()
    assert lib.inited
    assert row["power_w"] == 300.0 and row["gpu_util_pct"] == 97 and row["mem_util_pct"] == 40
    assert row["mem_used_bytes"] == 12 * 2**30 and row["sm_clock_mhz"] == 1755 and row["mem_clock_mhz"] == 2619
    assert row["temp_c"] == 64 and "throttle_reasons" not in row
    assert row["energy_j"] >= 0


def test_monitor_energy_from_the_nvml_counter() -> None:
    lib = FakeNvml(watts=250.0)
    with Monitor([NvmlSampler(0, library=lib)], interval_s=0.02) as mon:
        time.sleep(0.3)
    summary = mon.summary()
    assert len(summary["samples"]) >= 5  # sampled in the background while the block ran
    assert summary["fields"]["nvml.power_w"]["mean"] == 250.0
    assert summary["energy_j"] == pytest.approx(250.0 * summary["duration_s"], rel=0.15)


class FakeAmdSmi:
    AmdSmiClkType = SimpleNamespace(GFX="gfx")
    AmdSmiTemperatureType = SimpleNamespace(EDGE="edge")
    AmdSmiTemperatureMetric = SimpleNamespace(CURRENT="current")

    def __init__(self, backwards: bool = False) -> None:
        self.acc, self.backwards = 1_000_000, backwards

    def amdsmi_init(self) -> None:
        pass

    def amdsmi_get_processor_handles(self) -> list[str]:
        return ["gcd0", "gcd1"]

    def amdsmi_get_power_info(self, h: str) -> dict[str, object]:
        return {"current_socket_power": "N/A", "average_socket_power": 500}

    def amdsmi_get_energy_count(self, h: str) -> dict[str, float]:
        self.acc += -1000 if self.backwards else 1000  # counters that run backwards exist (amdsmi#115)
        return {"energy_accumulator": self.acc, "counter_resolution": 15.3}

    def amdsmi_get_gpu_activity(self, h: str) -> dict[str, int]:
        return {"gfx_activity": 88, "umc_activity": 30}

    def amdsmi_get_gpu_vram_usage(self, h: str) -> dict[str, int]:
        return {"vram_used": 1024, "vram_total": 65536}  # MB

    def amdsmi_get_clock_info(self, h: str, kind: str) -> dict[str, int]:
        return {"clk": 1700}

    def amdsmi_get_temp_metric(self, h: str, sensor: str, metric: str) -> int:
        return 55


def test_amdsmi_sampler_fields_and_energy_units() -> None:
    s = AmdSmiSampler(1, library=FakeAmdSmi())
    assert s.handle == "gcd1"
    row = s.read()
    assert row["power_w"] == 500.0 and row["gpu_util_pct"] == 88 and row["mem_used_bytes"] == 1024 * 2**20
    assert row["sm_clock_mhz"] == 1700 and row["temp_c"] == 55
    assert row["energy_j"] == pytest.approx((1_000_000 + 1000) * 15.3 / 1e6)  # accumulator x 15.3 uJ, first read


def test_implausible_amd_energy_counter_is_dropped() -> None:
    with Monitor([AmdSmiSampler(0, library=FakeAmdSmi(backwards=True))], interval_s=0.02) as mon:
        time.sleep(0.1)
    assert mon.energy_j() is None  # a counter going backwards gives no energy, not a negative one
    with Monitor([AmdSmiSampler(0, library=FakeAmdSmi())], interval_s=0.02) as mon:
        time.sleep(0.1)
    # 15.3 uJ steps against 500 W x 0.1 s: off by far more than 10x, so not trusted (Zeus's check)
    assert mon.energy_j() is None


def test_cpu_sampler_sees_real_load() -> None:
    s = CpuSampler()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        sum(i * i for i in range(1000))
    row = s.read()
    assert 0.0 < row["cpu_util_pct"] <= 100.0
    assert row["rss_bytes"] > 10 * 2**20


def test_cpu_sampler_falls_back_to_os_times(tmp_path: Path) -> None:
    s = CpuSampler(proc_stat=tmp_path / "missing")
    time.sleep(0.05)
    row = s.read()
    assert "cpu_util_pct" in row and row["cpu_util_pct"] >= 0


def test_monitor_records_a_failing_sampler_without_stopping() -> None:
    class Broken:
        source = "broken"

        def read(self) -> dict[str, float]:
            raise OSError("sensor gone")

        def energy_j(self) -> None:
            return None

    with Monitor([Broken(), CpuSampler()], interval_s=0.01) as mon:
        time.sleep(0.05)
    summary = mon.summary()
    assert summary["sources"] == ["broken", "cpu"] and summary["energy_j"] is None
    assert all(r["broken.error"] == "sensor gone" for r in summary["samples"])
    assert "cpu.rss_bytes" in summary["fields"]


class FakeNvmlNoCounter(FakeNvml):
    """A GPU older than Volta: power readings but no energy counter."""

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")


class FakeNvmlLimitOnly(FakeNvmlNoCounter):
    """A board that reports utilisation and its power limit (mW), but neither power nor energy."""

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: str) -> int:
        return 700_000


def test_energy_from_the_counter_else_an_estimate_labelled_with_its_basis() -> None:
    from benchmarks._measure import energy_of

    with Monitor([NvmlSampler(0, library=FakeNvml(watts=250.0)), CpuSampler()], interval_s=0.02) as mon:
        time.sleep(0.2)
    joules, basis = energy_of(mon.summary())
    assert joules == pytest.approx(250.0 * mon.duration_s, rel=0.15) and basis == "nvml energy counter over the window"
    with Monitor([NvmlSampler(0, library=FakeNvmlNoCounter(watts=400.0)), CpuSampler()], interval_s=0.02) as mon:
        time.sleep(0.2)
    joules, basis = energy_of(mon.summary())
    assert joules == pytest.approx(400.0 * mon.duration_s)
    assert basis is not None and basis.startswith("ESTIMATE: mean nvml power 400 W") and "no energy counter" in basis
    with Monitor([NvmlSampler(0, library=FakeNvmlLimitOnly()), CpuSampler()], interval_s=0.02) as mon:
        time.sleep(0.2)
    joules, basis = energy_of(mon.summary())
    assert joules == pytest.approx(700.0 * 0.97 * mon.duration_s)
    assert basis is not None and basis.startswith("ESTIMATE: nvml power limit 700 W x mean utilisation 97%")
    with Monitor([CpuSampler()], interval_s=0.02) as mon:
        time.sleep(0.05)
    assert energy_of(mon.summary()) == (None, None)  # no device power at all: nothing, not a guess
