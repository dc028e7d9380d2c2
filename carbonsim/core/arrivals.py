"""Request streams: arrival times, origins, workloads and the per-request random demands.

Everything random about the requests is drawn here, vectorised, before the simulation starts. A policy
can therefore never change what arrives or how long a request takes on a given hardware.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import ArrivalConfig, ScenarioConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.service import sample_ms
from carbonsim.core.signals import SECONDS_PER_HOUR


@dataclass(frozen=True)
class Requests:
    """The requests of one run, column by column (index = request id, in arrival order).

    Attributes:
        arrival_s: Arrival time at the origin, seconds from the start, non-decreasing.
        origin: Origin index per request.
        workload: Workload index per request.
        jitter_ms: Network jitter added to the outbound trip, in ms (float32).
        service_ms: Single-request service time per hardware type, in ms.
    """

    arrival_s: np.ndarray
    origin: np.ndarray
    workload: np.ndarray
    jitter_ms: np.ndarray
    service_ms: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def nbytes(self) -> int:
        """Memory held by the columns in bytes."""
        return int(
            sum(a.nbytes for a in (self.arrival_s, self.origin, self.workload, self.jitter_ms))
            + sum(a.nbytes for a in self.service_ms.values())
        )


def hourly_multipliers(
    cfg: ArrivalConfig, n_hours: int, load_shape: np.ndarray | None = None, first_hour_of_day: int = 0
) -> np.ndarray:
    """Multiplier of the base rate for each simulated hour.

    Args:
        cfg: Arrival configuration.
        n_hours: Hours of the arrival window (a final partial hour counts).
        load_shape: The measured hourly load shape named by ``cfg.load_shape`` (loaded by the caller).
        first_hour_of_day: UTC hour of day of simulated hour 0 (``hourly_profile`` is indexed by UTC hour).

    Returns:
        float64 array of ``n_hours`` multipliers: ``hourly_profile`` repeated daily, the load shape
        divided by its mean over the window, or ones.

    Raises:
        ValueError: if a load shape is configured but not given.
        ConfigError: if the load shape is too short for the window, or zero over it.
    """
    if cfg.load_shape:
        if load_shape is None:
            raise ValueError(f"arrivals.load_shape: {cfg.load_shape!r} is configured but no shape was loaded")
        lo, hi = cfg.load_shape_offset_h, cfg.load_shape_offset_h + n_hours
        if hi > load_shape.size:
            raise ConfigError(  # the user's offset or horizon, not a bug: reported as bad input
                f"scenario.arrivals.load_shape_offset_h: {cfg.load_shape} has {load_shape.size} hours, the run needs"
                f" hours {lo}..{hi - 1}; lower load_shape_offset_h or shorten the run"
            )
        window = np.asarray(load_shape[lo:hi], dtype=np.float64)
        mean = float(window.mean())
        if not mean > 0:
            raise ConfigError(
                f"scenario.arrivals.load_shape_offset_h: {cfg.load_shape} is zero over hours {lo}..{hi - 1}"
            )
        return window / mean
    profile = np.asarray(cfg.hourly_profile, dtype=np.float64) if cfg.hourly_profile else np.ones(24)
    return profile[(first_hour_of_day + np.arange(n_hours)) % 24]


def arrival_times(
    cfg: ArrivalConfig,
    sim_hours: float,
    rng: np.random.Generator,
    load_shape: np.ndarray | None = None,
    replay_s: np.ndarray | None = None,
    first_hour_of_day: int = 0,
) -> np.ndarray:
    """Draws arrival times for an hourly piecewise-constant rate.

    For ``poisson`` the count in each hour (or the final partial hour) is Poisson with mean rate x
    multiplier x duration and the times are uniform within the hour, which is exactly a Poisson process
    whose rate is constant within each hour. ``fixed_per_hour`` uses the rounded mean as the count.
    ``replay`` time-scales the recorded arrivals ``replay_s`` to the peak rate (base rate x largest
    multiplier), tiles copies of it back to back over the window (one mean gap between copies), and keeps
    each arrival with probability multiplier(hour) / largest multiplier. Thinning a stream keeps its
    burstiness (its inter-arrival pattern) while giving each hour the configured mean rate.

    Args:
        cfg: Arrival configuration.
        sim_hours: Length of the arrival window in hours.
        rng: The arrivals stream.
        load_shape: Measured hourly load shape, when ``cfg.load_shape`` is set.
        replay_s: Recorded arrival times in seconds (non-decreasing, at least two), for ``replay``.
        first_hour_of_day: UTC hour of day of simulated hour 0 (aligns ``hourly_profile``).

    Returns:
        Sorted arrival times in seconds.
    """
    return _arrivals(cfg, sim_hours, rng, load_shape, replay_s, first_hour_of_day)[0]


def _arrivals(
    cfg: ArrivalConfig,
    sim_hours: float,
    rng: np.random.Generator,
    load_shape: np.ndarray | None,
    replay_s: np.ndarray | None,
    first_hour_of_day: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Arrival times (see :func:`arrival_times`) and, for ``replay``, the trace row each one copies."""
    n_hours = int(np.ceil(sim_hours))
    horizon_s = sim_hours * SECONDS_PER_HOUR
    starts = np.arange(n_hours) * SECONDS_PER_HOUR
    durations = np.minimum(SECONDS_PER_HOUR, horizon_s - starts)
    mult = hourly_multipliers(cfg, n_hours, load_shape, first_hour_of_day)
    if cfg.kind == "replay":
        if replay_s is None:
            raise ValueError(f"arrivals.trace: {cfg.trace!r} is configured but no trace was loaded")
        return _replay(cfg.rate_per_s, mult, horizon_s, np.asarray(replay_s, dtype=np.float64), rng)
    means = cfg.rate_per_s * mult * durations
    counts = rng.poisson(means) if cfg.kind == "poisson" else np.rint(means).astype(np.int64)
    offsets = rng.uniform(0.0, 1.0, int(counts.sum())) * np.repeat(durations, counts)
    times = np.repeat(starts, counts) + offsets
    # Uniform offsets within one hour stay within it, so a stable per-hour sort is a global sort.
    return np.sort(times, kind="stable"), None


def _replay(
    rate: float, mult: np.ndarray, horizon_s: float, trace_s: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if trace_s.size < 2 or not trace_s[-1] > trace_s[0]:
        raise ValueError("arrivals.trace: a replayed trace needs at least two distinct arrival times")
    peak = rate * float(mult.max()) if mult.size else 0.0
    if peak <= 0.0:
        return np.empty(0), np.empty(0, dtype=np.int64)
    offsets = trace_s - trace_s[0]
    span = float(offsets[-1])
    n = offsets.size
    # The trace's own mean rate and the period of back-to-back copies (one mean gap between copies).
    trace_rate = (n - 1) / span
    period = span * n / (n - 1)
    scale = trace_rate / peak
    copies = int(np.ceil(horizon_s / (period * scale)))
    times = (offsets[None, :] * scale + (np.arange(copies) * period * scale)[:, None]).ravel()
    rows = np.tile(np.arange(n, dtype=np.int64), copies)
    inside = times < horizon_s
    times, rows = times[inside], rows[inside]
    keep = mult[(times // SECONDS_PER_HOUR).astype(np.int64)] / mult.max()
    kept = rng.uniform(0.0, 1.0, times.size) < keep
    return np.asarray(times[kept], dtype=np.float64), rows[kept]


def _index_dtype(n: int) -> type[np.signedinteger]:
    return np.int8 if n <= 127 else np.int16


def draw_requests(
    scenario: ScenarioConfig,
    seed: int,
    sim_hours: float,
    load_shape: np.ndarray | None = None,
    replay_s: np.ndarray | None = None,
    replay_workload: np.ndarray | None = None,
) -> Requests:
    """Draws the full request stream of a run from the scenario's arrival process.

    Args:
        scenario: The scenario.
        seed: Root seed.
        sim_hours: Arrival window in hours.
        load_shape: Measured hourly load shape, when the scenario names one (loaded by the caller).
        replay_s: Recorded arrival times in seconds, for ``replay`` arrivals (loaded by the caller).
        replay_workload: Workload index of each recorded arrival, when the trace says which model each
            request asked for: every replayed copy keeps it (no workload is drawn).

    Returns:
        The requests.
    """
    rng = rngmod.stream(seed, "arrivals")
    # hourly_profile is per UTC hour of day: a run starting at 06:00 UTC begins at profile entry 6.
    first_hour = (
        datetime.datetime.fromisoformat(scenario.start_utc.replace("Z", "+00:00")).hour if scenario.start_utc else 0
    )
    times, rows = _arrivals(scenario.arrivals, sim_hours, rng, load_shape, replay_s, first_hour)
    origin_p = np.array([o.share for o in scenario.origins])
    workload_p = np.array([w.share for w in scenario.workloads])
    origins = rng.choice(len(origin_p), size=times.size, p=origin_p / origin_p.sum())
    if replay_workload is not None:
        if rows is None:
            raise ValueError("replay_workload: given for arrivals that are not a replayed trace")
        workloads = np.asarray(replay_workload, dtype=np.int64)[rows]
    else:
        workloads = rng.choice(len(workload_p), size=times.size, p=workload_p / workload_p.sum())
    return from_trace(scenario, seed, times, origins, workloads)


def from_trace(
    scenario: ScenarioConfig,
    seed: int,
    arrival_s: np.ndarray,
    origin: np.ndarray,
    workload: np.ndarray,
) -> Requests:
    """Builds the request stream from recorded arrivals, drawing only service times and jitter.

    This is the replay interface: a loader turns a recorded trace into arrays of arrival times, origin
    indices and workload indices and passes them here.

    Args:
        scenario: The scenario (for service-time models and jitter).
        seed: Root seed (service and network streams).
        arrival_s: Arrival times in seconds, non-decreasing, >= 0.
        origin: Origin index per request.
        workload: Workload index per request.

    Returns:
        The requests.

    Raises:
        ValueError: naming the first offending row if the arrays disagree in length, times decrease or
            are negative, or an index is out of range.
    """
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    n = arrival_s.size
    for name, arr in (("origin", origin), ("workload", workload)):
        if np.asarray(arr).shape != (n,):
            raise ValueError(f"{name}: expected {n} entries (one per arrival), got shape {np.asarray(arr).shape}")
    if n:
        bad = np.flatnonzero(~np.isfinite(arrival_s) | (arrival_s < 0))
        if bad.size:
            raise ValueError(f"arrival_s: row {bad[0]}: expected a finite time >= 0 s, got {arrival_s[bad[0]]}")
        dec = np.flatnonzero(np.diff(arrival_s) < 0)
        if dec.size:
            i = dec[0] + 1
            raise ValueError(
                f"arrival_s: row {i}: time {arrival_s[i]} s is before the previous row's "
                f"{arrival_s[i - 1]} s; arrivals must be in time order"
            )
    for name, arr, size in (("origin", origin, len(scenario.origins)), ("workload", workload, len(scenario.workloads))):
        a = np.asarray(arr)
        bad = np.flatnonzero((a < 0) | (a >= size))
        if bad.size:
            raise ValueError(f"{name}: row {bad[0]}: index {a[bad[0]]} is out of range 0..{size - 1}")
    origin = np.asarray(origin).astype(_index_dtype(len(scenario.origins)))
    workload = np.asarray(workload).astype(_index_dtype(len(scenario.workloads)))

    network = rngmod.stream(seed, "network")
    # float32: jitter is a few ms, so 7 significant digits are far below any timing that matters, and
    # the column costs 4 bytes per request instead of 8.
    if scenario.jitter_std_ms > 0:
        jitter = np.maximum(0.0, network.normal(0.0, scenario.jitter_std_ms, n)).astype(np.float32)
    else:
        jitter = np.zeros(n, dtype=np.float32)
    service: dict[str, np.ndarray] = {}
    hardware = sorted({p.hardware for r in scenario.regions for p in r.pools})
    for hw in hardware:
        rng = rngmod.stream(seed, f"service/{hw}")
        out = np.empty(n)
        for w, wl in enumerate(scenario.workloads):
            idx = np.flatnonzero(workload == w)
            out[idx] = sample_ms(wl.service[hw], rng, idx.size)
        service[hw] = out
    return Requests(arrival_s, origin, workload, jitter, service)
