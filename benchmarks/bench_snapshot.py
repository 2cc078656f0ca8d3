"""Snapshot cost: a 10,000-file, 100 MB tree, first snapshot and an unchanged resubmit.

    .venv/bin/python benchmarks/bench_snapshot.py [--files 10000] [--mb 100] [--repeats 5]

Targets (issue 4): first snapshot under 3 s, an unchanged resubmit under 0.3 s, on a 2-core
machine. Each figure covers what submit adds for the snapshot: listing the files (git), the
secret and size guards, hashing (cached by size and mtime), storing new content and laying out
the job's copy as hard links. Results go to results/bench_snapshot-*.json with raw samples.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def make_tree(root: Path, files: int, total_mb: float) -> None:
    """A source-like tree: many small text files in nested packages, committed to git."""
    size = int(total_mb * 2**20 / files)
    line = "value = 'abcdefghijklmnopqrstuvwxyz0123456789'  # filler line of a source file\n"
    body = (line * (size // len(line) + 1))[:size]
    for i in range(files):
        path = root / f"pkg{i // 500:03d}" / f"sub{(i // 50) % 10}" / f"mod{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\n" + body)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "tree"], check=True)


def snapshot_once(root: Path, store: Path, dest: Path) -> dict[str, float]:
    from aifsdk import _snapshot as snap

    t0 = time.perf_counter()
    names = snap.list_files(root)
    t1 = time.perf_counter()
    problems = snap.check_secrets(root, names, ()) + snap.check_size(root, names, 300.0)
    t2 = time.perf_counter()
    result = snap.take(root, store, names, dest)
    t3 = time.perf_counter()
    assert not problems and result.files == len(names)
    return {"list_s": t1 - t0, "guards_s": t2 - t1, "store_and_link_s": t3 - t2, "total_s": t3 - t0,
            "files": result.files, "bytes": result.bytes, "new_bytes_stored": result.copied_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, store, jobs = Path(tmp) / "project", Path(tmp) / "store", Path(tmp) / "jobs"
        make_tree(root, args.files, args.mb)
        subprocess.run(["sync"], check=False)
        first = snapshot_once(root, store, jobs / "job0" / "code")
        again = [snapshot_once(root, store, jobs / f"job{i + 1}" / "code") for i in range(args.repeats)]
        shutil.rmtree(jobs, ignore_errors=True)
    unchanged = [r["total_s"] for r in again]
    report = {
        "schema": 1, "benchmark": "bench_snapshot", "host": platform.node(), "cpus": os.cpu_count(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "files": args.files, "mb": args.mb,
        "first": first, "unchanged": again, "unchanged_median_s": statistics.median(unchanged),
    }
    print(f"tree: {first['files']} files, {first['bytes'] / 2**20:.1f} MB")
    print(f"first snapshot:      {first['total_s']:.3f} s  (list {first['list_s']:.3f}, guards {first['guards_s']:.3f}, "
          f"store+link {first['store_and_link_s']:.3f}; stored {first['new_bytes_stored'] / 2**20:.1f} MB)  target < 3 s")
    print(f"unchanged resubmit:  {statistics.median(unchanged):.3f} s median of {len(unchanged)} "
          f"(min {min(unchanged):.3f}, max {max(unchanged):.3f}; stored {again[-1]['new_bytes_stored']} B)  target < 0.3 s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench_snapshot-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
