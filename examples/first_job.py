"""A first job: a tiny function run on the default site `local` (no cluster needed).

    python examples/first_job.py                 # site local
    python examples/first_job.py --site slurm    # the Slurm cluster this machine submits to
"""

from __future__ import annotations

import argparse
import platform

import aifsdk


def hello(steps: int) -> dict:
    total = sum(i * i for i in range(steps))
    return {"host": platform.node(), "python": platform.python_version(), "sum_of_squares": total}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site", default="local")
    args = parser.parse_args()
    plan = aifsdk.plan(hello, 1000, site=args.site, time="5min")
    print(plan.summary(), "\n")
    job = plan.submit()
    print(f"submitted job {job.job_id}; logs in {job.folder}")
    print("result:", job.result(timeout=600))


if __name__ == "__main__":
    main()
