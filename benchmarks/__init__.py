"""Benchmarks of aifsdk itself: bench_submit.py (submit overhead), bench_snapshot.py (snapshot cost).

The node throughput suite: `python -m benchmarks` (Hydra app, benchmarks/__main__.py; suites in
configs/suite/), `python -m benchmarks.report RUN [RUN ...]` to compare runs; results schema in
benchmarks/results.py; the SDK's own overhead with pytest-benchmark in benchmarks/test_overhead.py.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any


def write_report(out: str | Path, name: str, report: dict[str, Any]) -> Path:
    """Write a benchmark report to a new, never-reused file: <out>/<name>-<time>-<pid>.json."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    path.write_text(json.dumps(report, indent=2))
    return path
