"""Command jobs: a list of strings run as a process inside the job; its exit code decides success."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ._errors import CommandFailed

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # what Slurm (scancel, time limit, requeue) and the local controller send to end a task
TEXT_LIMIT = 1 << 20  # the text a result holds of each stream: its last MiB (the whole output stays in the log files)


@dataclass(frozen=True)
class CommandResult:
    """What a command job returns: its exit code, its output as text, and the log files.

    ``stdout`` and ``stderr`` hold what the command itself wrote (the last MiB of each, as
    ``subprocess.run(..., text=True)`` would give it); ``stdout_path`` and ``stderr_path`` are the
    task's log files, which hold all of it.
    """

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    stdout_path: Path
    stderr_path: Path

    def __setstate__(self, state: dict[str, object]) -> None:
        """A result pickled by an older aifsdk held the log paths under ``stdout``/``stderr``."""
        if isinstance(state.get("stdout"), Path) and "stdout_path" not in state:
            state = {**state, "stdout_path": state["stdout"], "stderr_path": state["stderr"]}
            state["stdout"], state["stderr"] = (_read_from(Path(state[k]), 0) for k in ("stdout_path", "stderr_path"))  # type: ignore[arg-type]
        object.__setattr__(self, "__dict__", state)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    """The text written to ``path`` after ``offset`` (its last TEXT_LIMIT bytes)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            start = max(offset, end - TEXT_LIMIT)
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return f"[{start - offset} earlier bytes in {path}]\n{text}" if start > offset else text


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
        offsets = _size(paths.stdout), _size(paths.stderr)
        start = time.monotonic()
        # A process group of its own: a stop reaches every process the command started (a shell
        # waits for its child before it acts on SIGINT), as a terminal's Ctrl-C or Slurm's kill would.
        proc = subprocess.Popen(argv, cwd=cwd, env=child_env, start_new_session=True)
        forwarded, stopped = {}, []

        def forward(sig: int, _frame: object) -> None:
            if sig not in STOP_SIGNALS:
                proc.send_signal(sig)  # e.g. a checkpoint signal: to the command alone, not to its helpers
                return
            stopped.append(sig)
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass  # every process of the command has exited

        for sig in (*STOP_SIGNALS, signal.SIGUSR1):
            forwarded[sig] = signal.signal(sig, forward)
        try:
            code = proc.wait()
        finally:
            for sig, handler in forwarded.items():
                signal.signal(sig, handler)
        exit_code_file(paths.folder, env.job_id, env.global_rank).write_text(f"{code}\n")
        if stopped:
            # The scheduler (or the local controller) ends this attempt: a cancel, the time limit, a
            # requeue or a preemption. No result is written, so that the job's state says how it
            # ended, and a requeued job's result is that of the attempt that runs to the end.
            name = signal.Signals(stopped[0]).name
            print(f"aifsdk: the command got {name} from outside (a cancel, the time limit, a requeue or a preemption) and exited "
                  f"with code {code}; no result is recorded for this attempt", file=sys.stderr, flush=True)
            sys.exit(128 + stopped[0])  # the job runner saves no result for an exit
        if code != 0:
            raise CommandFailed(f"command {list(self.argv)} exited with code {code} on {env.hostname} (rank {env.global_rank})")
        duration = time.monotonic() - start
        return CommandResult(self.argv, code, _read_from(paths.stdout, offsets[0]), _read_from(paths.stderr, offsets[1]), duration,
                             paths.stdout, paths.stderr)
