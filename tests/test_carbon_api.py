"""Carbon APIs: the real clients against a local server replaying recorded responses, the cache, offline runs.

No test touches the internet: :class:`own_data.RecordedApi` listens on 127.0.0.1 and answers with responses
written here in each API's documented shape (Electricity Maps v3, WattTime v3), including range pieces,
rate limits (429 with Retry-After) and error bodies.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import region, scenario_data
from own_data import RecordedApi, Reply, em_response, hours, run_config, serving, watttime_response

import carbonsim
from carbonsim import ConfigError, build
from carbonsim.config import ScenarioConfig
from carbonsim.data.carbon_api import CarbonApiError, ElectricityMapsClient, WattTimeClient
from carbonsim.data.carbon_cache import CacheMissError, cache_root, entries, load_cached, store
from carbonsim.data.errors import DataError
from carbonsim.data.units import GRAMS_PER_POUND
from carbonsim.fetch_carbon import main as fetch_main
from carbonsim.inputs import carbon_signal
from carbonsim.runner import prepare, run

START = "2024-03-01T00:00:00Z"
PAST_RANGE = "/v3/carbon-intensity/past-range"


@pytest.fixture
def api():
    yield from serving()


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch, tmp_path):
    for name in (
        "ELECTRICITYMAPS_API_KEY",
        "WATTTIME_USERNAME",
        "WATTTIME_USER",
        "WATTTIME_PASSWORD",
        "CARBONSIM_CACHE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # never the real home cache
    # A test that forgets to name the local server fails on a closed local port instead of reaching the internet.
    monkeypatch.setenv("CARBONSIM_ELECTRICITYMAPS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CARBONSIM_WATTTIME_URL", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)


def em_params(start: str, end: str, zone: str = "DE") -> dict[str, str]:
    return {"zone": zone, "start": start, "end": end, "emissionFactorType": "direct", "temporalGranularity": "hourly"}


def record_em_range(api: RecordedApi, first: str, days: int, values: np.ndarray, zone: str = "DE") -> None:
    """Past-range responses for ``days`` days from ``first``, in the 10-day pieces the client asks for."""
    t0 = pd.Timestamp(first)
    for k in range(0, days, 10):
        a, b = t0 + pd.Timedelta(days=k), t0 + pd.Timedelta(days=min(days, k + 10))
        n = int((b - a) / pd.Timedelta(hours=1))
        iso = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (a, b)]
        api.add(PAST_RANGE, em_params(*iso, zone), Reply(body=em_response(zone, iso[0], values[k * 24 : k * 24 + n])))


# --- Electricity Maps ------------------------------------------------------------------------------------------


def test_electricitymaps_past_range_is_fetched_in_ten_day_pieces(api):
    values = np.arange(15 * 24, dtype=float) % 500
    record_em_range(api, START, 15, values)
    got = ElectricityMapsClient("key-1", api.url).past_range("DE", START, "2024-03-16T00:00Z")
    np.testing.assert_array_equal(got.values.to_numpy(), values)
    assert got.values.index[0] == pd.Timestamp(START) and got.unit == "gCO2eq/kWh"
    assert [s.params["end"] for s in api.seen] == ["2024-03-11T00:00:00Z", "2024-03-16T00:00:00Z"]
    assert all(s.headers["auth-token"] == "key-1" for s in api.seen)


def test_rate_limits_are_retried_after_the_time_the_server_asks(api):
    body = em_response("DE", START, [100.0, 200.0])
    api.add(PAST_RANGE, None, Reply(429, {"message": "Too many requests"}, {"Retry-After": "7"}), Reply(200, body))
    waits: list[float] = []
    got = ElectricityMapsClient("k", api.url, sleep=waits.append).past_range("DE", START, "2024-03-01T02:00Z")
    assert waits == [7.0] and len(api.seen) == 2
    np.testing.assert_array_equal(got.values.to_numpy(), [100.0, 200.0])


def test_a_rate_limit_that_never_lifts_ends_after_bounded_retries(api):
    api.add(PAST_RANGE, None, Reply(429, {"message": "quota exceeded"}))
    waits: list[float] = []
    client = ElectricityMapsClient("k", api.url, sleep=waits.append)
    with pytest.raises(CarbonApiError, match=r"rate limited \(HTTP 429\) .* after 5 retries.*quota exceeded"):
        client.past_range("DE", START, "2024-03-01T02:00Z")
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]  # no Retry-After: exponential, capped at 60 s


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            {"message": "Invalid authentication token"},
            r"HTTP 401 .* Invalid authentication token; check ELECTRICITYMAPS_API_KEY",
        ),
        (403, {"error": "Zone not in your plan"}, r"HTTP 403 .* Zone not in your plan"),
        (
            400,
            {"message": "Invalid zone XX"},
            r"HTTP 400 on /v3/carbon-intensity/past-range\?zone=DE.*: Invalid zone XX",
        ),
        (500, "<html>Internal\nServer Error</html>", r"HTTP 500 .*: <html>Internal Server Error</html>"),
    ],
)
def test_error_responses_become_one_line(api, status, body, message):
    api.add(PAST_RANGE, None, Reply(status, body))
    with pytest.raises(CarbonApiError, match=message) as info:
        ElectricityMapsClient("k", api.url, sleep=lambda _s: None).past_range("DE", START, "2024-03-01T02:00Z")
    assert "\n" not in str(info.value)


def test_missing_key_and_missing_network_are_one_line_errors():
    with pytest.raises(CarbonApiError, match="no API key: set ELECTRICITYMAPS_API_KEY in the environment"):
        ElectricityMapsClient()
    with pytest.raises(CarbonApiError, match="no credentials: set WATTTIME_USERNAME and WATTTIME_PASSWORD"):
        WattTimeClient()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(
        CarbonApiError, match=r"electricitymaps: cannot reach http://127\.0\.0\.1:\d+ \(ConnectionError\)"
    ):
        ElectricityMapsClient("k", closed).history("DE")


def test_history_and_forecast(api):
    api.add(
        "/v3/carbon-intensity/history",
        None,
        Reply(body={"zone": "DE", "history": em_response("DE", START, [5.0, 6.0])["data"]}),
    )
    api.add(
        "/v3/carbon-intensity/forecast", None, Reply(body=em_response("DE", START, [7.0, 8.0, 9.0], key="forecast"))
    )
    client = ElectricityMapsClient("k", api.url)
    np.testing.assert_array_equal(client.history("DE").values.to_numpy(), [5.0, 6.0])
    np.testing.assert_array_equal(client.forecast("DE", "lca").values.to_numpy(), [7.0, 8.0, 9.0])
    assert api.seen[-1].params == {"zone": "DE", "emissionFactorType": "lifecycle"}


# --- WattTime ----------------------------------------------------------------------------------------------------


def test_watttime_logs_in_fetches_in_month_pieces_and_renews_an_expired_token(api):
    api.add("/login", None, Reply(body={"token": "t1"}), Reply(body={"token": "t2"}))
    first = watttime_response("CAISO_NORTH", START, [900.0] * (30 * 288))
    second = watttime_response("CAISO_NORTH", "2024-03-31T00:00Z", [450.0] * 288)
    base = {"region": "CAISO_NORTH", "signal_type": "co2_moer"}
    api.add("/v3/historical", dict(base, start=START, end="2024-03-31T00:00:00Z"), Reply(body=first))
    api.add(
        "/v3/historical",
        dict(base, start="2024-03-31T00:00:00Z", end="2024-04-01T00:00:00Z"),
        Reply(401, {"error": "token expired"}),
        Reply(body=second),
    )
    client = WattTimeClient("user", "secret", api.url)
    got = client.historical("CAISO_NORTH", START, "2024-04-01T00:00Z")
    assert len(got.values) == 31 * 288 and got.unit == "lbs_co2_per_mwh" and got.step == pd.Timedelta(minutes=5)
    paths = [(s.path, s.headers.get("authorization", "")) for s in api.seen]
    assert paths[0][0] == "/login" and paths[0][1].startswith("Basic ")
    assert paths[1:] == [
        ("/v3/historical", "Bearer t1"),
        ("/v3/historical", "Bearer t1"),
        ("/login", paths[0][1]),
        ("/v3/historical", "Bearer t2"),
    ]


def test_watttime_bad_credentials_forecast_and_signal_index(api):
    api.add("/login", None, Reply(body={"token": "t"}))
    api.add("/v3/forecast", None, Reply(body=watttime_response("CAISO_NORTH", START, [800.0] * 24)))
    index = watttime_response("CAISO_NORTH", START, [37.0])
    index["meta"]["units"] = "percentile"
    api.add("/v3/signal-index", None, Reply(body=index))
    client = WattTimeClient("u", "p", api.url)
    assert len(client.forecast("CAISO_NORTH").values) == 24
    got = client.signal_index("CAISO_NORTH")
    assert got.values.iloc[0] == 37.0 and got.unit == "percentile"
    with RecordedApi() as refusing:
        refusing.add("/login", None, Reply(403, {"error": "invalid credentials"}))
        with pytest.raises(CarbonApiError, match=r"watttime: HTTP 403 on /login: invalid credentials; check WATTTIME"):
            WattTimeClient("u", "wrong", refusing.url).forecast("CAISO_NORTH")


# --- fetch-carbon, the cache and offline runs ------------------------------------------------------------------


def test_fetch_then_run_offline_from_the_cache(api, tmp_path, monkeypatch, capsys):
    """The Done-when case: a recorded Electricity Maps response -> fetch-carbon -> a run that never fetches."""
    values = np.tile([200.0, 400.0], 12 * 12)  # 12 days, hourly
    record_em_range(api, START, 12, values)
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", "secret")
    cache = tmp_path / "cache"
    argv = ["electricitymaps", "--zone", "DE", "--start", START, "--end", "2024-03-13T00:00Z", "--cache", str(cache)]
    argv += ["--base-url", api.url]
    assert fetch_main(argv) == 0
    written = entries(cache, "electricitymaps", "DE", "carbon_intensity_direct")
    assert [e.path.name for e in written] == ["20240301T0000Z--20240313T0000Z.csv"]
    assert "cached" in capsys.readouterr().out
    # Offline from here: the server is gone, and the run reads the cache only.
    api.__exit__(None, None, None)
    source = {"kind": "electricitymaps_api", "zone": "DE", "cache_dir": str(cache)}
    data = scenario_data(
        regions=[region(carbon_source=source)],
        start_utc="2024-03-05T00:00:00Z",
        arrivals={"kind": "poisson", "rate_per_s": 0.2},
        forecast={"kind": "seasonal_naive", "period_h": 24},
    )
    cfg = run_config(data)
    world, _requests, _ = prepare(cfg)
    np.testing.assert_array_equal(world.carbon.values[0], [200.0, 400.0, 200.0, 400.0])
    np.testing.assert_array_equal(world.carbon.history[0], np.tile([200.0, 400.0], 12))
    out = run(cfg)
    assert out.summary["completed"] == out.summary["requests"] > 0
    assert 200.0 <= out.summary["mean_intensity_gco2_per_kwh"] <= 400.0


def test_a_run_outside_the_cache_names_the_command_that_fills_it(tmp_path):
    cache = tmp_path / "c"
    store(
        cache,
        "watttime",
        "CAISO_NORTH",
        "co2_moer",
        pd.Series([1000.0] * 12, index=hours(START, 12, "5min")),
        "lbs_co2_per_mwh",
        pd.Timestamp(START),
        pd.Timestamp("2024-03-01T01:00Z"),
    )
    source = {"kind": "watttime_api", "zone": "CAISO_NORTH", "cache_dir": str(cache)}
    data = scenario_data(
        regions=[region(marginal_source=source)], start_utc=START, carbon={"kind": "watttime_marginal"}
    )
    scenario = build(ScenarioConfig, data, "scenario")
    np.testing.assert_allclose(carbon_signal(scenario, 0, 1).values, [[1000.0 * GRAMS_PER_POUND / 1000.0]])
    with pytest.raises(CacheMissError) as info:
        carbon_signal(scenario, 0, 3)
    message = str(info.value)
    assert "regions[0].marginal_source (r0)" in message and "runs never fetch" in message
    assert (
        f"carbonsim fetch-carbon watttime --zone CAISO_NORTH --start 2024-03-01T00:00:00Z --end 2024-03-01T03:00:00Z"
        f" --cache {cache}" in message
    )


def test_an_incomplete_api_answer_is_not_cached(api, tmp_path, monkeypatch, capsys):
    api.add(PAST_RANGE, None, Reply(body=em_response("DE", START, [1.0, 2.0])))  # 2 of the 3 hours asked for
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", "k")
    argv = ["electricitymaps", "--zone", "DE", "--start", START, "--end", "2024-03-01T03:00Z", "--cache", "c"]
    argv += ["--base-url", api.url]
    assert fetch_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("carbonsim: electricitymaps DE carbon_intensity_direct: the API returned no value for")
    assert err.count("\n") == 1 and not (tmp_path / "c").exists()


def test_fetch_carbon_subcommand_of_the_carbonsim_command(api, monkeypatch, capsys):
    record_em_range(api, START, 1, np.full(24, 50.0))
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", "k")
    monkeypatch.setenv("CARBONSIM_ELECTRICITYMAPS_URL", api.url)
    monkeypatch.setenv("CARBONSIM_CACHE", "envcache")
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "carbonsim",
            "fetch-carbon",
            "electricitymaps",
            "--zone",
            "DE",
            "--start",
            START,
            "--end",
            "2024-03-02T00:00Z",
        ],
    )
    from carbonsim.__main__ import main

    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0
    assert (
        cache_root() == Path("envcache")
        and len(entries(Path("envcache"), "electricitymaps", "DE", "carbon_intensity_direct")) == 1
    )
    assert fetch_main(["electricitymaps", "--zone", "DE"]) == 2
    assert "give exactly one of --start/--end, --history or --forecast" in capsys.readouterr().err


def test_zones_cannot_leave_the_cache_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ELECTRICITYMAPS_API_KEY", "k")
    for zone in ("../../escape", "a/b", "..", "/etc"):
        assert fetch_main(["electricitymaps", "--zone", zone, "--history", "--cache", "c"]) == 2
        assert "expected letters, digits" in capsys.readouterr().err
        with pytest.raises(DataError, match="expected letters, digits"):
            load_cached(
                tmp_path / "c",
                "electricitymaps",
                zone,
                "carbon_intensity_direct",
                pd.Timestamp(START),
                pd.Timestamp(START) + pd.Timedelta(hours=1),
                "",
            )
        with pytest.raises(ConfigError, match="zone: expected a zone id"):
            build(
                ScenarioConfig,
                scenario_data(
                    regions=[region(carbon_source={"kind": "electricitymaps_api", "zone": zone})], start_utc=START
                ),
                "scenario",
            )
    assert sorted(os.listdir(tmp_path)) == []  # nothing written anywhere


def test_loading_signals_opens_only_the_named_files_and_the_cache(tmp_path):
    """Audit every file opened while a scenario's signals and arrivals load: only what the user named."""
    from own_data import write_em_export

    from carbonsim.inputs import price_signal, request_inputs

    write_em_export(tmp_path / "mine.csv", START, [100.0] * 6)
    pd.DataFrame({"ts": hours(START, 6).strftime("%Y-%m-%dT%H:%MZ"), "usd": 50.0}).to_csv(
        tmp_path / "price.csv", index=False
    )
    pd.DataFrame({"t": [0.0, 0.5, 1.0, 2.5]}).to_csv(tmp_path / "arrivals.csv", index=False)
    cache = tmp_path / "cache"
    store(
        cache,
        "electricitymaps",
        "FR",
        "carbon_intensity_direct",
        pd.Series(60.0, index=hours(START, 6)),
        "gCO2eq/kWh",
        pd.Timestamp(START),
        pd.Timestamp(START) + pd.Timedelta(hours=6),
    )
    regions = [
        region(
            "r0",
            "Z0",
            carbon_source={"format": "electricitymaps", "path": "mine.csv"},
            price_source={"path": "price.csv", "timestamp_column": "ts", "value_column": "usd", "unit": "USD/MWh"},
        ),
        region("r1", "Z1", carbon_source={"kind": "electricitymaps_api", "zone": "FR", "cache_dir": str(cache)}),
    ]
    data = scenario_data(
        regions=regions,
        origins=[{"name": "o0", "share": 1.0, "rtt_ms": {"r0": 0.0, "r1": 0.0}}],
        start_utc=START,
        arrivals={
            "kind": "replay",
            "rate_per_s": 1.0,
            "trace_file": {"path": "arrivals.csv", "timestamp_column": "t", "time_unit": "s"},
        },
    )
    scenario = build(ScenarioConfig, data, "scenario")
    opened: list[str] = []
    watching = [True]

    def hook(event: str, args: tuple) -> None:
        if watching[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            opened.append(os.path.abspath(os.fsdecode(args[0])))

    sys.addaudithook(hook)
    try:
        carbon = carbon_signal(scenario, 0, 4)
        price_signal(scenario, 4)
        request_inputs(scenario)
    finally:
        watching[0] = False  # audit hooks cannot be removed; this one stops recording
    np.testing.assert_array_equal(carbon.values, [[100.0] * 4, [60.0] * 4])
    named = {str(tmp_path / n) for n in ("mine.csv", "price.csv", "arrivals.csv")}
    package = os.path.dirname(carbonsim.__file__) + os.sep  # lazily imported modules, not data
    system = (sys.prefix, sys.base_prefix, package, "/usr/share/zoneinfo", "/usr/lib", "/proc", "/sys", "/dev")
    outside = [
        p for p in opened if p not in named and not p.startswith(str(cache) + os.sep) and not p.startswith(system)
    ]
    assert outside == []
    assert named <= set(opened) and any(p.startswith(str(cache)) for p in opened)
