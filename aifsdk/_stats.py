"""The one percentile definition of aifsdk and its benchmarks.

Linear interpolation between order statistics (numpy's default, the ``'inclusive'`` method of
:func:`statistics.quantiles`): the p-quantile of sorted values ``x[0..n-1]`` sits at position
``p * (n - 1)``. :func:`aifsdk.measure`, the benchmark rows and the tools all use it, so a P10 or
P90 means the same thing in every output.

The mean of step times and its confidence interval are here too: they are what a wall-time
prediction rests on. A run's wall time is the sum of its steps, so its rate is the mean step time,
not the median: with skewed steps (a slow step every so often: data loading, garbage collection,
a checkpoint flush) the median predicts a long run too short. The interval is Student's t
interval of the mean, ``mean +- t(1 - alpha/2, n - 1) x s / sqrt(n)``; the t quantile comes from
the Cornish-Fisher expansion of the normal one (Abramowitz and Stegun 26.7.5), within 0.2 % of the
exact quantile for 3 or more degrees of freedom, and from the closed forms for 1 and 2, so no
statistics library is needed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from ._errors import Problem, RequestError


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-quantile (0 <= p <= 1) of ``values`` by linear interpolation."""
    if not values:
        raise RequestError([Problem("values", values, "at least one sample (a percentile of no values is undefined)", "measure at least one sample")])
    if not 0.0 <= p <= 1.0:
        raise RequestError([Problem("p", p, "0 <= p <= 1", "pass a fraction (0.9 for P90)")])
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def t_quantile(p: float, dof: int) -> float:
    """The ``p``-quantile of Student's t distribution with ``dof`` degrees of freedom."""
    if dof < 1:
        raise RequestError([Problem("dof", dof, ">= 1 (a t interval needs at least 2 values)", "measure at least 2 values")])
    if dof == 1:
        return math.tan(math.pi * (p - 0.5))
    if dof == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = statistics.NormalDist().inv_cdf(p)
    v = float(dof)
    terms = (
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    )
    return z + sum(term / v ** (i + 1) for i, term in enumerate(terms))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its ``confidence`` t interval (the interval
    is the mean itself when there is a single value)."""
    if not values:
        raise RequestError([Problem("values", values, "at least one value (the mean of no values is undefined)", "measure at least one step")])
    if not 0 < confidence < 1:
        raise RequestError([Problem("confidence", confidence, "0 < confidence < 1", "e.g. 0.95")])
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = t_quantile(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half
