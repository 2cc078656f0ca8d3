"""Scaling study: a domain workload trained data-parallel at several job sizes through aifsdk.

    python -m benchmarks suite=scaling site=slurm workload=logformer scaling.nodes=[1,2]

For each size in ``nodes`` one job is submitted with :func:`aifsdk.submit` (sizes run one after
the other, so they never share the machine) and every rank runs :func:`rank_main`: join
``aifsdk.distributed()`` (nccl on GPUs, gloo on CPU), build the workload with the model wrapped
in DistributedDataParallel (each rank its own synthetic batch, weights broadcast from rank 0),
``warmup`` untimed steps, then ``steps`` timed steps, each ended by a device synchronisation. A
data-parallel step is as slow as its slowest rank, so step i's time is the maximum over ranks.
Throughput is the global batch (``items_per_step`` x ranks) over the step time (weak scaling:
the per-rank batch is fixed, as when a proposal asks for more GPUs to go through the data
faster). Every rank also times its phases (start-up: process group and model; warm-up; steps)
from the moment the job's function starts.

The rows give the table reviewers expect (nodes, devices, time per step, throughput, speed-up,
parallel efficiency against the smallest size); :func:`study_text` renders it with the fitted
Amdahl fraction and :func:`plot` draws it. With ``validate_steps``, the study checks its own
arithmetic on the cluster: from the smallest size's measurements and the fitted
scaling it predicts the in-job wall time of a ``validate_steps``-step run at the largest size,
runs it, and reports predicted, measured and the error (:func:`predict`).

On CPU nodes each rank uses ``threads`` intra-op threads (default 1: one rank per core is what
a "device" means there; the local test cluster's two nodes share one 2-core machine).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifsdk._sizing import ScalingRow, amdahl_fit

from ._measure import Context
from ._stats import summarize
from .protocol import benchmark
from .results import Row

METHOD = ("weak scaling, data-parallel (DistributedDataParallel), per-rank batch fixed; step time = slowest rank's step "
          "(device-synchronised); throughput = items per step x ranks / step time; speed-up and efficiency against the "
          "smallest size; Amdahl fraction fitted by least squares over the measured speed-ups")


def rank_main(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs on every rank of a job; rank 0's return value carries the slowest-rank step times."""
    started = time.perf_counter()
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    import aifsdk
    from benchmarks._device import torch_dtype
    from benchmarks.workloads import build_workload

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    with aifsdk.distributed() as d:
        device = torch.device(d["device"])
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        rank, world = d["rank"], d["world_size"]
        params = dict(cfg["params"])
        params["seed"] = int(params.get("seed") or 0) + rank  # each rank its own data; DDP broadcasts rank 0's weights

        def wrap(model: torch.nn.Module) -> torch.nn.Module:
            return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

        wl = build_workload(cfg["workload"], device, torch_dtype(cfg["dtype"]), wrap=wrap if world > 1 else None, **params)
        dist.barrier()
        sync()
        built = time.perf_counter()
        for _ in range(cfg["warmup"]):
            wl.step()
        sync()
        dist.barrier()
        warm = time.perf_counter()
        times = []
        for _ in range(cfg["steps"]):
            start = time.perf_counter()
            wl.step()
            sync()
            times.append(time.perf_counter() - start)
        ended = time.perf_counter()
        mine = {"times": times, "startup_s": built - started, "warmup_s": warm - built, "steps_s": ended - warm, "wall_s": ended - started,
                "host": os.environ.get("SLURMD_NODENAME") or socket.gethostname()}
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, mine)
    slowest = [max(g["times"][i] for g in gathered) for i in range(len(times))]
    phases = {k: max(g[k] for g in gathered) for k in ("startup_s", "warmup_s", "steps_s", "wall_s")}
    return {"rank": rank, "world_size": world, "backend": "nccl" if device.type == "cuda" else "gloo", "device": str(device),
            "times_s": slowest, "hosts": sorted(g["host"] for g in gathered), "items_per_step": wl.items_per_step, "unit": wl.unit,
            "model_params": wl.params, "threads": torch.get_num_threads(), "warmup_steps": cfg["warmup"], **phases,
            "job_id": os.environ.get("SLURM_JOB_ID"), "nodelist": os.environ.get("SLURM_JOB_NODELIST")}


def _run_job(site: str, nodes: int, tasks_per_node: int, cfg: dict[str, Any], options: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], str, float]:
    """Submit one size, wait, return (rank 0's result, job id, submit-to-result seconds); rank 0's
    result gets the job's Slurm energy (``slurm_energy_j``, None where the site collects none)."""
    import aifsdk

    submitted = time.perf_counter()
    job = aifsdk.submit(rank_main, cfg, site=site, nodes=nodes, tasks_per_node=tasks_per_node, **options)
    results = job.results(timeout=timeout_s)
    took = time.perf_counter() - submitted
    first = next(r for r in results if r["rank"] == 0)
    return dict(first, slurm_energy_j=job.consumed_energy_j()), str(job.job_id), took


def size_row(result: dict[str, Any], *, nodes: int, tasks_per_node: int, workload: str, dtype: str, device_name: str, site: str,
             job_id: str, end_to_end_s: float) -> Row:
    """One results row for one job size: per-step throughput samples and the phases."""
    ranks = result["world_size"]
    items = result["items_per_step"] * ranks
    times = result["times_s"]
    values = [items / t for t in times]
    joules = result.get("slurm_energy_j")
    per_item = joules / (items * (len(times) + result["warmup_steps"])) if joules else None
    return Row("scaling", f"{workload} {dtype} x{nodes} node(s)", values=values, times_s=times, unit=f"{result['unit']}/s",
               params={"workload": workload, "dtype": dtype, "nodes": nodes, "tasks_per_node": tasks_per_node, "devices": ranks},
               work_per_call=float(items), device=device_name, energy_per_item_j=per_item,
               energy_basis=("Slurm ConsumedEnergy of the whole job (every node, node level: CPUs and start-up included) over "
                             "its warm-up and timed items") if per_item else None,
               extra={"site": site, "nodes": nodes, "devices": ranks, "items_per_step": items, "step_time_median_s": summarize(times).median,
                      "startup_s": result["startup_s"], "warmup_s": result["warmup_s"], "steps_s": result["steps_s"],
                      "wall_s": result["wall_s"], "end_to_end_s": end_to_end_s, "hosts": result["hosts"], "job_id": job_id,
                      "slurm_energy_j": joules,
                      "backend": result["backend"], "threads": result["threads"], "model_params": result["model_params"],
                      "steps": len(times), "warmup_steps": result["warmup_steps"], "method": METHOD})


def scaling_rows(rows: Sequence[dict[str, Any]]) -> list[ScalingRow]:
    """The study's rows as :class:`aifsdk._sizing.ScalingRow` (speed-up and efficiency vs the smallest size)."""
    from aifsdk._sizing import Measurement, scaling_table

    return scaling_table([Measurement(devices=r["extra"]["devices"], items_per_s=r["stats"]["median"]) for r in rows])


@dataclass(frozen=True)
class Prediction:
    """Predicted in-job wall time of ``steps`` steps at ``devices``, from the smallest size's
    phases and the fitted scaling; ``measured_s``/``error`` once the run was made."""

    devices: int
    steps: int
    warmup: int
    parallel_fraction: float
    speedup: float
    step_time_s: float
    predicted_s: float
    launch_s: float = 0.0
    measured_s: float | None = None
    measured_end_to_end_s: float | None = None
    job_id: str | None = None

    @property
    def error(self) -> float | None:
        return None if self.measured_s is None else (self.predicted_s - self.measured_s) / self.measured_s

    def text(self) -> str:
        head = (f"prediction for {self.devices} devices x {self.steps} steps (+{self.warmup} warm-up): step {self.step_time_s * 1e3:.1f} ms "
                f"(Amdahl P={self.parallel_fraction:.4f}, speed-up {self.speedup:.2f}), wall {self.predicted_s:.2f} s")
        if self.measured_s is None:
            return head
        text = f"{head}; measured {self.measured_s:.2f} s (job {self.job_id}); error {self.error:+.1%}"
        if self.measured_end_to_end_s is not None:
            guess = self.predicted_s + self.launch_s
            text += (f". Submit to result (+{self.launch_s:.2f} s of queue, launch and transfer measured at the smallest size): "
                     f"predicted {guess:.2f} s, measured {self.measured_end_to_end_s:.2f} s, "
                     f"error {(guess - self.measured_end_to_end_s) / self.measured_end_to_end_s:+.1%}")
        return text


def predict(rows: Sequence[dict[str, Any]], devices: int, steps: int, warmup: int) -> Prediction:
    """In-job wall time of a run at ``devices`` from the smallest size's phases and fitted scaling.

    ``wall = startup_1 + (warmup x warm-up step_1 + steps x step_1) x n / S(n)`` with ``n`` the size
    ratio, ``S(n) = 1 / ((1 - P) + P / n)`` and ``P`` fitted over every measured size; per-rank
    work is fixed, so a step at ``n`` times the devices takes ``n / S(n)`` times as long. ``step_1``
    is the mean step (the timed phase over its steps): a wall time is a sum, so the mean, not the
    median, is its rate. The submit-to-result time adds what the smallest size spent outside its
    function (queue, launch, result transfer).
    """
    ordered = sorted(rows, key=lambda r: r["extra"]["devices"])
    base = ordered[0]["extra"]
    fraction = amdahl_fit(scaling_rows(ordered))
    p = 1.0 if fraction is None else fraction
    n = devices / base["devices"]
    speedup = 1 / ((1 - p) + p / n)
    stretch = n / speedup
    step = base["steps_s"] / base["steps"] * stretch
    warm_step = base["warmup_s"] / base["warmup_steps"] * stretch
    predicted = base["startup_s"] + warmup * warm_step + steps * step
    return Prediction(devices=devices, steps=steps, warmup=warmup, parallel_fraction=p, speedup=speedup, step_time_s=step,
                      predicted_s=predicted, launch_s=max(0.0, base.get("end_to_end_s", base["wall_s"]) - base["wall_s"]))


def _configure(kwargs: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The ``workload`` group's fields (nulls dropped, its name aside) are the params of the trained workload."""
    chosen = {k: v for k, v in (config.get("workload") or {}).items() if v is not None and k != "name"}
    return dict(kwargs, params=chosen)


def _steps(kwargs: dict[str, Any], device: Any) -> int:
    return len(set(kwargs.get("nodes", (1, 2)))) + (1 if kwargs.get("validate_steps") else 0)


def _notes(row: dict[str, Any]) -> list[str]:
    extra = row.get("extra") or {}
    if "prediction" in extra:
        return [extra["prediction"]["text"]]
    if "devices" in extra:
        return [f"{extra['devices']} device(s), step {extra['step_time_median_s'] * 1e3:.1f} ms, job {extra['job_id']}"]
    return []


@benchmark("scaling", configure=_configure, steps=_steps, submits_jobs=True, notes=_notes, finish=lambda document, folder: write_study(document, folder))
def scaling(ctx: Context, *, site: str = "slurm", workload: str = "logformer", params: dict[str, Any] | None = None, dtype: str = "fp32",
            nodes: Sequence[int] = (1, 2), tasks_per_node: int = 1, gpus_per_node: int | None = None, threads: int | None = 1,
            steps: int = 20, warmup: int = 3, validate_steps: int | None = None, time_limit: str | int = 15, timeout_s: float = 900,
            submit_options: dict[str, Any] | None = None) -> list[Row]:
    """The suite's callable: one row per size, then (with ``validate_steps``) a prediction row."""
    sizes = sorted({int(n) for n in nodes})
    if not sizes or sizes[0] < 1:
        raise ValueError(f"scaling.nodes={list(nodes)}: allowed a list of node counts >= 1. Fix: scaling.nodes=[1,2]")
    if steps < 5 or warmup < 1 or tasks_per_node < 1:
        raise ValueError(f"scaling steps={steps}, warmup={warmup}, tasks_per_node={tasks_per_node}: allowed steps >= 5, warmup >= 1, "
                         "tasks_per_node >= 1. Fix: scaling.steps=20 scaling.warmup=3")
    if validate_steps is not None and validate_steps < 1:
        raise ValueError(f"scaling.validate_steps={validate_steps}: allowed >= 1 or null. Fix: scaling.validate_steps=100")
    options: dict[str, Any] = {"time": time_limit, "name": f"bench-scaling-{workload}", **(submit_options or {})}
    if gpus_per_node:
        options["gpus_per_node"] = gpus_per_node
    elif threads and not ctx.device.is_gpu:
        options.setdefault("cpus_per_task", int(threads))
    cfg = {"workload": workload, "params": dict(params or {}), "dtype": dtype, "warmup": warmup, "steps": steps,
           "threads": None if ctx.device.is_gpu else threads}
    rows = []
    for n in sizes:
        ctx.step(f"scaling {workload}: {n} node(s) x {tasks_per_node} on {site}")
        result, job_id, e2e = _run_job(site, n, tasks_per_node, cfg, options, timeout_s)
        row = size_row(result, nodes=n, tasks_per_node=tasks_per_node, workload=workload, dtype=dtype, device_name=ctx.device.name,
                       site=site, job_id=job_id, end_to_end_s=e2e)
        rows.append(row)
    if validate_steps:
        target = sizes[-1]
        guess = predict([r.to_dict() for r in rows], target * tasks_per_node, validate_steps, warmup)
        ctx.step(f"scaling {workload}: validation run, {target} node(s) x {validate_steps} steps")
        result, job_id, e2e = _run_job(site, target, tasks_per_node, dict(cfg, steps=validate_steps), options, timeout_s)
        done = Prediction(**{**guess.__dict__, "measured_s": result["wall_s"], "measured_end_to_end_s": e2e, "job_id": job_id})
        rows.append(Row("scaling", f"{workload} {dtype} x{target} node(s), {validate_steps} steps: wall time", values=[result["wall_s"]],
                        times_s=[result["wall_s"]], unit="s", metric="wall_time", higher_is_better=False, work_per_call=1.0,
                        params={"workload": workload, "dtype": dtype, "nodes": target, "tasks_per_node": tasks_per_node,
                                "devices": target * tasks_per_node, "steps": validate_steps},
                        device=ctx.device.name,
                        extra={"prediction": {**done.__dict__, "error": done.error, "text": done.text()}, "site": site, "job_id": job_id,
                               "end_to_end_s": e2e, "startup_s": result["startup_s"], "warmup_s": result["warmup_s"],
                               "steps_s": result["steps_s"], "hosts": result["hosts"]}))
    return rows


def size_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-size rows of a study (not its validation run)."""
    return [r for r in document.get("rows", []) if r.get("benchmark") == "scaling" and r.get("metric") == "throughput"]


def prediction_of(document: dict[str, Any]) -> dict[str, Any] | None:
    """The validation run's prediction record, if the study made one."""
    return next((r["extra"]["prediction"] for r in document.get("rows", []) if r.get("benchmark") == "scaling"
                 and "prediction" in (r.get("extra") or {})), None)


def study_text(document: dict[str, Any]) -> str:
    """The reviewers' table (markdown), the fit and the prediction check of a results document."""
    rows = size_rows(document)
    if not rows:
        return ""
    table = scaling_rows(rows)
    unit = rows[0]["unit"]
    lines = [f"Scaling study: {rows[0]['params']['workload']} ({rows[0]['params']['dtype']}) on site {rows[0]['extra']['site']}, "
             f"device {rows[0]['device']}", "",
             f"| nodes | devices | time per step (ms) | throughput ({unit}) | P10-P90 | speed-up | efficiency |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r, s in zip(sorted(rows, key=lambda r: r["extra"]["devices"]), table):
        st = r["stats"]
        lines.append(f"| {r['extra']['nodes']} | {s.devices} | {r['extra']['step_time_median_s'] * 1e3:.1f} | {s.items_per_s:,.1f} | "
                     f"{st['p10']:,.1f}-{st['p90']:,.1f} | {s.speedup:.2f} | {s.efficiency:.0%} |")
    fraction = amdahl_fit(table)
    if fraction is not None:
        lines += ["", f"Amdahl parallel fraction (least squares over {len(table)} sizes): {fraction:.4f}"]
    guess = prediction_of(document)
    if guess:
        lines += ["", guess["text"]]
    lines += ["", f"Method: {METHOD}."]
    return "\n".join(lines)


def plot(document: dict[str, Any], path: Path) -> Path | None:
    """Speed-up and parallel efficiency against devices (PNG); None without matplotlib or sizes."""
    from aifsdk._proposal import plot_scaling

    rows = size_rows(document)
    if not rows:
        return None
    title = f"{rows[0]['params']['workload']} on {rows[0]['extra']['site']} ({rows[0]['device']}), {rows[0]['unit']}"
    return path if plot_scaling(scaling_rows(rows), path, title) else None


def write_study(document: dict[str, Any], folder: Path) -> str:
    """Write ``scaling.md`` (and ``scaling.png`` when matplotlib is there) into a new run's folder;
    returns the text ("" when the run has no scaling rows)."""
    text = study_text(document)
    if not text:
        return ""
    picture = plot(document, folder / "scaling.png")
    body = text + ("\n\n![scaling](scaling.png)\n" if picture else "\n\n(no plot: matplotlib is not installed; pip install 'aifsdk[bench]')\n")
    with open(folder / "scaling.md", "x") as f:  # a run folder is new: never overwrite
        f.write(body)
    return text
