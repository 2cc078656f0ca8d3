"""Job lifecycle: end-to-end time from submit to every result in hand, for 1 and for N short jobs.

    .venv/bin/python -m tools.bench_lifecycle [--jobs 50] [--repeats 3] [--breakdown 8] [--out results/]

Same work everywhere (``work(i)``, a few ms of Python), same run, methods interleaved (their
order rotates each round) so that drift hits all alike:

- ``srun``: the floor; N ``srun python -c ...`` at once (Slurm tells each the moment it ends);
- ``sbatch --wait``: N ``sbatch --wait`` at once, each running the same ``python -c ...``;
- ``sbatch_poll``: N plain ``sbatch`` of that script, result files watched every 0.1 s: the
  floor of any batch-job tool (what Slurm's batch launch costs over an interactive srun);
- ``submitit``: ``executor.submit`` N times, then ``job.result()`` each (submitit's own waiting);
- ``aifsdk``: ``aifsdk.submit`` N times (``snapshot=False``, like for like: submitit ships no
  code), then ``aifsdk.wait``; ``aifsdk.map``: the same N as one job array.

``--breakdown N`` times N single aifsdk jobs phase by phase (client submit; queued until
slurmctld's scheduling pass; batch launch; the srun step; Python start; interpreter, imports,
payload check and unpickling up to the function; result written; seen by the waiter), from the
client's clock, the job's own clock and slurmctld/slurmd log lines (ms; readable on the local
cluster), plus the job side's top-level imports (``PYTHONPROFILEIMPORTTIME`` in one extra job).

Also reported: scheduler calls made while waiting (aifsdk: squeue/sacct through its seam;
submitit: its SlurmInfoWatcher's sacct calls; srun and sbatch --wait wait inside Slurm's own
clients). Targets: aifsdk at most 1.2x the srun floor, and faster than submitit.
Needs the local cluster (tests/cluster/slurm-cluster up).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(REPO))
from tools import write_report  # noqa: E402

TIME_MIN = 5


def work(i: int) -> int:
    """The job: a few milliseconds of Python."""
    return sum(range(200_000)) + i


def probe(i: int) -> dict[str, float]:
    """The job of ``--breakdown``: ``work(i)``, and when its process started and the function began."""
    now = time.time()
    with open("/proc/self/stat") as f:  # field 22: start time in clock ticks since boot
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    started = now - (time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))
    return {"proc_start": started, "fn_start": now, "value": work(i), "modules": len(sys.modules)}


def _inline(i: int) -> list[str]:
    return [sys.executable, "-c", f"from tools.bench_lifecycle import work; print(work({i}))"]


def run_srun(n: int, root: Path) -> dict[str, Any]:
    procs = [subprocess.Popen(["srun", "--quiet", "-N1", "-n1", f"--time={TIME_MIN}", *_inline(i)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for i in range(n)]
    out = [int(p.communicate()[0].split()[-1]) for p in procs]
    return {"results": out, "calls": None}


def _script(root: Path, i: int) -> Path:
    script = root / f"sbatch-{time.monotonic_ns()}-{i}.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH --time={TIME_MIN}\n#SBATCH --output={script}.out\ncd {shlex.quote(str(REPO))}\n"
                      f"{shlex.join(_inline(i))} > {script}.tmp && mv {script}.tmp {script}.res\n")
    return script


def run_sbatch_wait(n: int, root: Path) -> dict[str, Any]:
    procs = []
    for i in range(n):
        script = _script(root, i)
        procs.append((subprocess.Popen(["sbatch", "--wait", "--quiet", str(script)], stdout=subprocess.DEVNULL), script))
    for proc, _ in procs:
        proc.wait()
    return {"results": [int(Path(f"{script}.res").read_text().split()[-1]) for _, script in procs], "calls": None}


def run_sbatch_poll(n: int, root: Path) -> dict[str, Any]:
    """The batch floor: plain sbatch of the same python -c, its result file watched every 0.1 s."""
    scripts = [_script(root, i) for i in range(n)]
    for script in scripts:
        subprocess.run(["sbatch", "--quiet", str(script)], check=True, stdout=subprocess.DEVNULL)
    while not all(Path(f"{s}.res").exists() for s in scripts):
        time.sleep(0.1)
    return {"results": [int(Path(f"{s}.res").read_text().split()[-1]) for s in scripts], "calls": None}


def run_submitit(n: int, root: Path) -> dict[str, Any]:
    import submitit
    from submitit.slurm.slurm import SlurmJob

    ex = submitit.AutoExecutor(folder=root / "submitit" / "%j", cluster="slurm")
    ex.update_parameters(timeout_min=TIME_MIN, nodes=1, tasks_per_node=1)
    jobs = [ex.submit(work, i) for i in range(n)]
    before = SlurmJob.watcher.num_calls
    out = [j.result() for j in jobs]
    return {"results": out, "calls": {"sacct": SlurmJob.watcher.num_calls - before}}


def _aifsdk_wait(jobs: list[Any]) -> dict[str, Any]:
    import aifsdk
    from aifsdk._scheduler import default_slurm

    counts = default_slurm().counts
    before = {k: counts[k] for k in ("squeue", "sacct")}
    aifsdk.wait(jobs)
    out = [j.result() for j in jobs]
    return {"results": out, "calls": {k: counts[k] - v for k, v in before.items()}}


def run_aifsdk(n: int, root: Path) -> dict[str, Any]:
    import aifsdk

    return _aifsdk_wait([aifsdk.submit(work, i, site="slurm", time=TIME_MIN, snapshot=False) for i in range(n)])


def run_aifsdk_map(n: int, root: Path) -> dict[str, Any]:
    import aifsdk

    return _aifsdk_wait(aifsdk.map(work, range(n), site="slurm", time=TIME_MIN, snapshot=False, pack=1))  # one array task each


METHODS: dict[str, Callable[[int, Path], dict[str, Any]]] = {
    "srun": run_srun, "sbatch_poll": run_sbatch_poll, "sbatch_wait": run_sbatch_wait, "submitit": run_submitit, "aifsdk": run_aifsdk, "aifsdk_map": run_aifsdk_map,
}


def bench(n: int, repeats: int, root: Path) -> dict[str, Any]:
    samples: dict[str, list[float]] = {m: [] for m in METHODS}
    calls: dict[str, list[Any]] = {m: [] for m in METHODS}
    names = list(METHODS)
    expected = [work(i) for i in range(n)]
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            got = METHODS[name](n, root)
            samples[name].append(time.perf_counter() - start)
            if got["results"] != expected:
                raise RuntimeError(f"{name} returned wrong results: {got['results'][:5]}...")
            calls[name].append(got["calls"])
            time.sleep(1)  # let slurmd settle between methods
    rows = {m: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s), "n": len(s), "raw_s": s, "scheduler_calls": calls[m]}
            for m, s in samples.items()}
    floor = rows["srun"]["median_s"]
    for row in rows.values():
        row["ratio_to_srun"] = row["median_s"] / floor
    return rows


def _log_time(path: Path, pattern: str) -> float | None:
    """Time of the last line of a Slurm log matching ``pattern`` (after its [timestamp])."""
    try:
        lines = path.read_text(errors="replace").splitlines()[-5000:]
    except OSError:
        return None
    for line in reversed(lines):
        m = re.match(r"\[(\S+)\] " + pattern, line)
        if m:
            return _dt.datetime.fromisoformat(m[1]).timestamp()
    return None


def _slurm_logs() -> tuple[Path | None, list[Path]]:
    config = dict(line.split("=", 1) for line in subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout.splitlines()
                  if "=" in line)
    config = {k.strip(): v.strip() for k, v in config.items()}
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()
    ctld = Path(config["SlurmctldLogFile"]) if config.get("SlurmctldLogFile", "(null)") != "(null)" else None
    slurmd = config.get("SlurmdLogFile", "(null)")
    return ctld, [Path(slurmd.replace("%n", n).replace("%h", n)) for n in sorted(set(nodes))] if slurmd != "(null)" else []


PHASES = ("client_submit", "queued_until_scheduled", "batch_launch", "batch_script_to_srun_step", "step_to_python_start",
          "python_to_function", "function_and_result_write", "result_seen_by_waiter", "total")


def breakdown(rounds: int) -> dict[str, Any]:
    """Where one aifsdk job's time goes, phase by phase, median of ``rounds`` jobs."""
    import random

    import aifsdk

    ctld, slurmd = _slurm_logs()
    aifsdk.submit(probe, -1, site="slurm", time=TIME_MIN, snapshot=False).result()  # imports and caches of this process
    rows = []
    for k in range(rounds):
        time.sleep(random.uniform(1.0, 2.0))  # sample every phase of slurmctld's scheduling loop
        t0 = time.time()
        job = aifsdk.submit(probe, k, site="slurm", time=TIME_MIN, snapshot=False)
        t1 = time.time()
        aifsdk.wait(job)
        t2 = time.time()
        got, written = job.result(), job.paths().result_pickle.stat().st_mtime
        time.sleep(0.5)  # let the daemons write their log lines
        jid = job.job_id
        submitted = _log_time(ctld, rf"_slurm_rpc_submit_batch_job: JobId={jid}\b") if ctld else None
        allocated = _log_time(ctld, rf"(?:sched: Allocate JobId={jid}\b|sched/backfill: _start_job: Started JobId={jid}\b)") if ctld else None
        launched = next(filter(None, (_log_time(p, rf"Launching batch job {jid}\b") for p in slurmd)), None)
        stepped = next(filter(None, (_log_time(p, rf"launch task StepId={jid}\.0\b") for p in slurmd)), None)
        row = {"client_submit": t1 - t0, "python_to_function": got["fn_start"] - got["proc_start"],
               "function_and_result_write": written - got["fn_start"], "result_seen_by_waiter": t2 - written, "total": t2 - t0}
        if None not in (submitted, allocated, launched, stepped):
            row.update(queued_until_scheduled=allocated - submitted, batch_launch=launched - allocated,  # type: ignore[operator]
                       batch_script_to_srun_step=stepped - launched, step_to_python_start=got["proc_start"] - stepped)  # type: ignore[operator]
        rows.append(row)
    medians = {p: statistics.median(r[p] for r in rows if p in r) for p in PHASES if any(p in r for r in rows)}
    os.environ["PYTHONPROFILEIMPORTTIME"] = "1"  # one more job, its imports logged to its stderr
    try:
        job = aifsdk.submit(probe, rounds, site="slurm", time=TIME_MIN, snapshot=False)
        job.result()
    finally:
        del os.environ["PYTHONPROFILEIMPORTTIME"]
    imports = [line.split("|") for line in (job.stderr() or "").splitlines() if line.startswith("import time:")]
    top = [(name.strip(), int(cum) / 1e6) for _, cum, name in imports if cum.strip().isdigit() and not name.startswith("  ")]
    return {"rounds": rows, "median_s": medians, "job_top_level_imports_s": sorted(top, key=lambda t: -t[1])[:8],
            "job_imports_total_s": sum(t for _, t in top)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results")
    parser.add_argument("--breakdown", type=int, default=0, metavar="N", help="only time N single jobs phase by phase")
    args = parser.parse_args()
    os.chdir(REPO)
    report: dict[str, Any] = dict(schema=1, benchmark="bench_lifecycle", host=platform.node(), python=platform.python_version(),
                                  repeats=args.repeats, time=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    os.environ.update(AIFSDK_HOME=os.environ.get("AIFSDK_HOME") or str(tmp / "home"), AIFSDK_JOB_ROOT=str(tmp / "jobs"))
    try:
        if args.breakdown:
            report["breakdown_1_job"] = found = breakdown(args.breakdown)
            print(f"-- 1 aifsdk job phase by phase (median of {args.breakdown}; Slurm's phases from its logs)")
            for phase, seconds in found["median_s"].items():
                print(f"   {phase:<27} {seconds:6.3f} s")
            print(f"   job-side imports {found['job_imports_total_s']:.3f} s: "
                  + ", ".join(f"{name} {t:.3f}" for name, t in found["job_top_level_imports_s"]))
            print(f"written {write_report(args.out, 'bench_lifecycle', report)}")
            return
        for n in (1, args.jobs):
            report[f"jobs_{n}"] = bench(n, args.repeats if n > 1 else args.repeats * 2, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for n in (1, args.jobs):
        print(f"-- {n} job(s), submit to every result (median of {report[f'jobs_{n}']['srun']['n']} interleaved rounds)")
        for name, row in report[f"jobs_{n}"].items():
            calls = row["scheduler_calls"][-1]
            shown = "waits inside Slurm's client" if calls is None else ", ".join(f"{k} {v}" for k, v in calls.items())
            print(f"   {name:<12} {row['median_s']:7.2f} s  (min {row['min_s']:.2f}, max {row['max_s']:.2f})  "
                  f"x{row['ratio_to_srun']:.2f} of srun   scheduler calls while waiting: {shown}")
    print("targets: aifsdk <= 1.2x srun, and faster than submitit")
    print(f"written {write_report(args.out, 'bench_lifecycle', report)}")


if __name__ == "__main__":
    main()
