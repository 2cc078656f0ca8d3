"""Acceptance check: the harness's matmul fp32 figure against an independent plain torch.mm loop.

    .venv/bin/python -m tools.check_matmul [--threads 2] [--shapes 256x1024x1024,...] [--seconds 2]

For each shape, the independent loop is the simplest honest measurement: random-normal inputs,
``torch.mm(a, b, out=c)`` called back to back for ``--seconds`` (after a half-second warm-up),
wall time / calls, with B contiguous and with B transposed (best of the two). The harness figure is ``benchmarks.micro.matmul`` (quick mode, cache flush and output
re-randomisation between calls, median over samples) on the same shape. The two alternate for
``--rounds`` rounds per shape and each keeps its best round, so that both see the same
background load on a shared machine. Prints both best-over-shapes figures and their ratio (target: the harness
within 10 % of the loop), with the load average before and after, since the machine is shared.
Writes a JSON report under results/ (never overwriting).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks import micro  # noqa: E402
from benchmarks._device import detect  # noqa: E402
from benchmarks._measure import Context  # noqa: E402
from benchmarks._timing import TimingConfig  # noqa: E402
from tools import write_report  # noqa: E402


def plain_loop(m: int, n: int, k: int, seconds: float, rounds: int) -> float:
    """Best TFLOPS of back-to-back ``torch.mm(a, b, out=c)`` over ``rounds`` rounds of ``seconds``,
    with B both contiguous and transposed (the layout the harness uses), best of the two."""
    a, c = torch.randn(m, k), torch.empty(m, n)
    best = 0.0
    for b in (torch.randn(k, n), torch.randn(n, k).t()):
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            torch.mm(a, b, out=c)
        for _ in range(rounds):
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                torch.mm(a, b, out=c)
                calls += 1
            best = max(best, 2.0 * m * n * k * calls / (time.perf_counter() - start) / 1e12)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shapes", default="256x1024x1024,512x1024x1024,768x1024x1024,1024x1024x1024")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    load_before = os.getloadavg()
    ctx = Context(detect("cpu"), TimingConfig(min_time_s=args.seconds, max_samples=1000))
    loop: dict[str, float] = {}
    harness: dict[str, float] = {}
    for m, n, k in shapes:  # interleaved rounds: both methods see the same background load
        key = f"{m}x{n}x{k}"
        for _ in range(args.rounds):
            loop[key] = max(loop.get(key, 0.0), plain_loop(m, n, k, args.seconds, 1))
            row = micro.matmul(ctx, dtypes=["fp32"], m_range=[m], n_range=[n], k_range=[k])[0]
            harness[key] = max(harness.get(key, 0.0), row["stats"]["median"])
    best_loop, best_harness = max(loop.values()), max(harness.values())
    report = {"threads": args.threads, "torch": torch.__version__, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "loop_tflops": loop, "harness_median_tflops": harness, "best_loop": best_loop, "best_harness": best_harness,
              "ratio": best_harness / best_loop}
    for shape in loop:
        print(f"{shape:>16}  loop {loop[shape] * 1e3:8.1f} GFLOPS   harness median {harness[shape] * 1e3:8.1f} GFLOPS")
    print(f"best: loop {best_loop * 1e3:.1f} GFLOPS, harness {best_harness * 1e3:.1f} GFLOPS, ratio {report['ratio']:.3f} "
          f"(threads {args.threads}; load {load_before[0]:.2f} -> {report['loadavg_after'][0]:.2f})")
    print(f"report: {write_report(args.out, 'check_matmul', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
