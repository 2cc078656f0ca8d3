"""Command jobs: a list of strings run as a process inside the job; its exit code decides success."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommandResult:
    """What a command job returns: its exit code and where its output went."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: Path
    stderr: Path
    duration_s: float


class CommandFailed(RuntimeError):
    """Raised inside the job when the command exits non-zero, so that Slurm marks it FAILED."""


def exit_code_file(folder: Path, job_id: str, task: int) -> Path:
    return Path(folder) / f"{job_id}_{task}_exit_code"


@dataclass(frozen=True)
class CommandTarget:
    """The callable that runs a command on the compute node (pickled by submitit).

    With ``launcher="srun"`` the command gets this task's RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR, ... so an unmodified torchrun-style script runs as one rank. With
    ``launcher="torchrun"`` (one task per node) it runs under torchrun, which starts
    ``nproc_per_node`` ranks on this node.
    """

    argv: tuple[str, ...]
    cwd: str
    launcher: str = "srun"
    nnodes: int = 1
    nproc_per_node: int = 1

    def command(self) -> tuple[list[str], dict[str, str]]:
        from ._distributed import rank_environment, torchrun_argv

        env = dict(os.environ)
        if self.launcher == "torchrun":
            return torchrun_argv(list(self.argv), nnodes=self.nnodes, nproc_per_node=self.nproc_per_node), env
        env.update(rank_environment())
        return list(self.argv), env

    def __call__(self) -> CommandResult:
        import submitit

        env = submitit.JobEnvironment()
        paths = env.paths
        sys.stdout.flush()
        sys.stderr.flush()
        cwd = self.cwd if os.path.isdir(self.cwd) else None
        argv, child_env = self.command()
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=child_env)
        forwarded = {}
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            forwarded[sig] = signal.signal(sig, lambda s, _f: proc.send_signal(s))
        try:
            code = proc.wait()
        finally:
            for sig, handler in forwarded.items():
                signal.signal(sig, handler)
        exit_code_file(paths.folder, env.job_id, env.global_rank).write_text(f"{code}\n")
        if code != 0:
            raise CommandFailed(f"command {list(self.argv)} exited with code {code} on {env.hostname} (rank {env.global_rank})")
        return CommandResult(self.argv, code, paths.stdout, paths.stderr, time.monotonic() - start)
