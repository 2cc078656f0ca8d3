"""Statistics of benchmark samples against hand-computed cases."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from aifsdk._stats import percentile
from benchmarks._stats import cv_of, summarize

REPO = Path(__file__).resolve().parents[2]


def test_percentiles_interpolate_linearly() -> None:
    values = [4.0, 1.0, 3.0, 2.0, 5.0]  # sorted: 1 2 3 4 5
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.25) == 2.0
    assert percentile(values, 0.10) == pytest.approx(1.4)  # position 0.4 between 1 and 2
    assert percentile(values, 0.90) == pytest.approx(4.6)
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([7.0], 0.9) == 7.0


def test_one_percentile_definition_in_the_sdk_the_suite_and_the_tools() -> None:
    """P10/P90 mean the same thing in every output: no other percentile or quantile function."""
    other = re.compile(r"statistics\.quantiles|np\.(percentile|quantile)|\.quantile\(|def (percentile|quantile)\b")
    found = [f"{path.relative_to(REPO)}:{n}" for folder in ("aifsdk", "benchmarks", "tools") for path in sorted((REPO / folder).rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if other.search(line) and path != REPO / "aifsdk" / "_stats.py"]
    assert found == []


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="p=1.5"):
        percentile([1.0], 1.5)


def test_summary_by_hand() -> None:
    s = summarize([10.0, 12.0, 11.0, 13.0, 9.0])
    assert (s.n, s.median, s.q1, s.q3, s.min, s.max) == (5, 11.0, 10.0, 12.0, 9.0, 13.0)
    assert s.iqr == 2.0
    assert s.mean == 11.0
    assert s.stdev == pytest.approx(math.sqrt(2.5))  # sum of squares 10 over n-1 = 4
    assert s.cv == pytest.approx(math.sqrt(2.5) / 11)
    assert s.unstable and "CV 14.4% > 10%" in s.warning  # sqrt(2.5)/11 = 14.4 %
    assert not summarize([10.0, 12.0, 11.0, 13.0, 9.0], cv_warn=0.2).unstable
    d = s.to_dict()
    assert d["iqr"] == 2.0 and d["p10"] == pytest.approx(9.4)


def test_instability_warning_names_the_cause() -> None:
    s = summarize([1.0, 1.0, 1.0, 3.0])
    assert s.unstable
    assert "CV" in s.warning and "50%" in s.warning and "rerun" in s.warning
    assert not summarize([1.0, 1.05, 0.95, 1.0]).unstable
    assert summarize([1.0, 1.05, 0.95, 1.0], cv_warn=0.01).unstable


def test_cv_of_repeated_figures() -> None:
    assert cv_of([1.0, 1.0, 1.0]) == 0.0
    assert cv_of([9.0, 11.0]) == pytest.approx(math.sqrt(2) / 10)
    with pytest.raises(ValueError, match="at least 2"):
        cv_of([1.0])
