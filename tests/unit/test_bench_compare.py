"""Comparison statistics: Mann-Whitney U against exact enumeration, the bootstrap interval, the verdict rule."""

from __future__ import annotations

import itertools
import random

import pytest

from benchmarks._compare import bootstrap_ratio_ci, compare, mann_whitney_u
from benchmarks._stats import summarize


def _exact_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of U by enumerating every split of the pooled values (no ties)."""
    pooled = a + b
    n1 = len(a)

    def u(first: tuple[int, ...]) -> float:
        xs = [pooled[i] for i in first]
        ys = [pooled[i] for i in range(len(pooled)) if i not in first]
        return sum((x > y) + 0.5 * (x == y) for x in xs for y in ys)

    observed = u(tuple(range(n1)))
    mu = n1 * len(b) / 2
    splits = list(itertools.combinations(range(len(pooled)), n1))
    return sum(abs(u(s) - mu) >= abs(observed - mu) for s in splits) / len(splits)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mann_whitney_exact_p_matches_enumeration(seed: int) -> None:
    rng = random.Random(seed)
    a = [rng.gauss(0, 1) for _ in range(6)]
    b = [rng.gauss(0.8, 1) for _ in range(5)]
    u, p = mann_whitney_u(a, b)
    assert u == sum(x > y for x in a for y in b)
    assert p == pytest.approx(_exact_p(a, b))


def test_mann_whitney_large_samples_and_ties_use_the_normal_approximation() -> None:
    # separated samples: p tiny; identical samples: p = 1
    _, p = mann_whitney_u([float(i) for i in range(40)], [float(i) + 100 for i in range(40)])
    assert p < 1e-10
    _, same = mann_whitney_u([1.0, 1.0, 2.0, 2.0, 3.0] * 10, [1.0, 1.0, 2.0, 2.0, 3.0] * 10)
    assert same == pytest.approx(1.0)


def test_bootstrap_interval_holds_the_ratio_and_is_reproducible() -> None:
    rng = random.Random(5)
    base = [10 + rng.uniform(-0.5, 0.5) for _ in range(30)]
    new = [12 + rng.uniform(-0.5, 0.5) for _ in range(30)]
    lo, hi = bootstrap_ratio_ci(base, new)
    assert 1.1 < lo < 1.2 < hi < 1.3
    assert bootstrap_ratio_ci(base, new) == (lo, hi)


def test_verdicts() -> None:
    rng = random.Random(9)
    base = [10 + rng.uniform(-0.2, 0.2) for _ in range(12)]
    new = [9 + rng.uniform(-0.2, 0.2) for _ in range(12)]
    c = compare(base, new, summarize(base), summarize(new))
    assert c.verdict == "slower" and c.p_value is not None and c.p_value < 0.001 and c.ci is not None and c.ci[1] < 1
    assert compare(base, new, summarize(base), summarize(new), higher_is_better=False).verdict == "faster"
    assert compare(base, base, summarize(base), summarize(base)).verdict == "no significant change"
    few = new[:4]
    c = compare(base, few, summarize(base), summarize(few))
    assert c.verdict == "not comparable" and "4 sample(s), fewer than 5" in c.text()
    noisy = [1.0, 9.0, 3.0, 14.0, 2.0, 8.0]
    c = compare(noisy, base, summarize(noisy), summarize(base))
    assert c.verdict == "not comparable" and "baseline is UNSTABLE" in c.text()
