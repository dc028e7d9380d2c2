"""Signals from the user's own files: the four formats, the hourly resampling rule, strict validation, runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import region, scenario_data
from own_data import hours, run_config, sdk_emissions, watttime_response, write_em_export

from carbonsim import ConfigError, build
from carbonsim.config import ScenarioConfig
from carbonsim.data.errors import DataError
from carbonsim.data.units import GRAMS_PER_POUND
from carbonsim.data.user_signals import load_signal_file, read_signal_file
from carbonsim.inputs import carbon_signal, price_signal
from carbonsim.runner import prepare, run

START = "2024-03-01T00:00:00Z"


def write_table(
    path: Path, times: pd.DatetimeIndex, values, column: str = "ci", fmt: str = "%Y-%m-%dT%H:%M:%SZ"
) -> Path:
    pd.DataFrame({"ts": times.strftime(fmt), column: values}).to_csv(path, index=False)
    return path


def table(path: Path, **kw) -> pd.Series:
    return load_signal_file(path, timestamp_column="ts", value_column="ci", unit=kw.pop("unit", "gCO2/kWh"), **kw)


# --- formats and resampling ---------------------------------------------------------------------------------


def test_five_minute_data_become_the_mean_of_each_utc_hour(tmp_path):
    values = np.arange(24.0)  # two whole hours of 5-minute values
    s = load_signal_file(
        write_table(tmp_path / "s.csv", hours(START, 24, "5min"), values),
        timestamp_column="ts",
        value_column="ci",
        unit="kgCO2/MWh",
    )
    assert list(s.index) == list(hours(START, 2))
    np.testing.assert_array_equal(s.to_numpy(), [values[:12].mean(), values[12:].mean()])


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Relative paths in the configurations start at the working directory: the test's folder."""
    monkeypatch.chdir(tmp_path)


def test_partly_covered_first_and_last_hours_are_left_out(tmp_path):
    times = pd.date_range(pd.Timestamp("2024-03-01T00:45Z"), periods=8, freq="15min")  # 00:45 .. 02:30
    s = table(write_table(tmp_path / "s.csv", times, np.arange(8.0)))
    assert list(s.index) == list(hours("2024-03-01T01:00Z", 1))
    assert s.iloc[0] == pytest.approx(np.mean([1, 2, 3, 4]))


def test_units_are_converted(tmp_path):
    path = write_table(tmp_path / "s.csv", hours(START, 2), [1000.0, 2000.0])
    np.testing.assert_allclose(table(path, unit="lbsCO2/MWh").to_numpy(), [GRAMS_PER_POUND, 2 * GRAMS_PER_POUND])
    path = write_table(tmp_path / "k.csv", hours(START, 2), [0.25, 0.5])
    np.testing.assert_allclose(table(path, unit="kgCO2eq/kWh").to_numpy(), [250.0, 500.0])


def test_naive_local_times_and_explicit_offsets_are_converted_to_utc(tmp_path):
    # Berlin is UTC+1 in winter: local 01:00 is 00:00 UTC. The second file states offsets itself.
    local = write_table(
        tmp_path / "l.csv", pd.date_range("2024-01-01 01:00", periods=3, freq="h"), [1, 2, 3], fmt="%Y-%m-%d %H:%M"
    )
    s = table(local, timezone="Europe/Berlin")
    assert s.index[0] == pd.Timestamp("2024-01-01T00:00Z")
    offset = tmp_path / "o.csv"
    offset.write_text("ts,ci\n2024-01-01T01:00:00+01:00,1\n2024-01-01T02:00:00+01:00,2\n")
    assert table(offset, timezone="America/New_York").index[0] == pd.Timestamp("2024-01-01T00:00Z")


def test_epoch_seconds_and_parquet(tmp_path):
    times = hours(START, 3)
    epoch_s = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    frame = pd.DataFrame({"ts": epoch_s, "ci": [10.0, 20.0, 30.0]})
    frame.to_csv(tmp_path / "e.csv", index=False)
    assert table(tmp_path / "e.csv", time_unit="s").index[0] == times[0]
    pd.DataFrame({"ts": times, "ci": [10.0, 20.0, 30.0]}).to_parquet(tmp_path / "p.parquet")
    s = table(tmp_path / "p.parquet")
    assert list(s.index) == list(times) and s.iloc[2] == 30.0


def test_electricitymaps_export_hourly_and_five_minute(tmp_path):
    s = load_signal_file(write_em_export(tmp_path / "DE.csv", START, [100.0, 200.0]), format="electricitymaps")
    np.testing.assert_array_equal(s.to_numpy(), [100.0, 200.0])
    lca = load_signal_file(tmp_path / "DE.csv", format="electricitymaps", metric="lca", zone="DE")
    np.testing.assert_array_equal(lca.to_numpy(), [150.0, 250.0])
    five = write_em_export(tmp_path / "DE5.csv", START, list(range(12)), freq="5min")
    assert load_signal_file(five, format="electricitymaps").iloc[0] == pytest.approx(5.5)
    with pytest.raises(DataError, match=r"no rows for zone 'FR' in column 'Zone Id'; the file has \['DE'\]"):
        load_signal_file(tmp_path / "DE.csv", format="electricitymaps", zone="FR")


def test_shipped_electricitymaps_file_loads_as_a_user_export():
    from carbonsim.data.carbon import electricitymaps_path, load_electricitymaps

    ours = load_signal_file(electricitymaps_path("SG"), format="electricitymaps", zone="SG")
    np.testing.assert_array_equal(ours.to_numpy(), load_electricitymaps("SG").to_numpy())


def test_watttime_v3_json_v3_csv_and_v2_csv(tmp_path):
    body = watttime_response("CAISO_NORTH", START, [1000.0] * 12 + [500.0] * 12)
    (tmp_path / "wt.json").write_text(json.dumps(body))
    s = load_signal_file(tmp_path / "wt.json", format="watttime", zone="CAISO_NORTH")
    np.testing.assert_allclose(s.to_numpy(), [1000 * GRAMS_PER_POUND / 1000, 500 * GRAMS_PER_POUND / 1000])
    # The WattTime Python client's list of responses (one per 30-day chunk) loads the same.
    (tmp_path / "wt_list.json").write_text(json.dumps([body]))
    np.testing.assert_array_equal(load_signal_file(tmp_path / "wt_list.json", format="watttime").to_numpy(), s)
    pd.DataFrame(body["data"]).to_csv(tmp_path / "wt3.csv", index=False)
    np.testing.assert_array_equal(load_signal_file(tmp_path / "wt3.csv", format="watttime").to_numpy(), s)
    v2 = pd.DataFrame(
        {
            "timestamp": [d["point_time"] for d in body["data"]],
            "MOER": [d["value"] for d in body["data"]],
            "frequency": 300,
            "market": "RTM",
            "ba": "CAISO_NORTH",
        }
    )
    v2.to_csv(tmp_path / "wt2.csv", index=False)
    np.testing.assert_array_equal(load_signal_file(tmp_path / "wt2.csv", format="watttime").to_numpy(), s)
    index = dict(body, meta=dict(body["meta"], units="percentile"))
    (tmp_path / "idx.json").write_text(json.dumps(index))
    with pytest.raises(DataError, match="signal index"):
        load_signal_file(tmp_path / "idx.json", format="watttime")


def test_carbon_aware_sdk_emissions_json(tmp_path):
    data = sdk_emissions({"eastus": [300.0, 310.0, 320.0], "westus": [100.0, 110.0, 120.0]}, START)
    (tmp_path / "e.json").write_text(json.dumps(data))
    s = load_signal_file(tmp_path / "e.json", format="carbon_aware_sdk", zone="westus")
    np.testing.assert_array_equal(s.to_numpy(), [100.0, 110.0, 120.0])
    with pytest.raises(DataError, match=r"2 locations in column 'location' \(\['eastus', 'westus'\]\); name one"):
        load_signal_file(tmp_path / "e.json", format="carbon_aware_sdk")
    data[4]["duration"] = "00:30:00"
    (tmp_path / "d.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"d\.json: entry 5: duration 0 days 00:30:00 differs"):
        load_signal_file(tmp_path / "d.json", format="carbon_aware_sdk", zone="westus")


def test_prices_in_another_currency_need_a_stated_rate(tmp_path):
    path = write_table(tmp_path / "p.csv", hours(START, 2), [-20.0, 100.0], column="ci")
    s = table(path, quantity="price", unit="EUR/MWh", exchange_rate_usd=1.1)
    np.testing.assert_allclose(s.to_numpy(), [-22.0, 110.0])
    with pytest.raises(DataError, match="need exchange_rate_usd"):
        table(path, quantity="price", unit="EUR/MWh")


# --- bad input: file, row and column ------------------------------------------------------------------------

BAD = [
    ("ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,2,9\n", {}, r"b\.csv: row 2 \(line 3\): 3 field\(s\); expected 2"),
    ("ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z\n", {}, r"b\.csv: row 2 \(line 3\): 1 field\(s\); expected 2"),
    (
        "ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T00:00Z,2\n",
        {},
        r"duplicated timestamp 2024-03-01T00:00:00\+00:00 at rows 1, 2",
    ),
    (
        "ts,ci\n2024-03-01T01:00Z,1\n2024-03-01T00:00Z,2\n",
        {},
        r"not strictly increasing: row 2 \(line 3\) has 2024-03-01T00:00:00\+00:00",
    ),
    (
        "ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,2\n2024-03-01T03:00Z,2\n",
        {},
        r"gap .* first missing timestamp 2024-03-01T02:00",
    ),
    (
        "ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,2500\n",
        {},
        r"row 2 \(line 3\).*value 2500 in column 'ci' outside the plausible range",
    ),
    ("ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,-4\n", {}, r"row 2 \(line 3\).*negative value -4 in column 'ci'"),
    (
        "ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,abc\n",
        {},
        r"row 2 \(line 3\).*'abc' in column 'ci' is not a number",
    ),
    (
        "ts,ci\n2024-03-01T00:00Z,1\nyesterday,2\n",
        {},
        r"row 2 \(line 3\): cannot parse timestamp 'yesterday' in column 'ts'",
    ),
    ("ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T02:00Z,2\n", {}, r"2:00:00 apart; expected hourly or finer"),
    ("ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T00:07Z,2\n", {}, r"step of 0 days 00:07:00 does not divide an hour"),
    ("ts,ci\n2024-03-01T00:30Z,1\n2024-03-01T01:30Z,2\n", {}, r"off the regular 0 days 01:00:00 grid"),
    (
        "ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,2\n",
        {"value_column": "co2"},
        r"no value column 'co2'; the file has columns \['ts', 'ci'\]",
    ),
    (
        "ts,ci\n2024-03-01T00:00Z,1\n2024-03-01T01:00Z,2\n",
        {"unit": "mg/J"},
        r"b\.csv: column 'ci': unknown carbon-intensity unit 'mg/J'",
    ),
]


@pytest.mark.parametrize(("text", "options", "message"), BAD)
def test_bad_signal_files_are_rejected_naming_file_row_and_column(tmp_path, text, options, message):
    (tmp_path / "b.csv").write_text(text)
    kw = {"timestamp_column": "ts", "value_column": "ci", "unit": "gCO2/kWh", **options}
    with pytest.raises(DataError, match=message) as info:
        read_signal_file(tmp_path / "b.csv", **kw)
    assert str(tmp_path / "b.csv") in str(info.value) and "\n" not in str(info.value)


def test_json_errors_name_the_entry_not_a_line(tmp_path):
    data = sdk_emissions({"eastus": [300.0, 310.0, 320.0]}, START)
    data[1]["rating"] = 9999
    (tmp_path / "e.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"e\.json: entry 2, 2024-03-01T01:00:00\+00:00: value 9999 in column 'rating'"):
        read_signal_file(tmp_path / "e.json", format="carbon_aware_sdk")


def test_urls_and_folders_are_not_read(tmp_path):
    with pytest.raises(DataError, match="not a URL"):
        read_signal_file("https://example.org/x.csv", timestamp_column="ts", value_column="ci", unit="g/kWh")
    with pytest.raises(DataError, match="found a folder"):
        read_signal_file(tmp_path, timestamp_column="ts", value_column="ci", unit="g/kWh")


# --- configuration -------------------------------------------------------------------------------------------


def source(**kw):
    return {"path": "ci.csv", "timestamp_column": "ts", "value_column": "ci", "unit": "gCO2/kWh", **kw}


@pytest.mark.parametrize(
    ("region_extra", "message"),
    [
        ({"carbon_source": source(unit="furlongs")}, "regions[0].carbon_source.unit: expected a carbon-intensity unit"),
        ({"carbon_source": source(value_column="")}, "regions[0].carbon_source.value_column: expected a value"),
        ({"carbon_source": source(path="http://x/y.csv")}, "regions[0].carbon_source.path: expected a local file path"),
        ({"carbon_source": source(timezone="../../etc/passwd")}, "regions[0].carbon_source.timezone: expected an IANA"),
        (
            {"carbon_source": {"kind": "electricitymaps_api", "zone": "../../x"}},
            "regions[0].carbon_source.zone: expected a zone id",
        ),
        (
            {"carbon_source": {"kind": "watttime_api", "zone": "A/B"}},
            "regions[0].carbon_source.zone: expected a zone id",
        ),
        ({"price_source": source(unit="EUR/MWh")}, "regions[0].price_source.exchange_rate_usd: expected USD per EUR"),
        ({"price_source": source(unit="g/kWh")}, "regions[0].price_source.unit: expected a price unit"),
        (
            {"price_source": {"kind": "electricitymaps_api", "zone": "DE"}},
            "regions[0].price_source.kind: expected file",
        ),
        ({"carbon_source": source(format="watttime")}, "regions[0].carbon_source.timestamp_column: expected empty"),
    ],
)
def test_bad_sources_are_config_errors(region_extra, message):
    data = scenario_data(regions=[region(**region_extra)], start_utc=START)
    with pytest.raises(ConfigError) as info:
        build(ScenarioConfig, data, "scenario")
    assert message in str(info.value)


def test_a_source_needs_a_start_time():
    with pytest.raises(ConfigError, match=r"scenario\.start_utc: expected the UTC time of simulated t = 0"):
        build(ScenarioConfig, scenario_data(regions=[region(carbon_source=source())]), "scenario")


# --- into the simulator ----------------------------------------------------------------------------------------


def two_regions(**extra) -> dict:
    regions = [region("r0", "Z0", carbon_source=source(path="ci.csv")), region("r1", "Z1")]
    origins = [{"name": "o0", "share": 1.0, "rtt_ms": {"r0": 0.0, "r1": 10.0}}]
    return scenario_data(regions=regions, origins=origins, base={"Z1": 250.0}, start_utc=START, **extra)


SLOW_ARRIVALS = {"kind": "poisson", "rate_per_s": 0.2}  # 2 s of service each: the one server keeps up


def test_a_file_source_replaces_only_its_region(tmp_path):
    write_table(tmp_path / "ci.csv", hours(START, 48, "30min"), np.full(48, 100.0))
    scenario = build(ScenarioConfig, two_regions(), "scenario")
    signal = carbon_signal(scenario, seed=0, hours=24)
    np.testing.assert_array_equal(signal.values[0], [100.0] * 24)
    np.testing.assert_array_equal(signal.values[1], [250.0] * 24)  # the synthetic flat base, untouched


def test_price_from_a_file_in_usd_per_mwh(tmp_path):
    write_table(tmp_path / "p.csv", hours(START, 6), [50.0, -10.0, 70.0, 80.0, 90.0, 100.0], column="eur")
    data = two_regions()
    data["regions"][1]["price_source"] = {
        "path": "p.csv",
        "timestamp_column": "ts",
        "value_column": "eur",
        "unit": "EUR/MWh",
        "exchange_rate_usd": 1.25,
    }
    write_table(tmp_path / "ci.csv", hours(START, 6), [100.0] * 6)
    price = price_signal(build(ScenarioConfig, data, "scenario"), hours=4)
    np.testing.assert_allclose(price.values[1], [0.0625, -0.0125, 0.0875, 0.1])
    np.testing.assert_allclose(price.values[0], [0.2] * 4)  # the flat price of region r0


def test_scenario_runs_end_to_end_from_a_user_carbon_csv(tmp_path):
    """Half-hourly 300/342 averages to 321 per hour: the run equals one on a flat 321 signal, byte for byte."""
    write_table(tmp_path / "ci.csv", hours(START, 12, "30min"), [300.0, 342.0] * 6)
    sourced = scenario_data(regions=[region(carbon_source=source())], start_utc=START, arrivals=SLOW_ARRIVALS)
    flat = scenario_data(base={"Z0": 321.0}, start_utc=START, arrivals=SLOW_ARRIVALS)
    a, b = run(run_config(sourced)), run(run_config(flat))
    world, requests, _ = prepare(run_config(sourced))
    np.testing.assert_array_equal(world.carbon.values, [[321.0] * 4])
    assert a.summary["requests"] == len(requests) > 0
    assert a.summary["completed"] == a.summary["requests"]
    for key in ("carbon_kg", "energy_kwh", "mean_intensity_gco2_per_kwh"):
        assert a.summary[key] == b.summary[key]


def test_a_run_longer_than_the_file_names_its_end(tmp_path):
    write_table(tmp_path / "ci.csv", hours(START, 3), [300.0] * 3)
    cfg = run_config(scenario_data(regions=[region(carbon_source=source())], start_utc=START))
    with pytest.raises(DataError, match=re.escape("regions[0].carbon_source (r0): the run may need data until")):
        prepare(cfg)
