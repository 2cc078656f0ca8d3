"""torch.distributed set up right inside a job, the same way on every site.

Two launch modes:

- ``srun`` (one task per GPU, or per requested task): srun starts every process and each gets
  its rank from Slurm. :func:`rank_environment` turns SLURM_* into RANK, WORLD_SIZE, LOCAL_RANK,
  LOCAL_WORLD_SIZE, NODE_RANK and one visible device per process.
- ``torchrun`` (one task per node): srun starts one torchrun per node, which starts one process
  per GPU with c10d rendezvous at MASTER_ADDR:MASTER_PORT. :func:`torchrun_argv` builds it.

MASTER_ADDR (the first node) and MASTER_PORT (derived from the job id, probed free on the first
node) are chosen once in the batch script, which runs on the first node, and reach every task
through srun's environment. Nothing here imports torch at module level.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from ._errors import NodeError

PORT_BASE, PORT_SPAN = 20000, 20000
RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT")
_LEAKY_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_", "SUBMITIT_", "TORCHELASTIC_", "PMI_", "PMIX_", "OMPI_")
_KEEP = ("SLURM_CONF",)


def derived_port(job_id: str | int) -> int:
    """A port every rank can compute from the job id alone (array ids use their base id)."""
    digits = re.sub(r"\D", "", str(job_id).split("_")[0]) or "0"
    return PORT_BASE + int(digits) % PORT_SPAN


def free_port(start: int, host: str = "") -> int:
    """The first port from ``start`` that can be bound here (the batch script runs this on node 0)."""
    for port in list(range(start, PORT_BASE + PORT_SPAN)) + list(range(PORT_BASE, start)):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise NodeError(f"no free TCP port between 20000 and 40000 on {socket.gethostname()} for torch.distributed's rendezvous: "
                    "other processes hold them all; submit again with extra={'exclude': '<this node>'}")


def expand_nodelist(nodelist: str) -> list[str]:
    """'n[1-3,7],gpu01' -> ['n1', 'n2', 'n3', 'n7', 'gpu01'] (the scontrol show hostnames rule)."""
    hosts: list[str] = []
    for match in re.finditer(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist):
        prefix, ranges = match.group(1), match.group(2)
        if not ranges:
            hosts.append(prefix)
            continue
        for part in ranges.split(","):
            lo, _, hi = part.partition("-")
            if not hi:
                hosts.append(prefix + lo)
            else:
                hosts += [f"{prefix}{i:0{len(lo)}d}" for i in range(int(lo), int(hi) + 1)]
    return hosts


def master_lines(python: str) -> list[str]:
    """Batch-script lines choosing MASTER_ADDR and MASTER_PORT once, on the first node."""
    probe = (
        "import sys; from aifsdk._distributed import derived_port, free_port; "
        "print(free_port(derived_port(sys.argv[1])))"
    )
    return [
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        f'export MASTER_PORT="$({python} -c {shlex.quote(probe)} "$SLURM_JOB_ID")"',
    ]


def _visible(env: Mapping[str, str], name: str) -> list[str]:
    value = env.get(name, "")
    return [v for v in value.split(",") if v != ""]


def rank_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The torch.distributed variables for this task, from Slurm's (or submitit local's) variables.

    Device visibility: when a node's tasks and its visible GPUs match one to one, each task sees
    only its own GPU (CUDA_VISIBLE_DEVICES for NVIDIA; ROCR_VISIBLE_DEVICES, and HIP_VISIBLE_DEVICES
    when set, for AMD), so ``cuda:0`` is always the right device.
    """
    env = os.environ if env is None else env
    if "SLURM_PROCID" in env and "SUBMITIT_LOCAL_JOB_ID" not in env:
        rank, world = int(env["SLURM_PROCID"]), int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1")))
        local_rank, node_rank = int(env.get("SLURM_LOCALID", "0")), int(env.get("SLURM_NODEID", "0"))
        per_node = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "1"
        local_world = int(re.match(r"\d+", per_node).group(0))  # "2(x3)" -> 2
        job_id = env.get("SLURM_ARRAY_JOB_ID") or env.get("SLURM_JOB_ID", "0")
        nodes = expand_nodelist(env.get("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST", "localhost")))
    else:  # submitit's local executor: one node
        rank = local_rank = int(env.get("SUBMITIT_LOCAL_GLOBALID", "0"))
        world = local_world = int(env.get("SUBMITIT_LOCAL_NTASKS", "1"))
        node_rank, job_id, nodes = 0, env.get("SUBMITIT_LOCAL_JOB_ID", "0"), ["127.0.0.1"]
    out = {
        "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(local_rank),
        "LOCAL_WORLD_SIZE": str(local_world), "NODE_RANK": str(node_rank), "GROUP_RANK": str(node_rank),
        "MASTER_ADDR": env.get("MASTER_ADDR") or nodes[0],
        "MASTER_PORT": env.get("MASTER_PORT") or str(derived_port(job_id)),
    }
    for name in ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        devices = _visible(env, name)
        if local_world > 1 and len(devices) == local_world:
            out[name] = devices[local_rank]
    return out


def clean_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a job submitted from inside a job: no SLURM_*, rank or launcher
    variables of the outer job (they break gres and torch.distributed), but SLURM_CONF kept."""
    env = os.environ if env is None else env
    return {
        k: v for k, v in env.items()
        if k in _KEEP or not (k.startswith(_LEAKY_PREFIXES) or k in RANK_VARIABLES)
    }


def torchrun_argv(argv: list[str], *, nnodes: int, nproc_per_node: int, python: str = sys.executable,
                  env: Mapping[str, str] | None = None) -> list[str]:
    """``python train.py A`` -> ``python -m torch.distributed.run <c10d options> train.py A``.

    Other commands run under torchrun's ``--no-python``. Runs in each node's one srun task, with
    MASTER_ADDR/MASTER_PORT from the batch script and the node rank from SLURM_NODEID (``env``,
    default this process's environment; a plan shows it with the variables' names).
    """
    env = os.environ if env is None else env
    opts = [
        f"--nnodes={nnodes}", f"--nproc_per_node={nproc_per_node}",
        f"--node_rank={env.get('SLURM_NODEID', '0')}",
        f"--rdzv_id={env.get('SLURM_JOB_ID', 'local')}", "--rdzv_backend=c10d",
        f"--rdzv_endpoint={env.get('MASTER_ADDR', '127.0.0.1')}:{env.get('MASTER_PORT', '29500')}",
    ]
    base = os.path.basename(argv[0])
    if re.fullmatch(r"python(\d+(\.\d+)?)?", base) and len(argv) > 1:
        rest = argv[1:]
        if rest[0] == "-m" and len(rest) > 1:
            return [python, "-m", "torch.distributed.run", *opts, "-m", *rest[1:]]
        return [python, "-m", "torch.distributed.run", *opts, *rest]
    return [python, "-m", "torch.distributed.run", *opts, "--no-python", *argv]


@contextlib.contextmanager
def distributed(backend: str | None = None, timeout_s: float = 600.0) -> Iterator[dict[str, Any]]:
    """Initialise torch.distributed for this task, set its device, and tear down on exit.

    Works the same on 1 process and on many: nccl for CUDA and ROCm, gloo on CPU. Yields
    ``{"rank", "world_size", "local_rank", "device"}``::

        def train(cfg):
            with aifsdk.distributed() as dist:
                model = DDP(Net().to(dist["device"]))
    """
    import datetime

    import torch
    import torch.distributed as tdist

    for key, value in rank_environment().items():
        os.environ.setdefault(key, value)
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():  # also true on ROCm builds
        index = 0 if torch.cuda.device_count() == 1 else local_rank
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        backend = backend or "nccl"
    else:
        device = torch.device("cpu")
        backend = backend or "gloo"
    started = False
    if not tdist.is_initialized():
        tdist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
        started = True
    try:
        yield {"rank": tdist.get_rank(), "world_size": tdist.get_world_size(), "local_rank": local_rank, "device": device}
    finally:
        if started and tdist.is_initialized():
            tdist.destroy_process_group()


class RankedCall:
    """Wraps a function target: exports the rank variables before calling it (picklable)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        os.environ.update(rank_environment())
        return self.fn(*args, **kwargs)

    @staticmethod
    def wrap(fn: Any) -> RankedCall:
        """A checkpointable target (one with ``checkpoint()``, as submitit's Checkpointable) stays one."""
        return CheckpointableRankedCall(fn) if callable(getattr(fn, "checkpoint", None)) else RankedCall(fn)


class CheckpointableRankedCall(RankedCall):
    """Forwards submitit's checkpoint call: on the preemption or time-limit signal, rank 0 calls the
    target's ``checkpoint()``, which returns what to run after the requeue."""

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        resumed = self.fn.checkpoint(*args, **kwargs)
        if resumed is None:
            return None
        from ._run import DelayedSubmission

        return DelayedSubmission(RankedCall.wrap(resumed.function), *resumed.args, **resumed.kwargs)
