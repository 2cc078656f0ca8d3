"""Benchmark results: a versioned document with raw samples and provenance, saved as JSON and Parquet.

A run is one folder, ``<results_dir>/<YYYYmmdd-HHMMSS>-<host>-<6 hex>/``, created with
``exist_ok=False`` so that no run ever overwrites another; it holds ``results.json`` (the whole
document), ``results.parquet`` (one row per measurement, raw samples as list columns),
``table.md`` (what was printed) and ``config.yaml`` (the composed Hydra config).

Document (``schema_version`` 2)::

    {"schema_version": 2, "method_version": int, "run_id": str, "created": ISO-8601 UTC,
     "provenance": {host, platform, cpu, python, torch, cuda, hip, nccl, driver, device{...},
                    torch_threads, slurm{job_id, nodelist, ...}, git{commit, dirty}, overrides,
                    env{...}, loadavg_start, loadavg_end, argv},
     "config": {...}, "wall_s": float,
     "rows": [{benchmark, case, params, metric, unit, higher_is_better, work_per_call, times_s[],
               values[], stats{n, median, q1, q3, iqr, p10, p90, mean, stdev, cv, min, max,
               unstable, warning}, step_time{median_s, mean_s, mean_ci95_s[2]}, reference{...}|null, telemetry{...}|null, energy_per_item_j,
               device, extra{...}} | {benchmark, case, skipped: reason}]}

History of format changes:

- 1 (a draft, never written by a release): rows held ``times_s`` and ``work_per_call``
  only; throughput values and their statistics were computed by the reader.
- 2: rows hold ``values`` (samples in the metric's unit) and ``stats`` computed when measured;
  ``reference`` and ``telemetry`` added. Version 1 documents are upgraded on load. Later
  additions that readers may find missing in older version 2 files: ``step_time`` (the mean step
  and its 95 % interval, what wall-time predictions use) and ``energy_basis`` (how
  ``energy_per_item_j`` was obtained).

:func:`load` reads any listed version; a newer version than this code knows is refused with the
fix (update aifsdk) rather than misread.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import secrets
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aifsdk._errors import Problem, RequestError
from aifsdk._sizing import Measurement
from aifsdk._stats import mean_ci

from ._stats import Summary, step_time, summarize
from ._timing import METHOD_VERSION

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 2
ENV_KEYS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
            "PYTORCH_TUNABLEOP_ENABLED", "NCCL_DEBUG", "NCCL_SOCKET_IFNAME", "NCCL_NET_GDR_LEVEL", "NCCL_NVLS_ENABLE", "FI_PROVIDER")


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and whether the work tree has uncommitted changes (None outside a git tree)."""
    where = cwd or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def _loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def provenance(device: dict[str, Any], overrides: list[str], torch_threads: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Where, on what and with what the run was measured."""
    env = dict(os.environ if env is None else env)
    versions = device.get("versions", {})
    return {
        "host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": versions.get("torch"), "cuda": versions.get("cuda"), "hip": versions.get("hip"), "nccl": versions.get("nccl"),
        "driver": device.get("driver"), "device": device, "torch_threads": torch_threads,
        "slurm": {k.removeprefix("SLURM_").lower(): env.get(k) for k in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_JOB_NUM_NODES",
                                                                         "SLURM_JOB_PARTITION", "SLURM_CLUSTER_NAME")},
        "git": git_state(), "overrides": list(overrides), "env": {k: env[k] for k in ENV_KEYS if k in env},
        "method_version": METHOD_VERSION, "loadavg_start": _loadavg(),
    }


@dataclass
class Row:
    """One result row: what a benchmark measured (or why it did not), the one way a row is made.

    ``values`` are the raw samples in ``unit`` (one per timed call); the statistics and the
    reference percentages are computed from them when the row is written (:meth:`to_dict`), never
    passed in, so pooled or reloaded rows cannot carry figures their samples do not give.
    ``reference`` holds the device's figures (device, peak, achievable, their sources).
    A row with ``skipped`` set (a reason) holds no measurement.
    """

    benchmark: str
    case: str
    values: list[float] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    unit: str = ""
    metric: str = "throughput"
    params: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool = True
    work_per_call: float | None = None
    reference: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    energy_per_item_j: float | None = None
    device: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    energy_basis: str | None = None
    skipped: str | None = None
    traceback: str | None = None
    telemetry_rounds: list[Any] | None = None

    @classmethod
    def skip(cls, benchmark: str, case: str, reason: str, traceback: str | None = None) -> Row:
        return cls(benchmark, case, skipped=reason, traceback=traceback)

    @property
    def measured(self) -> bool:
        return self.skipped is None and bool(self.values)

    @property
    def stats(self) -> Summary:
        return summarize(self.values)

    def to_dict(self) -> dict[str, Any]:
        """The row as written in ``results.json`` (schema :data:`SCHEMA_VERSION`)."""
        if not self.measured:
            out: dict[str, Any] = {"benchmark": self.benchmark, "case": self.case, "skipped": self.skipped or "no samples"}
            return out | ({"traceback": self.traceback} if self.traceback else {})
        stats = self.stats
        reference = None
        if self.reference:
            ref = {k: v for k, v in self.reference.items() if not k.startswith("pct_of_")}
            peak, achievable = ref.get("peak"), ref.get("achievable")
            reference = dict(ref, pct_of_peak=100 * stats.median / peak if peak else None,
                             pct_of_achievable=100 * stats.median / achievable if achievable else None)
        out = {"benchmark": self.benchmark, "case": self.case, "params": self.params, "metric": self.metric, "unit": self.unit,
               "higher_is_better": self.higher_is_better, "work_per_call": self.work_per_call, "times_s": self.times_s,
               "values": self.values, "stats": stats.to_dict(), "step_time": step_time(self.times_s) if self.times_s else None,
               "reference": reference, "telemetry": self.telemetry, "energy_per_item_j": self.energy_per_item_j,
               "energy_basis": self.energy_basis, "device": self.device, "extra": self.extra}
        return out | ({"telemetry_rounds": self.telemetry_rounds} if self.telemetry_rounds is not None else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        """A row read back from a document (its ``stats`` are recomputed from its values)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and v is not None})


@dataclass
class Run:
    """One loaded run: its folder (None if in memory) and its document (always the current schema)."""

    document: dict[str, Any]
    folder: Path | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.document["rows"]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.document["provenance"]

    def frame(self) -> pd.DataFrame:
        return to_frame(self.document)


def new_document(rows: Sequence[Row], prov: dict[str, Any], config: dict[str, Any], wall_s: float) -> dict[str, Any]:
    """A results document of ``rows`` (schema :data:`SCHEMA_VERSION`)."""
    prov = dict(prov, loadavg_end=_loadavg())
    return {"schema_version": SCHEMA_VERSION, "method_version": METHOD_VERSION,
            "run_id": f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}-{_safe(prov['host'])}-{secrets.token_hex(3)}",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "provenance": prov, "config": config, "wall_s": wall_s, "rows": [r.to_dict() for r in rows]}


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40]


def new_run_folder(results_dir: str | Path, run_id: str) -> Path:
    """Create ``results_dir/run_id``; never reuses a folder (a clash gets a fresh suffix)."""
    root = Path(results_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(100):
        folder = root / (run_id if attempt == 0 else f"{run_id}-{secrets.token_hex(2)}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a new run folder under {root}")


def to_frame(document: dict[str, Any]) -> pd.DataFrame:
    """One row per measurement: identity, statistics, reference, and raw samples as lists."""
    import pandas as pd

    prov = document["provenance"]
    records = []
    for row in document["rows"]:
        stats = row.get("stats") or {}
        ref = row.get("reference") or {}
        records.append({
            "run_id": document["run_id"], "host": prov.get("host"), "device": prov.get("device", {}).get("name"),
            "device_kind": prov.get("device", {}).get("kind"), "benchmark": row["benchmark"], "case": row["case"],
            "metric": row.get("metric"), "unit": row.get("unit"), "skipped": row.get("skipped"),
            **{k: stats.get(k) for k in ("n", "median", "q1", "q3", "iqr", "p10", "p90", "mean", "cv", "min", "max", "unstable")},
            "peak": ref.get("peak"), "achievable": ref.get("achievable"), "pct_of_peak": ref.get("pct_of_peak"),
            "pct_of_achievable": ref.get("pct_of_achievable"), "energy_per_item_j": row.get("energy_per_item_j"),
            "params": json.dumps(row.get("params", {}), sort_keys=True), "extra": json.dumps(row.get("extra", {}), sort_keys=True, default=str),
            "values": [float(v) for v in row.get("values", [])], "times_s": [float(v) for v in row.get("times_s", [])],
        })
    return pd.DataFrame.from_records(records)


def save(document: dict[str, Any], folder: Path, table: str = "", config_yaml: str = "") -> dict[str, Path]:
    """Write the document as JSON and Parquet (and the table and config) into ``folder``; never
    replaces an existing file."""
    paths = {"json": folder / "results.json", "parquet": folder / "results.parquet", "table": folder / "table.md",
             "config": folder / "config.yaml"}
    clash = [str(p) for p in paths.values() if p.exists()]
    if clash:
        raise FileExistsError(f"refusing to overwrite {clash}; results go to a new run folder (new_run_folder)")
    paths["json"].write_text(json.dumps(document, indent=1, default=str))
    to_frame(document).to_parquet(paths["parquet"], index=False)
    paths["table"].write_text(table)
    paths["config"].write_text(config_yaml)
    return paths


def _upgrade_1(doc: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for row in doc["rows"]:
        if "skipped" not in row and "values" not in row:
            work = row["work_per_call"]
            values = [work / t for t in row["times_s"]]
            row = Row.from_dict(dict(row, values=values)).to_dict()
        rows.append(row)
    return dict(doc, rows=rows, schema_version=2)


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1}


def upgrade(document: dict[str, Any]) -> dict[str, Any]:
    """Bring a document of any known schema version to :data:`SCHEMA_VERSION`."""
    version = document.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"schema_version={version!r}: not a benchmark results document. Fix: pass a results.json or its run folder")
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema_version={version}: newer than this code reads (<= {SCHEMA_VERSION}). Fix: update aifsdk")
    while document["schema_version"] < SCHEMA_VERSION:
        document = UPGRADES[document["schema_version"]](document)
    return document


def load(path: str | Path) -> Run:
    """A run from its folder, its results.json, or its results.parquet (statistics only)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "results.json"
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such results file. Fix: pass a run folder under results/ (python -m benchmarks writes one)")
    if p.suffix == ".parquet":
        import pandas as pd

        return Run(_from_frame(pd.read_parquet(p)), p.parent)
    return Run(upgrade(json.loads(p.read_text())), p.parent)


def measurements(path: str | Path, workload: str | None = None) -> list[Measurement]:
    """The throughput measurements of a run, as :class:`aifsdk.Measurement` for :func:`aifsdk.size`.

    ``path``: a run folder, its ``results.json`` or ``results.parquet``. A scaling study's rows
    give one measurement per job size (measured on the study's site); otherwise the
    domain-workload rows give one 1-device measurement each. ``workload`` picks one when the run
    measured several. Figures come from each row's raw samples: the median and P10/P90 of its
    throughput, and the rate at the mean step with its 95 % interval (a run's wall time is a sum
    of steps). Raises :class:`aifsdk.RequestError` naming ``from`` or ``workload``.
    """
    def fail(param: str, value: Any, allowed: str, fix: str) -> RequestError:
        return RequestError([Problem(param, value, allowed, fix)])

    try:
        run = load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise fail("from", str(path), "a run folder of python -m benchmarks (with results.json) or that file",
                   f"pass the folder that run printed after 'results:' ({exc.__class__.__name__}: {exc})") from None
    rows = [Row.from_dict(r) for r in run.rows if "skipped" not in r]
    rows = [r for r in rows if r.measured and r.metric == "throughput" and r.benchmark in ("scaling", "workload")]
    rows = [r for r in rows if r.benchmark == "scaling"] or rows
    names = sorted({str(r.params.get("workload", "")) for r in rows})
    where = run.folder if run.folder is not None else Path(path)
    if not rows:
        raise fail("from", str(where), "a run with a domain workload or a scaling study",
                   "python -m benchmarks suite=scaling site=... (or suite=healthcare, space, defence, security)")
    if workload is not None and workload not in names:
        raise fail("workload", workload, f"one measured in that run: {', '.join(names)}", f"--workload {names[0]}")
    if workload is None and len(names) > 1:
        raise fail("workload", None, f"one of the run's workloads: {', '.join(names)}", f"--workload {names[0]}")
    chosen = workload or names[0]
    prov = run.provenance
    out = []
    for r in rows:
        if r.params.get("workload", "") != chosen:
            continue
        stats = r.stats
        job = f", job {r.extra['job_id']}" if r.extra.get("job_id") else ""
        mean_rate, ci = None, None
        if r.times_s and r.work_per_call:  # the rate at the mean step and its interval
            mean, low, high = mean_ci([float(t) for t in r.times_s])
            work = float(r.work_per_call)
            mean_rate, ci = work / mean, (work / high, work / low if low > 0 else math.inf)
        out.append(Measurement(
            devices=int(r.extra.get("devices", 1)), items_per_s=stats.median, p10=stats.p10, p90=stats.p90,
            unit="tokens" if r.unit.startswith("tokens") else "samples", device=str(r.device or ""),
            energy_j_per_item=r.energy_per_item_j, site=str(r.extra.get("site", "")), mean_items_per_s=mean_rate, mean_ci=ci,
            energy_source=str(r.energy_basis or ""),
            source=f"{where} (run {run.document.get('run_id')}, {r.case}{job}, host {prov.get('host')}, "
                   f"git {(prov.get('git') or {}).get('commit')})"))
    return out


def _from_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """A minimal document from a Parquet file (no provenance beyond host and device)."""
    first = frame.iloc[0]
    rows = []
    for rec in frame.to_dict("records"):
        rec = {k: None if isinstance(v, float) and v != v else v for k, v in rec.items()}  # pandas' NaN for a missing figure
        if rec.get("skipped"):
            rows.append(Row.skip(rec["benchmark"], rec["case"], rec["skipped"]))
            continue
        figures = {k: rec[k] for k in ("peak", "achievable") if rec.get(k) is not None}
        rows.append(Row(rec["benchmark"], rec["case"], values=[float(v) for v in rec["values"]], times_s=[float(v) for v in rec["times_s"]],
                        unit=rec["unit"], metric=rec["metric"], params=json.loads(rec["params"]), extra=json.loads(rec["extra"]),
                        reference=figures or None, energy_per_item_j=rec.get("energy_per_item_j"), device=rec.get("device")))
    return {"schema_version": SCHEMA_VERSION, "run_id": first["run_id"], "provenance": {"host": first["host"],
            "device": {"name": first["device"], "kind": first["device_kind"]}}, "rows": [r.to_dict() for r in rows]}
