"""Scaling study arithmetic, `aifsdk size --from` and the proposal report, on hand-computed cases.

Study documents are written here as real results files in the schema `python -m benchmarks`
writes (the end-to-end study on the real cluster is tests/cluster/test_scaling_study.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import aifsdk
from aifsdk._proposal import packages_from_file, render
from aifsdk._sizing import measurements_from_results
from aifsdk.cli import run
from benchmarks.scaling import predict, study_text, write_study
from benchmarks.workloads import build_workload


def size_row(nodes: int, step_s: float, *, batch: int = 100, startup: float = 4.0, warmup_s: float = 0.6, steps: int = 10,
             workload: str = "unet3d") -> dict[str, Any]:
    """One per-size row as benchmarks.scaling writes it: every step takes step_s."""
    items = batch * nodes
    times = [step_s] * steps
    values = [items / t for t in times]
    stats = {"n": steps, "median": items / step_s, "p10": items / step_s * 0.95, "p90": items / step_s * 1.05}
    return {"benchmark": "scaling", "case": f"{workload} fp32 x{nodes} node(s)", "metric": "throughput", "unit": "samples/s",
            "params": {"workload": workload, "dtype": "fp32", "nodes": nodes, "devices": nodes}, "times_s": times, "values": values,
            "stats": stats, "device": "AMD EPYC", "energy_per_item_j": None,
            "extra": {"site": "lumi-g", "nodes": nodes, "devices": nodes, "items_per_step": items, "step_time_median_s": step_s,
                      "startup_s": startup, "warmup_s": warmup_s, "wall_s": startup + warmup_s + step_s * steps, "warmup_steps": 3, "steps_s": step_s * steps, "steps": steps,
                      "job_id": str(100 + nodes)}}


def document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema_version": 2, "run_id": "20261124-000000-test-abcdef", "provenance": {"host": "h", "git": {"commit": "c0ffee"}},
            "rows": rows}


def test_prediction_stretches_the_one_node_phases_by_the_fitted_scaling() -> None:
    # 1 node: 0.1 s/step; 2 nodes: 0.125 s/step -> speed-up 2 x 0.1 / 0.125 = 1.6, Amdahl P = 2 (1 - 1/1.6) = 0.75
    rows = [size_row(1, 0.1), size_row(2, 0.125)]
    p = predict(rows, devices=2, steps=100, warmup=3)
    assert p.parallel_fraction == pytest.approx(0.75, abs=1e-4) and p.speedup == pytest.approx(1.6, rel=1e-3)
    # stretch n / S = 1.25: startup 4 + warm-up 3 x (0.6 / 3) x 1.25 + 100 x 0.1 x 1.25 = 4 + 0.75 + 12.5
    assert p.step_time_s == pytest.approx(0.125, rel=1e-3) and p.predicted_s == pytest.approx(17.25, rel=1e-3)
    done = type(p)(**{**p.__dict__, "measured_s": 15.0, "job_id": "7"})
    assert done.error == pytest.approx(0.15, rel=1e-3) and "error +15.0%" in done.text()


def test_prediction_with_one_size_assumes_linear_scaling() -> None:
    p = predict([size_row(1, 0.2)], devices=4, steps=10, warmup=0)
    assert p.speedup == pytest.approx(4.0) and p.predicted_s == pytest.approx(4.0 + 10 * 0.2)


def test_study_table_and_files(tmp_path: Path) -> None:
    doc = document([size_row(1, 0.1), size_row(2, 0.125)])
    text = write_study(doc, tmp_path)
    assert "| 1 | 1 | 100.0 | 1,000.0 |" in text and "| 2 | 2 | 125.0 | 1,600.0 |" in text and "| 1.60 | 80% |" in text
    assert (tmp_path / "scaling.md").read_text().startswith(text) and (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError):  # a run folder's study is never overwritten
        write_study(doc, tmp_path)
    assert study_text(document([])) == ""


def test_measurements_from_a_study_and_from_workload_rows(tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "results.json").write_text(json.dumps(document([size_row(1, 0.1), size_row(2, 0.125)])))
    ms = measurements_from_results(tmp_path / "study")
    assert [(m.devices, m.items_per_s, m.site, m.unit) for m in ms] == [(1, 1000.0, "lumi-g", "samples"), (2, 1600.0, "lumi-g", "samples")]
    assert "job 102" in ms[1].source and "c0ffee" in ms[1].source
    plain = [dict(size_row(1, 0.1, workload=w), benchmark="workload", extra={}) for w in ("unet3d", "sar")]
    (tmp_path / "two.json").write_text(json.dumps(document(plain)))
    with pytest.raises(aifsdk.RequestError, match="workload=None.*unet3d"):
        measurements_from_results(tmp_path / "two.json")
    (m,) = measurements_from_results(tmp_path / "two.json", "sar")
    assert m.devices == 1 and m.site == "" and m.device == "AMD EPYC"
    (tmp_path / "new.json").write_text(json.dumps({"schema_version": 99, "rows": []}))
    with pytest.raises(aifsdk.RequestError, match="update aifsdk"):
        measurements_from_results(tmp_path / "new.json")
    with pytest.raises(aifsdk.RequestError, match="from='.*missing'"):
        measurements_from_results(tmp_path / "missing")


def test_measurements_from_results_carry_the_mean_step_from_the_raw_times(tmp_path: Path) -> None:
    """A run's rows keep raw step times: the measurement's mean rate is work per step over the mean step."""
    row = size_row(1, 0.1)
    row["times_s"] = [0.1] * 9 + [1.0]  # one stall in ten steps: median 0.1 s, mean 0.19 s
    row["work_per_call"] = 100.0
    (tmp_path / "skewed.json").write_text(json.dumps(document([row])))
    (m,) = measurements_from_results(tmp_path / "skewed.json")
    assert m.items_per_s == pytest.approx(1000.0) and m.mean_items_per_s == pytest.approx(100 / 0.19)
    assert m.mean_ci is not None and m.mean_ci[0] < m.mean_items_per_s < m.mean_ci[1]
    none = {"eval": 0, "checkpoint": 0, "io": 0, "startup": 0}
    s = aifsdk.size(m, work=100 * 36_000, site="lumi-g", overheads=none, availability=1)
    assert s.hours_per_run == pytest.approx(0.19 * 36_000 / 3600)


def test_size_from_results_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # lumi-g: 8 GCDs a node; measured 8 and 16 at 1000 and 1900 samples/s -> 16 devices = 2 nodes (95%)
    rows = [size_row(8, 0.8), size_row(16, 16 * 100 / 1900)]
    for r in rows:
        r["extra"]["devices"] = r["params"]["devices"] = r["extra"]["nodes"]
    (tmp_path / "results.json").write_text(json.dumps(document(rows)))
    code = run(["size", "--from", str(tmp_path), "--site", "lumi-g", "--work", str(1900 * 3600 * 10), "--overhead", "eval=0",
                "--overhead", "checkpoint=0", "--overhead", "io=0", "--overhead", "startup=0", "--availability", "1",
                "--report", str(tmp_path / "report"), "--name", "WP1"])
    out = capsys.readouterr().out
    assert code == 0, out
    # 10 h on 2 nodes = 20 node-h = 80 billed GPU-h on LUMI
    assert "2 node(s) x 8 GPU(s)" in out and "80 GPU-h" in out and "= 20 node-h" in out
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| WP1 | lumi-g, standard-g | 2 node(s) x 8 GPU(s) | 95% | 10.0 | 1 |" in report
    assert (tmp_path / "report" / "wp1.png").exists() and "c0ffee" in report
    assert run(["size", "--site", "lumi-g", "--work", "1"]) != 0 and "--from RESULTS" in capsys.readouterr().err


def test_proposal_file_totals_every_package_and_reports_every_problem(tmp_path: Path) -> None:
    request = tmp_path / "request.yaml"
    request.write_text("title: Test\nsite: lumi-g\npackages:\n"
                       "  - {name: A, measure: ['8:1000'], measured_on: lumi-g, work: 28.8e6, runs: 3, availability: 1,"
                       " overheads: {eval: 0, checkpoint: 0, io: 0, startup: 0}}\n"
                       "  - {name: B, measure: ['4:400'], measured_on: leonardo-booster, site: leonardo-booster, work: 5.76e6,"
                       " availability: 1, overheads: {eval: 0, checkpoint: 0, io: 0, startup: 0}}\n")
    title, packages = packages_from_file(request)
    # A: 8 h x 3 runs on 1 LUMI node = 96 GPU-h; B: 4 h on 1 Leonardo node = 128 core-h = 16 GPU-h
    assert title == "Test" and [round(p.sizing.cost.gpu_hours) for p in packages] == [96, 16]
    report = render(title, packages, tmp_path / "out").read_text()
    assert "| **total lumi-g** | | | | | | | **96 GPU-h**" in report and "| **total leonardo-booster** | | | | | | | **128 core-h**" in report
    with pytest.raises(FileExistsError):
        render(title, packages, tmp_path / "out")
    request.write_text("site: lumi-g\npackages:\n  - {name: A, measure: ['x'], work: 1, colour: red}\n  - {name: B, work: 1}\n")
    with pytest.raises(aifsdk.RequestError) as err:
        packages_from_file(request)
    text = str(err.value)
    assert "colour" in text and "DEVICES:ITEMS_PER_S" in text and "packages[1] (B)" in text and "exactly one of from:" in text


def test_workload_wrap_runs_the_wrapped_model() -> None:
    calls = []

    class Counting(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            return self.inner(*args, **kwargs)

    wl = build_workload("sar", "cpu", batch_size=2, wrap=Counting)
    before = [p.detach().clone() for p in wl.model.parameters()]
    wl.step()
    assert isinstance(wl.model, Counting) and calls == [1]
    assert any(not torch.equal(a, b) for a, b in zip(before, wl.model.parameters()))  # the optimizer updated the wrapped weights


def test_slurm_energy_of_a_study_job_becomes_energy_per_item_with_its_basis(tmp_path: Path) -> None:
    from benchmarks.scaling import size_row as study_row

    result = {"world_size": 2, "items_per_step": 50, "times_s": [0.1] * 10, "warmup_steps": 2, "unit": "samples", "startup_s": 1.0,
              "warmup_s": 0.2, "steps_s": 1.0, "wall_s": 2.2, "hosts": ["n1", "n2"], "backend": "gloo", "threads": 1,
              "model_params": 10, "slurm_energy_j": 2400.0}
    row = study_row(result, nodes=2, tasks_per_node=1, workload="unet3d", dtype="fp32", device_name="AMD EPYC", site="lumi-g",
                    job_id="7", end_to_end_s=3.0).to_dict()
    assert row["energy_per_item_j"] == pytest.approx(2400 / (100 * 12)) and row["extra"]["slurm_energy_j"] == 2400.0
    assert row["energy_basis"].startswith("Slurm ConsumedEnergy of the whole job")
    assert row["step_time"]["mean_s"] == pytest.approx(0.1) and row["step_time"]["median_s"] == pytest.approx(0.1)
    (tmp_path / "results.json").write_text(json.dumps(document([row])))
    (m,) = measurements_from_results(tmp_path)
    assert m.energy_j_per_item == pytest.approx(2.0) and m.energy_source == row["energy_basis"]
    none = dict(result, slurm_energy_j=None)
    row = study_row(none, nodes=2, tasks_per_node=1, workload="unet3d", dtype="fp32", device_name="AMD EPYC", site="lumi-g",
                    job_id="8", end_to_end_s=3.0).to_dict()
    assert row["energy_per_item_j"] is None and row["energy_basis"] is None


def test_sizing_reads_a_run_without_torch_or_pandas(tmp_path: Path) -> None:
    """A login node with plain ``pip install aifsdk`` (no bench extra) sizes from a run folder copied there:
    the reader (benchmarks.results.measurements) needs neither torch nor pandas; both are made unimportable here."""
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "results.json").write_text(json.dumps(document([size_row(1, 0.1), size_row(2, 0.125)])))
    code = ("import sys; sys.modules['torch'] = None; sys.modules['pandas'] = None\n"
            "import aifsdk\n"
            "from aifsdk._sizing import measurements_from_results\n"
            f"ms = measurements_from_results({str(tmp_path / 'study')!r})\n"
            "print([(m.devices, round(m.items_per_s)) for m in ms])\n"
            "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[(1, 1000), (2, 1600)]"
