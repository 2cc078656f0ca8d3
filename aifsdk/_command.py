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
    """The callable that runs a command on the compute node (pickled by submitit)."""

    argv: tuple[str, ...]
    cwd: str

    def __call__(self) -> CommandResult:
        import submitit

        env = submitit.JobEnvironment()
        paths = env.paths
        sys.stdout.flush()
        sys.stderr.flush()
        cwd = self.cwd if os.path.isdir(self.cwd) else None
        start = time.monotonic()
        proc = subprocess.Popen(list(self.argv), cwd=cwd)
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
