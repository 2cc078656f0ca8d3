"""Every shipped benchmark config composes (Hydra compose API) and names callables whose
signatures take its keys; bad values fail before anything runs, naming the fix."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from benchmarks._device import DeviceInfo, detect
from benchmarks._suite import benchmark_calls, count_steps

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SUITES = sorted(p.stem for p in (CONFIGS / "suite").glob("*.yaml"))
WORKLOADS = sorted(p.stem for p in (CONFIGS / "workload").glob("*.yaml"))
CPU = DeviceInfo("cpu", "cpu", "test cpu", 1, None, 32 * 2**20)
GPU = DeviceInfo("cuda", "cuda:0", "NVIDIA H100 80GB HBM3", 4, 80 * 2**30, 50 * 2**20)


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("benchmarks", overrides=list(overrides))


def test_there_are_suites_and_workloads() -> None:
    assert {"quick", "micro", "mamf", "allreduce", "healthcare", "space", "defence", "security"} <= set(SUITES)
    assert {"unet3d", "satseg", "detector", "sar", "logformer"} <= set(WORKLOADS)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("device", [CPU, GPU], ids=["cpu", "gpu"])
def test_every_suite_composes_and_binds(suite: str, device: DeviceInfo) -> None:
    cfg = _compose(f"suite={suite}")
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    calls = benchmark_calls(cfg, device)
    assert calls, f"suite {suite} runs nothing"
    for name, fn, kwargs in calls:
        inspect.signature(fn).bind(object(), **kwargs)  # the config's keys are the callable's parameters
    assert count_steps(calls, device) >= len(calls)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_every_workload_config_is_accepted_by_its_builder(workload: str) -> None:
    from benchmarks.workloads import WORKLOADS as MENU

    cfg = _compose("suite=healthcare", f"workload={workload}")
    assert workload in MENU
    calls = dict((n, kw) for n, _, kw in benchmark_calls(cfg, CPU))
    assert calls["workloads"]["names"] == [workload]
    assert set(calls["workloads"]["params"]) == {workload}


def test_domain_suite_selects_its_workload_and_overrides_apply() -> None:
    cfg = _compose("suite=healthcare", "workload.batch_size=4", "dtype=bf16")
    assert cfg.workload.name == "unet3d" and cfg.workload.batch_size == 4
    calls = {n: kw for n, _, kw in benchmark_calls(cfg, CPU)}
    assert calls["workloads"]["params"] == {"unet3d": {"preset": "small", "batch_size": 4}}
    assert calls["workloads"]["dtype"] == "bf16" and calls["matmul"]["dtypes"] == ["bf16"]
    assert _compose("suite=security").workload.name == "logformer"


def test_by_device_sizes_apply_on_gpus_only() -> None:
    cfg = _compose()
    cpu = {n: kw for n, _, kw in benchmark_calls(cfg, CPU)}
    gpu = {n: kw for n, _, kw in benchmark_calls(cfg, GPU)}
    assert cpu["matmul"]["n_range"] == [1024] and gpu["matmul"]["n_range"] == [4096]
    assert "by_device" not in gpu["matmul"]


def test_site_profiles_compose_beside_the_benchmarks() -> None:
    cfg = _compose("suite=allreduce", "site=lumi-g")
    assert cfg.site.executor == "slurm" and cfg.suite.benchmarks.allreduce.nodes == 2
    calls = {n: kw for n, _, kw in benchmark_calls(cfg, CPU, site_choice="lumi-g")}
    assert calls["allreduce"]["site"] == "lumi-g"


def test_bad_values_fail_before_running_with_every_problem() -> None:
    cfg = _compose("suite.benchmarks.matmul.dtypes=[fp32,fp12]", "suite.benchmarks.matmul.m_range=[256,128,0]",
                   "suite.benchmarks.workloads.names=[unet3d,nope]")
    with pytest.raises(ValueError) as err:
        benchmark_calls(cfg, CPU)
    text = str(err.value)
    assert "3 problem(s)" in text and "nothing was run" in text
    assert "dtype='fp12'" in text and "m_range=[256, 128, 0]" in text and "['nope']" in text and "Fix" in text


def _fake_torch(cuda: bool = False, hip: str | None = None, xpu: bool = False, mps: bool = False) -> SimpleNamespace:
    """A stand-in for the torch module's device queries (no GPU on this machine)."""
    props = SimpleNamespace(total_memory=80 * 2**30, L2_cache_size=50 * 2**20)
    return SimpleNamespace(
        __version__="2.9.0", version=SimpleNamespace(cuda=None if hip else "12.8", hip=hip),
        cuda=SimpleNamespace(is_available=lambda: cuda, device_count=lambda: 8, get_device_name=lambda i: "NVIDIA H100 80GB HBM3",
                             get_device_properties=lambda i: props, nccl=SimpleNamespace(version=lambda: (2, 27, 3))),
        xpu=SimpleNamespace(is_available=lambda: xpu, device_count=lambda: 2, get_device_name=lambda i: "Intel Data Center GPU Max 1550",
                            get_device_properties=lambda i: SimpleNamespace(total_memory=64 * 2**30, driver_version="1.3")),
        backends=SimpleNamespace(mps=SimpleNamespace(is_available=lambda: mps)))


def test_device_detection_order_and_errors() -> None:
    info = detect(torch_module=_fake_torch(cuda=True))
    assert (info.kind, info.torch_device, info.count, info.llc_bytes) == ("cuda", "cuda:0", 8, 50 * 2**20)
    assert info.versions["nccl"] == "2.27.3" and info.versions["cuda"] == "12.8"
    assert detect(torch_module=_fake_torch(cuda=True, hip="6.2")).kind == "rocm"
    assert detect(torch_module=_fake_torch(xpu=True)).kind == "xpu"
    assert detect(torch_module=_fake_torch(mps=True)).kind == "mps"
    cpu = detect(torch_module=_fake_torch())
    assert cpu.kind == "cpu" and cpu.name
    with pytest.raises(ValueError, match="device='cuda': not present here.*Fix"):
        detect("cuda", torch_module=_fake_torch())
    with pytest.raises(ValueError, match="device='tpu'.*allowed"):
        detect("tpu", torch_module=_fake_torch())


def test_a_failing_benchmark_is_recorded_and_the_run_goes_on() -> None:
    """A failure while running (the workload builder refusing batch_size=0) becomes an error row
    with the builder's message; the benchmarks before and after it still run and are kept."""
    import io

    from benchmarks._suite import run_suite

    cfg = _compose("suite=healthcare", "workload=sar", "workload.batch_size=0", "suite.benchmarks.matmul.m_range=[16]",
                   "suite.benchmarks.matmul.n_range=[16]", "suite.benchmarks.matmul.k_range=[16]", "timing.min_samples=2",
                   "timing.max_samples=2", "timing.min_time_s=0", "timing.flush_cache=false", "device=cpu")
    stream = io.StringIO()
    document, failed = run_suite(cfg, ["workload.batch_size=0"], progress_stream=stream)
    assert failed == 1
    assert [r["case"] for r in document["rows"]] == ["fp32 16x16x16", "fp32 best", "error"]
    error = document["rows"][-1]
    assert error["benchmark"] == "workloads" and "batch_size" in error["skipped"]
    assert "error: benchmark workloads failed" in stream.getvalue()


def test_an_unknown_site_for_the_allreduce_fails_before_running() -> None:
    cfg = _compose("suite=allreduce", "suite.benchmarks.allreduce.site=no-such-site")
    with pytest.raises(ValueError, match="suite.benchmarks.allreduce.site: - site='no-such-site': allowed one of .*slurm"):
        benchmark_calls(cfg, CPU)
