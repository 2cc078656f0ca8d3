"""Acceptance check: repeat the quick suite and report the CV of each figure across the runs.

    .venv/bin/python -m tools.check_repeat [--runs 5] [--threads 2] [-- extra overrides]

Runs ``python -m benchmarks threads=N`` ``--runs`` times in fresh processes (each writes its own
run folder), then prints, for every row, the median of each run and the CV of those medians
(target: under 5 %), the wall time of each run, and the load average before each run
(the machine may be shared). Writes a JSON report under results/ (never overwriting).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._stats import cv_of  # noqa: E402
from benchmarks.results import load  # noqa: E402
from tools import write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args(argv)
    runs, walls, loads = [], [], []
    for i in range(args.runs):
        loads.append(os.getloadavg())
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "benchmarks", f"threads={args.threads}", f"results_dir={args.out}", "print_table=false",
                               *args.overrides], capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        folder = proc.stdout.strip().splitlines()[-1].removeprefix("results: ")
        runs.append(load(folder))
        print(f"run {i + 1}/{args.runs}: {folder} in {walls[-1]:.1f} s (load before {loads[-1][0]:.2f})", flush=True)
    rows: dict[str, list[float]] = {}
    for run in runs:
        for row in run.rows:
            if "stats" in row:
                rows.setdefault(f"{row['benchmark']} {row['case']} [{row['unit']}]", []).append(row["stats"]["median"])
    cvs = {key: cv_of(values) for key, values in rows.items()}
    for key, values in rows.items():
        print(f"{key:>40}  CV {cvs[key]:6.1%}  medians {' '.join(f'{v:.4g}' for v in values)}")
    print(f"wall time per run: {' '.join(f'{w:.1f}' for w in walls)} s; load (1 min) before each run: "
          f"{' '.join(f'{v[0]:.2f}' for v in loads)}; threads {args.threads}")
    report = {"runs": [r.document["run_id"] for r in runs], "wall_s": walls, "loadavg_before": loads, "threads": args.threads,
              "medians": rows, "cv": cvs, "overrides": args.overrides}
    print(f"report: {write_report(args.out, 'check_repeat', report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
