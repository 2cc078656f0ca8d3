"""Comparing two runs of one measurement: a change is claimed only when a test supports it.

:func:`compare` takes the raw samples of both runs and answers one of:

- ``not comparable``: either side has fewer than :data:`MIN_SAMPLES` samples or was flagged
  UNSTABLE when measured (see :func:`benchmarks._stats.summarize`); the reason is given and no
  ratio is interpreted, since no test means much on such samples;
- ``faster`` / ``slower``: the two-sided Mann-Whitney U test rejects "same distribution" at
  ``alpha`` (0.05) *and* the bootstrap 95 % confidence interval of the ratio of medians
  (new / base) excludes 1; both are printed;
- ``no significant change``: otherwise, with the same p-value and interval.

The Mann-Whitney p-value is exact (the distribution of U by counting, the Gaussian binomial
coefficients) when there are no ties and both samples are small (``n1 + n2 <= 60``); otherwise it
is the normal approximation with the tie correction and a continuity correction, as
``scipy.stats.mannwhitneyu(method="asymptotic")`` computes it. The bootstrap resamples each side
with replacement ``resamples`` times from a seeded generator, so a report is reproducible.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ._stats import Summary

MIN_SAMPLES = 5
ALPHA = 0.05
EXACT_MAX_N = 60

Verdict = Literal["faster", "slower", "no significant change", "not comparable"]


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) of ``values`` and the sizes of the groups of ties."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


def _u_counts(n1: int, n2: int) -> list[int]:
    """How many of the C(n1+n2, n1) orderings give U = 0, 1, ..., n1*n2 (no ties): the
    coefficients of the Gaussian binomial [n1+n2 choose n1]_q."""
    poly = [1]
    for i in range(1, n1 + 1):  # multiply by (1 - q^(n2+i)), then divide by (1 - q^i)
        shift = n2 + i
        grown = poly + [0] * shift
        for d in range(len(poly)):
            grown[d + shift] -= poly[d]
        for d in range(i, len(grown)):  # division by (1 - q^i): a running sum with stride i
            grown[d] += grown[d - i]
        poly = grown[: n1 * n2 + 1] if len(grown) > n1 * n2 + 1 else grown
    return poly[: n1 * n2 + 1]


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(U of ``a``, two-sided p-value) of the Mann-Whitney U test of ``a`` against ``b``."""
    n1, n2 = len(a), len(b)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"Mann-Whitney U needs samples on both sides, got {n1} and {n2}")
    ranks, ties = _ranks(list(a) + list(b))
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    if not ties and n1 + n2 <= EXACT_MAX_N:
        counts = _u_counts(n1, n2)
        total = sum(counts)
        low = min(u1, n1 * n2 - u1)
        tail = sum(counts[: int(low) + 1]) / total
        return u1, min(1.0, 2 * tail)
    n = n1 + n2
    mu = n1 * n2 / 2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1)) if n > 1 else 0.0
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term))
    if sigma == 0:
        return u1, 1.0
    z = (abs(u1 - mu) - 0.5) / sigma
    return u1, min(1.0, 2 * (1 - statistics.NormalDist().cdf(max(z, 0.0))))


def bootstrap_ratio_ci(base: Sequence[float], new: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of median(new) / median(base)."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        mb = statistics.median(rng.choices(base, k=len(base)))
        mn = statistics.median(rng.choices(new, k=len(new)))
        ratios.append(mn / mb if mb else math.inf)
    ratios.sort()
    lo = ratios[int((1 - confidence) / 2 * (resamples - 1))]
    hi = ratios[int((1 + confidence) / 2 * (resamples - 1))]
    return lo, hi


@dataclass(frozen=True)
class Comparison:
    """``new`` against ``base``: the ratio of medians, the verdict and what supports it."""

    ratio: float
    verdict: Verdict
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    reason: str | None = None

    def text(self) -> str:
        if self.verdict == "not comparable":
            return f"not comparable: {self.reason}"
        assert self.ci is not None and self.p_value is not None
        return (f"{self.verdict} (x{self.ratio:.3f}, 95% CI x{self.ci[0]:.3f}-x{self.ci[1]:.3f}, "
                f"Mann-Whitney p={self.p_value:.2g})")


def _not_comparable(side: str, summary: Summary) -> str | None:
    if summary.n < MIN_SAMPLES:
        return f"{side} has {summary.n} sample(s), fewer than {MIN_SAMPLES}; rerun with timing.min_samples={MIN_SAMPLES * 2} or more"
    if summary.unstable:
        return f"{side} is UNSTABLE (CV {summary.cv:.0%}); rerun on an idle node or with a longer timing.min_time_s"
    return None


def compare(base: Sequence[float], new: Sequence[float], base_summary: Summary, new_summary: Summary,
            higher_is_better: bool = True, alpha: float = ALPHA) -> Comparison:
    """Compare the samples of two runs (see the module docstring for the rule)."""
    ratio = new_summary.median / base_summary.median if base_summary.median else math.inf
    reasons = [r for r in (_not_comparable("the baseline", base_summary), _not_comparable("this run", new_summary)) if r]
    if len(base) != base_summary.n or len(new) != new_summary.n:
        reasons.append("the raw samples are missing (a Parquet-only run); compare the runs' results.json")
    if reasons:
        return Comparison(ratio, "not comparable", reason="; ".join(reasons))
    _, p = mann_whitney_u(new, base)
    ci = bootstrap_ratio_ci(base, new)
    if p < alpha and not ci[0] <= 1.0 <= ci[1]:
        better = ratio > 1 if higher_is_better else ratio < 1
        return Comparison(ratio, "faster" if better else "slower", p, ci)
    return Comparison(ratio, "no significant change", p, ci)
