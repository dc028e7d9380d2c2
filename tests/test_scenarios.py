"""Shipped measured-data scenarios agree with the region catalog and the measured round trips."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import carbonsim
from carbonsim.data import load_rtt_matrix, traces_dir

MEASURED = ["measured_global"]


def _catalog(name: str, key: str) -> dict[str, dict[str, str]]:
    with (traces_dir() / "catalog" / name).open(encoding="utf-8") as fh:
        return {row[key]: row for row in csv.DictReader(fh)}


@pytest.mark.parametrize("scenario", MEASURED)
def test_regions_match_the_catalog(scenario: str) -> None:
    cfg = carbonsim.load_config([f"scenario={scenario}"]).scenario
    catalog = _catalog("regions.csv", "region")
    for region in cfg.regions:
        entry = catalog[region.name]
        assert region.grid_zone == entry["grid_zone"], region.name
        assert region.price_market == entry["price_market"], region.name
        assert region.pue == pytest.approx(float(entry["pue"])), region.name


@pytest.mark.parametrize("scenario", MEASURED)
def test_round_trips_are_the_measured_azure_p50(scenario: str) -> None:
    cfg = carbonsim.load_config([f"scenario={scenario}"]).scenario
    regions = _catalog("regions.csv", "region")
    origins = _catalog("origins.csv", "origin")
    matrix = load_rtt_matrix()
    for origin in cfg.origins:
        source = origins[origin.name]["azure_region"]
        for region, rtt in origin.rtt_ms.items():
            assert rtt == pytest.approx(matrix.loc[source, regions[region]["azure_region"]]), (origin.name, region)


def test_catalog_covers_low_mixed_and_high_carbon_grids_on_three_continents() -> None:
    catalog = _catalog("regions.csv", "region")
    assert len(catalog) >= 12
    zones = {entry["grid_zone"] for entry in catalog.values()}
    assert {"CA-ON", "BR-SP", "US-CAL-CISO", "GB", "US-MIDA-PJM", "SG", "KR"} <= zones
    assert {"north_america", "europe", "asia_pacific"} <= {e["continent"] for e in catalog.values()}
    for entry in catalog.values():
        assert 1.0 <= float(entry["pue"]) < 2.0
        assert entry["pue_source"].startswith("microsoft_2022_")


def test_catalog_names_data_that_exist() -> None:
    from carbonsim.data import available_markets, available_zones, regions

    catalog = _catalog("regions.csv", "region")
    assert {e["grid_zone"] for e in catalog.values()} <= set(available_zones())
    assert {e["price_market"] for e in catalog.values()} <= set(available_markets())
    azure = set(regions())
    assert {e["azure_region"] for e in catalog.values()} <= azure
    assert {e["azure_region"] for e in _catalog("origins.csv", "origin").values()} <= azure


def test_measured_scenario_runs_on_real_data(tmp_path: Path) -> None:
    cfg = carbonsim.load_config(["scenario=measured_global", "sim_hours=0.25", "policy=carbon_first"])
    out = carbonsim.run(cfg)
    s = out.summary
    assert s["requests"] == s["completed"] + s["dropped"] + s["failed"] + s["in_flight"]
    # Carbon-first serves from the cleanest grid of the hour; Ontario is by far the cleanest here.
    assert out.per_region.set_index("region").loc["ca-central", "routing_share_pct"] > 50.0
    assert s["electricity_cost_usd"] > 0
