"""Time every domain workload's training step on this machine, standalone (no Hydra, no harness).

    python -m benchmarks.workloads.measure                      # all workloads, fp32 and bf16, CPU
    python -m benchmarks.workloads.measure --workloads unet3d sar --dtypes fp32 --steps 20
    python -m benchmarks.workloads.measure --device cuda --preset full --json out.json

For each workload and dtype: build with the defaults (or the preset), run `--warmup` steps, then
time `--steps` steps one by one (device synchronised after each) and print the median step time,
the spread (P10-P90) and items/s, with the 1-minute load average before and after (other work on
the machine slows the figures; compare only runs at similar load). The full harness
(`python -m benchmarks`) does this with more statistics, telemetry and provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from aifsdk._stats import percentile

from . import WORKLOADS, build_workload

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "xpu":
        torch.xpu.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_workload(name: str, device: torch.device, dtype: torch.dtype, steps: int, warmup: int, preset: str) -> dict:
    """Build one workload and time its steps; returns a row of figures (times in seconds)."""
    t0 = time.perf_counter()
    wl = build_workload(name, device, dtype, preset=preset)
    build_s = time.perf_counter() - t0
    for _ in range(warmup):
        wl.step()
    _sync(device)
    times, losses = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = wl.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        losses.append(float(loss))
    median = percentile(times, 0.5)
    return {
        "workload": name,
        "dtype": str(dtype).removeprefix("torch."),
        "unit": wl.unit,
        "items_per_step": wl.items_per_step,
        "params": wl.params,
        "flops_per_step": wl.flops_per_step,
        "build_s": build_s,
        "step_median_s": median,
        "step_p10_s": percentile(times, 0.1),
        "step_p90_s": percentile(times, 0.9),
        "items_per_s": wl.items_per_step / median,
        "achieved_gflops": wl.flops_per_step / median / 1e9 if wl.flops_per_step else None,
        "loss_first_last": [losses[0], losses[-1]],
        "times_s": times,
        "config": wl.config,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="small", choices=["small", "full"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the rows (with raw step times) to this new file")
    args = parser.parse_args(argv)
    if args.json is not None and args.json.exists():
        parser.error(f"--json {args.json}: the file exists and would be overwritten. Fix: choose a new file name")
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, load(1 min) {load_before:.2f}")
    print(f"{'workload':10} {'dtype':8} {'step ms':>9} {'p10-p90 ms':>15} {'items/s':>10} {'unit':7} {'GFLOP/s':>8} {'params':>9}")
    rows = []
    for name in args.workloads:
        for dt in args.dtypes:
            row = time_workload(name, device, DTYPES[dt], args.steps, args.warmup, args.preset)
            rows.append(row)
            gflops = f"{row['achieved_gflops']:.1f}" if row["achieved_gflops"] else "-"
            spread = f"{row['step_p10_s'] * 1e3:.1f}-{row['step_p90_s'] * 1e3:.1f}"
            print(
                f"{name:10} {dt:8} {row['step_median_s'] * 1e3:9.1f} {spread:>15} {row['items_per_s']:10.1f} "
                f"{row['unit']:7} {gflops:>8} {row['params']:9d}",
                flush=True,
            )
    load_after = os.getloadavg()[0]
    print(f"load(1 min) before {load_before:.2f}, after {load_after:.2f}")
    if args.json is not None:
        report = {"torch": torch.__version__, "device": str(device), "load_before": load_before, "load_after": load_after, "rows": rows}
        args.json.write_text(json.dumps(report, indent=2))
    return rows


if __name__ == "__main__":
    main()
