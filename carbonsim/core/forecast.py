"""Forecasts of the hourly signals (carbon intensity, electricity price) that policies decide on.

A real scheduler does not know the future: it decides on a forecast issued with the data observed so far.
Every forecaster here receives the signal of the run *and* the measured (or generated) hours before it
(``history``), and issues, at simulated hour ``h``, a forecast of hours ``h, h + 1, ..., h + horizon - 1``
for every region. The value of the current hour ``h`` counts as observed (grid operators and Electricity
Maps publish the current hour's intensity in real time), so lead 0 of every forecast is exact.

Only :class:`PerfectForecaster` (the oracle) and :class:`NoisyOracleForecaster` (an oracle with a
synthetic error, the usual device of simulation studies) read hours after ``h``; the others are given
nothing but ``observed(h)``, a view of the hours up to and including ``h``
(``tests/test_forecast.py`` proves it by poisoning the future).

Forecasts are cached per issue hour, so policies may ask for them on every decision.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from carbonsim.core.signals import SECONDS_PER_HOUR

MAX_HORIZON_H = 48
"""Longest forecast a policy may ask for, in hours."""

FORECASTERS = ("perfect", "persistence", "seasonal_naive", "noisy_oracle", "learned")


class Forecaster:
    """Base class: holds the history and the run's values and caches forecasts per issue hour.

    Args:
        values: The run's signal, shape (regions, hours); hour 0 starts at simulated t = 0.
        history: The hours before the run, shape (regions, history hours), oldest first.
        name: What is forecast, with unit, for error messages.
        non_negative: Forecasts of a quantity that cannot be negative (intensity) are reported as 0 where a
            statistical model would predict a negative value.
    """

    kind = "base"
    history_needed_h = 0
    """Hours of history the forecaster needs before simulated t = 0."""

    def __init__(self, values: np.ndarray, history: np.ndarray, name: str, non_negative: bool) -> None:
        values = np.asarray(values, dtype=np.float64)
        history = np.asarray(history, dtype=np.float64)
        if history.ndim != 2 or history.shape[0] != values.shape[0]:
            raise ValueError(f"{name}: history must have shape ({values.shape[0]}, hours), got {history.shape}")
        if history.shape[1] < self.history_needed_h:
            raise ValueError(
                f"{name}: the {self.kind} forecaster needs {self.history_needed_h} h of history before the run, "
                f"got {history.shape[1]} h"
            )
        self._series = np.hstack([history, values])
        self._series.setflags(write=False)
        self._offset = history.shape[1]
        self.hours = values.shape[1]
        self.name = name
        self.non_negative = non_negative
        self._cache: dict[int, np.ndarray] = {}

    def observed(self, hour: int) -> np.ndarray:
        """The series up to and including ``hour`` (history included), shape (regions, offset + hour + 1)."""
        return self._series[:, : self._offset + hour + 1]

    def forecast_all(self, hour: int) -> np.ndarray:
        """The forecast issued at ``hour`` for every region, shape (regions, MAX_HORIZON_H), read-only.

        Leads past the end of the run's signal are NaN for the oracles (the future is not known there
        either); policies get truncated arrays from :meth:`forecast`.
        """
        if not 0 <= hour < self.hours:
            raise ValueError(f"{self.name}: forecast issued at hour {hour}, outside the run's {self.hours} hours")
        cached = self._cache.get(hour)
        if cached is None:
            cached = self._issue(hour)
            if self.non_negative:
                cached = np.maximum(cached, 0.0)
            cached.setflags(write=False)
            self._cache[hour] = cached
        return cached

    def forecast(self, region: int, t_s: float, horizon_h: int) -> np.ndarray:
        """Forecast of ``region`` issued at time ``t_s`` for the hour holding ``t_s`` and the next ones.

        Args:
            region: Region index.
            t_s: Decision time in seconds.
            horizon_h: Hours to forecast (1..MAX_HORIZON_H); the result is shorter where the run's signal
                ends (the simulator never reaches those hours).

        Returns:
            A fresh float64 array of at most ``horizon_h`` values.
        """
        if not 1 <= horizon_h <= MAX_HORIZON_H:
            raise ValueError(f"{self.name}: horizon_h must be in 1..{MAX_HORIZON_H} hours, got {horizon_h}")
        hour = int(t_s // SECONDS_PER_HOUR)
        length = min(horizon_h, self.hours - hour)
        return np.array(self.forecast_all(hour)[region, :length], dtype=np.float64)

    def _issue(self, hour: int) -> np.ndarray:
        raise NotImplementedError

    def _target_hod(self, hour: int) -> np.ndarray:
        return (hour + np.arange(MAX_HORIZON_H)) % 24


class ForecastReader:
    """Forecast methods of a view that has ``now_s``, ``carbon_forecast`` and ``price_forecast``.

    Shared by the planning view of routing policies and the view of batch policies.
    """

    now_s: float
    carbon_forecast: Forecaster
    price_forecast: Forecaster

    def forecast_gco2_per_kwh(self, region: int, horizon_h: int) -> np.ndarray:
        """Intensity forecast of ``region`` issued now: the current hour and the next, ``horizon_h`` (<= 48) values."""
        return self.carbon_forecast.forecast(region, self.now_s, horizon_h)

    def forecast_price_usd_per_kwh(self, region: int, horizon_h: int) -> np.ndarray:
        """Electricity price forecast of ``region`` issued now, in USD/kWh, ``horizon_h`` (<= 48) values."""
        return self.price_forecast.forecast(region, self.now_s, horizon_h)


class PerfectForecaster(Forecaster):
    """The oracle: the true future values (an upper bound on what forecasting can give)."""

    kind = "perfect"

    def _issue(self, hour: int) -> np.ndarray:
        out = np.full((self._series.shape[0], MAX_HORIZON_H), np.nan)
        start = self._offset + hour
        future = self._series[:, start : start + MAX_HORIZON_H]
        out[:, : future.shape[1]] = future
        return out


class PersistenceForecaster(Forecaster):
    """Naive persistence: every future hour equals the current hour."""

    kind = "persistence"

    def _issue(self, hour: int) -> np.ndarray:
        now = self.observed(hour)[:, -1]
        return np.repeat(now[:, None], MAX_HORIZON_H, axis=1)


class SeasonalNaiveForecaster(Forecaster):
    """Seasonal naive: hour ``h + k`` is forecast by the last observed hour one or more periods earlier.

    With period ``P`` (24: same hour yesterday; 168: same hour last week), the forecast of lead ``k >= 1``
    is the value at ``h + k - P ceil(k / P)``, the most recent observed hour at the same phase of the
    period (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 2021, sec. 5.2).
    Lead 0 is the observed current hour.

    Args:
        period_h: The season length in hours.
    """

    kind = "seasonal_naive"

    def __init__(
        self, values: np.ndarray, history: np.ndarray, name: str, non_negative: bool, period_h: int = 24
    ) -> None:
        if period_h < 1:
            raise ValueError(f"{name}: period_h must be >= 1, got {period_h}")
        self.period_h = period_h
        self.history_needed_h = period_h
        super().__init__(values, history, name, non_negative)

    def _issue(self, hour: int) -> np.ndarray:
        seen = self.observed(hour)
        last = seen.shape[1] - 1
        lead = np.arange(MAX_HORIZON_H)
        back = np.where(lead == 0, 0, self.period_h * np.ceil(lead / self.period_h).astype(np.int64) - lead)
        return np.array(seen[:, last - back], dtype=np.float64)


class NoisyOracleForecaster(Forecaster):
    """The true future with a multiplicative error whose spread grows with the lead time.

    forecast(h + k) = true(h + k) x exp(e_k), e_0 = 0, e_k = e_(k-1) + N(0, s^2 / 24): a Gaussian random walk
    over the lead time, so the error of one forecast is correlated from hour to hour and its standard
    deviation is s sqrt(k / 24) (s at 24 h). s is set from the mean absolute percentage error at 24 h:
    for a small normal error, MAPE = s sqrt(2 / pi), so s = mape_24h sqrt(pi / 2). The multiplicative form
    keeps the sign of the value (intensities stay positive, negative prices stay negative).

    The errors of the forecast issued at hour ``h`` are drawn from their own generator, seeded by
    (root seed, signal name, h), so they do not depend on which policy asks, or when, or how often.

    Args:
        mape_24h: Mean absolute percentage error at 24 h lead, as a fraction (0.1 = 10 %).
        seed: Root seed of the run.
    """

    kind = "noisy_oracle"

    def __init__(
        self,
        values: np.ndarray,
        history: np.ndarray,
        name: str,
        non_negative: bool,
        mape_24h: float = 0.1,
        seed: int = 0,
    ) -> None:
        if not (math.isfinite(mape_24h) and mape_24h >= 0):
            raise ValueError(f"{name}: mape_24h must be a fraction >= 0, got {mape_24h}")
        super().__init__(values, history, name, non_negative)
        self.sigma_24h = mape_24h * math.sqrt(math.pi / 2.0)
        self._seed = (seed, zlib.crc32(f"forecast/{name}".encode()))
        self._oracle = PerfectForecaster(values, history, name, non_negative)

    def _issue(self, hour: int) -> np.ndarray:
        truth = self._oracle.forecast_all(hour)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([*self._seed, hour])))
        steps = rng.normal(0.0, self.sigma_24h / math.sqrt(24.0), size=(truth.shape[0], MAX_HORIZON_H))
        steps[:, 0] = 0.0
        return np.asarray(truth * np.exp(np.cumsum(steps, axis=1)), dtype=np.float64)


class LearnedForecaster(Forecaster):
    """A seasonal profile plus a decaying AR(1) deviation, refitted at every issue hour on past data only.

    Fitted on the last ``window_h`` observed hours (ending at the issue hour ``h``): the mean value of each
    hour of day gives the daily profile ``p``; the deviations ``r_t = y_t - p(t)`` give the AR(1)
    coefficient ``phi`` by least squares (``sum r_t r_(t-1) / sum r_(t-1)^2``, kept in [0, 1] so that
    the forecast decays to the profile). Forecast: ``y(h + k) = p(h + k) + phi^k r_h``. This is the
    classical "seasonal mean + AR(1) error" model (Hyndman & Athanasopoulos, *Forecasting: Principles and
    Practice*, 3rd ed., 2021, ch. 9-10), chosen because it fits in closed form, never looks ahead and
    captures both the daily cycle and the persistence of weather-driven deviations.

    Args:
        window_h: Hours of past data the model is fitted on (a multiple of 24 keeps every hour of day
            equally represented).
    """

    kind = "learned"

    def __init__(
        self, values: np.ndarray, history: np.ndarray, name: str, non_negative: bool, window_h: int = 28 * 24
    ) -> None:
        if window_h < 48:
            raise ValueError(f"{name}: window_h must be >= 48 h (two days), got {window_h}")
        self.window_h = window_h
        self.history_needed_h = window_h - 1
        super().__init__(values, history, name, non_negative)

    def _issue(self, hour: int) -> np.ndarray:
        window = self.observed(hour)[:, -self.window_h :]
        n = window.shape[1]
        # Hour of day of each column, counting back from the issue hour.
        hod = (hour - (n - 1) + np.arange(n)) % 24
        profile = np.zeros((window.shape[0], 24))
        for d in range(24):
            profile[:, d] = window[:, hod == d].mean(axis=1)
        resid = window - profile[:, hod]
        prev, curr = resid[:, :-1], resid[:, 1:]
        denom = (prev * prev).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            phi = np.where(denom > 0, (prev * curr).sum(axis=1) / denom, 0.0)
        phi = np.clip(phi, 0.0, 1.0)
        lead = np.arange(MAX_HORIZON_H)
        decay = phi[:, None] ** lead[None, :]
        return np.asarray(profile[:, self._target_hod(hour)] + decay * resid[:, -1:], dtype=np.float64)


def make_forecaster(
    kind: str,
    values: np.ndarray,
    history: np.ndarray,
    name: str,
    *,
    non_negative: bool,
    seed: int = 0,
    period_h: int = 24,
    mape_24h: float = 0.1,
    window_h: int = 28 * 24,
) -> Forecaster:
    """Builds the forecaster ``kind`` (one of :data:`FORECASTERS`) over a signal and its history."""
    if kind == "perfect":
        return PerfectForecaster(values, history, name, non_negative)
    if kind == "persistence":
        return PersistenceForecaster(values, history, name, non_negative)
    if kind == "seasonal_naive":
        return SeasonalNaiveForecaster(values, history, name, non_negative, period_h=period_h)
    if kind == "noisy_oracle":
        return NoisyOracleForecaster(values, history, name, non_negative, mape_24h=mape_24h, seed=seed)
    if kind == "learned":
        return LearnedForecaster(values, history, name, non_negative, window_h=window_h)
    raise ValueError(f"unknown forecaster {kind!r}; expected one of {', '.join(FORECASTERS)}")
