"""Two nodes, one task each: every task reports where it ran and its rank.

    python examples/two_nodes.py --site slurm
"""

from __future__ import annotations

import argparse
import os
import socket

import aifsdk


def where_am_i() -> dict:
    import submitit

    env = submitit.JobEnvironment()
    return {"rank": env.global_rank, "of": env.num_tasks, "node": os.environ.get("SLURMD_NODENAME", socket.gethostname())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", default="slurm")
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    job = aifsdk.submit(where_am_i, site=args.site, nodes=args.nodes, tasks_per_node=1, time="10min")
    for row in job.results(timeout=600):
        print(row)


if __name__ == "__main__":
    main()
