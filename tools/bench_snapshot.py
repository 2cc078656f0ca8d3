"""Snapshot cost: a 10,000-file, 100 MB tree, first snapshot and an unchanged resubmit.

    .venv/bin/python -m tools.bench_snapshot [--files 10000] [--mb 100] [--repeats 5] [--content source filler]

Targets: first snapshot under 3 s, an unchanged resubmit under 0.3 s, on a 2-core
machine. Each figure covers what submit adds for the snapshot: listing the files (git), the
secret and size guards (each file read once, hashed and scanned, the result kept in the user's
file index), appending new content to one pack and writing the snapshot manifest. The unchanged
resubmit is measured twice: in the same process, and as a new process would see it (the file
index read back from disk). Two kinds of content: ``source`` (text of the Python standard
library's own modules, what the secret scan meets in practice) and ``filler`` (one synthetic
line repeated, the scan's worst case). The cost moved to the job's start is measured too: for the
first job of a snapshot, extracting it into the store's tree (each object's sha256 checked) and
linking the job's code/ folder to it; for two later jobs of the same snapshot, linking and checking
the links against the tree's record; and the check a second task or a requeue makes. Results go to results/bench_snapshot-*.json with raw samples
and the load average.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import write_report  # noqa: E402


def _stdlib_text() -> str:
    """Real Python source: the standard library's own modules, concatenated."""
    lib = Path(os.__file__).parent
    parts = [p.read_text(errors="ignore") for p in sorted(lib.glob("*.py"))[:200]]
    return "\n".join(parts)


def make_tree(root: Path, files: int, total_mb: float, content: str = "source") -> None:
    """A source-like tree: many small text files in nested packages, committed to git."""
    size = int(total_mb * 2**20 / files)
    if content == "filler":
        line = "value = 'abcdefghijklmnopqrstuvwxyz0123456789'  # filler line of a source file\n"
        text = line * (size // len(line) + 1)
    else:
        text = _stdlib_text()
    for i in range(files):
        path = root / f"pkg{i // 500:03d}" / f"sub{(i // 50) % 10}" / f"mod{i:05d}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        at = (i * 7919) % max(1, len(text) - size)  # each file a different slice
        path.write_text(f"# module {i}\n" + text[at:at + size])
    git = ["git", "-C", str(root), "-c", "gc.auto=0", "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "tree"], check=True)  # no background gc racing the clean-up


def snapshot_once(root: Path, store: Path, folder: Path, new_process: bool = False) -> dict[str, float]:
    from aifsdk import _snapshot as snap
    from aifsdk._paths import make_private_dir

    if new_process:
        snap._INDEX = None  # what a new process starts from: the file index on disk
    t0 = time.perf_counter()
    names = snap.list_files(root)
    t1 = time.perf_counter()
    problems = snap.check_secrets(root, names, ()) + snap.check_size(root, names, 300.0)
    t2 = time.perf_counter()
    make_private_dir(folder)  # the job folder, as submit makes it
    result = snap.take(root, store, names, folder)
    t3 = time.perf_counter()
    assert not problems and result.files == len(names)
    return {"list_s": t1 - t0, "guards_s": t2 - t1, "store_s": t3 - t2, "total_s": t3 - t0,
            "files": result.files, "bytes": result.bytes, "new_bytes_stored": result.copied_bytes,
            "packs": len(list((store / "packs").glob("*.pack")))}


def materialise_once(folder: Path) -> dict[str, float]:
    """The job side: fill <folder>/code (the first job of a snapshot extracts it into the store's
    tree, checking every object's sha256; every job links to the tree), then what a second task or
    a requeue pays (finds it complete)."""
    from aifsdk._pack import materialise

    subprocess.run(["sync"], check=False)
    t0 = time.perf_counter()
    assert materialise(folder)
    t1 = time.perf_counter()
    assert not materialise(folder)
    t2 = time.perf_counter()
    return {"extract_s": t1 - t0, "again_s": t2 - t1}


def run(content: str, files: int, mb: float, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AIFSDK_HOME"] = str(Path(tmp) / "home")  # an empty file index
        root, store, jobs = Path(tmp) / "project", Path(tmp) / "store", Path(tmp) / "jobs"
        make_tree(root, files, mb, content)
        subprocess.run(["sync"], check=False)
        load = os.getloadavg()[0]
        first = snapshot_once(root, store, jobs / "job0")
        same = [snapshot_once(root, store, jobs / f"same{i}") for i in range(repeats)]
        fresh = [snapshot_once(root, store, jobs / f"fresh{i}", new_process=True) for i in range(repeats)]
        # the first job of the snapshot, then up to two later ones
        node = [materialise_once(jobs / f) for f in ("job0", *(f"same{i}" for i in range(min(2, repeats))))]
        load_end = os.getloadavg()[0]
    med = {k: statistics.median(r["total_s"] for r in v) for k, v in (("same", same), ("fresh", fresh))}
    print(f"[{content}] tree: {first['files']} files, {first['bytes'] / 2**20:.1f} MB (load average {load:.2f} at start, "
          f"{load_end:.2f} at end)")
    print(f"  first snapshot:      {first['total_s']:.3f} s  (list {first['list_s']:.3f}, guards {first['guards_s']:.3f}, "
          f"store {first['store_s']:.3f}; packed {first['new_bytes_stored'] / 2**20:.1f} MB)  target < 3 s")
    for key, label in (("same", "same process"), ("fresh", "new process")):
        runs = same if key == "same" else fresh
        totals = [r["total_s"] for r in runs]
        print(f"  unchanged, {label + ':':14s} {med[key]:.3f} s median of {len(totals)} (min {min(totals):.3f}, max {max(totals):.3f}; "
              f"stored {runs[-1]['new_bytes_stored']} B, packs {runs[-1]['packs']})  target < 0.3 s")
    later = ", ".join(f"{n['extract_s']:.3f}" for n in node[1:])
    print(f"  job start (node):    first job of the snapshot {node[0]['extract_s']:.3f} s (extract and check {first['files']} "
          f"files into the store's tree, then link code/ to it); later jobs {later} s (link and check); "
          f"{node[0]['again_s'] * 1000:.1f} ms for a second task or a requeue")
    return {"content": content, "load_average_1m": load, "load_average_1m_end": load_end, "first": first,
            "unchanged_same_process": same, "unchanged_new_process": fresh, "unchanged_median_s": med, "materialise": node}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--content", nargs="+", choices=("source", "filler"), default=["source", "filler"])
    parser.add_argument("--out", default="results")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give 1 or more (5 by default)")
    runs = [run(c, args.files, args.mb, args.repeats) for c in args.content]
    report = {
        "schema": 2, "benchmark": "bench_snapshot", "host": platform.node(), "cpus": os.cpu_count(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "files": args.files, "mb": args.mb,
        "runs": runs,
    }
    print(f"written {write_report(args.out, 'bench_snapshot', report)}")


if __name__ == "__main__":
    main()
