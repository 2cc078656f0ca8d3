"""The DDP example as a function job: the same train() as examples/ddp_train.py, submitted from
Python; every rank returns its summary.

    python examples/ddp_function.py --site slurm --nodes 2
"""

from __future__ import annotations

import argparse
import os
import sys

import aifsdk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddp_train  # noqa: E402  (the example next to this file)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", default="slurm")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    job = aifsdk.submit(ddp_train.train, args.steps, site=args.site, nodes=args.nodes, tasks_per_node=1, time="10min")
    for row in job.results(timeout=600):
        print(row)


if __name__ == "__main__":
    main()
