"""Sizing: from measured throughput to a request in the site's units that a reviewer can check.

The estimate (after the ARCHER2 and NCAR guidance on sizing resource requests)::

    hours per run  = work / X(n) / 3600 x (1 + f_eval + f_checkpoint + f_io + f_startup)
    GPU-h          = runs x hours per run x n / A

``X(n)`` is the measured throughput of the whole job at ``n`` devices (samples/s or tokens/s) at
the mean step time (a wall time is a sum of steps; the median is kept for reporting),
``work`` the samples or tokens of one run (use a P90 over seeds of what reaching the target
quality takes), ``f_*`` the overhead fractions and ``A`` the availability factor (restarts,
preemption, queue failures). The job size is the largest measured size whose parallel efficiency
(per-device throughput against the smallest measured size) stays at or above the threshold. A run
longer than the partition's maximum time becomes that many chained jobs. The bill comes from the
site's own billing rule (the code of ``plan``'s cost), so node-, GPU- and core-hours and the
site's unit always agree. The range uses the measurements' P10 and P90; a projection from other
hardware (best-known achievable matmul and memory-bandwidth ratios) is labelled and widens it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ._backends import backend_for
from ._carbon import Footprint, footprint
from ._cost import UNIT_LABEL, Cost, estimate_cost
from ._errors import Problem, RequestError
from ._profile import SiteProfile, load_site, shipped_config_dir
from ._resolve import resolve
from ._resources import Resources

DEFAULT_OVERHEADS = {"eval": 0.05, "checkpoint": 0.02, "io": 0.03, "startup": 0.02}
DEFAULT_AVAILABILITY = 0.9
DEFAULT_MIN_EFFICIENCY = 0.7


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """Throughput of one workload at one job size.

    ``items_per_s``: all ``devices`` of the job together (median); ``p10``/``p90`` the slow and
    fast ends of the same samples. ``mean_items_per_s``: the items of one step over the *mean*
    step time, the rate a long run's wall time follows (the sum of its steps), with
    ``mean_ci`` the throughputs at the ends of the mean step time's 95 % interval (slow, fast);
    :func:`size` predicts wall time from it when it is there, else from the median. ``site``: the site it was measured on (then no projection is
    needed for that site); else ``device``, the accelerator's name (torch's, or a profile's
    ``gpu_model``), decides whether a projection is needed. ``source``: where the figure comes
    from (a results file, a job id).
    """

    devices: int
    items_per_s: float
    p10: float | None = None
    p90: float | None = None
    unit: str = "samples"
    device: str = ""
    energy_j_per_item: float | None = None
    site: str = ""
    source: str = ""
    mean_items_per_s: float | None = None
    mean_ci: tuple[float, float] | None = None
    energy_source: str = ""


@dataclass(frozen=True)
class ScalingRow:
    devices: int
    items_per_s: float
    per_device: float
    speedup: float
    efficiency: float


@dataclass(frozen=True)
class CallFit:
    """Whether the total fits one access mode (a EuroHPC call or an AI Factories mode)."""

    mode: str
    family: str
    unit: str
    amount: float
    fits: bool
    verdict: str
    duration: str
    confidence: str


@dataclass(frozen=True)
class Sizing:
    """The request for one work package. Figures in ``cost`` are the total (all runs, after the
    availability factor); ``cost_low``/``cost_high`` the P90/P10 ends of the range."""

    site: str
    partition: str | None
    devices: int
    nodes: int
    gpus_per_node: int
    efficiency: float
    scaling: list[ScalingRow]
    amdahl_parallel_fraction: float | None
    work: float
    unit: str
    runs: int
    hours_per_run: float
    hours_per_run_range: tuple[float, float]
    jobs_per_run: int
    job_time_minutes: int
    cost: Cost
    cost_low: Cost
    cost_high: Cost
    energy_kwh: float | None
    projection: str | None
    overheads: dict[str, float]
    availability: float
    calls: list[CallFit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    min_efficiency: float = DEFAULT_MIN_EFFICIENCY
    measurements: list[Measurement] = field(default_factory=list)
    hours_per_run_ci: tuple[float, float] | None = None
    footprint: Footprint | None = None

    def text(self) -> str:
        label = UNIT_LABEL.get(self.cost.unit, self.cost.unit)
        lines = [
            f"site {self.site}, partition {self.partition or '(default)'}: {self.nodes} node(s) x {self.gpus_per_node} GPU(s) "
            f"= {self.devices} devices (parallel efficiency {self.efficiency:.0%})",
            f"per run: {self.work:.4g} {self.unit} in {self.hours_per_run:.3g} h"
            + (f" (mean step; 95% CI {self.hours_per_run_ci[0]:.3g}-{self.hours_per_run_ci[1]:.3g} h)" if self.hours_per_run_ci else "")
            + f" (P90-P10 {self.hours_per_run_range[0]:.3g}-{self.hours_per_run_range[1]:.3g} h), "
            f"{self.jobs_per_run} chained job(s) of {self.job_time_minutes // 60}:{self.job_time_minutes % 60:02d}",
            f"total for {self.runs} run(s): {self.cost.amount:,.0f} {label} "
            f"(range {self.cost_low.amount:,.0f}-{self.cost_high.amount:,.0f}) = {self.cost.gpu_hours:,.0f} GPU-h "
            f"= {self.cost.node_hours:,.0f} node-h",
        ]
        if self.footprint is not None:
            lines.append(f"energy and emissions: {self.footprint.text()}")
        if self.projection:
            lines.append(f"PROJECTION: {self.projection}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append("access modes:")
        lines += [f"  {c.mode} ({c.family}, {c.unit}, {c.duration}): {c.verdict}" for c in self.calls]
        return "\n".join(lines)

    def table(self) -> str:
        """The scaling evidence as reviewers expect it (markdown)."""
        rows = ["| devices | throughput | per device | speed-up | efficiency |", "|---:|---:|---:|---:|---:|"]
        rows += [f"| {r.devices} | {r.items_per_s:,.1f} {self.unit}/s | {r.per_device:,.2f} | {r.speedup:.2f} | {r.efficiency:.0%} |"
                 for r in self.scaling]
        return "\n".join(rows)


def _fail(param: str, value: Any, allowed: str, fix: str) -> RequestError:
    return RequestError([Problem(param, value, allowed, fix)])


def _check(measurements: list[Measurement], work: float, runs: int, overheads: dict[str, float], availability: float,
           min_efficiency: float) -> None:
    problems = []
    if not measurements:
        problems.append(Problem("measurements", "[]", "at least one Measurement", "measure the workload at one size or more"))
    sizes = [m.devices for m in measurements]
    if len(set(sizes)) != len(sizes):
        problems.append(Problem("measurements", sizes, "one measurement per job size", "keep the median run of each size"))
    for m in measurements:
        if m.devices < 1 or not m.items_per_s > 0 or not math.isfinite(m.items_per_s):
            problems.append(Problem("measurements", m, "devices >= 1 and a finite items_per_s > 0", "pass the job's total throughput"))
        elif m.p10 is not None and m.p90 is not None and not m.p10 <= m.items_per_s <= m.p90:
            problems.append(Problem("measurements", m, "p10 <= items_per_s <= p90 (the slow end, the median, the fast end)",
                                    "pass the 10th percentile as p10 and the 90th as p90 (swapped?)"))
    if len({m.unit for m in measurements}) > 1:
        problems.append(Problem("measurements", sorted({m.unit for m in measurements}), "one unit", "measure every size in samples, or every size in tokens"))
    if len({m.device for m in measurements}) > 1:
        problems.append(Problem("measurements", sorted({m.device for m in measurements}), "one device type",
                                "size from measurements of one kind of accelerator"))
    if isinstance(work, bool) or not isinstance(work, (int, float)) or not math.isfinite(work) or not work > 0:
        problems.append(Problem("work", work, "the samples (or tokens) of one run, a finite number > 0", "e.g. epochs x dataset size"))
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        problems.append(Problem("runs", runs, "at least 1", "seeds x configurations"))
    bad = {k: v for k, v in overheads.items() if k not in DEFAULT_OVERHEADS or not 0 <= v < 5}
    if bad:
        problems.append(Problem("overheads", bad, f"fractions >= 0 for {', '.join(DEFAULT_OVERHEADS)}", "e.g. {'eval': 0.1}"))
    if not isinstance(availability, (int, float)) or not 0 < availability <= 1:
        problems.append(Problem("availability", availability, "0 < availability <= 1", "0.9 counts 10% lost to restarts and failures"))
    if not isinstance(min_efficiency, (int, float)) or not 0 < min_efficiency <= 1:
        problems.append(Problem("min_efficiency", min_efficiency, "0 < min_efficiency <= 1", "reviewers expect 0.7-0.8"))
    if problems:
        raise RequestError(problems)


def scaling_table(measurements: list[Measurement]) -> list[ScalingRow]:
    ordered = sorted(measurements, key=lambda m: m.devices)
    base = ordered[0]
    base_per = base.items_per_s / base.devices
    return [ScalingRow(m.devices, m.items_per_s, m.items_per_s / m.devices, m.items_per_s / base.items_per_s,
                       (m.items_per_s / m.devices) / base_per) for m in ordered]


def amdahl_fit(rows: list[ScalingRow]) -> float | None:
    """The parallel fraction P of S(N) = 1 / ((1 - P) + P / N) that fits the measured speed-ups best
    (least squares, N relative to the smallest size); None with fewer than two sizes."""
    if len(rows) < 2:
        return None
    base = rows[0].devices
    points = [(r.devices / base, r.speedup) for r in rows]
    best = min((sum((s - 1 / ((1 - p) + p / n)) ** 2 for n, s in points), p) for p in (i / 10000 for i in range(10001)))
    return best[1]


def projection_ratio(measured_device: str, target_device: str) -> tuple[float, float, float, str] | None:
    """(central, low, high, words) of the throughput ratio target/measured from best-known bf16 matmul
    and memory bandwidth; None when both are the same device."""
    from ._reference import best_known, device_entry, figure

    a, b = device_entry(measured_device), device_entry(target_device)
    for name, entry in ((measured_device, a), (target_device, b)):
        if entry is None:
            raise _fail("measurements", name, "a device with reference figures (configs/reference/accelerators.yaml)",
                        "measure on the target system, or add the device (its match pattern, matmul and bandwidth figures, sources) to that file")
    assert a is not None and b is not None
    if a["name"] == b["name"]:
        return None
    ratios = []
    words = []
    for key, what in (("matmul_tflops.bf16", "bf16 matmul"), ("membw_gbs.triad", "memory bandwidth")):
        (fa, ka), (fb, kb) = best_known(a, key), best_known(b, key)
        if ka != kb:  # one basis for both sides: vendor peaks when either lacks an achievable figure
            (fa, ka), (fb, kb) = (figure(a.get("peak", {}), key), "peak"), (figure(b.get("peak", {}), key), "peak")
        if fa is None or fb is None:
            raise _fail("measurements", f"{a['name']} -> {b['name']}", f"{what} figures for both devices",
                        "add them to configs/reference/accelerators.yaml, or measure on the target system")
        ratios.append(fb / fa)
        words.append(f"{what} {fb:g}/{fa:g} ({kb} figures) = {fb / fa:.2f}x")
    central = math.sqrt(ratios[0] * ratios[1])
    return central, min(ratios), max(ratios), (f"measured on {a['name']}, projected to {b['name']}: " + "; ".join(words)
                                               + f"; central {central:.2f}x (geometric mean), range {min(ratios):.2f}-{max(ratios):.2f}x")


def _scaled(cost: Cost, factor: float) -> Cost:
    return dataclasses.replace(cost, amount=cost.amount * factor, gpu_hours=cost.gpu_hours * factor,
                               node_hours=cost.node_hours * factor, core_hours=cost.core_hours * factor)


def _job(profile: SiteProfile, nodes: int, gpus_per_node: int, minutes: int, partition: str | None) -> tuple[Resources, Any, int | None]:
    """The resolved request of one chained job (the site's account format is satisfied with its
    example), its partition, and the longest a job may run there (partition and QoS limits)."""
    account = profile.account.example if profile.account.required else None
    req = Resources(nodes=nodes, gpus_per_node=gpus_per_node, time=minutes, partition=partition, account=account)
    res = resolve(req, profile, set())
    problems = [p for p in res.problems if p.param != "account"]
    if problems:
        raise RequestError(problems, site=profile.name)
    limits = [x.max_minutes for x in (res.partition, res.qos) if x is not None and x.max_minutes]
    return res.resources, res.partition, min(limits) if limits else None


def access_calls(site: str, node_hours: float, gpu_hours: float) -> list[CallFit]:
    """Every access mode that takes this site, and whether the totals fit it."""
    data = yaml.safe_load((shipped_config_dir() / "access" / "eurohpc.yaml").read_text())
    out = []
    for mode in data["modes"]:
        bounds = mode if mode.get("all_sites") and site in data.get("eurohpc_sites", []) else mode.get("sites", {}).get(site)
        if bounds is None:
            continue
        amount = node_hours if mode["unit"] == "node-hours" else gpu_hours
        label = UNIT_LABEL[mode["unit"]]
        low, high, above = bounds.get("min"), bounds.get("max"), bounds.get("min_exclusive")
        if low is not None and amount < low:
            fits, verdict = False, f"{amount:,.0f} {label} is below its minimum of {low:,} {label}"
        elif above is not None and amount <= above:
            fits, verdict = False, f"{amount:,.0f} {label} is not above {above:,} {label}"
        elif high is not None and amount > high:
            fits, verdict = False, f"{amount:,.0f} {label} is above its maximum of {high:,} {label}"
        else:
            fits, verdict = True, f"fits ({amount:,.0f} {label})"
        out.append(CallFit(mode["name"], mode["family"], mode["unit"], amount, fits, verdict, mode.get("duration", ""),
                           mode.get("confidence", "")))
    return out


def _discovered_gpus(profile: SiteProfile) -> int:
    """GPUs per node of a profile that reads its cluster (``discover: true``), from scontrol."""
    from ._scheduler import SchedulerError

    try:
        info = backend_for(profile).cluster_info()  # None: no scheduler, or the profile says not to ask
    except SchedulerError:
        return 0
    if info is None:
        return 0
    return max((p.gpus_per_node or 0 for p in info.partitions.values()), default=0)


def size(
    measurements: Measurement | list[Measurement],
    *,
    work: float,
    site: str,
    runs: int = 1,
    overheads: dict[str, float] | None = None,
    availability: float = DEFAULT_AVAILABILITY,
    min_efficiency: float = DEFAULT_MIN_EFFICIENCY,
    partition: str | None = None,
) -> Sizing:
    """How much to ask for on ``site`` to run ``runs`` runs of ``work`` samples (or tokens) each.

    Raises :class:`~aifsdk.RequestError` naming every bad input. ``overheads`` are fractions of
    the training time (defaults: ``DEFAULT_OVERHEADS``); pass zeros to leave them out.
    """
    items = [measurements] if isinstance(measurements, Measurement) else list(measurements)
    fractions = {**DEFAULT_OVERHEADS, **(overheads or {})}
    _check(items, work, runs, overheads or {}, availability, min_efficiency)
    profile = load_site(site)
    per_node = profile.node.gpus or _discovered_gpus(profile)
    if not backend_for(profile).scheduled or not per_node:
        raise _fail("site", site, "a GPU site with a known node size", "size against a site profile such as lumi-g or leonardo-booster")
    rows = scaling_table(items)
    chosen = max((r for r in rows if r.efficiency >= min_efficiency), key=lambda r: r.devices)
    measured = next(m for m in items if m.devices == chosen.devices)
    notes = []
    if len(rows) == 1:
        notes.append("one job size measured: no scaling evidence; measure at least two sizes (python -m benchmarks suite=scaling)")
    skipped = [r.devices for r in rows if r.devices > chosen.devices]
    if skipped:
        notes.append(f"larger sizes measured ({', '.join(map(str, skipped))} devices) fall below {min_efficiency:.0%} efficiency")
    if chosen.devices > per_node and chosen.devices % per_node:
        raise _fail("measurements", chosen.devices, f"whole nodes of {per_node} GPUs on {site} beyond one node",
                    f"measure multi-node sizes at multiples of {per_node} devices")
    nodes = max(1, math.ceil(chosen.devices / per_node))
    gpus_per_node = min(chosen.devices, per_node)

    ratio = None
    if measured.site != site:
        if not measured.device or not profile.node.gpu_model:
            raise _fail("measurements", measured.device or "(no device)", f"measured on {site} (site=...) or on a named device",
                        "set Measurement(site=...) or Measurement(device=...) so that the hardware is known")
        if measured.device.strip().lower() != profile.node.gpu_model.strip().lower():
            ratio = projection_ratio(measured.device, profile.node.gpu_model)
    central, low_r, high_r = (ratio[0], ratio[1], ratio[2]) if ratio else (1.0, 1.0, 1.0)
    fast = (measured.p90 or measured.items_per_s) * high_r
    slow = (measured.p10 or measured.items_per_s) * low_r
    # a run's wall time is the sum of its steps: its rate is the mean step's, not the median's
    rate = (measured.mean_items_per_s or measured.items_per_s) * central
    if measured.mean_items_per_s is None:
        notes.append("no mean step time for the chosen size: wall time predicted from the median throughput, "
                     "which runs short when step times are skewed (aifsdk.measure and benchmark runs record the mean)")
    factor = 1 + sum(fractions.values())
    hours = work / rate / 3600 * factor
    hours_range = (min(work / fast / 3600 * factor, hours), max(work / slow / 3600 * factor, hours))
    hours_ci = (work / (measured.mean_ci[1] * central) / 3600 * factor, work / (measured.mean_ci[0] * central) / 3600 * factor) \
        if measured.mean_ci and measured.mean_items_per_s else None

    first, _, max_minutes = _job(profile, nodes, gpus_per_node, 1, partition)
    total_minutes = math.ceil(hours * 60)
    jobs = max(1, math.ceil(total_minutes / max_minutes)) if max_minutes else 1
    job_minutes = math.ceil(total_minutes / jobs)
    resources, part, _ = _job(profile, nodes, gpus_per_node, job_minutes, partition or first.partition)  # the class that fits the size
    one_job = estimate_cost(profile, resources, part, job_minutes)
    # the bill of every job of every run, at the time they take (not their limit), over availability
    cost = _scaled(one_job, jobs * runs / availability * (hours * 60) / (job_minutes * jobs))
    cost = dataclasses.replace(cost, detail=f"{runs} run(s) x {hours:.3g} h / availability {availability:g}, each job billed as: {one_job.detail}")
    cost_low = _scaled(cost, hours_range[0] / hours)
    cost_high = _scaled(cost, hours_range[1] / hours)
    energy, foot = None, None
    if measured.energy_j_per_item is not None:
        if ratio:
            notes.append("energy not projected across devices: measure on the target to report kWh and tCO2e")
        else:
            energy = measured.energy_j_per_item * work * runs * factor / availability / 3.6e6
            basis = measured.energy_source or f"{measured.energy_j_per_item:g} J/item, {measured.source or 'as given'}"
            foot = footprint(energy, (energy * hours_range[0] / hours, energy * hours_range[1] / hours), basis, site)
    else:
        notes.append("no energy per item: no kWh or tCO2e (run the benchmark on the target's GPU, which reads its energy "
                     "counter, or give the measured J/item)")
    if measured.p10 is None or measured.p90 is None:
        notes.append("no P10/P90 for the chosen size: the range only reflects the projection (if any)")
    return Sizing(
        site=site, partition=getattr(resources, "partition", None), devices=chosen.devices, nodes=nodes, gpus_per_node=gpus_per_node,
        efficiency=chosen.efficiency, scaling=rows, amdahl_parallel_fraction=amdahl_fit(rows), work=work, unit=measured.unit,
        runs=runs, hours_per_run=hours, hours_per_run_range=hours_range, jobs_per_run=jobs, job_time_minutes=job_minutes,
        cost=cost, cost_low=cost_low, cost_high=cost_high, energy_kwh=energy, projection=ratio[3] if ratio else None,
        overheads=fractions, availability=availability, calls=access_calls(site, cost.node_hours, cost.gpu_hours), notes=notes,
        min_efficiency=min_efficiency, measurements=sorted(items, key=lambda m: m.devices), hours_per_run_ci=hours_ci,
        footprint=foot,
    )



def measurements_from_results(path: str | Path, workload: str | None = None) -> list[Measurement]:
    """The measurements a ``python -m benchmarks`` run holds, for :func:`size`, read by the benchmark
    suite's own reader (:func:`benchmarks.results.measurements`, which knows its results schema)."""
    from benchmarks.results import measurements

    return measurements(path, workload)


def parse_measures(texts: list[Any], param: str, example: str, problems: list[Problem], **fields: Any) -> list[Measurement]:
    """``DEVICES:ITEMS_PER_S[:P10:P90]`` texts as measurements with ``fields`` (unit, device, site,
    ...); each malformed text adds a problem naming ``param`` instead."""
    out = []
    for text in texts:
        try:
            numbers = [float(x) for x in str(text).split(":")]
            if len(numbers) not in (2, 4) or numbers[0] != int(numbers[0]):
                raise ValueError
        except ValueError:
            problems.append(Problem(param, text, "DEVICES:ITEMS_PER_S or DEVICES:ITEMS_PER_S:P10:P90", example))
            continue
        p10, p90 = (numbers[2], numbers[3]) if len(numbers) == 4 else (None, None)
        out.append(Measurement(devices=int(numbers[0]), items_per_s=numbers[1], p10=p10, p90=p90, **fields))
    return out


def size_from_args(args: Any) -> Sizing:
    """``aifsdk size``: the command line's options, checked, then :func:`size`."""
    problems = []
    measurements = measurements_from_results(args.results, args.workload) if args.results else []
    if not measurements and not args.measure:
        problems.append(Problem("--measure", None, "--measure DEVICES:ITEMS_PER_S (one per job size) or --from RESULTS",
                                "e.g. --from results/<run> or --measure 8:1250 --measure 16:2400"))
    measurements += parse_measures(args.measure, "--measure", "e.g. --measure 8:1250 --measure 16:2400", problems, unit=args.unit,
                                   device=args.device, site=args.measured_on, energy_j_per_item=args.energy_j_per_item,
                                   source="command line")
    overheads = {}
    for item in args.overhead:
        key, sep, value = item.partition("=")
        try:
            overheads[key] = float(value) if sep else float("nan")
        except ValueError:
            overheads[key] = float("nan")
        if not sep or overheads[key] != overheads[key]:
            problems.append(Problem("--overhead", item, f"NAME=FRACTION with NAME one of {', '.join(DEFAULT_OVERHEADS)}", "e.g. --overhead eval=0.1"))
    if problems:
        raise RequestError(problems)
    return size(measurements, work=args.work, site=args.site, runs=args.runs, overheads=overheads, availability=args.availability,
                min_efficiency=args.min_efficiency, partition=args.partition)
