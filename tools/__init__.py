"""The SDK's own benchmarks and the benchmark harness's acceptance checks (not shipped in the wheel).

    .venv/bin/python -m tools.bench_submit       # submit overhead: aifsdk against submitit; plan latency
    .venv/bin/python -m tools.bench_snapshot     # code snapshot cost on a large tree
    .venv/bin/python -m tools.bench_lifecycle    # submit to result, against srun, sbatch and submitit
    .venv/bin/python -m tools.bench_map          # many small items: packed, unpacked, submitit
    .venv/bin/python -m tools.secret_guard_fp .  # what the secret guard flags on trees without secrets
    .venv/bin/python -m tools.check_matmul       # the harness's matmul figure against a plain torch.mm loop
    .venv/bin/python -m tools.check_repeat       # CV of repeated quick suite runs
    .venv/bin/python -m pytest tools/test_overhead.py   # plan overhead with pytest-benchmark
    bash tools/gpu_check_offline.sh wheels       # the GPU check for a node without a package index

Run them from the repository root. The bench_* and check_* tools write a JSON report to a new file under ``--out`` (default
results/), never overwriting an earlier one.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any


def write_report(out: str | Path, name: str, report: dict[str, Any]) -> Path:
    """Write a report to a new, never-reused file: <out>/<name>-<time>-<pid>.json (exclusive create)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    with path.open("x") as fh:
        json.dump(report, fh, indent=2)
    return path
