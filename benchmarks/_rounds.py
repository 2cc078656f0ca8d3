"""Interleaved rounds: run the whole suite several times in turn and pool each figure's samples.

On a shared or virtualised machine, slow spells last seconds: a benchmark measured in one
window of half a second can fall wholly inside one and report a median 10-25 % off, while the
next benchmark is untouched. With ``rounds=R`` the suite runs every benchmark once per round, in
the same order, so each figure's samples come from R windows spread over the whole run, and the
median of the pooled samples needs a slow spell in more than half of them to move (the same
idea as pyperf's several worker processes, and as interleaving the methods of a comparison).

:func:`merge_rounds` pools rows of the same (benchmark, case, device): samples concatenated,
statistics and reference percentages follow from the pooled samples (:class:`benchmarks.results.Row`), step-time figures and energy per item recomputed, each
round's median kept in ``extra.round_medians``. Rows that pick a best shape (``extra.best_shape``,
the matmul search) are chosen again from the pooled rows: the best shape per device, then the
slowest device. Benchmarks that submit jobs run once whatever ``rounds`` says.
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from ._stats import summarize
from .results import Row

Key = tuple[str, str, Any]


def _key(row: Row) -> Key:
    return row.benchmark, row.case, row.params.get("device")


def _pooled(rows: list[Row]) -> Row:
    first = rows[0]
    times = [t for r in rows for t in r.times_s]
    energies = [r.energy_per_item_j for r in rows if r.energy_per_item_j is not None]
    extra = dict(first.extra)
    if "step_time_median_s" in extra:
        step = summarize(times)
        extra.update(step_time_median_s=step.median, step_time_iqr_s=step.iqr, step_time_p10_s=step.p10, step_time_p90_s=step.p90)
        if extra.get("flops_per_step") and step.median:
            extra["achieved_tflops"] = extra["flops_per_step"] / step.median / 1e12
    if "peak_memory_bytes" in extra:
        extra["peak_memory_bytes"] = max(int(r.extra.get("peak_memory_bytes") or 0) for r in rows)
    extra.update(rounds=len(rows), round_medians=[r.stats.median for r in rows])
    return dataclasses.replace(first, times_s=times, values=[v for r in rows for v in r.values], extra=extra,
                               energy_per_item_j=statistics.median(energies) if energies else None,
                               telemetry_rounds=[r.telemetry for r in rows] if len(rows) > 1 else None)


def _rebest(best: Row, pooled: list[Row]) -> Row:
    dtype = best.params.get("dtype")
    candidates = [r for r in pooled if r.benchmark == best.benchmark and "best_shape" not in r.extra and r.params.get("dtype") == dtype
                  and r.measured]
    if not candidates:
        return best
    per_device: dict[Any, Row] = {}
    for r in candidates:
        device = r.params.get("device")
        if device not in per_device or r.stats.median > per_device[device].stats.median:
            per_device[device] = r
    worst = min(per_device.values(), key=lambda r: r.stats.median)
    extra = dict(best.extra, best_shape=worst.params, slowest_device=worst.params.get("device"),
                 per_device_best_median=[r.stats.median for r in per_device.values()],
                 rounds=worst.extra.get("rounds"), round_medians=worst.extra.get("round_medians"))
    return dataclasses.replace(worst, case=best.case, extra=extra)


def merge_rounds(rounds: list[list[Row]]) -> list[Row]:
    """One row per (benchmark, case, device), in first-seen order, pooling every round's samples.
    A row without samples (skipped, failed) is kept once, from the first round that had it."""
    order: list[Key] = []
    groups: dict[Key, list[Row]] = {}
    for rows in rounds:
        for row in rows:
            key = _key(row)
            if key not in groups:
                order.append(key)
                groups[key] = []
            if row.measured or not groups[key]:
                groups[key].append(row)
    pooled = [_pooled(groups[k]) if groups[k][0].measured else groups[k][0] for k in order]
    return [_rebest(r, pooled) if "best_shape" in r.extra else r for r in pooled]
