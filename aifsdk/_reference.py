"""Vendor peaks and best-known achievable figures per accelerator (``configs/reference/accelerators.yaml``).

Shipped inside the wheel, so that sizing projections (``aifsdk size``) and the benchmark suite
read the same figures, each with its source.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from ._profile import shipped_config_dir


def reference_file() -> Path:
    return shipped_config_dir() / "reference" / "accelerators.yaml"


@functools.lru_cache(maxsize=4)
def _devices(path: Path) -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(path.read_text()).get("devices", []))


def device_entry(device_name: str, path: Path | None = None) -> dict[str, Any] | None:
    """The entry whose ``match`` patterns fit a device name (torch's, or a site profile's gpu_model)."""
    for entry in _devices(path or reference_file()):
        if any(re.search(pattern, device_name, re.IGNORECASE) for pattern in entry.get("match", [])):
            return entry
    return None


def figure(tree: dict[str, Any], key: str) -> float | None:
    """``matmul_tflops.bf16`` in ``tree``; a scalar at ``membw_gbs`` answers ``membw_gbs.triad``."""
    node: Any = tree
    for part in key.split("."):
        if isinstance(node, (int, float)):
            return float(node)
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def best_known(entry: dict[str, Any], key: str) -> tuple[float | None, str]:
    """The achievable figure for ``key`` if known, else the vendor peak; and which one it is."""
    achievable = figure(entry.get("achievable", {}), key)
    if achievable is not None:
        return achievable, "achievable"
    return figure(entry.get("peak", {}), key), "peak"
