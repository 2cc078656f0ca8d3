"""An unmodified torchrun-style training script: it only reads RANK, LOCAL_RANK, WORLD_SIZE and
MASTER_ADDR/MASTER_PORT and calls init_process_group. Nothing in it knows about aifsdk or Slurm.

    aifsdk submit --site slurm --nodes 2 -- python examples/ddp_train.py --steps 20 --out run.json
    aifsdk submit --site slurm --nodes 2 --launcher torchrun -- python examples/ddp_train.py --steps 20
    torchrun --nproc_per_node=2 examples/ddp_train.py            # without aifsdk, the same script

As a function job (examples/ddp_function.py):

    aifsdk.submit(ddp_train.train, 20, site="slurm", nodes=2, tasks_per_node=1)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


def train(steps: int = 10) -> dict:
    """One DDP run on synthetic data; every rank returns the same summary. Works as a function
    job (aifsdk.submit(train, 20, site=..., nodes=2)) and from main() as a script."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")

    torch.manual_seed(0)
    model = DDP(torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)).to(device))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1000 + rank)  # each rank sees different data
    for _ in range(steps):
        x = torch.randn(16, 32, generator=gen).to(device)
        loss = (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)  # every rank ends with the same all-reduced value
    mean_loss /= world
    flat = torch.cat([p.detach().flatten().cpu() for p in model.parameters()])
    digest = hashlib.sha256(flat.numpy().tobytes()).hexdigest()[:16]
    digests: list[str] = [""] * world
    dist.all_gather_object(digests, digest)
    hosts: list[str] = [""] * world
    dist.all_gather_object(hosts, os.environ.get("SLURMD_NODENAME", socket.gethostname()))
    summary = {"rank": rank, "world_size": world, "hosts": hosts, "weights_sha": digests, "mean_loss": float(mean_loss)}
    print(f"rank {rank}/{world} on {hosts[rank]}: mean loss {float(mean_loss):.4f} weights {digest}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default="", help="rank 0 writes a JSON summary here")
    args = parser.parse_args()
    summary = train(args.steps)
    if summary["rank"] == 0 and args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f)


if __name__ == "__main__":
    main()
