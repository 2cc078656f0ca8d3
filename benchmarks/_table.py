"""The table printed after a run (markdown, so that it pastes into a report as is)."""

from __future__ import annotations

from typing import Any

from .protocol import benchmarks_of


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.{digits}g}"
    return f"{x:.2e}"


def format_table(document: dict[str, Any]) -> str:
    """One line per measurement: median, IQR, P10-P90, CV, unit, % of peak and of achievable, and
    notes: instability, reference figures, energy, and the benchmark's own (its ``notes`` hook)."""
    prov = document["provenance"]
    benches = benchmarks_of(document)
    dev = prov.get("device", {})
    lines = [f"device: {dev.get('kind')} {dev.get('name')} (x{dev.get('count')}), torch {prov.get('torch')}, "
             f"threads {prov.get('torch_threads')}, host {prov.get('host')}, run {document['run_id']}", "",
             "| benchmark | case | median | IQR | P10–P90 | CV | unit | % peak | % achievable | note |",
             "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for row in document["rows"]:
        if row.get("skipped"):
            lines.append(f"| {row['benchmark']} | {row['case']} | | | | | | | | {row['skipped']} |")
            continue
        s, ref = row["stats"], row.get("reference") or {}
        notes = []
        if s.get("unstable"):
            notes.append(f"UNSTABLE (CV {s['cv']:.1%})")
        if ref.get("device"):
            notes.append(f"ref {ref['device']}: peak {_num(ref.get('peak'))}, achievable {_num(ref.get('achievable'))}")
        if row.get("energy_per_item_j") is not None:
            notes.append(f"{row['energy_per_item_j']:.3g} J/item")
        if row["benchmark"] in benches:
            notes += benches[row["benchmark"]].notes(row)
        pct = ref.get("pct_of_peak")
        ach = ref.get("pct_of_achievable")
        lines.append(f"| {row['benchmark']} | {row['case']} | {_num(s['median'], 4)} | {_num(s['iqr'])} | {_num(s['p10'])}–{_num(s['p90'])} "
                     f"| {s['cv']:.1%} | {row['unit']} | {'' if pct is None else f'{pct:.0f}%'} | {'' if ach is None else f'{ach:.0f}%'} "
                     f"| {'; '.join(notes)} |")
    lines.append("")
    sampled = [r["stats"]["n"] for r in document["rows"] if "stats" in r and r.get("metric") != "wall_time"]  # a timed run is one sample
    lines.append(f"wall time {document.get('wall_s', 0):.1f} s; median of {min(sampled, default=0)}+ samples per row")
    return "\n".join(lines) + "\n"
