"""Vendor peaks and best-known achievable figures beside each measurement.

The figures are data (``configs/reference/accelerators.yaml``, each with its source), read by
:mod:`aifsdk._reference` so that the benchmark suite and the sizing (``aifsdk size``) use the same
reader and the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aifsdk._reference import device_entry, figure, reference_file


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


class ReferenceTable:
    """Lookup of reference figures by torch device name and figure key."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or reference_file()

    def lookup(self, device_name: str, key: str) -> Reference:
        """The peak and achievable figures for ``key`` (e.g. ``matmul_tflops.bf16``) on that device."""
        entry = device_entry(device_name, self.path)
        if entry is None:
            return Reference()
        family = key.split(".")[0].split("_")[0]
        family = {"d2h": "h2d"}.get(family, family)
        sources = entry.get("sources", {})
        peak = figure(entry.get("peak", {}), key)
        achievable = figure(entry.get("achievable", {}), key)
        return Reference(entry["name"], peak, achievable, sources.get("peak") if peak else None,
                         sources.get(family) if achievable else None)
