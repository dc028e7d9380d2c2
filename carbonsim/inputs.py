"""The time-varying inputs of a scenario: carbon-intensity and price signals, synthetic or measured.

Measured series come from the data layer (``carbonsim.data``), which validates the files; this module cuts
the window a run needs, starting at the scenario's ``start_utc``, and hands the simulator
:class:`~carbonsim.core.signals.HourlySignal` objects. The core itself does no I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carbonsim._schema import ConfigError
from carbonsim.config import ScenarioConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.jobs import Jobs, make_jobs
from carbonsim.core.signals import HourlySignal
from carbonsim.core.world import carbon_signal as synthetic_carbon_signal
from carbonsim.core.world import flat_price
from carbonsim.data.carbon import available_zones, load_electricitymaps, load_watttime_moer
from carbonsim.data.errors import DataError
from carbonsim.data.prices import available_markets, load_price
from carbonsim.data.workloads import load_gaia_jobs, load_llm_arrivals, load_load_shape

HOUR = pd.Timedelta(hours=1)
USD_PER_MWH_TO_USD_PER_KWH = 1e-3


def start_time(scenario: ScenarioConfig) -> pd.Timestamp:
    """Calendar time (UTC) of simulated t = 0."""
    return pd.Timestamp(scenario.start_utc).tz_convert("UTC")


def hourly_window(series: pd.Series, start: pd.Timestamp, hours: int, wrap: bool, what: str) -> np.ndarray:
    """The values of an hourly series for ``hours`` hours from the hour holding ``start``.

    Args:
        series: Validated hourly series with a UTC DatetimeIndex (a series stamped at a fixed offset within
            the hour, such as hh:30, is matched to the hour it falls in).
        start: First hour of the window (UTC).
        hours: Length of the window.
        wrap: If the window runs past the data's last hour, continue from the data's first hour instead of
            failing. The data sets here start at 00:00 and end at 23:00, so the hour of day stays aligned.
        what: Name of the series for error messages (file or zone).

    Returns:
        float64 array of ``hours`` values.

    Raises:
        DataError: if ``start`` is outside the data, or the window runs past its end without ``wrap``.
    """
    index = series.index
    first, last = index[0], index[-1]
    pos = int(index.searchsorted(start))
    if pos >= len(index) or not (start <= index[pos] < start + HOUR):
        raise DataError(
            f"scenario.start_utc: {what}: start {start.isoformat()} is not an hour of the data, which covers "
            f"{first.isoformat()} to {last.isoformat()}"
        )
    values = series.to_numpy(dtype=np.float64)
    available = len(values) - pos
    if hours <= available:
        return values[pos : pos + hours].copy()
    if not wrap:
        end = start + hours * HOUR
        raise DataError(
            f"scenario.start_utc: {what}: the run may need data until {end.isoformat()} (the arrival window plus "
            f"the drain bound max_drain_hours) but the data ends at {last.isoformat()}; start earlier, shorten the "
            f"run, or set wrap: true to continue from the data's first hour"
        )
    return np.concatenate([values[pos:], np.resize(values, hours - available)])


def window_with_history(
    series: pd.Series, scenario: ScenarioConfig, hours: int, wrap: bool, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """The run's window of a measured series and the hours before it that the scenario's forecaster needs.

    Returns:
        (history, values): ``forecast.history_h`` hours before ``start_utc`` and ``hours`` hours from it.

    Raises:
        DataError: as :func:`hourly_window`, or if the data do not reach back far enough for the forecaster.
    """
    start = start_time(scenario)
    values = hourly_window(series, start, hours, wrap, what)
    past_h = scenario.forecast.history_h
    if not past_h:
        return np.zeros(0), values
    first = start - past_h * HOUR
    try:
        history = hourly_window(series, first, past_h, False, what)
    except DataError:
        raise DataError(
            f"scenario.forecast.kind: {what}: the {scenario.forecast.kind} forecaster learns from the {past_h} h "
            f"before start_utc, i.e. from "
            f"{first.isoformat()}, but the data begin at {series.index[0].isoformat()}; start later or choose "
            f"another forecast.kind"
        ) from None
    return history, values


def hourly_mean(series: pd.Series, what: str) -> pd.Series:
    """The mean of a sub-hourly series over each UTC hour.

    Raises:
        DataError: if the series does not start on a whole hour or an hour is incomplete (the loaders
            already reject gaps, so only the first and last hour can be partial).
    """
    step = series.index[1] - series.index[0]
    per_hour = int(HOUR / step)
    first = series.index[0]
    if first != first.floor("h") or len(series) % per_hour:
        raise DataError(
            f"{what}: expected whole hours of {per_hour} values from a whole hour, got {len(series)} values from "
            f"{first.isoformat()}"
        )
    values = series.to_numpy(dtype=np.float64).reshape(-1, per_hour).mean(axis=1)
    return pd.Series(values, index=series.index[::per_hour], name=series.name)


def carbon_signal(scenario: ScenarioConfig, seed: int, hours: int) -> HourlySignal:
    """The scenario's carbon-intensity signal for ``hours`` hours (gCO2eq/kWh per region), with history."""
    cfg = scenario.carbon
    if cfg.kind == "synthetic_diurnal":
        return synthetic_carbon_signal(scenario, seed, hours)
    if cfg.kind == "watttime_marginal":
        what = "WattTime marginal CAISO_NORTH (hourly mean)"
        rows = window_with_history(hourly_mean(load_watttime_moer(), what), scenario, hours, cfg.wrap, what)
        return _stack([rows] * len(scenario.regions), f"carbon intensity ({what}, gCO2/kWh)", allow_negative=False)
    _check_names(scenario, "grid_zone", available_zones(), "an Electricity Maps zone with data")
    by_zone: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for zone in dict.fromkeys(r.grid_zone for r in scenario.regions):
        series = load_electricitymaps(zone, kind=cfg.metric)
        by_zone[zone] = window_with_history(
            series, scenario, hours, cfg.wrap, f"Electricity Maps {zone} ({cfg.metric})"
        )
    return _stack(
        [by_zone[r.grid_zone] for r in scenario.regions],
        f"carbon intensity (Electricity Maps, {cfg.metric}, gCO2eq/kWh)",
        allow_negative=False,
    )


def price_signal(scenario: ScenarioConfig, hours: int) -> HourlySignal:
    """The scenario's electricity price signal for ``hours`` hours (USD/kWh per region), with history."""
    cfg = scenario.prices
    if cfg.kind == "flat":
        return flat_price(scenario, hours)
    _check_names(scenario, "price_market", available_markets(), "a market with price data")
    by_market: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for market in dict.fromkeys(r.price_market for r in scenario.regions):
        past, now = window_with_history(load_price(market), scenario, hours, cfg.wrap, f"electricity price {market}")
        by_market[market] = (past * USD_PER_MWH_TO_USD_PER_KWH, now * USD_PER_MWH_TO_USD_PER_KWH)
    return _stack(
        [by_market[r.price_market] for r in scenario.regions],
        "electricity price (market, USD/kWh)",
        allow_negative=True,
    )


def _check_names(scenario: ScenarioConfig, field: str, valid: list[str], expected: str) -> None:
    """Raises ConfigError naming the first region whose ``field`` (zone or market) has no data file."""
    for i, region in enumerate(scenario.regions):
        name = getattr(region, field)
        if name not in valid:
            raise ConfigError(f"scenario.regions[{i}].{field}: expected {expected} ({', '.join(valid)}), got {name!r}")


def _stack(rows: list[tuple[np.ndarray, np.ndarray]], name: str, allow_negative: bool) -> HourlySignal:
    values = np.vstack([now for _, now in rows])
    history = np.vstack([past for past, _ in rows]) if rows[0][0].size else None
    return HourlySignal(values, name, allow_negative=allow_negative, history=history)


def signals(scenario: ScenarioConfig, seed: int, hours: int) -> tuple[HourlySignal, HourlySignal]:
    """Carbon and price signals of a scenario for ``hours`` hours."""
    return carbon_signal(scenario, seed, hours), price_signal(scenario, hours)


def arrival_inputs(scenario: ScenarioConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The measured inputs of the arrival process: (hourly load shape, replayed arrival times in s)."""
    cfg = scenario.arrivals
    shape = load_load_shape(cfg.load_shape) if cfg.load_shape else None
    replay = load_llm_arrivals(cfg.trace.removeprefix("azure_llm_")) if cfg.kind == "replay" else None
    return shape, replay


def batch_jobs(scenario: ScenarioConfig, seed: int, sim_hours: float) -> Jobs:
    """The scenario's batch jobs for a run of ``sim_hours`` (none unless ``batch.trace`` is set).

    Jobs of the GAIA trace arriving in ``[trace_offset_h, trace_offset_h + sim_hours)``, shifted to t = 0;
    whether each is interruptible and its home region come from the ``jobs`` random stream.
    """
    cfg = scenario.batch
    if not cfg.trace:
        return Jobs.empty()
    trace = load_gaia_jobs(cfg.trace)
    return make_jobs(
        cfg,
        scenario.region_names,
        trace["arrival_s"].to_numpy(),
        trace["duration_s"].to_numpy(),
        trace["cpus"].to_numpy(),
        sim_hours * 3600.0,
        rngmod.stream(seed, "jobs"),
    )
