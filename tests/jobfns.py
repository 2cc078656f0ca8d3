"""Functions submitted by the tests (importable, so pickles refer to them by name)."""

from __future__ import annotations

import os
import socket
import time


def double(x: int) -> int:
    return 2 * x


def boom(message: str) -> None:
    raise RuntimeError(f"boom: {message}")


def sleep_then(seconds: float, value: object) -> object:
    time.sleep(seconds)
    return value


def whoami() -> dict:
    import submitit

    env = submitit.JobEnvironment()
    return {
        "host": socket.gethostname(),
        "node": os.environ.get("SLURMD_NODENAME"),
        "rank": env.global_rank,
        "local_rank": env.local_rank,
        "world": env.num_tasks,
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "account": os.environ.get("SLURM_JOB_ACCOUNT"),
        "partition": os.environ.get("SLURM_JOB_PARTITION"),
    }
