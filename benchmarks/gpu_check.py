"""One-shot GPU check: every GPU path of aifsdk and its benchmarks, in one command, within a budget.

    python -m benchmarks.gpu_check                       # on a GPU node; about 7 minutes
    python -m benchmarks.gpu_check --device cpu --sizes tiny   # the same paths on a CPU, small

Paths, in order (each is timed, and a failure is recorded and the check goes on):

1. ``detect``: the device, its count, memory, driver and library versions, and its reference entry;
2. ``matmul``: TFLOPS per dtype (fp32, tf32, bf16, fp16, and fp8 where the device has it) over a
   shape search of M with N = K fixed (mamf-finder's quick mode);
3. ``memory``: device memory bandwidth (BabelStream copy and triad) and pinned host-to-device and
   device-to-host copies;
4. ``telemetry``: NVML (or amdsmi) power, the energy counter, clocks and throttle reasons read
   during a matmul burn, and joules per TFLOP;
5. ``workloads``: every domain workload trained on the device, with peak device memory and
   joules per item;
6. ``measure``: :func:`aifsdk.measure` on a training step, checked to synchronise the device;
7. ``distributed``: :func:`aifsdk.distributed` in a fresh process, expected to pick nccl on a GPU,
   with an all-reduce checked for its value;
8. ``suite``: ``python -m benchmarks suite=quick device=<device>`` with what is left of the budget.

It prints one table (every figure with its % of the vendor peak and of the best-known achievable
figure where configs/reference/accelerators.yaml has them), writes a results folder (the measured
rows as results.json/parquet, ``check.json`` and ``check.md``), and exits 1 naming every path
that failed or was not run. ``--budget-s`` (default 420) bounds the whole run: paths that would
not fit are "not run", which also fails the check. The torch module, NVML library, device and
subprocess runner are constructor seams (:func:`run_check`), so the check is tested on a CPU-only
machine with a fake CUDA device.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._device import DeviceInfo, detect
from ._measure import Context
from ._reference import ReferenceTable
from ._telemetry import CpuSampler, Monitor, NvmlSampler, Sampler
from ._timing import TimingConfig
from .results import Row

PATHS = ("detect", "matmul", "memory", "telemetry", "workloads", "measure", "distributed", "suite")
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8")
# nvmlClocksEventReasons bits (NVML API reference, "Clock Event Reasons")
THROTTLE_BITS = {0x1: "GpuIdle", 0x2: "ApplicationsClocksSetting", 0x4: "SwPowerCap", 0x8: "HwSlowdown", 0x10: "SyncBoost",
                 0x20: "SwThermalSlowdown", 0x40: "HwThermalSlowdown", 0x80: "HwPowerBrakeSlowdown", 0x100: "DisplayClockSetting"}
SIZES = {  # "full" for a GPU node; "tiny" runs the same code paths in seconds on a CPU
    "full": {"m_range": [1024, 20480, 1024], "nk": 4096, "membw_mb": None, "copy_mb": 1024, "burn_s": 5.0, "burn_n": 8192,
             "timing": TimingConfig(warmup_iters=3, min_samples=10, max_samples=100, min_time_s=0.3, max_time_s=3.0),
             "workload_dtype": "bf16", "workload_params": {"preset": "full"}, "suite": ["timing.max_time_s=3"]},
    "tiny": {"m_range": [64, 128, 64], "nk": 64, "membw_mb": 8, "copy_mb": 8, "burn_s": 0.3, "burn_n": 128,
             "timing": TimingConfig(warmup_iters=1, min_samples=3, max_samples=3, min_time_s=0.0, max_time_s=1.0, flush_cache=False),
             "workload_dtype": "fp32", "workload_params": {"batch_size": 1},
             "suite": ["suite.benchmarks.matmul.m_range=[64]", "suite.benchmarks.matmul.n_range=[64]", "suite.benchmarks.matmul.k_range=[64]",
                       "suite.benchmarks.membw.size_mb=8", "suite.benchmarks.hostcopy.size_mb=8", "suite.benchmarks.workloads.names=[sar]", "workload=sar", "workload.batch_size=1",
                       "timing.min_samples=3", "timing.max_samples=3", "timing.min_time_s=0", "timing.warmup_iters=1"]},
}
SHARE = {"detect": 10, "matmul": 120, "memory": 30, "telemetry": 20, "workloads": 90, "measure": 20, "distributed": 60}
SUITE_MIN_S = 30.0


@dataclass
class Figure:
    """One line of the table."""

    path: str
    figure: str
    value: float | str | None
    unit: str = ""
    pct_peak: float | None = None
    pct_best: float | None = None
    note: str = ""


@dataclass
class PathResult:
    name: str
    status: str = "not run"          # ok | failed | not run | n/a
    seconds: float = 0.0
    detail: str = ""
    figures: list[Figure] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class CheckFailed(Exception):
    """A path's own check failed (the message says what was expected and what was found)."""


def _fig_from_row(path: str, measured: Row, figure: str | None = None, note: str = "") -> Figure:
    row = measured.to_dict()  # statistics and reference percentages as written in results.json
    if "stats" not in row:
        return Figure(path, row["case"], "n/a", note=row["skipped"])
    ref = row.get("reference") or {}
    return Figure(path, figure or row["case"], row["stats"]["median"], row["unit"], ref.get("pct_of_peak"), ref.get("pct_of_achievable"),
                  note or ("UNSTABLE" if row["stats"].get("unstable") else ""))


class GpuCheck:
    """The check's state: device, context, budget, results. See the module docstring."""

    def __init__(self, device: str = "cuda", sizes: str = "full", budget_s: float = 420.0, results_dir: str | Path = "results",
                 *, torch_module: Any = None, nvml: Any = None, info: DeviceInfo | None = None,
                 runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
                 clock: Callable[[], float] = time.monotonic, suite_overrides: Sequence[str] = (),
                 paths: Sequence[str] | None = None, workload_names: Sequence[str] | None = None) -> None:
        if sizes not in SIZES:
            raise ValueError(f"--sizes {sizes!r}: allowed {', '.join(SIZES)}. Fix: --sizes full on a GPU node, tiny for a smoke test")
        unknown = sorted(set(paths or ()) - set(PATHS))
        if unknown:
            raise ValueError(f"--paths {','.join(unknown)}: unknown; allowed {','.join(PATHS)}. Fix: e.g. --paths detect,matmul")
        if budget_s <= 0:
            raise ValueError(f"--budget-s {budget_s}: allowed > 0 seconds. Fix: --budget-s 420")
        if torch_module is None:
            import torch as torch_module
        self.torch, self.nvml, self.runner, self.clock = torch_module, nvml, runner, clock
        self.requested, self.size, self.budget_s = device, SIZES[sizes], budget_s
        self.results_dir = Path(results_dir)
        self.suite_overrides = list(self.size["suite"]) + list(suite_overrides)
        self.info = info
        self.paths = [p for p in PATHS if paths is None or p in paths or p == "detect"]
        self.workload_names = list(workload_names) if workload_names else None
        self.ctx: Context | None = None
        self.started = clock()
        self.results: dict[str, PathResult] = {name: PathResult(name) for name in PATHS}
        for name in set(PATHS) - set(self.paths):
            self.results[name].status, self.results[name].detail = "n/a", "left out (--paths)"

    # --- budget -------------------------------------------------------------------------------
    def left(self) -> float:
        return self.budget_s - (self.clock() - self.started)

    def _run(self, name: str, fn: Callable[[PathResult], None], need_s: float) -> None:
        result = self.results[name]
        if self.left() < need_s:
            result.detail = f"not run: {self.left():.0f} s of the budget left, this path needs about {need_s:.0f} s"
            return
        t0 = self.clock()
        try:
            fn(result)
            if result.status == "not run":
                result.status = "ok"
        except Exception as exc:  # noqa: BLE001 - recorded; the check goes on and names it at the end
            result.status, result.detail = "failed", f"{type(exc).__name__}: {exc}"
        result.seconds = self.clock() - t0

    # --- paths --------------------------------------------------------------------------------
    def _samplers(self) -> list[Sampler]:
        samplers: list[Sampler] = [CpuSampler()]
        if self.info is not None and self.info.kind == "cuda":
            try:
                samplers.append(NvmlSampler(0, library=self.nvml))
            except Exception:  # noqa: BLE001 - the telemetry path reports NVML's absence itself
                pass
        return samplers

    def detect(self, r: PathResult) -> None:
        if self.info is None:
            self.info = detect(self.requested, 0, torch_module=self.torch)
        info = self.info
        self.ctx = Context(info, self.size["timing"], samplers=self._samplers, telemetry_interval_s=0.1, torch_module=self.torch)
        entry = ReferenceTable().lookup(info.name, "matmul_tflops.bf16")
        v = info.versions
        r.figures += [Figure("detect", "device", f"{info.kind} {info.name} x{info.count}", note=f"reference entry: {entry.device or 'none'}"),
                      Figure("detect", "memory", None if info.memory_bytes is None else info.memory_bytes / 2**30, "GiB"),
                      Figure("detect", "versions", f"torch {v.get('torch')}, cuda {v.get('cuda')}, hip {v.get('hip')}, nccl {v.get('nccl')}",
                             note=f"driver {info.driver}")]
        if self.requested != "auto" and info.kind != self.requested:
            raise CheckFailed(f"asked for {self.requested}, found {info.kind}")

    def _fp8(self) -> bool:
        if not hasattr(self.torch, "float8_e4m3fn"):
            return False
        if self.info is not None and self.info.kind == "cuda":
            major, minor = self.torch.cuda.get_device_capability(0)
            return (major, minor) >= (8, 9)  # Ada and Hopper have fp8 tensor cores
        return self.info is not None and self.info.kind == "cpu"

    def matmul(self, r: PathResult) -> None:
        from . import micro

        assert self.ctx is not None
        dtypes = [d for d in DTYPES if d != "fp8" or self._fp8()]
        nk = self.size["nk"]
        failed = []
        for dtype in dtypes:
            try:
                rows = micro.matmul(self.ctx, dtypes=[dtype], m_range=self.size["m_range"], n_range=[nk], k_range=[nk])
            except Exception as exc:  # noqa: BLE001 - one dtype failing does not hide the others
                failed.append(f"{dtype}: {type(exc).__name__}: {exc}")
                continue
            r.rows += rows
            best = rows[-1]
            shape = best.extra["best_shape"]
            r.figures.append(_fig_from_row("matmul", best, f"{dtype} best ({shape['m']}x{shape['n']}x{shape['k']})"))
        if "fp8" not in dtypes:
            r.figures.append(Figure("matmul", "fp8", "n/a", note="no fp8 on this device"))
        if failed:
            raise CheckFailed("; ".join(failed))

    def memory(self, r: PathResult) -> None:
        from . import micro

        assert self.ctx is not None and self.info is not None
        rows = micro.membw(self.ctx, size_mb=self.size["membw_mb"])
        own_memory = not self.info.torch_device.startswith("cpu")  # pinned host buffers only where the device has its own memory
        rows += micro.hostcopy(self.ctx, size_mb=self.size["copy_mb"], pinned=own_memory)
        r.rows += rows
        r.figures += [_fig_from_row("memory", row) for row in rows]

    def telemetry(self, r: PathResult) -> None:
        assert self.info is not None and self.ctx is not None
        if self.info.kind == "cpu":
            r.status, r.detail = "n/a", "no NVML or amdsmi on a CPU"
            return
        if self.info.kind != "cuda":
            r.status, r.detail = "n/a", f"{self.info.kind}: amdsmi telemetry is read by every measurement; this path checks NVML"
            return
        sampler = NvmlSampler(0, library=self.nvml)
        torch, n = self.torch, self.size["burn_n"]
        a = torch.randn(n, n, device=self.info.torch_device, dtype=torch.bfloat16)
        calls = 0
        with Monitor([sampler], interval_s=0.05) as mon:
            end = self.clock() + self.size["burn_s"]
            while self.clock() < end:
                torch.mm(a, a)
                calls += 1
                if calls % 8 == 0:
                    self.ctx.sync()
            self.ctx.sync()
        s = mon.summary()
        f = s["fields"]

        def mean(key: str) -> float | None:
            return f[key]["mean"] if key in f else None

        reasons = int(f["nvml.throttle_reasons"]["max"]) if "nvml.throttle_reasons" in f else None
        names = [name for bit, name in THROTTLE_BITS.items() if reasons is not None and reasons & bit]
        tflop = 2.0 * n**3 * calls / 1e12
        energy = s["energy_j"]
        r.figures += [Figure("telemetry", "power (mean)", mean("nvml.power_w"), "W"),
                      Figure("telemetry", "energy counter over the burn", energy, "J", note=f"{calls} bf16 {n}^3 matmuls in {s['duration_s']:.1f} s"),
                      Figure("telemetry", "energy per item", None if energy is None else energy / tflop, "J/TFLOP"),
                      Figure("telemetry", "SM clock (mean)", mean("nvml.sm_clock_mhz"), "MHz"),
                      Figure("telemetry", "memory clock (mean)", mean("nvml.mem_clock_mhz"), "MHz"),
                      Figure("telemetry", "temperature (max)", f["nvml.temp_c"]["max"] if "nvml.temp_c" in f else None, "C"),
                      Figure("telemetry", "throttle reasons", "none" if reasons == 0 else ", ".join(names) if names else None,
                             note="" if reasons is not None else "not reported")]
        missing = [name for name, value in (("power", mean("nvml.power_w")), ("energy counter", energy),
                                            ("SM clock", mean("nvml.sm_clock_mhz")), ("throttle reasons", reasons)) if value is None]
        if missing:
            raise CheckFailed(f"NVML did not report: {', '.join(missing)}")

    def workloads(self, r: PathResult) -> None:
        from .domain import workloads
        from .workloads import WORKLOADS

        assert self.ctx is not None
        names = self.workload_names or list(WORKLOADS)
        rows = workloads(self.ctx, names=names, dtype=self.size["workload_dtype"], params={name: self.size["workload_params"] for name in names})
        r.rows += rows
        for row in rows:
            extra, per_item = row.extra, row.energy_per_item_j
            note = (f"step {extra['step_time_median_s'] * 1e3:.1f} ms, peak {extra['peak_memory_bytes'] / 2**20:.0f} MiB "
                    f"({extra['memory_kind']})" + (f", {per_item:.3g} J/item ({row.energy_basis})" if per_item else ""))
            r.figures.append(_fig_from_row("workloads", row, note=note))
        if self.info is not None and self.info.is_gpu and any(row.extra["memory_kind"] != "device_peak_allocated" for row in rows):
            raise CheckFailed("peak memory was not read from the device")

    def measure(self, r: PathResult) -> None:
        import aifsdk
        from aifsdk._measure import _torch_device

        assert self.info is not None
        torch = self.torch
        device = torch.device(self.info.torch_device)
        model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, y = torch.randn(64, 256, device=device), torch.randint(0, 10, (64,), device=device)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        m = aifsdk.measure(step, items_per_step=64, steps=20, warmup=3)
        sync, name, _ = _torch_device()
        r.figures += [Figure("measure", "training step (median)", m.items_per_s, "samples/s", note=f"device {name}"),
                      Figure("measure", "training step (mean, for wall time)", m.mean_items_per_s, "samples/s",
                             note=f"95% CI {m.mean_ci[0]:.4g}-{m.mean_ci[1]:.4g}" if m.mean_ci else "")]
        if self.info.is_gpu and sync != getattr(getattr(torch, "cuda", None), "synchronize", None):
            raise CheckFailed(f"aifsdk.measure did not synchronise the {self.info.kind} device (it found {name!r})")

    def distributed(self, r: PathResult) -> None:
        from aifsdk._distributed import PORT_BASE, free_port

        assert self.info is not None
        expected = "nccl" if self.info.kind in ("cuda", "rocm") else "gloo"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "LOCAL_", "MASTER_"))}
        env["MASTER_ADDR"], env["MASTER_PORT"] = "127.0.0.1", str(free_port(PORT_BASE + os.getpid() % 10000))
        done = self.runner([sys.executable, "-c", DISTRIBUTED_SCRIPT], capture_output=True, text=True, env=env,
                           timeout=max(10.0, min(SHARE["distributed"], self.left())))
        if done.returncode != 0:
            raise CheckFailed(f"the process exited {done.returncode}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
        found = json.loads(done.stdout.strip().splitlines()[-1])
        r.figures += [Figure("distributed", "backend", found["backend"], note=f"device {found['device']}, world {found['world_size']}"),
                      Figure("distributed", "all-reduce 64 MiB", found["allreduce_s"] * 1e3, "ms")]
        if found["backend"] != expected:
            raise CheckFailed(f"expected backend {expected} on {self.info.kind}, got {found['backend']}")
        if not found["sum_ok"]:
            raise CheckFailed("the all-reduce returned a wrong value")

    def suite(self, r: PathResult) -> None:
        assert self.info is not None
        argv = [sys.executable, "-m", "benchmarks", "suite=quick", f"device={self.info.kind}",
                f"results_dir={self.results_dir / 'suite'}", "print_table=false", *self.suite_overrides]
        done = self.runner(argv, capture_output=True, text=True, timeout=max(SUITE_MIN_S, self.left() - 5))
        folder = next((line.split("results:", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("results:")), None)
        r.figures.append(Figure("suite", "python -m benchmarks suite=quick", "ok" if done.returncode == 0 else f"exit {done.returncode}",
                                note=f"results {folder}" if folder else ""))
        if done.returncode != 0:
            lines = [x for x in done.stderr.strip().splitlines() if x.strip() and "HYDRA_FULL_ERROR" not in x]
            tail = lines[-1] if lines else "no output"
            raise CheckFailed(f"exit {done.returncode}: {tail}")

    # --- the whole check ----------------------------------------------------------------------
    def run(self) -> dict[str, PathResult]:
        self._run("detect", self.detect, 0)
        if self.results["detect"].status != "ok":
            for name in self.paths[1:]:
                self.results[name].detail = "not run: no device"
            return self.results
        for name in self.paths[1:]:
            self._run(name, getattr(self, name), SUITE_MIN_S if name == "suite" else min(SHARE[name], 10))
        return self.results

    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if r.status in ("failed", "not run")]


DISTRIBUTED_SCRIPT = """
import json, time, torch, torch.distributed as dist, aifsdk
with aifsdk.distributed() as d:
    x = torch.full((16 * 2**20,), float(d["rank"] + 1), device=d["device"])
    dist.all_reduce(x)
    if d["device"].type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    dist.all_reduce(x)
    if d["device"].type == "cuda":
        torch.cuda.synchronize()
    took = time.perf_counter() - t0
    n = d["world_size"]
    expected = (n * (n + 1) / 2) * n
    print(json.dumps({"backend": dist.get_backend(), "device": str(d["device"]), "world_size": n, "allreduce_s": took,
                      "sum_ok": bool(torch.allclose(x, torch.full_like(x, expected)))}))
"""


def _cell(value: float | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def _pct(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f}%" if value >= 1 else f"{value:.2g}%"


def table(results: dict[str, PathResult]) -> str:
    lines = ["| path | status | figure | value | unit | % vendor peak | % best-known | note |", "|---|---|---|---:|---|---:|---:|---|"]
    for r in results.values():
        status = r.status + (f" ({r.seconds:.0f} s)" if r.seconds else "")
        if not r.figures:
            lines.append(f"| {r.name} | {status} | | | | | | {r.detail} |")
        for i, f in enumerate(r.figures):
            pct, best = _pct(f.pct_peak), _pct(f.pct_best)
            note = "; ".join(x for x in (f.note, r.detail if i == 0 else "") if x)
            lines.append(f"| {r.name if i == 0 else ''} | {status if i == 0 else ''} | {f.figure} | {_cell(f.value)} | {f.unit} | {pct} | {best} | {note} |")
    return "\n".join(lines) + "\n"


def write(check: GpuCheck, argv: Sequence[str]) -> Path:
    """The results folder: measured rows (results.json/parquet), check.json and check.md."""
    from .results import new_document, new_run_folder, provenance, save

    info = check.info.to_dict() if check.info else {"kind": check.requested, "name": "not detected", "count": 0, "versions": {}}
    rows = [row for r in check.results.values() for row in r.rows]
    doc = new_document(rows, provenance(info, list(argv), check.torch.get_num_threads()), {"gpu_check": {"sizes": check.size["m_range"],
                                                                                                 "budget_s": check.budget_s}},
                       check.clock() - check.started)
    folder = new_run_folder(check.results_dir, "gpu-check-" + doc["run_id"])
    text = table(check.results)
    save(doc, folder, text)
    summary = {name: {**dataclasses.asdict(r), "rows": len(r.rows)} for name, r in check.results.items()}
    with open(folder / "check.json", "x") as f:
        json.dump({"failed": check.failed(), "paths": summary, "run_id": doc["run_id"]}, f, indent=1, default=str)
    with open(folder / "check.md", "x") as f:
        f.write(text)
    return folder


def main(argv: Sequence[str] | None = None, **seams: Any) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), rocm, xpu, cpu or auto")
    parser.add_argument("--sizes", default="full", choices=sorted(SIZES), help="full on a GPU node; tiny: the same paths in seconds")
    parser.add_argument("--budget-s", type=float, default=420.0, help="the whole check's time limit in seconds (default 420)")
    parser.add_argument("--results-dir", default="results", help="where the check's folder (and the suite's run) go")
    parser.add_argument("--suite-override", action="append", default=[], help="a Hydra override for the suite path (repeatable)")
    parser.add_argument("--paths", help=f"only these paths, comma-separated (detect always runs): {','.join(PATHS)}")
    parser.add_argument("--workloads", help="only these domain workloads, comma-separated (default: all)")
    args = parser.parse_args(argv)
    try:
        check = GpuCheck(args.device, args.sizes, args.budget_s, args.results_dir, suite_overrides=args.suite_override,
                         paths=args.paths.split(",") if args.paths else None,
                         workload_names=args.workloads.split(",") if args.workloads else None, **seams)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    check.run()
    folder = write(check, list(argv if argv is not None else sys.argv[1:]))
    print(table(check.results))
    print(f"results: {folder}")
    failed = check.failed()
    if failed:
        print("FAILED: " + "; ".join(f"{name} ({check.results[name].detail})" for name in failed), file=sys.stderr)
        return 1
    print(f"all paths passed in {check.clock() - check.started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
