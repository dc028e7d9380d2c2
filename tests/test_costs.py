"""Electricity cost plus the carbon price: both reported, the total is their sum."""

from __future__ import annotations

import pytest
from helpers import make_scenario, run_trace

from carbonsim import ConfigError
from carbonsim.analysis import metrics

J_PER_KWH = 3.6e6


def _summary(carbon_price: float) -> dict[str, float]:
    scenario = make_scenario(carbon_price_usd_per_tonne=carbon_price)
    res = run_trace(scenario, [0.0, 10.0], carbon=[[250.0, 250.0, 250.0]], horizon_s=3600.0)
    energy = metrics.energy_account(res)
    return metrics.summary(metrics.request_table(res, energy), energy, res)


def test_carbon_cost_is_emissions_times_the_carbon_price():
    s = _summary(80.0)
    # 250 g/kWh x energy; 80 USD per tonne = 80e-6 USD per gram.
    assert s["carbon_kg"] == pytest.approx(s["energy_kwh"] * 250.0 / 1e3, rel=1e-12)
    assert s["carbon_cost_usd"] == pytest.approx(s["carbon_kg"] * 1e3 * 80e-6, rel=1e-12)
    assert s["cost_usd"] == pytest.approx(s["electricity_cost_usd"] + s["carbon_cost_usd"], rel=1e-12)
    assert s["carbon_cost_usd"] > 0


def test_no_carbon_price_means_electricity_only():
    s = _summary(0.0)
    assert s["carbon_cost_usd"] == 0.0
    assert s["cost_usd"] == s["electricity_cost_usd"]


def test_negative_carbon_price_is_rejected():
    with pytest.raises(ConfigError, match=r"carbon_price_usd_per_tonne.*-5"):
        make_scenario(carbon_price_usd_per_tonne=-5.0)
