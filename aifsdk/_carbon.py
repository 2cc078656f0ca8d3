"""kWh and tCO2e of a request, per site, from measured energy and the site's grid.

    facility kWh = device kWh x PUE                (device kWh alone when no PUE is published)
    tCO2e        = facility kWh x grid gCO2e/kWh / 1e6

The device kWh come from :func:`aifsdk.size` (energy per item x work x runs, with overheads and
availability) and carry their basis: an energy counter (NVML, amdsmi), Slurm's energy accounting,
or an ESTIMATE from device power. The grid intensity and PUE are data
(``configs/energy/carbon.yaml``, or the user's copy under ``$AIFSDK_CONFIG_DIR/energy/``), each
with its year and public source; a site the file does not know, or a figure it leaves out, is
said, never guessed. The range follows the run's P90-P10 time range (a device drawing the same
power for longer spends more energy).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ._profile import shipped_config_dir, user_config_dir


@dataclass(frozen=True)
class SiteCarbon:
    """What the data file says about one site's electricity."""

    site: str
    country: str
    gco2e_per_kwh: float
    year: int
    source: str
    pue: float | None = None
    pue_source: str | None = None
    supply: str | None = None

    def words(self) -> str:
        text = f"grid {self.country} {self.gco2e_per_kwh:g} gCO2e/kWh ({self.year}; {self.source})"
        text += f"; PUE {self.pue:g} ({self.pue_source})" if self.pue else "; no published PUE: device energy only"
        return text + (f"; site supply: {self.supply}" if self.supply else "")


@dataclass(frozen=True)
class Footprint:
    """Energy and emissions of one request on one site, with ranges and their bases."""

    kwh: float
    kwh_range: tuple[float, float]
    tco2e: float | None
    tco2e_range: tuple[float, float] | None
    energy_basis: str
    carbon: SiteCarbon | None
    missing: str | None = None

    def text(self) -> str:
        out = f"{self.kwh:,.1f} kWh (range {self.kwh_range[0]:,.1f}-{self.kwh_range[1]:,.1f}; energy from {self.energy_basis})"
        if self.tco2e is not None and self.tco2e_range is not None and self.carbon is not None:
            out += (f", {tonnes(self.tco2e)} tCO2e (range {tonnes(self.tco2e_range[0])}-{tonnes(self.tco2e_range[1])}; "
                    f"{self.carbon.words()})")
        else:
            out += f", no tCO2e: {self.missing}"
        return out


def tonnes(value: float | None) -> str:
    """Tonnes with three significant digits (a small request emits well under a tonne)."""
    return "" if value is None else (f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}")


def carbon_file() -> Path:
    """The user's copy when there is one, else the shipped file."""
    mine = user_config_dir() / "energy" / "carbon.yaml"
    return mine if mine.is_file() else shipped_config_dir() / "energy" / "carbon.yaml"


@lru_cache(maxsize=4)
def _load(path: Path, mtime: float) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def site_carbon(site: str, path: Path | None = None) -> SiteCarbon | None:
    """The site's grid intensity and PUE, or None when the file does not list the site."""
    file = path or carbon_file()
    data = _load(file, file.stat().st_mtime)
    entry = (data.get("sites") or {}).get(site)
    if not entry:
        return None
    country = (data.get("countries") or {}).get(entry.get("country"))
    if not country or country.get("gco2e_per_kwh") is None:
        return None
    pue = entry.get("pue")
    supply = entry.get("supply")
    return SiteCarbon(site=site, country=str(country.get("name", entry["country"])), gco2e_per_kwh=float(country["gco2e_per_kwh"]),
                      year=int(country["year"]), source=str(country.get("source") or data.get("source", {}).get("carbon", "")),
                      pue=float(pue) if pue else None, pue_source=entry.get("pue_source"),
                      supply=f"{supply['text']} ({supply['source']})" if supply else None)


def footprint(device_kwh: float, device_kwh_range: tuple[float, float], energy_basis: str, site: str,
              path: Path | None = None) -> Footprint:
    """Facility kWh and tCO2e of ``device_kwh`` spent on ``site`` (see the module docstring)."""
    carbon = site_carbon(site, path)
    pue = carbon.pue if carbon and carbon.pue else 1.0
    kwh, lo, hi = device_kwh * pue, device_kwh_range[0] * pue, device_kwh_range[1] * pue
    if carbon is None:
        return Footprint(kwh, (lo, hi), None, None, energy_basis, None,
                         missing=f"site {site!r} has no grid carbon intensity in {carbon_file()}")
    g = carbon.gco2e_per_kwh / 1e6
    return Footprint(kwh, (lo, hi), kwh * g, (lo * g, hi * g), energy_basis, carbon)
