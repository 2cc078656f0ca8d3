"""``aifsdk.plan`` and ``aifsdk.Plan``: a request checked against its site, and submitted as shown.

The planner (:mod:`aifsdk._planner`) checks a request and renders its script, and knows nothing of
jobs; :mod:`aifsdk._launch` submits a plan and returns its manifest; :class:`~aifsdk.Job`
follows the job. :class:`Plan` is the planner's plan with ``submit()``, so it sits above them
all: ``Job.resubmit`` plans again through the planner without it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ._job import Job
from ._launch import launch
from ._planner import CheckedPlan, build_plan
from ._resources import Resources
from ._snapshot import SnapshotOptions


class Plan(CheckedPlan):
    __doc__ = CheckedPlan.__doc__

    def submit(self) -> Job:
        """Submit exactly this plan: create its folder, take its snapshot, queue its script.
        Budget warnings are issued first (Python's ``warnings``, category ``UserWarning``), so a
        script that calls ``aifsdk.submit`` sees them too."""
        for warning in self.warnings:
            warnings.warn(f"aifsdk: {warning} (strict=True refuses such requests)", UserWarning, stacklevel=2)
        record, handle = launch(self)
        return Job._from_record(record, submitit_job=handle)


def plan(
    target: Callable[..., Any] | Sequence[str],
    *args: Any,
    site: str = "local",
    name: str | None = None,
    folder: str | os.PathLike[str] | None = None,
    launcher: str | None = None,
    snapshot: bool | str | os.PathLike[str] | SnapshotOptions = True,
    container: str | os.PathLike[str] | bool | None = None,
    mlflow_run_id: str | None = None,
    after: Any = None,
    strict: bool = False,
    resources: Resources | None = None,
    **fields: Any,
) -> Plan:
    """Check a request and show what would be submitted; submit nothing.

    Takes the same arguments as :func:`aifsdk.submit`. The request is either the keyword
    arguments (``nodes=2, gpus_per_node=4, ...``) or ``resources=aifsdk.Resources(...)``, or both
    where they do not disagree. Raises :class:`~aifsdk.RequestError` (a ``ValueError``) listing
    every problem at once, before anything is written. ``after`` makes the job wait for others
    (see :func:`aifsdk.afterok`, :func:`aifsdk.afterany`).

    aifsdk refuses only what the site refuses or what can never start there. A request the site
    runs but that wastes budget (whole nodes billed for a part of their GPUs, a partition that
    bills more than another that fits) gets a warning in ``Plan.warnings``, with the cheaper
    way; ``strict=True`` turns those warnings into problems of the RequestError.
    """
    return build_plan(target, args, site=site, name=name, folder=folder, launcher=launcher, snapshot=snapshot, container=container,
                      mlflow_run_id=mlflow_run_id, after=after, strict=strict, resources=resources, fields=fields, cwd=os.getcwd(),
                      make=Plan)
