"""The workload menu (`WORKLOADS`) and `build_workload`, the one entry point the harness calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ._base import Workload, WorkloadConfigError, WorkloadSpec, build_from_spec
from ._detector import DETECTOR
from ._logformer import LOGFORMER
from ._sar import SAR
from ._unet import SATSEG, UNET3D

SPECS: dict[str, WorkloadSpec] = {spec.name: spec for spec in (UNET3D, SATSEG, DETECTOR, SAR, LOGFORMER)}

#: name -> one-line description (domain first), for menus and `--help`.
WORKLOADS: dict[str, str] = {name: f"{spec.domain}: {spec.description}" for name, spec in SPECS.items()}


def build_workload(name: str, device: torch.device | str, dtype: torch.dtype = torch.float32, *,
                   wrap: Callable[[nn.Module], nn.Module] | None = None, **params: Any) -> Workload:
    """Build workload `name` on `device`, training in `dtype` (fp32, or bf16/fp16 autocast).

    `params` are the workload's sizes (the Hydra `workload` node's fields). Every workload takes
    `preset` ('small': the CPU-sized defaults; 'full': the realistic sizes its module documents;
    explicit params override the preset), `lr` (AdamW) and `seed` (weights and synthetic data).
    Unknown names or params, invalid values and a dtype the device cannot autocast to raise
    `WorkloadConfigError` (a `ValueError`) before anything heavy is built. `wrap` wraps the built
    model (e.g. in DistributedDataParallel for a data-parallel step).
    """
    if name not in SPECS:
        raise WorkloadConfigError(str(name), [f"name={name!r}: unknown workload. Allowed: {', '.join(SPECS)}. Fix: use one of these names"])
    return build_from_spec(SPECS[name], torch.device(device), dtype, params, wrap)
