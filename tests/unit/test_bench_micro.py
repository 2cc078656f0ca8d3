"""Microbenchmarks, domain-workload runner and all-reduce maths, run for real on this CPU with tiny sizes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from benchmarks import micro
from benchmarks._device import detect
from benchmarks._measure import Context, Progress
from benchmarks._reference import ReferenceTable
from benchmarks._timing import TimingConfig
from benchmarks.allreduce import bus_factor, payload_sweep, rows_from_result, run_local
from benchmarks.domain import workloads
from benchmarks.results import Row

torch = pytest.importorskip("torch")
FAST = TimingConfig(warmup_iters=1, min_samples=3, max_samples=3, min_time_s=0.0)


def written(rows: list[Row]) -> list[dict]:
    """Rows as the results document holds them (statistics from the samples)."""
    assert all(isinstance(r, Row) for r in rows)
    return [r.to_dict() for r in rows]


@pytest.fixture
def ctx() -> Context:
    return Context(detect("cpu"), FAST, telemetry_interval_s=0.05)


def test_shape_grid_quick_and_exhaustive() -> None:
    assert micro.shape_grid("quick", [0, 512, 256], [64, 128, 64], [32]) == [(256, 64, 32), (512, 64, 32)]
    assert len(micro.shape_grid("exhaustive", [0, 512, 256], [64, 128, 64], [32])) == 4
    with pytest.raises(ValueError, match="mode='fast'.*allowed quick, exhaustive"):
        micro.shape_grid("fast", [1], [1], [1])
    with pytest.raises(ValueError, match=r"k_range=\[1, 2\].*Fix"):
        micro.shape_grid("quick", [1], [1], [1, 2])


def test_matmul_rows_per_shape_and_best(ctx: Context) -> None:
    rows = written(micro.matmul(ctx, dtypes=["fp32", "bf16"], m_range=[64, 128, 64], n_range=[64], k_range=[32]))
    assert [r["case"] for r in rows] == ["fp32 64x64x32", "fp32 128x64x32", "fp32 best", "bf16 64x64x32", "bf16 128x64x32", "bf16 best"]
    shape = rows[1]
    assert shape["unit"] == "TFLOPS" and shape["stats"]["n"] == 3 and len(shape["times_s"]) == 3
    assert shape["values"][0] == pytest.approx(2 * 128 * 64 * 32 / 1e12 / shape["times_s"][0])
    best = rows[2]
    assert best["stats"]["median"] == max(rows[0]["stats"]["median"], rows[1]["stats"]["median"])
    assert best["extra"]["best_shape"]["m"] in (64, 128) and best["extra"]["devices_measured"] == 1
    assert shape["telemetry"]["sources"] == ["cpu"] and shape["telemetry"]["samples"]
    assert shape["reference"]["peak"] is None  # no reference figures for this CPU


def test_fp8_matmul_goes_through_scaled_mm(ctx: Context) -> None:
    """torch.mm has no fp8 kernel; the fp8 case runs torch._scaled_mm (which this CPU build has too)."""
    rows = micro.matmul(ctx, dtypes=["fp8"], m_range=[64], n_range=[64], k_range=[32])
    assert [r.case for r in rows] == ["fp8 64x64x32", "fp8 best"] and rows[0].stats.median > 0
    assert rows[0].params["dtype"] == "fp8"


def test_reference_figures_attach_to_known_devices() -> None:
    """The H100 name is only a label here (the tensors stay on the CPU): it checks the lookup
    in configs/reference/accelerators.yaml and the % of peak and achievable."""
    device = dataclasses.replace(detect("cpu"), name="NVIDIA H100 80GB HBM3")
    ctx = Context(device, FAST, telemetry_interval_s=0.05)
    row = written(micro.matmul(ctx, dtypes=["bf16"], m_range=[64], n_range=[64], k_range=[64]))[0]
    ref = row["reference"]
    assert (ref["device"], ref["peak"], ref["achievable"]) == ("NVIDIA H100 SXM5 80GB", 989.0, 794.5)
    assert ref["pct_of_peak"] == pytest.approx(100 * row["stats"]["median"] / 989.0)
    assert "MAMF" in ref["achievable_source"]
    table = ReferenceTable()
    assert table.lookup("AMD Instinct MI250X", "membw_gbs.triad").peak == 1640.0
    assert table.lookup("NVIDIA H200", "d2h_gbs").achievable == 55.06
    assert table.lookup("Some Unknown GPU", "h2d_gbs").peak is None


def test_slowest_device_is_reported() -> None:
    rows = [Row("matmul", str(i), values=[m]) for i, m in enumerate([10.0, 9.5, 10.2])]
    assert micro.slowest(rows).case == "1"
    with pytest.raises(ValueError):
        micro.slowest([])


def test_membw_and_hostcopy_on_cpu(ctx: Context) -> None:
    rows = written(micro.membw(ctx, size_mb=8, kernels=["copy", "triad"]))
    copy, triad = rows
    n_bytes = copy["params"]["bytes_per_array"]
    assert copy["values"][0] == pytest.approx(2 * n_bytes / 1e9 / copy["times_s"][0])
    assert triad["values"][0] == pytest.approx(3 * n_bytes / 1e9 / triad["times_s"][0])
    assert copy["unit"] == "GB/s" and copy["stats"]["median"] > 0
    with pytest.raises(ValueError, match="'scale' unknown"):
        micro.membw(ctx, size_mb=1, kernels=["scale"])
    skipped = written(micro.hostcopy(ctx, size_mb=1))
    assert skipped[0]["skipped"].startswith("device cpu")


@dataclass
class TinyWorkload:
    """A workload following the benchmarks.workloads contract, defined here for the runner test."""

    batch_size: int = 4
    name: str = "tiny"
    domain: str = "test"
    unit: str = "samples"
    params: int = 0
    flops_per_step: float | None = None
    config: dict = field(default_factory=dict)
    steps: int = 0

    def __post_init__(self) -> None:
        self.model = torch.nn.Linear(16, 4)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.x = torch.randn(self.batch_size, 16)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.flops_per_step = 6.0 * self.params * self.batch_size
        self.config = {"batch_size": self.batch_size}

    @property
    def items_per_step(self) -> int:
        return self.batch_size

    def step(self) -> torch.Tensor:
        self.steps += 1
        loss = self.model(self.x).square().mean()
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss


def test_workload_runner_through_the_contract(ctx: Context) -> None:
    built: list[TinyWorkload] = []

    def builder(name: str, device: torch.device, dtype: torch.dtype, **params: int) -> TinyWorkload:
        assert device.type == "cpu" and dtype is torch.float32
        built.append(TinyWorkload(**params))
        return built[-1]

    rows = written(workloads(ctx, names=["tiny"], params={"tiny": {"batch_size": 8}}, builder=builder, known={"tiny": "a test workload"}))
    row = rows[0]
    assert built[0].steps == 1 + 3  # one warm-up call, three samples
    assert row["unit"] == "samples/s" and row["values"][0] == pytest.approx(8 / row["times_s"][0])
    extra = row["extra"]
    assert extra["model_params"] == 68 and extra["memory_kind"] == "process_peak_rss" and extra["peak_memory_bytes"] > 0
    assert extra["step_time_median_s"] > 0 and extra["achieved_tflops"] > 0
    with pytest.raises(ValueError, match=r"\['nope'\]: unknown; allowed tiny"):
        workloads(ctx, names=["nope"], builder=builder, known={"tiny": ""})


def test_a_real_domain_workload_runs_one_measured_step(ctx: Context) -> None:
    from benchmarks.workloads import WORKLOADS

    one = TimingConfig(warmup_iters=1, min_samples=1, max_samples=1, min_time_s=0.0)
    small = Context(ctx.device, one, telemetry_interval_s=0.05)
    row = written(workloads(small, names=["logformer"], params={"logformer": {"batch_size": 2, "seq_len": 32}}))[0]
    assert "logformer" in WORKLOADS
    assert row["unit"] == "tokens/s" and row["extra"]["items_per_step"] == 64 and row["stats"]["median"] > 0


def test_progress_says_what_runs_and_what_is_left() -> None:
    import io

    stream = io.StringIO()
    p = Progress(total=3, stream=stream)
    p.step("matmul fp32 64x64x64")
    p.step("membw copy")
    assert stream.getvalue().splitlines() == ["[........................] 1/3 matmul fp32 64x64x64 (2 left after this)",
                                              "[########................] 2/3 membw copy (1 left after this)"]


def test_busbw_is_algbw_times_2_n_minus_1_over_n() -> None:
    assert bus_factor(1) == 0.0 and bus_factor(2) == 1.0 and bus_factor(8) == pytest.approx(1.75)
    assert payload_sweep(1024, 16384, 4) == [1024, 4096, 16384]
    with pytest.raises(ValueError, match="factor=1"):
        payload_sweep(1024, 4096, 1)
    result = {"world_size": 4, "backend": "gloo", "rows": [{"bytes": 10**9, "times_s": [1.0, 0.5], "wrong": 0, "hosts": ["a", "b"]}]}
    row = written(rows_from_result("cpu", result))[0]
    assert row["values"] == [1.5, 3.0]  # algbw 1 and 2 GB/s times 2*3/4
    assert row["extra"]["algbw_median_gbs"] == 1.5 and row["metric"] == "busbw"


def test_allreduce_rank_code_runs_in_one_process() -> None:
    result = run_local([1024, 4096], warmup=1, iters=3)
    assert result["world_size"] == 1 and result["backend"] == "gloo"
    assert [r["bytes"] for r in result["rows"]] == [1024, 4096]
    assert all(len(r["times_s"]) == 3 and r["wrong"] == 0 for r in result["rows"])


def test_matmul_devices_choice_is_checked(ctx: Context) -> None:
    with pytest.raises(ValueError, match="devices=3: allowed null.*'all'.*Fix"):
        micro.matmul(ctx, devices=3, m_range=[8], n_range=[8], k_range=[8])
    rows = written(micro.matmul(ctx, devices="all", m_range=[8], n_range=[8], k_range=[8]))  # one CPU: the same single device
    assert rows[-1]["extra"]["devices_measured"] == 1 and rows[-1]["extra"]["slowest_device"] == "cpu"


TINY = {"unet3d": {"patch_size": 16}, "satseg": {"tile_size": 32}, "detector": {"image_size": 64}, "sar": {"frame_length": 256},
        "logformer": {"seq_len": 32}}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_every_domain_workload_runs_through_the_harness(ctx: Context, name: str) -> None:
    one = TimingConfig(warmup_iters=1, min_samples=1, max_samples=1, min_time_s=0.0)
    row = written(workloads(Context(ctx.device, one, telemetry_interval_s=0.05), names=[name], params={name: {"batch_size": 1, **TINY[name]}}))[0]
    unit = "tokens/s" if name == "logformer" else "samples/s"
    assert row["unit"] == unit and row["stats"]["median"] > 0
    assert row["extra"]["model_params"] > 1000 and row["extra"]["domain"] in ("healthcare", "space", "defence", "security")
    assert row["values"][0] == pytest.approx(row["extra"]["items_per_step"] / row["times_s"][0])
