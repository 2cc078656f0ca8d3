"""What every domain workload shares: the `Workload` object, parameter checking, the mixed
precision check, synthetic data on the device and the FLOP count.

A workload module describes itself with one `WorkloadSpec`: its defaults (small enough that one
training step takes well under a second on a 2-core CPU), a `full` preset with the realistic
sizes it documents, a `check` that lists what is wrong with a resolved config, and three builders
(`make_model`, `make_batch`, `loss`). `build_from_spec` turns a spec and the user's params into a
ready `Workload`; it checks everything before building anything heavy.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

#: dtypes a workload can train in: fp32, or mixed precision (autocast) in bf16 or fp16.
ALLOWED_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}

#: params every workload takes, with their defaults.
COMMON_DEFAULTS: dict[str, Any] = {"preset": "small", "lr": 1e-3, "seed": 0}
PRESETS = ("small", "full")

FLOPS_METHOD = (
    "torch.utils.flop_counter.FlopCounterMode over one forward+loss+backward on the meta device "
    "(matmul, convolution and attention FLOPs; elementwise, normalisation and optimizer ops not counted)"
)


class WorkloadConfigError(ValueError):
    """A workload was asked for with unknown or invalid params, or a dtype the device cannot use.

    Raised before anything heavy is built; `problems` lists every problem found, each naming the
    parameter, the value, what is allowed and the fix.
    """

    def __init__(self, name: str, problems: list[str]):
        self.workload = name
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n > 1 else ''} with workload {name!r} (nothing was built):"
        super().__init__("\n  - ".join([head, *self.problems]))


class Synth:
    """Random synthetic data made directly on `device` from a fixed seed.

    On the meta device (used to count FLOPs) no generator exists and values are shapes only.
    """

    def __init__(self, device: torch.device, seed: int):
        self.device = device
        self.gen: torch.Generator | None = None
        if device.type != "meta":
            self.gen = torch.Generator(device=device)
            self.gen.manual_seed(seed)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.gen, device=self.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, device=self.device)

    def randint(self, low: int, high: int, *shape: int) -> torch.Tensor:
        return torch.randint(low, high, shape, generator=self.gen, device=self.device)


Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class WorkloadSpec:
    """How to check, size and build one workload. `make_model(cfg)`, `make_batch(cfg, synth)`
    and `loss(model, batch, cfg)` must also work on the meta device (no data-dependent shapes)."""

    name: str
    domain: str
    unit: str  # "samples" or "tokens"
    description: str
    defaults: Mapping[str, Any]
    full: Mapping[str, Any]
    check: Callable[[dict[str, Any]], list[str]]
    make_model: Callable[[dict[str, Any]], nn.Module]
    make_batch: Callable[[dict[str, Any], Synth], Batch]
    loss: Callable[[nn.Module, Batch, dict[str, Any]], torch.Tensor]
    items_per_step: Callable[[dict[str, Any]], int] = lambda cfg: cfg["batch_size"]
    derived: Callable[[dict[str, Any]], dict[str, Any]] = lambda cfg: {}


@dataclass(eq=False)
class Workload:
    """One ready training step on synthetic data already on the device.

    `step()` runs forward and loss (under autocast when `dtype` is bf16/fp16; parameters stay
    fp32), backward, `optimizer.step()` and `zero_grad(set_to_none=True)`, and returns the loss
    tensor without synchronising (the caller synchronises).
    """

    name: str
    domain: str
    unit: str
    items_per_step: int
    params: int
    flops_per_step: float | None
    config: dict[str, Any]
    device: torch.device = field(repr=False)
    dtype: torch.dtype = field(repr=False)
    model: nn.Module = field(repr=False)
    optimizer: torch.optim.Optimizer = field(repr=False)
    batch: Batch = field(repr=False)
    compute_loss: Callable[[], torch.Tensor] = field(repr=False)
    scaler: torch.amp.GradScaler | None = field(default=None, repr=False)

    def step(self) -> torch.Tensor:
        """One full training step; returns the (detached) loss tensor of this step."""
        if self.dtype == torch.float32:
            ctx: contextlib.AbstractContextManager = contextlib.nullcontext()
        else:
            ctx = torch.autocast(self.device.type, dtype=self.dtype)
        with ctx:
            loss = self.compute_loss()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()


def _type_problems(cfg: dict[str, Any], reference: Mapping[str, Any]) -> list[str]:
    """Each param must have the type of its default (an int where an int is expected, ...)."""
    problems = []
    for key, value in cfg.items():
        ref = reference[key]
        if isinstance(ref, bool):
            ok = isinstance(value, bool)
            want = "true or false"
        elif isinstance(ref, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
            want = "an integer"
        elif isinstance(ref, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            want = "a number"
        else:
            ok = isinstance(value, str)
            want = "a string"
        if not ok:
            problems.append(f"{key}={value!r}: must be {want} (default {ref!r}). Fix: pass {key}={ref!r} or another {want}")
    return problems


def positive(cfg: dict[str, Any], *keys: str) -> list[str]:
    """Problems for each of `keys` whose value is not > 0."""
    return [f"{k}={cfg[k]!r}: must be > 0. Fix: use a positive {k}" for k in keys if isinstance(cfg[k], (int, float)) and cfg[k] <= 0]


def divisible(key: str, value: int, factor: int, why: str) -> list[str]:
    """A problem when `value` is not a multiple of `factor` (with the nearest valid values)."""
    if value <= 0 or value % factor == 0:
        return []
    lo = max(factor, value // factor * factor)
    return [f"{key}={value}: must be a multiple of {factor} ({why}). Fix: use {key}={lo} or {lo + factor}"]


def resolve_config(spec: WorkloadSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Merge defaults, the chosen preset and the user's params; raise on every problem found."""
    reference = {**COMMON_DEFAULTS, **spec.defaults}
    unknown = sorted(set(params) - set(reference))
    if unknown:
        menu = ", ".join(f"{k}={v!r}" for k, v in reference.items())
        raise WorkloadConfigError(
            spec.name,
            [
                f"{k}={params[k]!r}: unknown parameter. Allowed (with defaults): {menu}. Fix: remove {k} or use one of these"
                for k in unknown
            ],
        )
    preset = params.get("preset", "small")
    if preset not in PRESETS:
        raise WorkloadConfigError(spec.name, [f"preset={preset!r}: allowed {', '.join(PRESETS)}. Fix: use preset='small' or 'full'"])
    cfg = dict(reference)
    if preset == "full":
        cfg.update(spec.full)
    cfg.update(params)
    problems = _type_problems(cfg, reference)
    if not problems:
        problems = positive(cfg, "lr") + spec.check(cfg)
    if problems:
        raise WorkloadConfigError(spec.name, problems)
    return cfg


def check_precision(name: str, device: torch.device, dtype: torch.dtype) -> None:
    """Raise unless `dtype` is allowed and, for bf16/fp16, the device really autocasts to it.

    A tiny linear layer runs under autocast: torch warns and silently disables autocast for an
    unsupported dtype on some devices, so the output dtype is what is checked.
    """
    if dtype not in ALLOWED_DTYPES:
        allowed = ", ".join(f"torch.{v}" for v in ALLOWED_DTYPES.values())
        raise WorkloadConfigError(name, [f"dtype={dtype}: allowed {allowed}. Fix: use torch.float32, or bf16/fp16 mixed precision"])
    if dtype == torch.float32:
        return
    why = ""
    try:
        layer = nn.Linear(4, 4).to(device)
        with torch.autocast(device.type, dtype=dtype), _quiet_warnings():
            out = layer(torch.ones(2, 4, device=device))
        if out.dtype != dtype:
            why = f"autocast gave {out.dtype}"
    except (RuntimeError, ValueError) as exc:
        why = str(exc).splitlines()[0]
    if why:
        raise WorkloadConfigError(
            name,
            [f"dtype={dtype}: device {device} cannot autocast to it ({why}). Fix: use torch.float32, or another mixed-precision dtype"],
        )


@contextlib.contextmanager
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def count_flops(spec: WorkloadSpec, cfg: dict[str, Any]) -> float | None:
    """Forward+backward FLOPs of one step, counted on the meta device (no memory, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.device("meta"):
            model = spec.make_model(cfg)
            batch = spec.make_batch(cfg, Synth(torch.device("meta"), 0))
        counter = FlopCounterMode(display=False)
        with counter:
            spec.loss(model, batch, cfg).backward()
        return float(counter.get_total_flops())
    except (RuntimeError, NotImplementedError):  # an op without a meta kernel: say unknown, not 0
        return None


def build_from_spec(spec: WorkloadSpec, device: torch.device, dtype: torch.dtype, params: Mapping[str, Any],
                    wrap: Callable[[nn.Module], nn.Module] | None = None) -> Workload:
    """Check params and precision, count FLOPs, then build model, optimizer and data on `device`.

    `wrap` (e.g. DistributedDataParallel) wraps the model on the device; the step then runs the
    wrapped model, the optimizer holds the same parameters and `Workload.model` is the wrapper."""
    device = torch.device(device)
    cfg = resolve_config(spec, params)
    check_precision(spec.name, device, dtype)
    flops = count_flops(spec, cfg)
    with torch.random.fork_rng(devices=[]):  # same weights for the same seed; caller's RNG untouched
        torch.manual_seed(cfg["seed"])
        model = spec.make_model(cfg)
    model.to(device).train()
    if wrap is not None:
        model = wrap(model)
    batch = spec.make_batch(cfg, Synth(device, cfg["seed"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    config = {**cfg, **spec.derived(cfg), "optimizer": "AdamW", "flops_method": FLOPS_METHOD if flops is not None else None}
    return Workload(
        name=spec.name,
        domain=spec.domain,
        unit=spec.unit,
        items_per_step=spec.items_per_step(cfg),
        params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops_per_step=flops,
        config=config,
        device=device,
        dtype=dtype,
        model=model,
        optimizer=optimizer,
        batch=batch,
        compute_loss=lambda: spec.loss(model, batch, cfg),
        scaler=scaler,
    )
