"""Pooling the samples of interleaved rounds (benchmarks/_rounds.py) on hand-made rows."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from benchmarks._rounds import merge_rounds
from benchmarks.results import Row


def row(case: str, values: list[float], device: str = "cpu", **extra: Any) -> Row:
    return Row("matmul", case, values=values, times_s=[1 / v for v in values], params={"dtype": "fp32", "device": device, "shape": case},
               reference={"peak": 10.0, "achievable": 5.0}, extra=dict(extra))


def best_of(rows: list[Row]) -> Row:
    top = max(rows, key=lambda r: r.stats.median)
    return dataclasses.replace(top, case="fp32 best", extra={"best_shape": top.params})


def test_samples_pooled_and_figures_recomputed() -> None:
    r1 = [row("a", [1.0, 1.0]), row("b", [2.0, 2.0])]
    r2 = [row("a", [3.0, 3.0]), row("b", [1.0, 1.0])]
    r1.append(best_of(r1))
    r2.append(best_of(r2))
    skipped = Row.skip("hostcopy", "skipped", "no GPU")
    merged = [r.to_dict() for r in merge_rounds([[*r1, skipped], [*r2, dataclasses.replace(skipped)]])]
    assert [m["case"] for m in merged] == ["a", "b", "fp32 best", "skipped"]
    a, b, best = merged[:3]
    assert a["values"] == [1.0, 1.0, 3.0, 3.0] and a["stats"]["median"] == 2.0 and a["extra"]["round_medians"] == [1.0, 3.0]
    assert b["stats"]["median"] == 1.5
    assert a["reference"]["pct_of_peak"] == pytest.approx(20.0) and a["reference"]["pct_of_achievable"] == pytest.approx(40.0)
    # round 1's best was b, round 2's was a; pooled, a (median 2.0) beats b (1.5)
    assert best["params"]["shape"] == "a" and best["stats"]["median"] == 2.0 and best["extra"]["best_shape"]["shape"] == "a"


def test_best_is_the_slowest_devices_best_shape() -> None:
    rounds = [[row("a", [4.0], "cuda:0"), row("b", [5.0], "cuda:0"), row("a", [3.0], "cuda:1"), row("b", [2.0], "cuda:1")]]
    rounds[0].append(dataclasses.replace(rounds[0][1], case="fp32 best", extra={"best_shape": {}}))
    best = merge_rounds(rounds)[-1].to_dict()
    assert best["params"]["device"] == "cuda:1" and best["params"]["shape"] == "a" and best["extra"]["per_device_best_median"] == [5.0, 3.0]
