"""Many small items: first call to last result in hand, and the waiting process's peak memory.

    .venv/bin/python -m tools.bench_map --items 1000 --items 10000 [--methods packed,unpacked,submitit]
                                        [--items-per-worker auto|N] [--out results/]

Each item is ``tenth(i)``: 0.1 s asleep, then ``i`` back. Every method runs in its own process
(its peak RSS is that process's ``ru_maxrss``), one after the other, in the same run:

- ``packed``: ``aifsdk.map(tenth, items, site="slurm", pack="auto")``, then ``aifsdk.wait`` and
  every ``result()``;
- ``unpacked``: the same with ``pack=1`` (one Slurm array task per item);
- ``submitit``: submitit's ``AutoExecutor.map_array`` then every ``result()``.

A method whose item count exceeds ``--max-unpacked`` (default 1000) is skipped for the unpacked
ones and said so: one array task per item costs about a third of a second of the 2-node test
cluster's time each. Needs the local cluster (tests/cluster/slurm-cluster up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(REPO))
from tools import write_report  # noqa: E402

TIME_MIN = 30


def tenth(i: int) -> int:
    time.sleep(0.1)
    return i


def _one(method: str, n: int, items_per_worker: int | str, root: Path) -> dict[str, Any]:
    """One method, timed from the first call to the last result, in this process."""
    start = time.perf_counter()
    if method == "submitit":
        import submitit

        ex = submitit.AutoExecutor(folder=root / "submitit" / "%j", cluster="slurm")
        ex.update_parameters(timeout_min=TIME_MIN, nodes=1, tasks_per_node=1)
        jobs = ex.map_array(tenth, range(n))
        out = [j.result() for j in jobs]
    else:
        import aifsdk

        pack: Any = "auto" if method == "packed" else 1
        jobs = aifsdk.map(tenth, range(n), site="slurm", time=TIME_MIN, snapshot=False, pack=pack, items_per_worker=items_per_worker)
        aifsdk.wait(jobs)
        out = [j.result() for j in jobs]
    seconds = time.perf_counter() - start
    if out != list(range(n)):
        raise SystemExit(f"{method}: wrong results")
    extra = {}
    if method == "packed":
        record = json.loads((jobs[0].folder / "aifsdk-job.json").read_text())
        extra = {"items_per_job": record["map"]["pack"], "jobs": record["map"]["packs"]}
    return {"method": method, "items": n, "seconds": round(seconds, 2), "peak_rss_mb": round(_peak_rss_mb(), 1), **extra}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _per_worker(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'--items-per-worker {text!r}: give a whole number >= 1 or "auto", e.g. --items-per-worker 2')
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, action="append", help="items per map (repeatable; default 1000)")
    parser.add_argument("--methods", default="packed,unpacked,submitit")
    parser.add_argument("--items-per-worker", type=_per_worker, default="auto",
                        help='items a packed worker runs at once: a whole number, or "auto" (the default, as aifsdk.map)')
    parser.add_argument("--max-unpacked", type=int, default=1000, help="skip unpacked methods above this many items")
    parser.add_argument("--out", default="results")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.items or [1000]
    if args.one:  # a child: one method, one size, JSON on stdout
        root = Path(tempfile.mkdtemp(prefix="bench-map-"))
        print(json.dumps(_one(args.one, sizes[0], args.items_per_worker, root)))
        return
    rows = []
    for n in sizes:
        for method in args.methods.split(","):
            if method != "packed" and n > args.max_unpacked:
                rows.append({"method": method, "items": n, "skipped": f"more than --max-unpacked {args.max_unpacked} items"})
                print(f"{method:9} {n:6} items: skipped (more than --max-unpacked)", flush=True)
                continue
            argv = [sys.executable, "-m", "tools.bench_map", "--one", method, "--items", str(n), "--items-per-worker", str(args.items_per_worker)]
            proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
            if proc.returncode != 0:
                rows.append({"method": method, "items": n, "error": proc.stderr.strip()[-2000:]})
                print(f"{method:9} {n:6} items: FAILED\n{proc.stderr.strip()[-2000:]}", flush=True)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{method:9} {n:6} items: {row['seconds']:8.1f} s, waiting process peak RSS {row['peak_rss_mb']:.0f} MB"
                  + (f" ({row['jobs']} jobs of {row['items_per_job']} items)" if "jobs" in row else ""), flush=True)
    report = {"tool": "bench_map", "command": " ".join(["python -m tools.bench_map", *sys.argv[1:]]), "rows": rows,
              "items_per_worker": args.items_per_worker, "host": platform.node(), "cpus": os.cpu_count(),
              "targets": {"1000 items": "<= 30 s", "10000 items": "<= 120 s, waiting process <= 200 MB"}}
    print(f"report: {write_report(args.out, 'bench_map', report)}")


if __name__ == "__main__":
    main()
