"""The one percentile definition of aifsdk and its benchmarks.

Linear interpolation between order statistics (numpy's default, the ``'inclusive'`` method of
:func:`statistics.quantiles`): the p-quantile of sorted values ``x[0..n-1]`` sits at position
``p * (n - 1)``. :func:`aifsdk.measure`, the benchmark rows and the tools all use it, so a P10 or
P90 means the same thing in every output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-quantile (0 <= p <= 1) of ``values`` by linear interpolation."""
    if not values:
        raise ValueError("percentile of no values: measure at least one sample")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: allowed 0 <= p <= 1. Fix: pass a fraction (0.9 for P90)")
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
