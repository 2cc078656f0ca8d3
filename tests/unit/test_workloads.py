"""The domain workloads (benchmarks.workloads): real models, real torch training steps on CPU.

Nothing is faked. bf16 and fp16 run through torch's real CPU autocast. On this AVX2-only CPU
(no native bf16), default-size bf16 steps measured 18-67x slower than fp32 (unet3d: seconds per
step), so the mixed-precision steps, like the loss and gradient checks,
use the small TINY sizes: the code path is the same at every size. Default sizes run in fp32
here, and in every dtype in `python -m benchmarks.workloads.measure`. torch runs one thread:
these tests check correctness, and one thread does not spin-wait when the shared CPU is busy.
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmarks.workloads import WORKLOADS, Workload, WorkloadConfigError, build_workload

CPU = torch.device("cpu")
NAMES = sorted(WORKLOADS)

#: sizes that keep each workload's step in the tens of milliseconds here.
TINY = {
    "unet3d": {"patch_size": 16, "base_channels": 4, "depth": 2},
    "satseg": {"tile_size": 32, "base_channels": 8, "depth": 2, "batch_size": 2},
    "detector": {"image_size": 64, "base_channels": 8, "objects_per_image": 4},
    "sar": {"batch_size": 8, "frame_length": 128, "stacks": 3, "filters": 16},
    "logformer": {"batch_size": 4, "seq_len": 32, "vocab_size": 64, "d_model": 32, "ff_dim": 64, "dropout": 0.0},
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _snapshot(wl: Workload) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in wl.model.named_parameters()}


def _assert_step_trains(wl: Workload) -> float:
    """One step: a finite scalar loss comes back and every trainable parameter moves."""
    before = _snapshot(wl)
    loss = wl.step()
    assert loss.ndim == 0 and not loss.requires_grad
    value = float(loss)
    assert math.isfinite(value), f"{wl.name}: loss {value}"
    unchanged = [n for n, p in wl.model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged, f"{wl.name}: parameters not updated by the step: {unchanged}"
    assert all(p.grad is None for p in wl.model.parameters()), "step() must zero_grad(set_to_none=True)"
    return value


def test_menu_names_every_domain() -> None:
    assert {"unet3d", "satseg", "logformer"} <= set(WORKLOADS)
    assert {"detector", "sar"} & set(WORKLOADS)
    domains = {build_workload(n, CPU, **TINY[n]).domain for n in NAMES}
    assert domains == {"healthcare", "space", "defence", "security"}


@pytest.mark.parametrize("name", NAMES)
def test_default_step_fp32(name: str) -> None:
    wl = build_workload(name, CPU)
    assert wl.name == name and wl.config["preset"] == "small"
    _assert_step_trains(wl)


@pytest.mark.parametrize("name", NAMES)
def test_bf16_step_runs_under_autocast(name: str) -> None:
    wl = build_workload(name, CPU, torch.bfloat16, **TINY[name])
    seen: list[torch.dtype] = []
    wl.model.register_forward_hook(lambda mod, args, out: seen.append((out[0] if isinstance(out, tuple) else out).dtype))
    _assert_step_trains(wl)
    assert seen == [torch.bfloat16], f"{name}: model output dtype under bf16 autocast: {seen}"
    assert all(p.dtype == torch.float32 for p in wl.model.parameters()), "parameters must stay fp32 (master weights)"
    assert wl.scaler is None


def test_fp16_on_cpu_uses_autocast_and_a_grad_scaler() -> None:
    """torch 2.13 autocasts to fp16 on CPU, so fp16 is accepted there (with a GradScaler)."""
    wl = build_workload("logformer", CPU, torch.float16, **TINY["logformer"])
    assert isinstance(wl.scaler, torch.amp.GradScaler)
    _assert_step_trains(wl)


@pytest.mark.parametrize("name", NAMES)
def test_reported_figures_match_the_config_and_the_data(name: str) -> None:
    wl = build_workload(name, CPU, **TINY[name])
    cfg = wl.config
    for key, value in TINY[name].items():
        assert cfg[key] == value
    assert wl.params == sum(p.numel() for p in wl.model.parameters() if p.requires_grad) > 0
    first = next(iter(wl.batch.values()))
    assert first.device.type == "cpu" and first.shape[0] == cfg["batch_size"]
    if wl.unit == "tokens":
        assert wl.items_per_step == cfg["batch_size"] * cfg["seq_len"] == wl.batch["tokens"].numel()
    else:
        assert wl.unit == "samples" and wl.items_per_step == cfg["batch_size"]
    # FLOPs: positive, and proportional to the batch (the count really follows the config).
    doubled = build_workload(name, CPU, **{**TINY[name], "batch_size": 2 * cfg["batch_size"]})
    assert wl.flops_per_step and wl.flops_per_step > 0
    assert doubled.flops_per_step == pytest.approx(2 * wl.flops_per_step, rel=0.02)
    assert doubled.items_per_step == 2 * wl.items_per_step


def test_flops_count_forward_and_backward() -> None:
    """A one-convolution check of the counting: sar's FLOPs exceed 2x the forward-only count."""
    from torch.utils.flop_counter import FlopCounterMode

    wl = build_workload("sar", CPU, **TINY["sar"])
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        wl.compute_loss()
    forward = counter.get_total_flops()
    assert 2.5 * forward < wl.flops_per_step <= 3 * forward


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_gets_a_gradient(name: str) -> None:
    wl = build_workload(name, CPU, **TINY[name])
    wl.compute_loss().backward()
    dead = [n for n, p in wl.model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"{name}: no gradient reaches {dead}"


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_on_the_fixed_batch(name: str) -> None:
    wl = build_workload(name, CPU, **TINY[name], lr=3e-3)
    losses = [float(wl.step()) for _ in range(5)]
    assert losses[-1] < losses[0], f"{name}: losses {losses}"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_data_and_weights(name: str) -> None:
    a, b = (build_workload(name, CPU, **TINY[name]) for _ in range(2))
    c = build_workload(name, CPU, **TINY[name], seed=1)
    for key in a.batch:
        assert torch.equal(a.batch[key], b.batch[key])
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert not all(torch.equal(a.batch[k], c.batch[k]) for k in a.batch)


def test_build_does_not_touch_the_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_workload("sar", CPU, **TINY["sar"])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", NAMES)
def test_full_preset_is_valid_and_its_shapes_fit(name: str) -> None:
    """The realistic sizes pass the checks and a whole forward+backward runs on the meta device
    (shapes only: no memory, no compute), which is also how their FLOPs are counted."""
    from benchmarks.workloads._base import count_flops, resolve_config
    from benchmarks.workloads._registry import SPECS

    spec = SPECS[name]
    cfg = resolve_config(spec, {"preset": "full"})
    assert spec.full and all(cfg[k] >= spec.defaults[k] for k in spec.full), "full sizes are never below the defaults"
    assert resolve_config(spec, {"preset": "full", "batch_size": 3})["batch_size"] == 3, "explicit params win over the preset"
    flops = count_flops(spec, cfg)
    small = count_flops(spec, resolve_config(spec, {}))
    assert flops is not None and small is not None and flops > 5 * small, f"{name}: full {flops:.3g} vs small {small:.3g} FLOPs"


def test_full_preset_resolves_realistic_sizes_before_building() -> None:
    """preset='full' selects the documented sizes; explicit params still win. An invalid param
    with it fails before the 128^3 volumes and the 31M-parameter model would be built."""
    with pytest.raises(WorkloadConfigError) as err:
        build_workload("unet3d", CPU, preset="full", depth=7)
    assert "patch_size=128: must be a multiple of 256" in str(err.value)


def _message(name: str, **params) -> str:
    with pytest.raises(WorkloadConfigError) as err:
        build_workload(name, CPU, **params)
    assert isinstance(err.value, ValueError)
    text = str(err.value)
    assert "Fix:" in text and f"workload {name!r}" in text
    return text


def test_unknown_param_lists_the_allowed_ones() -> None:
    text = _message("unet3d", patch=64)
    assert "patch=64: unknown parameter" in text
    assert "patch_size=32" in text and "batch_size=2" in text and "preset='small'" in text


def test_volume_not_divisible_names_value_rule_and_fix() -> None:
    text = _message("unet3d", patch_size=40, depth=3)
    assert "patch_size=40: must be a multiple of 16" in text and "depth=3" in text
    assert "Fix: use patch_size=32 or 48" in text


def test_every_problem_is_reported_at_once_before_anything_is_built() -> None:
    # batch_size=10**9 is valid but would need terabytes: only a check made first answers here
    text = _message("logformer", batch_size=10**9, d_model=100, num_heads=8, dropout=1.5, seq_len=0)
    assert text.startswith("3 problems with workload 'logformer'")
    for part in ("d_model=100: must be a multiple of num_heads=8", "dropout=1.5", "seq_len=0: must be > 0"):
        assert part in text


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("satseg", {"batch_size": "4"}, "batch_size='4': must be an integer"),
        ("satseg", {"tile_size": 40}, "tile_size=40: must be a multiple of 16"),
        ("satseg", {"max_channels": 4}, "max_channels=4: must be >= base_channels=16"),
        ("detector", {"image_size": 100}, "image_size=100: must be a multiple of 32"),
        ("sar", {"frame_length": 1000}, "frame_length=1000: must be a multiple of 64"),
        ("sar", {"stacks": 0}, "stacks=0: must be > 0"),
        ("logformer", {"vocab_size": 2}, "vocab_size=2: must be > 2"),
        ("unet3d", {"preset": "huge"}, "preset='huge': allowed small, full"),
        ("unet3d", {"num_classes": 1}, "num_classes=1: must be >= 2"),
        ("unet3d", {"lr": -1.0}, "lr=-1.0: must be > 0"),
    ],
)
def test_invalid_values(name: str, params: dict, expected: str) -> None:
    assert expected in _message(name, **params)


def test_unknown_workload_and_unusable_dtypes() -> None:
    text = _message("resnet")
    assert "name='resnet': unknown workload. Allowed: " in text and "unet3d" in text
    assert "dtype=torch.float64: allowed torch.float32, torch.bfloat16, torch.float16" in str(
        pytest.raises(WorkloadConfigError, build_workload, "sar", CPU, torch.float64).value
    )
    # a device type that cannot autocast at all: the real probe fails and says so
    with pytest.raises(WorkloadConfigError, match="device meta cannot autocast"):
        build_workload("sar", "meta", torch.bfloat16)
