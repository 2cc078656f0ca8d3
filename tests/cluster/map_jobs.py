"""Functions the packed-map tests run on the cluster (importable, so pickles refer to them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def square_and_say(x: int) -> int:
    print(f"item {x} says hello")
    return x * x


def pick(item: tuple) -> object:
    """("ok", v) returns v; ("raise", msg) raises; ("segv",) kills its worker with SIGSEGV;
    ("flaky", path) fails the first time (it leaves a mark at path), then returns "recovered"."""
    kind = item[0]
    if kind == "raise":
        raise ValueError(item[1])
    if kind == "segv":
        import ctypes

        ctypes.string_at(0)  # a segmentation fault, in C
    if kind == "flaky":
        mark = Path(item[1])
        if not mark.exists():
            mark.write_text("failed once\n")
            raise RuntimeError("flaky: first attempt")
        return "recovered"
    return item[1]


def logged_sleep(item: tuple) -> int:
    """Append "start i" and "end i" lines to a shared file around a sleep; return i."""
    index, seconds, log = item
    with open(log, "a") as f:
        f.write(f"start {index}\n")
    time.sleep(seconds)
    with open(log, "a") as f:
        f.write(f"end {index}\n")
    return index


def devices(_: int) -> dict:
    time.sleep(1.0)  # so that each worker gets one
    return {"cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "cores": sorted(os.sched_getaffinity(0)), "pid": os.getpid()}


def inner_map(n: int) -> list:
    """A packed map submitted from inside a Slurm job (its variables must not reach the inner sbatch)."""
    import aifsdk

    jobs = aifsdk.map(square_and_say, range(n), site="slurm", time=5, pack=2)
    return [j.result(timeout=300) for j in jobs]


def nap(seconds: float) -> int:
    """Wait without computing; return the worker's pid."""
    time.sleep(seconds)
    return os.getpid()


def spin(seconds: float) -> int:
    """Compute (a busy loop) for ``seconds``; return the worker's pid."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return os.getpid()
