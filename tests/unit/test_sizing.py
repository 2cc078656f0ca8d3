"""Sizing arithmetic against hand-computed cases, on the shipped site profiles and reference figures."""

from __future__ import annotations

import json
import math

import pytest

import aifsdk
from aifsdk import Measurement
from aifsdk._sizing import access_calls, amdahl_fit, scaling_table
from aifsdk.cli import run

NONE = {"eval": 0.0, "checkpoint": 0.0, "io": 0.0, "startup": 0.0}


def exact(devices: int, rate: float, site: str, **kw: object) -> Measurement:
    return Measurement(devices=devices, items_per_s=rate, site=site, **kw)  # type: ignore[arg-type]


def test_lumi_gpu_hours_are_four_per_node_hour_billed_per_mi250x() -> None:
    # 1 node = 8 GCDs at 1000 samples/s; 28.8e6 samples = 8 h; 3 runs -> 24 node-h = 96 billed GPU-h (MI250X)
    s = aifsdk.size(exact(8, 1000, "lumi-g"), work=28.8e6, site="lumi-g", runs=3, overheads=NONE, availability=1)
    assert (s.nodes, s.gpus_per_node, s.partition) == (1, 8, "standard-g")
    assert s.hours_per_run == pytest.approx(8.0) and s.jobs_per_run == 1
    assert s.cost.unit == "gpu-hours" and s.cost.amount == pytest.approx(96.0)
    assert s.cost.node_hours == pytest.approx(24.0) and s.cost.gpu_hours == pytest.approx(4 * s.cost.node_hours)


def test_leonardo_bills_core_hours() -> None:
    # 4 A100 (a whole node) at 400 samples/s; 5.76e6 samples = 4 h -> 4 node-h x 32 core-h = 128 core-h = 16 GPU-h
    s = aifsdk.size(exact(4, 400, "leonardo-booster"), work=5.76e6, site="leonardo-booster", overheads=NONE, availability=1)
    assert s.cost.unit == "core-hours" and s.cost.amount == pytest.approx(128.0)
    assert s.cost.gpu_hours == pytest.approx(16.0) and s.cost.node_hours == pytest.approx(4.0)


def test_karolina_has_eight_gpus_per_node() -> None:
    full = aifsdk.size(exact(8, 800, "karolina-gpu"), work=28.8e6, site="karolina-gpu", overheads=NONE, availability=1)
    assert full.hours_per_run == pytest.approx(10.0) and full.nodes == 1 and full.gpus_per_node == 8
    assert full.cost.unit == "node-hours" and full.cost.amount == pytest.approx(10.0) and full.cost.gpu_hours == pytest.approx(80.0)
    part = aifsdk.size(exact(2, 200, "karolina-gpu"), work=28.8e6, site="karolina-gpu", overheads=NONE, availability=1)
    # 2 of 8 GPUs for 40 h: a quarter of a node -> the same 10 node-h (80 GPU-h)
    assert part.hours_per_run == pytest.approx(40.0) and part.cost.amount == pytest.approx(10.0)


def test_overheads_and_availability() -> None:
    # 8 h of training + 10% eval + 15% io = 10 h per run; availability 0.8 -> 10 x 4 / 0.8 = 50 GPU-h
    s = aifsdk.size(exact(8, 1000, "lumi-g"), work=28.8e6, site="lumi-g", overheads={**NONE, "eval": 0.1, "io": 0.15}, availability=0.8)
    assert s.hours_per_run == pytest.approx(10.0) and s.cost.amount == pytest.approx(50.0) and s.cost.node_hours == pytest.approx(12.5)


def test_runs_longer_than_the_partition_allows_become_chained_jobs() -> None:
    # 100 h on LUMI standard-g (at most 2 days a job): 3 jobs of 33:20; the bill counts the 100 h once
    s = aifsdk.size(exact(8, 1000, "lumi-g"), work=1000 * 3600 * 100, site="lumi-g", overheads=NONE, availability=1)
    assert s.jobs_per_run == 3 and s.job_time_minutes == 2000
    assert s.cost.amount == pytest.approx(400.0)


def test_job_size_is_the_largest_above_the_efficiency_threshold() -> None:
    ms = [exact(8, 1000, "lumi-g"), exact(16, 1900, "lumi-g"), exact(32, 3000, "lumi-g")]
    rows = scaling_table(ms)
    assert [round(r.efficiency, 4) for r in rows] == [1.0, 0.95, 0.75]
    assert aifsdk.size(ms, work=1e9, site="lumi-g", min_efficiency=0.8).devices == 16
    chosen = aifsdk.size(ms, work=1e9, site="lumi-g", min_efficiency=0.7)
    assert (chosen.devices, chosen.nodes) == (32, 4)
    assert "| 32 | 3,000.0 samples/s | 93.75 | 3.00 | 75% |" in chosen.table()


def test_amdahl_fit_recovers_the_parallel_fraction() -> None:
    p = 0.95
    ms = [Measurement(devices=n, items_per_s=100 / ((1 - p) + p / n)) for n in (1, 2, 4, 8, 16)]
    assert amdahl_fit(scaling_table(ms)) == pytest.approx(0.95, abs=1e-4)
    assert amdahl_fit(scaling_table(ms[:1])) is None


def test_range_comes_from_p10_and_p90() -> None:
    m = exact(8, 1000, "lumi-g", p10=800, p90=1250)
    s = aifsdk.size(m, work=28.8e6, site="lumi-g", overheads=NONE, availability=1)
    assert s.hours_per_run_range == pytest.approx((6.4, 10.0))
    assert (s.cost_low.amount, s.cost_high.amount) == pytest.approx((25.6, 40.0))


def test_projection_from_other_hardware_is_labelled_and_wider() -> None:
    # A100 SXM4 80GB -> MN5 ACC (H100 SXM): bf16 matmul 794.5/271.2, triad 2970/1700 (achievable figures)
    m = Measurement(devices=4, items_per_s=1000, device="NVIDIA A100-SXM4-80GB", p10=1000, p90=1000)
    s = aifsdk.size(m, work=1e8, site="mn5-acc", overheads=NONE, availability=1)
    compute, memory = 794.5 / 271.2, 2970 / 1700
    central = math.sqrt(compute * memory)
    assert s.projection is not None and "projected to NVIDIA H100" in s.projection and "2.93x" in s.projection
    assert s.hours_per_run == pytest.approx(1e8 / (1000 * central) / 3600)
    assert s.hours_per_run_range == pytest.approx((1e8 / (1000 * compute) / 3600, 1e8 / (1000 * memory) / 3600))
    assert "PROJECTION" in s.text()


def test_projection_needs_reference_figures_for_both_devices() -> None:
    with pytest.raises(aifsdk.RequestError, match="accelerators.yaml"):
        aifsdk.size(Measurement(devices=1, items_per_s=10, device="Some Unknown Accelerator 9000"), work=1e6, site="mn5-acc")


def test_energy_from_measured_joules_per_item() -> None:
    m = exact(8, 1000, "lumi-g", energy_j_per_item=3.6)
    s = aifsdk.size(m, work=1e6, site="lumi-g", runs=2, overheads={**NONE, "eval": 0.5}, availability=0.5)
    assert s.energy_kwh == pytest.approx(3.6 * 1e6 * 2 * 1.5 / 0.5 / 3.6e6)


def test_access_calls_for_a_total() -> None:
    fits = {c.mode: c.fits for c in access_calls("lumi-g", node_hours=2600, gpu_hours=10400)}
    assert fits["Benchmark"] is False and fits["Development"] is True and fits["Regular"] is False
    assert fits["AI Factories Fast Lane"] is True and fits["AI Factories Large Scale"] is False
    big = {c.mode: c for c in access_calls("leonardo-booster", node_hours=30000, gpu_hours=120000)}
    assert big["Regular"].fits and big["AI Factories Large Scale"].fits and not big["AI Factories Fast Lane"].fits
    assert "above its maximum of 50,000 GPU-h" in big["AI Factories Fast Lane"].verdict
    assert "Benchmark" in {c.mode for c in access_calls("karolina-gpu", 1, 8)}
    assert "Extreme Scale" not in {c.mode for c in access_calls("karolina-gpu", 1, 8)}  # not offered there
    # AI Factories modes take EuroHPC systems only, not a national Tier-1 or the local test cluster
    assert "AI Factories Fast Lane" in {c.mode for c in access_calls("jupiter-ai", 1, 8)}
    assert access_calls("hortense", 1, 8) == [] and access_calls("slurm", 1, 8) == []


def test_bad_inputs_are_all_named_before_anything() -> None:
    ms = [Measurement(devices=8, items_per_s=10, unit="samples"), Measurement(devices=8, items_per_s=20, unit="tokens")]
    with pytest.raises(aifsdk.RequestError) as info:
        aifsdk.size(ms, work=0, site="lumi-g", runs=0, availability=1.5, overheads={"lunch": 0.1})
    params = [p.param for p in info.value.problems]
    assert params.count("measurements") == 2 and {"work", "runs", "availability", "overheads"} <= set(params)
    with pytest.raises(aifsdk.RequestError, match="site"):
        aifsdk.size(exact(1, 10, "local"), work=1, site="local")


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["size", "--site", "karolina-gpu", "--measured-on", "karolina-gpu", "--measure", "8:800", "--work", "28.8e6",
                "--overhead", "eval=0", "--overhead", "checkpoint=0", "--overhead", "io=0", "--overhead", "startup=0",
                "--availability", "1", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cost"]["amount"] == pytest.approx(10.0) and data["nodes"] == 1
    assert run(["size", "--site", "lumi-g", "--measure", "eight:100", "--work", "1e6", "--overhead", "eval"]) == 2
    err = capsys.readouterr().err
    assert "--measure eight:100:" in err and "--overhead eval:" in err
