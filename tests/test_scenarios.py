"""Shipped measured-data scenarios agree with the region catalog and the measured round trips."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

import carbonsim
from carbonsim.data import load_rtt_matrix, load_watttime_moer, traces_dir
from carbonsim.inputs import hourly_mean

MEASURED = ["default", "global", "global_us_south", "us", "europe", "marginal", "fleet"]


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
    cfg = carbonsim.load_config(["sim_hours=0.25", "policy=carbon_first"])
    out = carbonsim.run(cfg)
    s = out.summary
    assert s["requests"] == s["completed"] + s["rejected"] + s["failed"] + s["in_flight"]
    # Carbon-first serves from the cleanest grid of the hour; Ontario is by far the cleanest here.
    assert out.per_region.set_index("region").loc["ca-central", "routing_share_pct"] > 50.0
    assert s["electricity_cost_usd"] > 0


@pytest.mark.parametrize("scenario", MEASURED)
def test_gpu_pools_take_the_catalog_power(scenario: str) -> None:
    cfg = carbonsim.load_config([f"scenario={scenario}"]).scenario
    gpus = _catalog("gpus.csv", "gpu")
    for region in cfg.regions:
        for pool in region.pools:
            entry = gpus[pool.hardware.upper()]
            assert (pool.idle_w, pool.busy_w) == (float(entry["idle_w"]), float(entry["busy_w"])), region.name
    for wl in cfg.workloads:
        for hw, spec in wl.service.items():
            assert spec.distribution == "measured" and spec.measured is not None
            assert spec.measured.gpu == hw.upper()


def test_default_scenario_is_the_real_data_global_preset() -> None:
    cfg = carbonsim.load_config([])
    scenario = cfg.scenario
    assert scenario.name == "default"
    assert cfg.sim_hours == 168.0
    assert len(scenario.regions) >= 6 and len(scenario.origins) >= 4
    assert (scenario.carbon.kind, scenario.prices.kind) == ("electricitymaps", "market")
    assert scenario.arrivals.load_shape == "google_1"
    glob = carbonsim.load_config(["scenario=global"]).scenario
    assert dataclasses.replace(glob, name="default") == scenario


def test_presets_cover_us_europe_and_a_marginal_signal() -> None:
    catalog = _catalog("regions.csv", "region")

    def continents(name: str) -> set[str]:
        scenario = carbonsim.load_config([f"scenario={name}"]).scenario
        return {catalog[r.name]["continent"] for r in scenario.regions}

    assert continents("us") == {"north_america"}
    assert all(catalog[r]["location"].endswith(", US") for r in ("us-east", "us-west", "us-south"))
    assert continents("europe") == {"europe"}
    assert len(continents("global")) >= 3
    marginal = carbonsim.load_config(["scenario=marginal"]).scenario
    assert marginal.carbon.kind == "watttime_marginal"


def test_marginal_preset_runs_on_the_watttime_signal() -> None:
    cfg = carbonsim.load_config(["scenario=marginal", "sim_hours=0.5", "policy=latency_first", "baseline="])
    out = carbonsim.run(cfg)
    moer = hourly_mean(load_watttime_moer(), "x")
    assert out.summary["mean_intensity_gco2_per_kwh"] == pytest.approx(moer["2023-06-15T00:00:00Z"])
