"""Robust statistics for benchmark samples, told honestly.

Percentiles are aifsdk's one definition (:func:`aifsdk._stats.percentile`, linear interpolation
between order statistics, numpy's default), the same as :func:`aifsdk.measure`'s. CV is the sample standard deviation over the mean.
Comparing two runs is :mod:`benchmarks._compare` (a tested verdict, or "not comparable").
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from aifsdk._stats import mean_ci, percentile

CV_WARN = 0.10  # torch.utils.benchmark warns at IQR/median > 10 %; pyperf at std >= 10 % of the mean


@dataclass(frozen=True)
class Summary:
    """Distribution of one measured quantity (all in the quantity's own unit)."""

    n: int
    median: float
    q1: float
    q3: float
    p10: float
    p90: float
    mean: float
    stdev: float
    cv: float
    min: float
    max: float
    unstable: bool
    warning: str | None

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def to_dict(self) -> dict[str, float | int | bool | str | None]:
        out = asdict(self)
        out["iqr"] = self.iqr
        return out


def summarize(values: Sequence[float], cv_warn: float = CV_WARN) -> Summary:
    """Median, quartiles, P10/P90, mean, stdev, CV, and an instability warning.

    The warning fires when CV > ``cv_warn`` or when min or max lies 50 % or more from the mean
    (pyperf's checks); it names the figure and what to do.
    """
    if not values:
        raise ValueError("no samples to summarize: the benchmark measured nothing")
    vals = [float(v) for v in values]
    mean = statistics.fmean(vals)
    stdev = statistics.stdev(vals) if len(vals) > 1 else 0.0
    cv = stdev / abs(mean) if mean else 0.0
    lo, hi = min(vals), max(vals)
    reasons = []
    if cv > cv_warn:
        reasons.append(f"CV {cv:.1%} > {cv_warn:.0%}")
    if mean and (abs(lo - mean) >= 0.5 * abs(mean) or abs(hi - mean) >= 0.5 * abs(mean)):
        reasons.append("min or max is 50% or more from the mean")
    warning = None
    if reasons:
        warning = ("unstable: " + "; ".join(reasons)
                   + ". Other load on the machine, throttling or too few samples; rerun on an idle node or raise min_time_s")
    return Summary(n=len(vals), median=percentile(vals, 0.5), q1=percentile(vals, 0.25), q3=percentile(vals, 0.75),
                   p10=percentile(vals, 0.10), p90=percentile(vals, 0.90), mean=mean, stdev=stdev, cv=cv,
                   min=lo, max=hi, unstable=bool(reasons), warning=warning)


def cv_of(values: Sequence[float]) -> float:
    """Coefficient of variation (sample stdev / mean) of a few repeated figures."""
    if len(values) < 2:
        raise ValueError(f"CV needs at least 2 values, got {len(values)}")
    mean = statistics.fmean(values)
    return statistics.stdev(values) / abs(mean) if mean else 0.0


def step_time(times_s: Sequence[float]) -> dict[str, float | list[float]]:
    """The median step (for reporting) and the mean step with its 95 % t interval (a long run's
    wall time is a sum of steps, so predictions use the mean), in seconds."""
    mean, low, high = mean_ci(times_s)
    return {"median_s": percentile(times_s, 0.5), "mean_s": mean, "mean_ci95_s": [low, high]}
