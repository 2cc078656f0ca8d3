"""kWh and tCO2e per site: the shipped data file, aifsdk size and the proposal (real files, real site profiles)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import aifsdk
from aifsdk._carbon import carbon_file, site_carbon
from aifsdk._profile import shipped_config_dir
from aifsdk._proposal import packages_from_file, render

NONE = {"eval": 0, "checkpoint": 0, "io": 0, "startup": 0}


def test_every_site_with_gpus_has_a_sourced_grid_figure() -> None:
    data = yaml.safe_load((shipped_config_dir() / "energy" / "carbon.yaml").read_text())
    sites = {p.stem for p in (shipped_config_dir() / "site").glob("*.yaml")} - {"debug", "local", "slurm"}
    assert sites <= set(data["sites"]), sorted(sites - set(data["sites"]))
    assert data["source"]["carbon"].startswith("Ember") and "ourworldindata.org" in data["source"]["carbon"]
    for code, country in data["countries"].items():
        assert 0 < country["gco2e_per_kwh"] < 1000 and country["year"] >= 2023, code
    for name, entry in data["sites"].items():
        assert entry["country"] in data["countries"], name
        assert entry["pue"] is None or entry.get("pue_source"), f"{name}: a PUE needs its source"
        assert "supply" not in entry or entry["supply"]["source"].startswith("https://"), name


def test_size_gives_kwh_and_tco2e_with_ranges_and_sources() -> None:
    m = aifsdk.Measurement(devices=8, items_per_s=1000, p10=800, p90=1250, site="lumi-g", energy_j_per_item=3.6,
                           energy_source="NVML energy counter (test figure)")
    s = aifsdk.size(m, work=1e6, site="lumi-g", runs=2, overheads=NONE, availability=1)
    f = s.footprint
    assert f is not None and f.kwh == pytest.approx(3.6 * 1e6 * 2 / 3.6e6) == s.energy_kwh
    assert f.kwh_range == pytest.approx((2.0 * 1000 / 1250, 2.0 * 1000 / 800))  # the P90-P10 time range
    assert f.tco2e == pytest.approx(2.0 * 79 / 1e6) and f.tco2e_range == pytest.approx((1.6 * 79 / 1e6, 2.5 * 79 / 1e6))
    text = s.text()
    assert "energy and emissions: 2.0 kWh (range 1.6-2.5; energy from NVML energy counter (test figure))" in text
    assert "0.000158 tCO2e (range 0.000126-0.000197; grid Finland 79 gCO2e/kWh (2023; Ember" in text and "no published PUE" in text and "100% hydropower" in text


def test_the_same_work_on_lumi_and_jupiter_in_one_proposal(tmp_path: Path) -> None:
    request = tmp_path / "request.yaml"
    request.write_text("title: Compare\npackages:\n"
                       "  - {name: on LUMI, site: lumi-g, measure: ['8:1000:900:1100'], measured_on: lumi-g, energy_j_per_item: 2.0,"
                       " work: 3.6e7, availability: 1, overheads: {eval: 0, checkpoint: 0, io: 0, startup: 0}}\n"
                       "  - {name: on JUPITER, site: jupiter-booster, measure: ['4:1500:1400:1600'], measured_on: jupiter-booster,"
                       " energy_j_per_item: 1.2, work: 3.6e7, availability: 1, overheads: {eval: 0, checkpoint: 0, io: 0, startup: 0}}\n")
    title, packages = packages_from_file(request)
    report = render(title, packages, tmp_path / "out").read_text()
    # LUMI: 2 J x 3.6e7 = 20 kWh x 79 g = 0.00158 t; JUPITER: 1.2 J x 3.6e7 = 12 kWh x 381 g = 0.004572 t
    assert "| **total lumi-g** |" in report and "| **20** (18-22) | **0.00158** (0.00144-0.00176) |" in report
    assert "| **total jupiter-booster** |" in report and "| **12** (11-13) |" in report
    lumi, jupiter = (next(p.sizing.footprint for p in packages if p.sizing.site == s) for s in ("lumi-g", "jupiter-booster"))
    assert lumi and jupiter and lumi.tco2e == pytest.approx(20 * 79e-6) and jupiter.tco2e == pytest.approx(12 * 381e-6)
    assert "- lumi-g: grid Finland 79 gCO2e/kWh" in report and "- jupiter-booster: grid Germany 381 gCO2e/kWh" in report
    assert "ourworldindata.org/grapher/carbon-intensity-electricity" in report


def test_a_site_without_a_figure_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "energy" / "carbon.yaml"
    mine.parent.mkdir()
    mine.write_text("schema: 1\nsource: {carbon: 'my note'}\ncountries: {FI: {name: Finland, gco2e_per_kwh: 79, year: 2023}}\n"
                    "sites: {lumi-g: {country: FI, pue: 1.1, pue_source: 'my site report'}}\n")
    monkeypatch.setenv("AIFSDK_CONFIG_DIR", str(tmp_path))
    assert carbon_file() == mine
    assert site_carbon("lumi-g") is not None and site_carbon("lumi-g").pue == 1.1  # type: ignore[union-attr]
    m = aifsdk.Measurement(devices=4, items_per_s=100, site="jupiter-booster", energy_j_per_item=1.0)
    s = aifsdk.size(m, work=3.6e6, site="jupiter-booster", overheads=NONE, availability=1)
    assert s.footprint is not None and s.footprint.tco2e is None
    assert "no tCO2e: site 'jupiter-booster' has no grid carbon intensity" in s.text()
    lumi = aifsdk.size(aifsdk.Measurement(devices=8, items_per_s=100, site="lumi-g", energy_j_per_item=1.0), work=3.6e6,
                       site="lumi-g", overheads=NONE, availability=1)
    assert lumi.footprint is not None and lumi.footprint.kwh == pytest.approx(1.1)  # x PUE
    assert "PUE 1.1 (my site report)" in lumi.text()
