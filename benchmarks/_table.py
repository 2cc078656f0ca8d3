"""The table printed after a run (markdown, so that it pastes into a report as is)."""

from __future__ import annotations

from typing import Any


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.{digits}g}"
    return f"{x:.2e}"


def format_table(document: dict[str, Any]) -> str:
    """One line per measurement: median, IQR, P10-P90, CV, unit, % of peak and of achievable."""
    prov = document["provenance"]
    dev = prov.get("device", {})
    lines = [f"device: {dev.get('kind')} {dev.get('name')} (x{dev.get('count')}), torch {prov.get('torch')}, "
             f"threads {prov.get('torch_threads')}, host {prov.get('host')}, run {document['run_id']}", "",
             "| benchmark | case | median | IQR | P10–P90 | CV | unit | % peak | % achievable | note |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for row in document["rows"]:
        if row.get("skipped"):
            lines.append(f"| {row['benchmark']} | {row['case']} | | | | | | | | {row['skipped']} |")
            continue
        s, ref, extra = row["stats"], row.get("reference") or {}, row.get("extra") or {}
        notes = []
        if s.get("unstable"):
            notes.append(f"UNSTABLE (CV {s['cv']:.1%})")
        if ref.get("device"):
            notes.append(f"ref {ref['device']}: peak {_num(ref.get('peak'))}, achievable {_num(ref.get('achievable'))}")
        if "peak_memory_bytes" in extra:
            notes.append(f"step {extra['step_time_median_s'] * 1e3:.1f} ms (IQR {extra['step_time_iqr_s'] * 1e3:.1f}), "
                         f"{extra['peak_memory_bytes'] / 2**20:.0f} MiB {extra['memory_kind']}, {extra['model_params'] / 1e6:.2f} M params")
        if row.get("energy_per_item_j") is not None:
            notes.append(f"{row['energy_per_item_j']:.3g} J/item")
        if "best_shape" in extra:
            p = extra["best_shape"]
            notes.append(f"best shape {p['m']}x{p['n']}x{p['k']}; slowest of {extra['devices_measured']} device(s)")
        if row["benchmark"] == "scaling" and "devices" in extra:
            notes.append(f"{extra['devices']} device(s), step {extra['step_time_median_s'] * 1e3:.1f} ms, job {extra['job_id']}")
        if "prediction" in extra:
            notes.append(extra["prediction"]["text"])
        pct = ref.get("pct_of_peak")
        ach = ref.get("pct_of_achievable")
        lines.append(f"| {row['benchmark']} | {row['case']} | {_num(s['median'], 4)} | {_num(s['iqr'])} | {_num(s['p10'])}–{_num(s['p90'])} "
                     f"| {s['cv']:.1%} | {row['unit']} | {'' if pct is None else f'{pct:.0f}%'} | {'' if ach is None else f'{ach:.0f}%'} "
                     f"| {'; '.join(notes)} |")
    lines.append("")
    lines.append(f"wall time {document.get('wall_s', 0):.1f} s; median of {min((r['stats']['n'] for r in document['rows'] if 'stats' in r and 'prediction' not in (r.get('extra') or {})), default=0)}+ samples per row")
    return "\n".join(lines) + "\n"
