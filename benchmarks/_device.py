"""Which device the suite runs on, and how to synchronise, time and describe it.

Detection order for ``device=auto``: CUDA (NVIDIA, or AMD when ``torch.version.hip`` is set:
ROCm builds answer through ``torch.cuda``), Intel XPU, Apple MPS, else CPU. The ``torch``
module is a seam (``detect(torch_module=...)``) so that the GPU branches run in tests with a
fake module on this CPU-only machine.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["cuda", "rocm", "xpu", "mps", "cpu"]
KINDS: tuple[str, ...] = ("auto", "cuda", "rocm", "xpu", "mps", "cpu")
GPU_FLUSH_BYTES = 256 * 2**20  # mamf-finder v2 / Triton do_bench: covers MI300X's 256 MB Infinity Cache


@dataclass
class DeviceInfo:
    """The device the measurements ran on (recorded in every result)."""

    kind: Kind
    torch_device: str            # "cuda:0", "xpu:0", "mps", "cpu"
    name: str                    # "NVIDIA H100 80GB HBM3", or the CPU model on CPU
    count: int                   # devices of this kind visible on the node
    memory_bytes: int | None
    llc_bytes: int | None        # last-level cache of the device (L2 on GPUs, L3 on CPUs)
    driver: str | None = None
    versions: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_gpu(self) -> bool:
        return self.kind in ("cuda", "rocm", "xpu", "mps")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_llc_bytes(sysfs: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Size of the highest-level cache of CPU 0 (read from sysfs), or None."""
    best: tuple[int, int] | None = None
    for index in sorted(sysfs.glob("index*")):
        try:
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        match = re.fullmatch(r"(\d+)([KMG]?)", text)
        if not match:
            continue
        size = int(match.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[match.group(2)]
        if best is None or level > best[0] or (level == best[0] and size > best[1]):
            best = (level, size)
    return best[1] if best else None


def _torch_versions(torch: Any) -> dict[str, str | None]:
    version = getattr(torch, "version", None)
    out: dict[str, str | None] = {"torch": getattr(torch, "__version__", None),
                                  "cuda": getattr(version, "cuda", None), "hip": getattr(version, "hip", None)}
    try:
        nccl = torch.cuda.nccl.version() if torch.cuda.is_available() else None
        out["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else (str(nccl) if nccl else None)
    except Exception:  # noqa: BLE001 - no NCCL in this build
        out["nccl"] = None
    return out


def detect(requested: str = "auto", index: int = 0, torch_module: Any = None) -> DeviceInfo:
    """The device to run on. ``requested`` is one of :data:`KINDS`; a kind that is not present
    raises ValueError naming what is present and the fix."""
    if requested not in KINDS:
        raise ValueError(f"device={requested!r}: allowed {', '.join(KINDS)}. Fix: device=auto picks the best one present")
    if torch_module is None:
        import torch as torch_module
    torch = torch_module
    versions = _torch_versions(torch)
    present = _present(torch)
    kind: str = requested
    if requested == "auto":
        kind = present[0]
    elif requested not in present:
        raise ValueError(f"device={requested!r}: not present here (present: {', '.join(present)}). "
                         f"Fix: device=auto or device={present[0]}")
    if kind in ("cuda", "rocm"):
        props = torch.cuda.get_device_properties(index)
        l2 = getattr(props, "L2_cache_size", None) or None
        return DeviceInfo(kind, f"cuda:{index}", torch.cuda.get_device_name(index), torch.cuda.device_count(),  # type: ignore[arg-type]
                          getattr(props, "total_memory", None), l2, _gpu_driver(kind), versions)
    if kind == "xpu":
        props = torch.xpu.get_device_properties(index)
        return DeviceInfo("xpu", f"xpu:{index}", torch.xpu.get_device_name(index), torch.xpu.device_count(),
                          getattr(props, "total_memory", None), None, getattr(props, "driver_version", None), versions)
    if kind == "mps":
        return DeviceInfo("mps", "mps", f"Apple {platform.machine()} GPU ({cpu_model()})", 1, None, None, platform.mac_ver()[0], versions)
    return DeviceInfo("cpu", "cpu", cpu_model(), 1, _host_memory(), cpu_llc_bytes(), platform.release(), versions)


def _present(torch: Any) -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("rocm" if getattr(torch.version, "hip", None) else "cuda")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        found.append("xpu")
    mps = getattr(getattr(torch, "backends", None), "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found + ["cpu"]


def _host_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gpu_driver(kind: str) -> str | None:
    """The GPU driver version from NVML (NVIDIA) or amdsmi (AMD) when they import."""
    try:
        if kind == "cuda":
            import pynvml

            pynvml.nvmlInit()
            value = pynvml.nvmlSystemGetDriverVersion()
            return value.decode() if isinstance(value, bytes) else str(value)
        import amdsmi  # type: ignore[import-not-found]

        amdsmi.amdsmi_init()
        return str(amdsmi.amdsmi_get_gpu_driver_info(amdsmi.amdsmi_get_processor_handles()[0]).get("driver_version"))
    except Exception:  # noqa: BLE001 - no management library: the driver stays unknown, said as None
        return None


def synchronizer(info: DeviceInfo, torch_module: Any = None) -> Callable[[], None]:
    """A function that waits until the device has finished all queued work."""
    if torch_module is None:
        import torch as torch_module
    torch = torch_module
    if info.kind in ("cuda", "rocm"):
        return torch.cuda.synchronize
    if info.kind == "xpu":
        return torch.xpu.synchronize
    if info.kind == "mps":
        return torch.mps.synchronize
    return lambda: None


def event_factory(info: DeviceInfo, torch_module: Any = None) -> Callable[[], Any] | None:
    """A maker of timing events (``record()``, ``elapsed_time(other)`` in ms) where the device has
    them (CUDA, ROCm, XPU); None where timing must use sync + host clock (MPS, CPU)."""
    if torch_module is None:
        import torch as torch_module
    torch = torch_module
    if info.kind in ("cuda", "rocm"):
        return lambda: torch.cuda.Event(enable_timing=True)
    if info.kind == "xpu":
        return lambda: torch.xpu.Event(enable_timing=True)
    return None


def flush_bytes(info: DeviceInfo) -> int:
    """Size of the buffer zeroed between iterations to evict the last-level cache: twice the
    device's LLC, at least 256 MiB on GPUs, at least 64 MiB on CPUs when the size is unknown."""
    llc = info.llc_bytes or 0
    floor = GPU_FLUSH_BYTES if info.is_gpu else 64 * 2**20
    return max(2 * llc, floor if info.is_gpu or not llc else 0)


DTYPES = {"fp32": "float32", "tf32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp64": "float64", "fp8": "float8_e4m3fn"}


def torch_dtype(name: str, torch_module: Any = None) -> Any:
    """``"bf16"`` -> ``torch.bfloat16``; unknown names raise ValueError listing the allowed ones."""
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r}: allowed {', '.join(DTYPES)}. Fix: e.g. dtype=bf16")
    if torch_module is None:
        import torch as torch_module
    return getattr(torch_module, DTYPES[name])
