"""A proposal-ready resource request: the request table per work package, the scaling evidence,
the method and the provenance of every number, as markdown with PNG plots.

    aifsdk proposal request.yaml [--out DIR]
    aifsdk size --from results/<run> --site lumi-g --work 1e9 --report DIR

``request.yaml``::

    title: CT segmentation foundation model
    site: lumi-g                     # default for every package
    packages:
      - name: WP1 pre-training
        from: results/20261124-160330-vm-7d2054   # a python -m benchmarks run (scaling study)
        workload: logformer           # when that run measured several
        work: 1.0e9                   # samples (or tokens) of one run
        runs: 3                       # seeds x configurations
        overheads: {eval: 0.1}        # fractions; the rest keep their defaults
      - name: WP2 fine-tuning
        measure: ["8:1000:950:1040", "16:1900:1800:1960"]   # DEVICES:ITEMS_PER_S[:P10:P90]
        measured_on: lumi-g           # or device: "AMD MI250X" (then projected to the site)
        unit: samples
        work: 2.0e7

Every bad field is reported before anything is written, naming the package and the fix. The
report goes to a new folder (never an existing one): ``report.md`` and one PNG per package with
more than one job size.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ._carbon import Footprint, carbon_file, site_carbon, tonnes
from ._cost import UNIT_LABEL
from ._errors import Problem, RequestError
from ._profile import Source, load_site, shipped_config_dir
from ._sizing import (
    DEFAULT_AVAILABILITY,
    DEFAULT_MIN_EFFICIENCY,
    DEFAULT_OVERHEADS,
    Measurement,
    ScalingRow,
    Sizing,
    access_calls,
    measurements_from_results,
    parse_measures,
    size,
)

PACKAGE_KEYS = {"name", "from", "workload", "measure", "measured_on", "device", "unit", "energy_j_per_item", "work", "runs", "site",
                "overheads", "availability", "min_efficiency", "partition"}


@dataclass(frozen=True)
class WorkPackage:
    name: str
    sizing: Sizing


def _measure_items(texts: list[Any], where: str, spec: dict[str, Any], problems: list[Problem]) -> list[Measurement]:
    return parse_measures(texts, f"{where}.measure", "e.g. '8:1250:1190:1300'", problems, unit=spec.get("unit", "samples"),
                          device=str(spec.get("device", "")), site=str(spec.get("measured_on", "")),
                          energy_j_per_item=spec.get("energy_j_per_item"), source=f"{where}.measure (typed in the request file)")


def packages_from_file(path: str | Path) -> tuple[str, list[WorkPackage]]:
    """Read a request file and size every package; every problem is raised at once."""
    file = Path(path).expanduser()
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RequestError([Problem("request file", str(path), "a readable YAML file", f"see `aifsdk proposal --help` ({exc})")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("packages"), list) or not data["packages"]:
        raise RequestError([Problem("packages", str(path), "a mapping with a non-empty `packages:` list", "see `aifsdk proposal --help`")])
    problems: list[Problem] = []
    prepared = []
    for i, spec in enumerate(data["packages"]):
        where = f"packages[{i}]"
        if not isinstance(spec, dict):
            problems.append(Problem(where, spec, "a mapping", "name:, work:, and from: or measure:"))
            continue
        where = f"packages[{i}] ({spec.get('name', 'unnamed')})"
        unknown = sorted(set(spec) - PACKAGE_KEYS)
        if unknown:
            problems.append(Problem(where, unknown, f"keys among {', '.join(sorted(PACKAGE_KEYS))}", "remove or rename them"))
        if "name" not in spec or "work" not in spec:
            problems.append(Problem(where, sorted(spec), "name: and work: (samples or tokens of one run)", "add them"))
        site = spec.get("site", data.get("site"))
        if not site:
            problems.append(Problem(f"{where}.site", None, "a site profile name (here or at the top)", "site: lumi-g"))
        if ("from" in spec) == ("measure" in spec):
            problems.append(Problem(where, "from/measure", "exactly one of from: (a benchmark run) or measure: (typed figures)",
                                    "from: results/<run> or measure: ['8:1000']"))
            continue
        try:
            items = (measurements_from_results(spec["from"], spec.get("workload")) if "from" in spec
                     else _measure_items(list(spec["measure"]), where, spec, problems))
        except RequestError as exc:
            problems += [Problem(f"{where}.{p.param}", p.value, p.allowed, p.fix) for p in exc.problems]
            continue
        prepared.append((where, spec, site, items))
    if problems:
        raise RequestError(problems)
    packages = []
    for where, spec, site, items in prepared:
        try:
            sizing = size(items, work=float(spec["work"]), site=str(site), runs=int(spec.get("runs", 1)), overheads=spec.get("overheads"),
                          availability=float(spec.get("availability", DEFAULT_AVAILABILITY)),
                          min_efficiency=float(spec.get("min_efficiency", DEFAULT_MIN_EFFICIENCY)), partition=spec.get("partition"))
        except RequestError as exc:
            problems += [Problem(f"{where}.{p.param}", p.value, p.allowed, p.fix) for p in exc.problems]
            continue
        packages.append(WorkPackage(str(spec["name"]), sizing))
    if problems:
        raise RequestError(problems)
    return str(data.get("title", file.stem)), packages


def plot_scaling(rows: list[ScalingRow], path: Path, title: str, threshold: float = DEFAULT_MIN_EFFICIENCY) -> bool:
    """Speed-up (against linear) and parallel efficiency (against ``threshold``) per job size, as a
    PNG; False (nothing written) with fewer than two sizes or without matplotlib."""
    if len(rows) < 2:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    devices = [r.devices for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    left.plot(devices, [r.speedup for r in rows], "o-", label="measured")
    left.plot(devices, [d / devices[0] for d in devices], "--", color="grey", label="linear")
    left.set_xlabel("devices")
    left.set_ylabel("speed-up")
    left.legend()
    right.plot(devices, [r.efficiency * 100 for r in rows], "o-")
    right.axhline(threshold * 100, color="grey", linestyle=":", label=f"threshold {threshold:.0%}")
    right.set_ylim(0, 110)
    right.set_xlabel("devices")
    right.set_ylabel("parallel efficiency (%)")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _kwh(f: Footprint | None) -> str:
    return "" if f is None else f"{f.kwh:,.0f} ({f.kwh_range[0]:,.0f}-{f.kwh_range[1]:,.0f})"


def _co2(f: Footprint | None) -> str:
    if f is None or f.tco2e is None or f.tco2e_range is None:
        return ""
    return f"{tonnes(f.tco2e)} ({tonnes(f.tco2e_range[0])}-{tonnes(f.tco2e_range[1])})"



def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "package"


def _source_line(src: str | Source) -> str:
    if isinstance(src, Source):
        return f"{src.fact}: {src.source} ({src.confidence}, {src.date})"
    return str(src)


def render(title: str, packages: list[WorkPackage], out: str | Path) -> Path:
    """Write ``report.md`` and the plots into ``out`` (created; must not exist); returns the report."""
    from ._version import __version__

    folder = Path(out).expanduser()
    folder.mkdir(parents=True, exist_ok=False)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Resource request: {title}", "",
             f"Prepared with aifsdk {__version__} on {now} by {getpass.getuser()} (Python {platform.python_version()}).", "",
             "## Request", "",
             "| work package | site, partition | job size | efficiency | hours per run | runs | chained jobs per run | total (site unit) "
             "| P90-P10 range | GPU-h | node-h | kWh (range) | tCO2e (range) |",
             "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    totals: dict[tuple[str, str], list[float]] = {}
    energy: dict[str, list[float | None]] = {}  # per site: kWh, low, high, tCO2e, low, high (None once a package lacks it)
    for pkg in packages:
        s = pkg.sizing
        label = UNIT_LABEL.get(s.cost.unit, s.cost.unit)
        lines.append(f"| {pkg.name} | {s.site}, {s.partition or '(default)'} | {s.nodes} node(s) x {s.gpus_per_node} GPU(s) | {s.efficiency:.0%} "
                     f"| {s.hours_per_run:,.1f} | {s.runs} | {s.jobs_per_run} x {s.job_time_minutes // 60}:{s.job_time_minutes % 60:02d} "
                     f"| {s.cost.amount:,.0f} {label} | {s.cost_low.amount:,.0f}-{s.cost_high.amount:,.0f} | {s.cost.gpu_hours:,.0f} "
                     f"| {s.cost.node_hours:,.0f} | {_kwh(s.footprint)} | {_co2(s.footprint)} |")
        t = totals.setdefault((s.site, label), [0.0, 0.0, 0.0, 0.0, 0.0])
        for k, v in enumerate((s.cost.amount, s.cost_low.amount, s.cost_high.amount, s.cost.gpu_hours, s.cost.node_hours)):
            t[k] += v
        f = s.footprint
        add = [f.kwh, *f.kwh_range, f.tco2e, *(f.tco2e_range or (None, None))] if f else [None] * 6
        energy[s.site] = [None if a is None or b is None else a + b for a, b in zip(energy.get(s.site, [0.0] * 6), add)]
    for (site, label), t in totals.items():
        e = energy[site]
        kwh = "" if e[0] is None else f"**{e[0]:,.0f}** ({e[1]:,.0f}-{e[2]:,.0f})"
        co2 = "" if e[3] is None else f"**{tonnes(e[3])}** ({tonnes(e[4])}-{tonnes(e[5])})"
        lines.append(f"| **total {site}** | | | | | | | **{t[0]:,.0f} {label}** | {t[1]:,.0f}-{t[2]:,.0f} | **{t[3]:,.0f}** | **{t[4]:,.0f}** "
                     f"| {kwh} | {co2} |")
    lines += ["", "## Energy and emissions per site", "",
              "Device energy from each package's measured energy per item (its basis below) x work x runs, with the overheads and "
              "availability of the request; the range follows the P90-P10 time range. tCO2e = kWh (x PUE where the site publishes one) "
              "x the grid's carbon intensity. A blank cell: no measured energy for that package, or no cited grid figure for the site.", ""]
    for site in energy:
        carbon = site_carbon(site)
        lines.append(f"- {site}: " + (carbon.words() if carbon else f"no grid carbon intensity in {carbon_file()}"))
        lines += [f"  - {pkg.name}: energy from {pkg.sizing.footprint.energy_basis}" for pkg in packages
                  if pkg.sizing.site == site and pkg.sizing.footprint]
    lines.append("")
    lines += ["", "## Access modes the totals fit", ""]
    for (site, _), t in totals.items():
        lines.append(f"Site {site} (total {t[3]:,.0f} GPU-h, {t[4]:,.0f} node-h):")
        lines += [f"- {c.mode} ({c.family}, {c.duration}): {c.verdict}" + (f" [{c.confidence}]" if c.confidence else "")
                  for c in access_calls(site, t[4], t[3])] or ["- no access mode of configs/access/eurohpc.yaml takes this site"]
        lines.append("")
    lines += ["## Scaling evidence", ""]
    for pkg in packages:
        s = pkg.sizing
        lines += [f"### {pkg.name}", "", s.table(), ""]
        if s.amdahl_parallel_fraction is not None:
            lines += [f"Amdahl parallel fraction fitted over {len(s.scaling)} sizes: {s.amdahl_parallel_fraction:.4f}.", ""]
        picture = f"{_slug(pkg.name)}.png"
        if plot_scaling(s.scaling, folder / picture, f"{pkg.name}: scaling evidence ({s.unit}/s)", s.min_efficiency):
            lines += [f"![{pkg.name} scaling]({picture})", ""]
        if s.projection:
            lines += [f"**Projection** (not measured on {s.site}): {s.projection}", ""]
        lines += [f"- note: {n}" for n in s.notes] + ([""] if s.notes else [])
    lines += ["## Method", "",
              "hours per run = work / X(n) / 3600 x (1 + f_eval + f_checkpoint + f_io + f_startup); total = runs x hours per run x "
              "the site's bill for the job size / availability (after the ARCHER2 and NCAR guidance on sizing resource requests).",
              "X(n) is the measured throughput of the whole job at n devices at the mean step time (a run's wall time is the sum "
              "of its steps; medians are shown for reporting); the job size is the largest measured size whose "
              "per-device throughput stays at or above the efficiency threshold against the smallest size. The range uses the P10 and "
              "P90 of the measured step times (and the projection range when the target was not measured). A run longer than the "
              "partition's (or QoS's) maximum time is split into chained jobs. The bill follows each site profile's billing rule.", "",
              "| work package | work per run | overheads | availability | efficiency threshold |", "|---|---:|---|---:|---:|"]
    for pkg in packages:
        s = pkg.sizing
        over = ", ".join(f"{k} {v:.0%}" for k, v in s.overheads.items())
        lines.append(f"| {pkg.name} | {s.work:.4g} {s.unit} | {over} | {s.availability:.0%} | {s.min_efficiency:.0%} |")
    lines += ["", "## Provenance", ""]
    for pkg in packages:
        lines.append(f"### {pkg.name}")
        lines += [f"- {m.devices} device(s): {m.items_per_s:,.1f} {m.unit}/s on {m.device or '?'} (site {m.site or '?'}), from {m.source}"
                  for m in pkg.sizing.measurements]
        profile = load_site(pkg.sizing.site)
        lines.append(f"- site profile {profile.name}: {profile.source_file or 'shipped'}; billing {profile.billing.unit}"
                     + (f" ({profile.billing.note})" if profile.billing.note else ""))
        lines += [f"  - {_source_line(src)}" for src in profile.sources]
        lines.append("")
    lines += [f"Access modes: {shipped_config_dir() / 'access' / 'eurohpc.yaml'} (its header names the sources; check the call text "
              "before applying).", f"Default overheads {DEFAULT_OVERHEADS}, availability {DEFAULT_AVAILABILITY}, efficiency threshold "
              f"{DEFAULT_MIN_EFFICIENCY}, unless a package sets its own.", ""]
    report = folder / "report.md"
    report.write_text("\n".join(lines))
    return report
