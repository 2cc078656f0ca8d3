"""Submit overhead: aifsdk.submit against submitit's own submit, same job, same run; plan latency.

    .venv/bin/python -m tools.bench_submit [--repeats 30] [--out results/]

Targets: ``aifsdk.submit`` adds at most 10 % to submitit's submit for the same job
(compared with ``snapshot=False``, since submitit ships no code; the default, with this
repository snapshotted, is reported on its own row);
``plan`` of a function job takes under 50 ms. Jobs are submitted held (``--hold``) and cancelled
at the end, so the figures are the submission path only, not scheduling. Needs the local cluster
(tests/cluster/slurm-cluster up) for the Slurm rows; the plan rows run anywhere.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aifsdk._stats import percentile  # noqa: E402
from tools import write_report  # noqa: E402


def payload(x: int) -> int:
    return x + 1


def _stats(samples: list[float]) -> dict[str, float]:
    return {"median_ms": percentile(samples, 0.5) * 1e3, "p10_ms": percentile(samples, 0.1) * 1e3, "p90_ms": percentile(samples, 0.9) * 1e3,
            "iqr_ms": (percentile(samples, 0.75) - percentile(samples, 0.25)) * 1e3, "n": len(samples)}


def _time(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def bench_plan(repeats: int) -> dict[str, Any]:
    import aifsdk

    rows = {"plan_local_function": _stats(_time(lambda: aifsdk.plan(payload, 1), repeats * 10))}
    if _cluster_up():
        rows["plan_slurm_function"] = _stats(_time(lambda: aifsdk.plan(payload, 1, site="slurm"), repeats * 10))
    return rows


def _cluster_up() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def bench_submit(repeats: int, root: Path) -> dict[str, Any]:
    """Interleave submitit and aifsdk submissions so that drift hits both alike."""
    import submitit

    import aifsdk

    job_ids: list[str] = []
    sub_samples: list[float] = []
    aif_samples: list[float] = []
    partition_time = 30  # same limit for both (aifsdk would take it from the partition anyway)

    def submitit_once() -> None:
        ex = submitit.AutoExecutor(folder=root / "submitit" / "%j", cluster="slurm")
        ex.update_parameters(timeout_min=partition_time, nodes=1, tasks_per_node=1, slurm_additional_parameters={"hold": True})
        job_ids.append(ex.submit(payload, 1).job_id)

    def aifsdk_once() -> None:  # like for like: submitit ships no code snapshot
        job = aifsdk.submit(payload, 1, site="slurm", time=partition_time, extra={"hold": True}, snapshot=False)
        job_ids.append(job.job_id)

    def aifsdk_snapshot_once() -> None:  # the default: snapshot of this repository taken too
        job = aifsdk.submit(payload, 1, site="slurm", time=partition_time, extra={"hold": True})
        job_ids.append(job.job_id)

    snap_samples: list[float] = []
    try:
        for fn in (submitit_once, aifsdk_once, aifsdk_snapshot_once):  # warm-up: imports, caches
            fn()
        for _ in range(repeats):
            for fn, bucket in ((submitit_once, sub_samples), (aifsdk_once, aif_samples), (aifsdk_snapshot_once, snap_samples)):
                start = time.perf_counter()
                fn()
                bucket.append(time.perf_counter() - start)
    finally:
        if job_ids:
            subprocess.run(["scancel", *job_ids], capture_output=True)
    sub, aif, snap = _stats(sub_samples), _stats(aif_samples), _stats(snap_samples)
    return {"submitit_submit": sub, "aifsdk_submit": aif, "aifsdk_submit_with_snapshot": snap,
            "overhead_ratio": aif["median_ms"] / sub["median_ms"],
            "raw_s": {"submitit": sub_samples, "aifsdk": aif_samples, "aifsdk_with_snapshot": snap_samples}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parents[1])  # the snapshot rows snapshot this repository
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIFSDK_HOME", str(Path(tmp) / "home"))
        os.environ["AIFSDK_JOB_ROOT"] = str(Path(tmp) / "jobs")
        report: dict[str, Any] = {
            "schema": 1, "benchmark": "bench_submit", "host": platform.node(), "python": platform.python_version(),
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "repeats": args.repeats,
        }
        report["plan"] = bench_plan(args.repeats)
        if _cluster_up():
            report["submit"] = bench_submit(args.repeats, Path(tmp))
    for name, row in report["plan"].items():
        print(f"{name:<24} median {row['median_ms']:7.2f} ms  p10 {row['p10_ms']:7.2f}  p90 {row['p90_ms']:7.2f}  (n={row['n']}; target < 50 ms)")
    if "submit" in report:
        s = report["submit"]
        for name in ("submitit_submit", "aifsdk_submit", "aifsdk_submit_with_snapshot"):
            row = s[name]
            print(f"{name:<28} median {row['median_ms']:7.2f} ms  p10 {row['p10_ms']:7.2f}  p90 {row['p90_ms']:7.2f}  IQR {row['iqr_ms']:.2f}")
        print(f"aifsdk / submitit median: {s['overhead_ratio']:.3f} (target <= 1.10)")
    else:
        print("no Slurm cluster answered: submit rows skipped (tests/cluster/slurm-cluster up)")
    print(f"written {write_report(args.out, 'bench_submit', report)}")


if __name__ == "__main__":
    main()
