"""The one-shot GPU check, run here through its seams.

No GPU exists on this machine. The CUDA device is a FAKE: a torch module whose ``cuda`` namespace
answers like one NVIDIA H200 (name, properties, capability 9.0, synchronize, timing events on the
host clock, peak-memory counters) and whose everything else is the real torch, with the device's
tensors placed in host memory (``torch_device="cpu"``); NVML is a fake library with the real
units (mW, mJ) passed through the sampler's ``library`` seam. Everything else is real: the
matmul search (fp8 through torch._scaled_mm), BabelStream kernels, host copies, a workload's
training step, aifsdk.measure, and two real subprocesses (aifsdk.distributed and the quick suite),
which find no CUDA and so must be named as failed paths.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import gpu_check
from benchmarks._device import detect

torch = pytest.importorskip("torch")


class HostEvent:
    """A CUDA event stand-in: records the host clock (the fake device runs synchronously)."""

    def __init__(self, enable_timing: bool = True) -> None:
        self.t = 0.0

    def record(self) -> None:
        self.t = time.perf_counter()

    def elapsed_time(self, end: HostEvent) -> float:
        return (end.t - self.t) * 1e3


class FakeCuda:
    def __init__(self) -> None:
        self.peak = 0
        self.synced = 0
        self.nccl = SimpleNamespace(version=lambda: (2, 21, 5))
        self.matmul = torch.backends.cuda.matmul

    def __getattr__(self, name: str) -> Any:  # torch's own internals (types, helpers) stay the real ones
        return getattr(torch.cuda, name)

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def device_count(self) -> int:
        return 1

    def get_device_name(self, index: int = 0) -> str:
        return "NVIDIA H200"

    def get_device_properties(self, index: int = 0) -> Any:
        return SimpleNamespace(total_memory=141 * 10**9, L2_cache_size=60 * 2**20, major=9, minor=0)

    def get_device_capability(self, index: int = 0) -> tuple[int, int]:
        return 9, 0

    def synchronize(self, device: Any = None) -> None:
        self.synced += 1

    def Event(self, enable_timing: bool = True) -> HostEvent:  # noqa: N802 - torch's name
        return HostEvent(enable_timing)

    def device(self, device: Any) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def reset_peak_memory_stats(self, device: Any = None) -> None:
        self.peak = 0

    def max_memory_allocated(self, device: Any = None) -> int:
        self.peak += 3 * 2**20
        return self.peak


class FakeCudaTorch:
    """The real torch, except ``cuda`` and ``version`` (see the module docstring)."""

    def __init__(self) -> None:
        self.cuda = FakeCuda()
        self.version = SimpleNamespace(cuda="12.8", hip=None)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


class FakeNvml:
    """NVML's calls with its units: power in mW, the energy counter in mJ since driver load."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, watts: float = 600.0) -> None:
        self.watts, self.t0 = watts, time.monotonic()

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        pass

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:  # noqa: N802
        return f"gpu{i}"

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:  # noqa: N802
        return int(self.watts * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:  # noqa: N802
        return int((time.monotonic() - self.t0) * self.watts * 1000)

    def nvmlDeviceGetUtilizationRates(self, h: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=99, memory=60)

    def nvmlDeviceGetMemoryInfo(self, h: str) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(used=40 * 2**30, total=141 * 10**9)

    def nvmlDeviceGetClockInfo(self, h: str, which: int) -> int:  # noqa: N802
        return {1: 1980, 2: 3201}[which]

    def nvmlDeviceGetTemperature(self, h: str, sensor: int) -> int:  # noqa: N802
        return 71

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: str) -> int:  # noqa: N802
        return 0x4  # SwPowerCap: the board is at its power limit


def test_the_check_through_a_fake_cuda_device(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCudaTorch()
    info = detect("cuda", torch_module=fake)  # detection of the fake H200 through the torch seam
    assert (info.kind, info.name, info.count, info.torch_device) == ("cuda", "NVIDIA H200", 1, "cuda:0")
    # aifsdk.measure finds the torch in use through sys.modules: there it finds the fake
    monkeypatch.setattr("aifsdk._measure.sys", SimpleNamespace(modules={"torch": fake}))
    code = gpu_check.main(["--sizes", "tiny", "--results-dir", str(tmp_path), "--workloads", "sar",
                           "--suite-override", "timing.min_samples=1"],
                          torch_module=fake, nvml=FakeNvml(), info=dataclasses.replace(info, torch_device="cpu"))
    out, err = capsys.readouterr()
    assert code == 1
    # the two real subprocesses see this machine's real torch: no CUDA, so they must fail, by name
    assert err.startswith("FAILED: distributed (CheckFailed: expected backend nccl on cuda, got gloo); suite (CheckFailed: exit 1")
    assert "device='cuda': not present here" in err
    check = json.loads(next(tmp_path.glob("gpu-check-*/check.json")).read_text())
    assert check["failed"] == ["distributed", "suite"]
    paths = check["paths"]
    assert {k: paths[k]["status"] for k in ("detect", "matmul", "memory", "telemetry", "workloads", "measure")} == dict.fromkeys(
        ("detect", "matmul", "memory", "telemetry", "workloads", "measure"), "ok")
    figures = {(f["path"], f["figure"].split(" (")[0]): f for p in paths.values() for f in p["figures"]}
    for dtype in ("fp32", "tf32", "bf16", "fp16", "fp8"):  # fp8: capability 9.0 has it
        f = figures[("matmul", f"{dtype} best")]
        assert f["value"] > 0 and f["pct_peak"] is not None  # the H200 reference entry has every dtype's vendor peak
    # no public best-known matmul figure measured on an H200 is shipped: that column stays empty, not guessed
    assert figures[("matmul", "bf16 best")]["pct_best"] is None
    assert figures[("memory", "triad 8MiB")]["pct_best"] is not None and figures[("memory", "h2d 8MiB")]["pct_peak"] is not None
    assert figures[("memory", "d2h 8MiB")]["value"] > 0
    assert figures[("telemetry", "power")]["value"] == 600.0
    assert figures[("telemetry", "energy counter over the burn")]["value"] == pytest.approx(600 * 0.3, rel=0.5)
    assert figures[("telemetry", "throttle reasons")]["value"] == "SwPowerCap"
    assert figures[("telemetry", "SM clock")]["value"] == 1980
    workload = figures[("workloads", "sar fp32")]
    assert "(device_peak_allocated)" in workload["note"] and "J/item (nvml energy counter over the window)" in workload["note"]
    assert fake.cuda.synced > 0  # the timer and aifsdk.measure synchronised the (fake) device
    assert "| matmul | ok" in out and "% vendor peak" in out and "results: " in out
    folder = next(tmp_path.glob("gpu-check-*"))
    assert (folder / "results.json").exists() and (folder / "check.md").read_text().startswith("| path |")


def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--paths", "matmul,gemm", "--results-dir", str(tmp_path)]) == 2
    assert "--paths gemm: unknown; allowed detect,matmul" in capsys.readouterr().err
    assert gpu_check.main(["--budget-s", "0", "--results-dir", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())


def test_a_path_that_does_not_fit_the_budget_is_not_run_and_fails_the_check(tmp_path: Path) -> None:
    now = [0.0]
    check = gpu_check.GpuCheck("cpu", "tiny", budget_s=5, results_dir=tmp_path, clock=lambda: now[0], paths=["suite"])
    check.run()
    assert check.results["detect"].status == "ok" and check.results["suite"].status == "not run"
    assert "needs about 30 s" in check.results["suite"].detail and check.failed() == ["suite"]


@pytest.mark.slow
def test_every_path_runs_on_this_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same paths for real on a CPU (no fakes): NVML is n/a, distributed picks gloo, the suite runs."""
    code = gpu_check.main(["--device", "cpu", "--sizes", "tiny", "--results-dir", str(tmp_path), "--workloads", "sar"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all paths passed" in out and "| telemetry | n/a" in out and "| distributed | ok" in out and "| suite | ok" in out
    assert list((tmp_path / "suite").iterdir())  # the quick suite's own run folder
