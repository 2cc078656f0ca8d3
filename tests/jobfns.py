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


def when_file(path: str, value: object, limit_s: float = 900.0) -> object:
    """Return ``value`` once ``path`` exists (the test decides when the job ends)."""
    deadline = time.monotonic() + limit_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {limit_s:.0f} s")
        time.sleep(0.2)
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


def allreduce_rank_sum() -> dict:
    """Every rank contributes rank+1; all_reduce gives the same sum everywhere."""
    import torch
    import torch.distributed as dist

    import aifsdk

    with aifsdk.distributed() as d:
        t = torch.tensor([float(d["rank"] + 1)])
        dist.all_reduce(t)
        return {"rank": d["rank"], "world": d["world_size"], "sum": float(t.item()), "node": os.environ.get("SLURMD_NODENAME"),
                "master": os.environ["MASTER_ADDR"], "port": os.environ["MASTER_PORT"]}


def submit_from_inside() -> dict:
    """A job that submits another job (e.g. an evaluation) and waits for it."""
    import aifsdk

    outer = {k: os.environ.get(k) for k in ("SLURM_JOB_ID", "RANK", "WORLD_SIZE")}
    inner = aifsdk.submit(inner_view, site="slurm", time=5)
    return {"outer": outer, "inner": inner.result(timeout=120), "inner_id": inner.job_id}


def inner_view() -> dict:
    return {k: os.environ.get(k) for k in ("SLURM_JOB_ID", "SLURM_NTASKS", "WORLD_SIZE", "SLURM_CONF", "SLURM_JOB_NUM_NODES")}


class CountingTrainer:
    """A checkpointable training loop (submitit's Checkpointable protocol): on the preemption or
    time-limit signal, rank 0's checkpoint() saves the step reached and returns what to resume."""

    def __init__(self) -> None:
        self.step = 0
        self.total = 0  # the "model": a running sum that an uninterrupted run computes too
        self.resumed_from: list[int] = []

    def __call__(self, steps: int, step_s: float) -> dict:
        if self.step:
            self.resumed_from.append(self.step)
        while self.step < steps:
            time.sleep(step_s)
            self.step += 1
            self.total += self.step * self.step
            print(f"step {self.step}", flush=True)
        return {"step": self.step, "total": self.total, "resumed_from": self.resumed_from,
                "restarts": os.environ.get("SLURM_RESTART_COUNT")}

    def checkpoint(self, *args: object, **kwargs: object) -> object:
        import submitit

        print(f"checkpoint at step {self.step}", flush=True)
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)
