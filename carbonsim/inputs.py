"""The time-varying inputs of a scenario: carbon-intensity and price signals, synthetic or measured.

Measured series come from the data layer (``carbonsim.data``), which validates the files; this module cuts
the window a run needs, starting at the scenario's ``start_utc``, and hands the simulator
:class:`~carbonsim.core.signals.HourlySignal` objects. The core itself does no I/O.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from carbonsim._schema import ConfigError
from carbonsim.config import ScenarioConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.jobs import Jobs
from carbonsim.core.signals import HourlySignal
from carbonsim.core.world import carbon_signal as synthetic_carbon_signal
from carbonsim.core.world import flat_price
from carbonsim.data.carbon import available_zones, load_electricitymaps, load_watttime_moer
from carbonsim.data.carbon_cache import cache_root, fetch_command, load_cached, signal_name
from carbonsim.data.errors import DataError
from carbonsim.data.importers import load_job_trace
from carbonsim.data.prices import available_markets, load_price
from carbonsim.data.user_arrivals import load_arrival_trace
from carbonsim.data.user_signals import Quantity, load_signal_file
from carbonsim.data.workloads import load_gaia_trace, load_llm_arrivals, load_load_shape
from carbonsim.job_streams import generated_trace
from carbonsim.jobs_build import build_jobs
from carbonsim.signal_config import SignalSourceConfig

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


def source_series(
    source: SignalSourceConfig, quantity: Quantity, scenario: ScenarioConfig, hours: int, what: str
) -> pd.Series:
    """The hourly series a region's signal source gives (gCO2eq/kWh, or USD/MWh for prices).

    A file is read whole (only that file); an API source reads the cache for the run's window, from
    ``forecast.history_h`` hours before ``start_utc`` to ``hours`` after it, and never fetches.
    """
    if source.kind == "file":
        return load_signal_file(
            source.path,
            format=source.format,
            quantity=quantity,
            timestamp_column=source.timestamp_column,
            value_column=source.value_column,
            unit=source.unit,
            timezone=source.timezone,
            time_unit=source.time_unit,
            zone=source.zone,
            metric=scenario.carbon.metric,
            exchange_rate_usd=source.exchange_rate_usd,
        )
    provider = source.kind.removesuffix("_api")
    signal = signal_name(provider, source.signal, scenario.carbon.metric)
    start = start_time(scenario)
    first, end = start - scenario.forecast.history_h * HOUR, start + hours * HOUR
    root = cache_root(source.cache_dir or None)
    hint = fetch_command(provider, source.zone, source.signal, scenario.carbon.metric, first, end, root)
    try:
        return load_cached(root, provider, source.zone, signal, first, end, hint)
    except DataError as exc:
        raise type(exc)(f"{what}: {exc}") from None


def _source_rows(
    scenario: ScenarioConfig, field_name: str, quantity: Quantity, hours: int, wrap: bool
) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(history, values) of every region whose ``field_name`` source is set; None for the others."""
    rows: list[tuple[np.ndarray, np.ndarray] | None] = []
    for i, region in enumerate(scenario.regions):
        source: SignalSourceConfig | None = getattr(region, field_name)
        if source is None:
            rows.append(None)
            continue
        what = f"regions[{i}].{field_name} ({region.name})"
        series = source_series(source, quantity, scenario, hours, what)
        rows.append(window_with_history(series, scenario, hours, wrap and source.kind == "file", what))
    return rows


def carbon_signal(scenario: ScenarioConfig, seed: int, hours: int) -> HourlySignal:
    """The scenario's carbon-intensity signal for ``hours`` hours (gCO2eq/kWh per region), with history.

    A region with a source (``carbon_source``, or ``marginal_source`` for ``watttime_marginal``) takes its
    row from it; the others follow ``carbon.kind``.
    """
    cfg = scenario.carbon
    marginal = cfg.kind == "watttime_marginal"
    field_name = "marginal_source" if marginal else "carbon_source"
    rows = _source_rows(scenario, field_name, "marginal" if marginal else "carbon", hours, cfg.wrap)
    sourced = any(row is not None for row in rows)
    if all(row is not None for row in rows):
        return _stack(_present(rows), "carbon intensity (regions' sources, gCO2eq/kWh)", allow_negative=False)
    if cfg.kind == "synthetic_diurnal":
        if not sourced:
            return synthetic_carbon_signal(scenario, seed, hours)
        # Zones of sourced regions need no base intensity; their synthetic rows are replaced below.
        zones = {r.grid_zone for r in scenario.regions}
        bases = {**dict.fromkeys(zones, 0.0), **cfg.base_gco2_per_kwh}
        synth = synthetic_carbon_signal(
            dataclasses.replace(scenario, carbon=dataclasses.replace(cfg, base_gco2_per_kwh=bases)), seed, hours
        )
        for i, row in enumerate(rows):
            if row is None:
                rows[i] = (synth.history[i].copy(), synth.values[i].copy())
        return _stack(_present(rows), "carbon intensity (synthetic and regions' sources, gCO2eq/kWh)", False)
    if marginal:
        what = "WattTime marginal CAISO_NORTH (hourly mean)"
        sample = window_with_history(hourly_mean(load_watttime_moer(), what), scenario, hours, cfg.wrap, what)
        name = f"carbon intensity ({what}, gCO2/kWh)"
        return _stack([row or sample for row in rows], name if not sourced else f"{name} and sources", False)
    _check_names(scenario, rows, "grid_zone", available_zones(), "an Electricity Maps zone with data")
    by_zone: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for zone in dict.fromkeys(r.grid_zone for r, row in zip(scenario.regions, rows, strict=True) if row is None):
        series = load_electricitymaps(zone, kind=cfg.metric)
        by_zone[zone] = window_with_history(
            series, scenario, hours, cfg.wrap, f"Electricity Maps {zone} ({cfg.metric})"
        )
    name = f"carbon intensity (Electricity Maps, {cfg.metric}, gCO2eq/kWh)"
    return _stack(
        [row or by_zone[r.grid_zone] for r, row in zip(scenario.regions, rows, strict=True)],
        name if not sourced else f"{name} and regions' sources",
        allow_negative=False,
    )


def price_signal(scenario: ScenarioConfig, hours: int) -> HourlySignal:
    """The scenario's electricity price signal for ``hours`` hours (USD/kWh per region), with history.

    A region with a ``price_source`` takes its row from it; the others follow ``prices.kind``.
    """
    cfg = scenario.prices
    sourced = _source_rows(scenario, "price_source", "price", hours, cfg.wrap)
    rows = [
        None if r is None else (r[0] * USD_PER_MWH_TO_USD_PER_KWH, r[1] * USD_PER_MWH_TO_USD_PER_KWH) for r in sourced
    ]
    if cfg.kind == "flat":
        flat = flat_price(scenario, hours)
        if all(row is None for row in rows):
            return flat
        rows = [row or (flat.history[i].copy(), flat.values[i].copy()) for i, row in enumerate(rows)]
        return _stack(_present(rows), "electricity price (flat and regions' sources, USD/kWh)", allow_negative=True)
    _check_names(scenario, rows, "price_market", available_markets(), "a market with price data")
    by_market: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    unsourced = [r.price_market for r, row in zip(scenario.regions, rows, strict=True) if row is None]
    for market in dict.fromkeys(unsourced):
        past, now = window_with_history(load_price(market), scenario, hours, cfg.wrap, f"electricity price {market}")
        by_market[market] = (past * USD_PER_MWH_TO_USD_PER_KWH, now * USD_PER_MWH_TO_USD_PER_KWH)
    return _stack(
        [row or by_market[r.price_market] for r, row in zip(scenario.regions, rows, strict=True)],
        "electricity price (market, USD/kWh)"
        if not unsourced or len(unsourced) == len(rows)
        else "electricity price (market and regions' sources, USD/kWh)",
        allow_negative=True,
    )


def _check_names(scenario: ScenarioConfig, rows: list[Any], field: str, valid: list[str], expected: str) -> None:
    """Raises ConfigError naming the first region without a source whose zone or market has no data file."""
    for i, (region, row) in enumerate(zip(scenario.regions, rows, strict=True)):
        name = getattr(region, field)
        if row is None and name not in valid:
            raise ConfigError(f"scenario.regions[{i}].{field}: expected {expected} ({', '.join(valid)}), got {name!r}")


def _present(rows: list[tuple[np.ndarray, np.ndarray] | None]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [row for row in rows if row is not None]


def _stack(rows: list[tuple[np.ndarray, np.ndarray]], name: str, allow_negative: bool) -> HourlySignal:
    values = np.vstack([now for _, now in rows])
    history = np.vstack([past for past, _ in rows]) if rows[0][0].size else None
    return HourlySignal(values, name, allow_negative=allow_negative, history=history)


def signals(scenario: ScenarioConfig, seed: int, hours: int) -> tuple[HourlySignal, HourlySignal]:
    """Carbon and price signals of a scenario for ``hours`` hours."""
    return carbon_signal(scenario, seed, hours), price_signal(scenario, hours)


class RequestInputs(NamedTuple):
    """The measured inputs of the arrival process.

    Attributes:
        load_shape: Hourly load shape (``arrivals.load_shape``), or None.
        replay_s: Recorded arrival times in s for ``replay``, or None.
        replay_workload: Workload index of each recorded arrival when the trace names models, or None.
    """

    load_shape: np.ndarray | None
    replay_s: np.ndarray | None
    replay_workload: np.ndarray | None


def request_inputs(scenario: ScenarioConfig) -> RequestInputs:
    """The arrival process's measured inputs: load shape, and the shipped or user's replayed trace."""
    cfg = scenario.arrivals
    shape = load_load_shape(cfg.load_shape) if cfg.load_shape else None
    if cfg.kind != "replay":
        return RequestInputs(shape, None, None)
    trace = cfg.trace_file
    if trace is None:
        return RequestInputs(shape, load_llm_arrivals(cfg.trace.removeprefix("azure_llm_")), None)
    frame = load_arrival_trace(
        trace.path,
        timestamp_column=trace.timestamp_column,
        time_unit=trace.time_unit,
        timezone=trace.timezone,
        model_column=trace.model_column,
        models=trace.models,
        workloads=scenario.workload_names,
        context_tokens_column=trace.context_tokens_column,
        generated_tokens_column=trace.generated_tokens_column,
    )
    workload = frame["workload"].to_numpy(dtype=np.int64) if "workload" in frame else None
    return RequestInputs(shape, frame["arrival_s"].to_numpy(dtype=np.float64), workload)


def arrival_inputs(scenario: ScenarioConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The measured inputs of the arrival process: (hourly load shape, replayed arrival times in s)."""
    inputs = request_inputs(scenario)
    return inputs.load_shape, inputs.replay_s


def batch_jobs(scenario: ScenarioConfig, seed: int, sim_hours: float) -> Jobs:
    """The scenario's batch jobs for a run of ``sim_hours`` (none without ``batch.trace``, ``generator`` or ``source``).

    Jobs of the trace arriving in ``[trace_offset_h, trace_offset_h + sim_hours)``, shifted to t = 0;
    whether each is interruptible, its home region and (by the deadline rule) its deadline as
    :func:`carbonsim.jobs_build.build_jobs` sets them, drawing from the ``jobs`` random stream.
    """
    cfg = scenario.batch
    if not cfg.has_jobs:
        return Jobs.empty()
    rng = rngmod.stream(seed, "jobs")
    horizon_s = sim_hours * 3600.0
    if cfg.trace:
        trace = load_gaia_trace(cfg.trace)
    elif cfg.source.format:
        trace = load_job_trace(cfg.source)
    else:
        gen = cfg.generator
        capacity = sum(
            float(r.batch_cpus) if gen.kind == "tpch" else float(sum(r.batch_gpus.values())) for r in scenario.regions
        )
        trace = generated_trace(gen, cfg.trace_offset_h * 3600.0 + horizon_s, rng, capacity)
    return build_jobs(trace, cfg, scenario.region_names, horizon_s, rng, scenario.regions)
