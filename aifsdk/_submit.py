"""``plan(...).submit()``: a checked plan becomes a :class:`~aifsdk.Job`.

The planner (:mod:`aifsdk._plan`) checks a request and renders its script, and knows nothing of
jobs; :mod:`aifsdk._launch` submits a plan and returns its manifest; :class:`~aifsdk.Job`
follows the job. This module joins them: :class:`Plan` is the planner's plan with ``submit()``.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any

from . import _plan
from ._job import Job
from ._launch import launch


class Plan(_plan.Plan):
    __doc__ = _plan.Plan.__doc__

    def submit(self) -> Job:
        """Submit exactly this plan: create its folder, take its snapshot, queue its script.
        Budget warnings are issued first (Python's ``warnings``, category ``UserWarning``), so a
        script that calls ``aifsdk.submit`` sees them too."""
        for warning in self.warnings:
            warnings.warn(f"aifsdk: {warning} (strict=True refuses such requests)", UserWarning, stacklevel=2)
        record, handle = launch(self)
        return Job._from_record(record, submitit_job=handle)


@functools.wraps(_plan.plan)
def plan(*args: Any, **kwargs: Any) -> Plan:
    planned = _plan.plan(*args, **kwargs)
    return Plan(**{f.name: getattr(planned, f.name) for f in dataclasses.fields(planned)})
