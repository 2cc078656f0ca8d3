"""Compare benchmark runs and render a markdown report with PNG plots.

    python -m benchmarks.report RUN [RUN ...] [--out DIR] [--allow-mismatched-hardware]

The first run is the baseline. Runs measured on different hardware (device kind, name or count)
are refused unless ``--allow-mismatched-hardware`` is given, and then the report says so at the
top. Each measurement of each later run is compared with the baseline's by
:func:`benchmarks._compare.compare`: "faster" or "slower" only when a Mann-Whitney U test and the
bootstrap interval of the ratio of medians both support it (the p-value and the interval are
printed), "no significant change" otherwise, and "not comparable" with the reason when either side
has fewer than 5 samples or was UNSTABLE. Each plot holds one unit (samples/s and tokens/s are
never drawn on one axis). The report goes to a new folder: ``--out DIR``, or by default
``<results_dir>/reports/<time>-<id>/`` beside the baseline run's folder; it holds ``report.md``,
one ``<benchmark>-<unit>.png`` per benchmark and unit, and ``report.html``: the same report as
one self-contained page (tables, and the plots inlined).
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._compare import MIN_SAMPLES, compare
from ._stats import Summary
from .results import Run, load

HARDWARE_KEYS = ("kind", "name", "count")


class HardwareMismatchError(ValueError):
    """Runs from different hardware were passed without ``allow_mismatched_hardware``."""


def hardware(run: Run) -> tuple[Any, ...]:
    dev = run.provenance.get("device", {})
    return tuple(dev.get(k) for k in HARDWARE_KEYS)


def check_hardware(runs: Sequence[Run], allow_mismatched: bool = False) -> list[str]:
    """Differences in hardware between the baseline and each other run. Raises
    :class:`HardwareMismatchError` when there are some and ``allow_mismatched`` is False."""
    base = hardware(runs[0])
    diffs = []
    for run in runs[1:]:
        other = hardware(run)
        for key, a, b in zip(HARDWARE_KEYS, base, other):
            if a != b:
                diffs.append(f"device {key}: {a!r} in {runs[0].document['run_id']} vs {b!r} in {run.document['run_id']}")
    if diffs and not allow_mismatched:
        raise HardwareMismatchError("refusing to compare runs from different hardware:\n  - " + "\n  - ".join(diffs)
                                    + "\nFix: compare runs of the same device, or pass --allow-mismatched-hardware "
                                      "(the report then says the comparison crosses hardware)")
    return diffs


def _summary(row: dict[str, Any]) -> Summary:
    s = row["stats"]
    return Summary(**{k: s[k] for k in Summary.__dataclass_fields__})


def _key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row["benchmark"], row["case"], row.get("metric", "")


def render(runs: Sequence[Run], out: Path, allow_mismatched: bool = False, plots: bool = True) -> Path:
    """Write report.md (and PNGs) into the new folder ``out``; return the markdown path."""
    diffs = check_hardware(runs, allow_mismatched)
    out.mkdir(parents=True, exist_ok=False)
    lines = ["# Benchmark report", ""]
    if diffs:
        lines += ["> **WARNING: this comparison crosses hardware** (--allow-mismatched-hardware). Differences:", ">"]
        lines += [f"> - {d}" for d in diffs] + [""]
    lines += ["| run | host | device | torch | threads | commit | method | load (start) |", "|---|---|---|---|---:|---|---:|---|"]
    for run in runs:
        p = run.provenance
        dev = p.get("device", {})
        git = p.get("git") or {}
        commit = (git.get("commit") or "")[:10] + (" (dirty)" if git.get("dirty") else "")
        lines.append(f"| {run.document['run_id']} | {p.get('host')} | {dev.get('kind')} {dev.get('name')} x{dev.get('count')} | "
                     f"{p.get('torch')} | {p.get('torch_threads')} | {commit} | {p.get('method_version')} | {_load(p.get('loadavg_start'))} |")
    methods = {r.provenance.get("method_version") for r in runs}
    if len(methods) > 1:
        lines += ["", f"> Note: the runs used different method versions {sorted(map(str, methods))}; differences may come from the method."]
    base = {(_key(r)): r for r in runs[0].rows if "stats" in r}
    header = "| benchmark | case | unit | " + " | ".join(f"{r.document['run_id']} median [Q1–Q3]" for r in runs)
    header += "".join(f" | vs baseline ({r.document['run_id']})" for r in runs[1:]) + " |"
    lines += ["", "Medians with interquartile ranges; the first run is the baseline. A change is called faster or slower only when "
              "the two-sided Mann-Whitney U test gives p < 0.05 and the bootstrap 95% interval of the ratio of medians excludes 1; "
              f"runs with fewer than {MIN_SAMPLES} samples or flagged UNSTABLE are not comparable.", "", header,
              "|" + "---|" * (3 + len(runs) + len(runs) - 1)]
    keys = list(base) + [k for run in runs[1:] for k in (_key(r) for r in run.rows if "stats" in r) if k not in base]
    seen = set()
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        found = [next((r for r in run.rows if "stats" in r and _key(r) == key), None) for run in runs]
        unit = next(r["unit"] for r in found if r)
        cells = [f"{r['stats']['median']:.4g} [{r['stats']['q1']:.4g}–{r['stats']['q3']:.4g}]" if r else "–" for r in found]
        verdicts = []
        for r in found[1:]:
            if r is None or found[0] is None:
                verdicts.append("–")
            else:
                verdicts.append(compare(found[0].get("values") or [], r.get("values") or [], _summary(found[0]), _summary(r),
                                        found[0].get("higher_is_better", True)).text())
        lines.append(f"| {key[0]} | {key[1]} | {unit} | " + " | ".join(cells + verdicts) + " |")
    if plots:
        lines += ["", "## Plots", ""]
        for (bench, unit), path in _plots(runs, out).items():
            lines.append(f"![{bench} ({unit})]({path.name})")
    md = out / "report.md"
    md.write_text("\n".join(lines) + "\n")
    (out / "report.html").write_text(to_html(lines, out))
    return md


def _inline(text: str) -> str:
    """Escape, then the two inline marks the report uses: **bold** and `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def to_html(lines: Sequence[str], folder: Path) -> str:
    """The report as one self-contained HTML page: the same text and tables, the PNGs inlined as
    data URIs, so that the file alone can be mailed or attached to a proposal."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if not table:
            return
        head, rows = table[0], [r for r in table[1:] if not all(set(c) <= set("-: ") for c in r)]
        body.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                    + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows) + "</tbody></table>")
        table.clear()

    for line in lines:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        image = re.fullmatch(r"!\[(.*)\]\((.+)\)", line)
        if image:
            data = base64.b64encode((folder / image.group(2)).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(image.group(1))}" src="data:image/png;base64,{data}"></figure>')
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith(">"):
            body.append(f"<blockquote>{_inline(line.lstrip('> '))}</blockquote>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;margin:2em;max-width:110em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left}th{background:#eee}"
             "blockquote{border-left:4px solid #c00;margin:0;padding:.2em 1em;background:#fee}img{max-width:100%}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Benchmark report</title><style>{style}</style></head>'
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "unit"


def _plots(runs: Sequence[Run], out: Path) -> dict[tuple[str, str], Path]:
    """One PNG per benchmark and unit (never two units on one axis): median per case and run,
    with Q1–Q3 error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((r["benchmark"], r["unit"]) for run in runs for r in run.rows if "stats" in r))
    paths = {}
    for bench, unit in groups:
        def mine(r: dict[str, Any]) -> bool:
            return "stats" in r and r["benchmark"] == bench and r["unit"] == unit  # noqa: B023 - used in this iteration only

        cases = list(dict.fromkeys(r["case"] for run in runs for r in run.rows if mine(r)))
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(cases) * len(runs) + 1.5))
        height = 0.8 / len(runs)
        for j, run in enumerate(runs):
            rows = {r["case"]: r for r in run.rows if mine(r)}
            ys, meds, errs = [], [], [[], []]
            for i, case in enumerate(cases):
                if case in rows:
                    s = rows[case]["stats"]
                    ys.append(i + j * height)
                    meds.append(s["median"])
                    errs[0].append(max(s["median"] - s["q1"], 0))
                    errs[1].append(max(s["q3"] - s["median"], 0))
            ax.barh(ys, meds, height=height, xerr=errs, capsize=3, label=run.document["run_id"])
        ax.set_yticks([i + height * (len(runs) - 1) / 2 for i in range(len(cases))], cases)
        ax.invert_yaxis()
        ax.set_xlabel(f"{unit} (median, Q1–Q3)")
        ax.set_title(f"{bench} ({unit})")
        ax.legend(fontsize="small")
        fig.tight_layout()
        path = out / f"{_slug(bench)}-{_slug(unit)}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths[(bench, unit)] = path
    return paths


def default_out(baseline: Run) -> Path:
    """``reports/<time>-<id>`` in the results_dir that holds the baseline run's folder."""
    if baseline.folder is None:
        raise ValueError("the baseline run has no folder to put the report beside. Fix: pass --out DIR")
    stamp = f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    return baseline.folder.parent / "reports" / stamp


def _load(values: Sequence[float] | None) -> str:
    return " ".join(f"{v:.2f}" for v in values) if values else "–"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (or their results.json); the first is the baseline")
    parser.add_argument("--out", help="new folder for report.md and the PNGs (default: reports/<time>-<id> in the results_dir "
                                      "that holds the baseline run)")
    parser.add_argument("--allow-mismatched-hardware", action="store_true", help="compare runs from different devices (said in the report)")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    try:
        runs = [load(p) for p in args.runs]
        out = Path(args.out) if args.out else default_out(runs[0])
        md = render(runs, out, args.allow_mismatched_hardware, plots=not args.no_plots)
    except (HardwareMismatchError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(md.read_text())
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
