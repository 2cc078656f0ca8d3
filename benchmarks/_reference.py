"""Vendor peaks and best-known achievable figures, read from configs/reference/accelerators.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aifsdk._profile import shipped_config_dir


def reference_file() -> Path:
    return shipped_config_dir() / "reference" / "accelerators.yaml"


@dataclass(frozen=True)
class Reference:
    """The figures for one measurement on one device; None where not known."""

    device: str | None = None
    peak: float | None = None
    achievable: float | None = None
    peak_source: str | None = None
    achievable_source: str | None = None

    def to_dict(self, measured: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "peak": self.peak, "achievable": self.achievable,
                               "peak_source": self.peak_source, "achievable_source": self.achievable_source}
        if measured is not None:
            out["pct_of_peak"] = 100 * measured / self.peak if self.peak else None
            out["pct_of_achievable"] = 100 * measured / self.achievable if self.achievable else None
        return out


def _get(tree: dict[str, Any], key: str) -> float | None:
    """``matmul_tflops.bf16`` in ``tree``; a scalar at ``membw_gbs`` answers ``membw_gbs.triad``."""
    node: Any = tree
    for part in key.split("."):
        if isinstance(node, (int, float)):
            return float(node)
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


class ReferenceTable:
    """Lookup of reference figures by torch device name and figure key."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or reference_file()
        data = yaml.safe_load(self.path.read_text())
        self.devices: list[dict[str, Any]] = data.get("devices", [])

    def device_entry(self, device_name: str) -> dict[str, Any] | None:
        for entry in self.devices:
            if any(re.search(pattern, device_name, re.IGNORECASE) for pattern in entry.get("match", [])):
                return entry
        return None

    def lookup(self, device_name: str, key: str) -> Reference:
        """The peak and achievable figures for ``key`` (e.g. ``matmul_tflops.bf16``) on that device."""
        entry = self.device_entry(device_name)
        if entry is None:
            return Reference()
        family = key.split(".")[0].split("_")[0]
        family = {"d2h": "h2d"}.get(family, family)
        sources = entry.get("sources", {})
        peak = _get(entry.get("peak", {}), key)
        achievable = _get(entry.get("achievable", {}), key)
        return Reference(entry["name"], peak, achievable, sources.get("peak") if peak else None,
                         sources.get(family) if achievable else None)
