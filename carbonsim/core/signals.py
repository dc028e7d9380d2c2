"""Time-varying per-region signals (carbon intensity, price), piecewise constant per hour.

Simulated time ``t_s`` is seconds from the start of the run; hour ``h`` covers ``[3600 h, 3600 (h + 1))``.
"""

from __future__ import annotations

import math

import numpy as np

SECONDS_PER_HOUR = 3600.0


class HourlySignal:
    """A per-region series that is constant within each simulated hour.

    Args:
        values: Array of shape (regions, hours), e.g. intensity in gCO2eq/kWh.
        name: What the values are, with unit, for error messages.
        allow_negative: Accept negative values (electricity prices can be negative; intensities cannot).
        history: The hours before the run, shape (regions, hours), oldest first: what forecasters may
            learn from. The simulator itself never reads them. ``None`` means no history.

    Raises:
        ValueError: if an array is not 2-D, the values are empty, the history has another number of
            regions, or either holds NaN (or, unless allowed, negative) values.
    """

    def __init__(
        self, values: np.ndarray, name: str, allow_negative: bool = False, history: np.ndarray | None = None
    ) -> None:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"{name}: expected a (regions, hours) array with at least one hour, got {arr.shape}")
        past = np.zeros((arr.shape[0], 0)) if history is None else np.asarray(history, dtype=np.float64)
        if past.ndim != 2 or past.shape[0] != arr.shape[0]:
            raise ValueError(f"{name}: expected a history of shape ({arr.shape[0]}, hours), got {past.shape}")
        for what, a, first in (("hour", arr, 0), ("history hour", past, -past.shape[1])):
            bad = ~np.isfinite(a) if allow_negative else ~np.isfinite(a) | (a < 0)
            if bad.any():
                r, h = np.argwhere(bad)[0]
                expected = "a finite value" if allow_negative else "a finite value >= 0"
                raise ValueError(f"{name}: region index {r}, {what} {first + h}: expected {expected}, got {a[r, h]}")
        self.values = arr
        self.values.setflags(write=False)
        self.history = past
        self.history.setflags(write=False)
        self.allow_negative = allow_negative
        self.name = name
        # Integral of the signal over time, in value x seconds, at each hour boundary: lets the energy
        # model integrate power x intensity over any interval exactly (the signal is piecewise constant).
        zeros = np.zeros((arr.shape[0], 1))
        self._cumulative = np.hstack([zeros, np.cumsum(arr * SECONDS_PER_HOUR, axis=1)])
        self._by_hour = [tuple(float(v) for v in arr[:, h]) for h in range(arr.shape[1])]
        self._rows: tuple[list[list[float]], list[list[float]]] | None = None

    @property
    def hours(self) -> int:
        """Number of hours the signal covers."""
        return int(self.values.shape[1])

    @property
    def horizon_s(self) -> float:
        """End of the covered time in seconds."""
        return self.hours * SECONDS_PER_HOUR

    def hour_index(self, t_s: float) -> int:
        """Returns the hour holding time ``t_s``, raising if the signal does not cover it."""
        h = int(t_s // SECONDS_PER_HOUR)
        if h < 0 or h >= self.hours:
            raise ValueError(f"{self.name}: time {t_s:.3f} s (hour {h}) is outside the signal's {self.hours} hours")
        return h

    def at(self, region: int, t_s: float) -> float:
        """Returns the value for ``region`` at time ``t_s`` (seconds)."""
        return float(self.values[region, self.hour_index(t_s)])

    def all_at(self, t_s: float) -> tuple[float, ...]:
        """Returns the values of every region at time ``t_s`` (a cached tuple, cheap to call)."""
        return self._by_hour[self.hour_index(t_s)]

    def values_at(self, region: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """Returns the value per element for regions ``region`` at times ``t_s`` (within the signal)."""
        t = np.asarray(t_s, dtype=np.float64)
        if t.size and (t.min() < 0 or t.max() >= self.horizon_s):
            raise ValueError(f"{self.name}: time {t.max():.3f} s is outside the signal's {self.hours} hours")
        return np.asarray(self.values[region, (t // SECONDS_PER_HOUR).astype(np.int64)], dtype=np.float64)

    def integral(self, region: np.ndarray, t0_s: np.ndarray, t1_s: np.ndarray) -> np.ndarray:
        """Integrates the signal over ``[t0_s, t1_s]`` per element, in value x seconds.

        Args:
            region: Region index per interval.
            t0_s: Interval starts in seconds.
            t1_s: Interval ends in seconds (>= starts, within the signal).

        Returns:
            The integrals, exact for the piecewise-constant signal (intervals that cross hour boundaries
            are split at them).
        """
        return np.asarray(self._cumulative_at(region, t1_s) - self._cumulative_at(region, t0_s), dtype=np.float64)

    def integral_one(self, region: int, t0_s: float, t1_s: float) -> float:
        """:meth:`integral` for one interval, in plain Python (cheaper than numpy for a single value)."""
        if self._rows is None:
            self._rows = (self._cumulative.tolist(), self.values.tolist())
        cum, val = self._rows
        last = self.hours - 1
        if t0_s < 0 or t1_s > self.horizon_s:
            raise ValueError(
                f"{self.name}: integration over [{t0_s:.3f}, {t1_s:.3f}] s leaves the signal's {self.hours} hours"
            )
        h0 = min(int(t0_s // SECONDS_PER_HOUR), last)
        h1 = min(int(t1_s // SECONDS_PER_HOUR), last)
        c_row, v_row = cum[region], val[region]
        at0 = c_row[h0] + v_row[h0] * (t0_s - h0 * SECONDS_PER_HOUR)
        at1 = c_row[h1] + v_row[h1] * (t1_s - h1 * SECONDS_PER_HOUR)
        return at1 - at0

    def _cumulative_at(self, region: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        t = np.asarray(t_s, dtype=np.float64)
        if t.size and (t.min() < 0 or t.max() > self.horizon_s):
            raise ValueError(
                f"{self.name}: integration reaches {t.max():.3f} s, beyond the signal's {self.hours} hours"
            )
        h = np.minimum((t // SECONDS_PER_HOUR).astype(np.int64), self.hours - 1)
        return np.asarray(self._cumulative[region, h] + self.values[region, h] * (t - h * SECONDS_PER_HOUR))


def synthetic_diurnal(
    base: np.ndarray,
    hours: int,
    rng: np.random.Generator,
    amplitude: float = 0.2,
    phase_h: float = 6.0,
    noise: float = 0.1,
    floor: float = 5.0,
    first_hour: int = 0,
) -> np.ndarray:
    """Generates a synthetic daily intensity cycle per region.

    value[r, h] = max(floor, base[r] x (1 + amplitude x sin(2 pi (hod - phase_h) / 24)) x U(1 - noise,
    1 + noise)), with hod = h mod 24 the hour of day. This is the generator of the published reference
    setup (amplitude 0.2, phase 6 h, noise 0.1, floor 5 gCO2eq/kWh).

    Args:
        base: Base intensity per region, shape (regions,), in gCO2eq/kWh.
        hours: Number of hours to generate.
        rng: Generator for the noise (drawn hour by hour, region by region within an hour).
        amplitude: Relative amplitude of the sine.
        phase_h: Hour of day of the upward zero crossing.
        noise: Half-width of the uniform multiplicative noise.
        floor: Minimum value.
        first_hour: Simulated hour of the first column (negative for history before the run); sets the
            hour of day.

    Returns:
        Array of shape (regions, hours).
    """
    hod = (first_hour + np.arange(hours)) % 24
    cycle = 1.0 + amplitude * np.sin(2.0 * math.pi * (hod - phase_h) / 24.0)
    jitter = rng.uniform(1.0 - noise, 1.0 + noise, size=(hours, base.size)).T
    return np.asarray(np.maximum(floor, base[:, None] * cycle[None, :] * jitter), dtype=np.float64)
