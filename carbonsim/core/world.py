"""The scenario compiled into arrays and signals the simulator works with."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from carbonsim.config import ScenarioConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.service import ESTIMATE_STATS, ServiceProfile, profile
from carbonsim.core.signals import SECONDS_PER_HOUR, HourlySignal, synthetic_diurnal


@dataclass(frozen=True)
class World:
    """Static, numeric description of a scenario.

    Attributes:
        scenario: The scenario it was compiled from.
        rtt_ms: Round trip per origin and region in ms, shape (origins, regions).
        carbon: Intensity per region and hour in gCO2eq/kWh.
        price: Electricity price per region and hour in USD/kWh.
        profiles: Profiled service time per workload and hardware.
        pool_order: Per region and workload, pool indices from fastest to slowest (profiled mean).
        estimates: Per statistic, a tuple per workload of the estimate per region in ms (fastest pool).
        mix_service_ms: Per region, the profiled mean service time over the workload mix in ms.
    """

    scenario: ScenarioConfig
    rtt_ms: np.ndarray
    carbon: HourlySignal
    price: HourlySignal
    profiles: dict[tuple[int, str], ServiceProfile]
    pool_order: list[list[list[int]]]
    estimates: dict[str, list[tuple[float, ...]]]
    mix_service_ms: tuple[float, ...]

    @property
    def servers(self) -> tuple[float, ...]:
        """Servers per region (``inf`` if any pool is unlimited)."""
        out = []
        for region in self.scenario.regions:
            counts = [math.inf if p.count is None else float(p.count) for p in region.pools]
            out.append(float(sum(counts)))
        return tuple(out)


def carbon_signal(scenario: ScenarioConfig, seed: int, hours: int) -> HourlySignal:
    """Builds the scenario's carbon-intensity signal for ``hours`` hours.

    Regions in the same grid zone share one series (the noise is drawn per zone, zones in sorted order).
    """
    cfg = scenario.carbon
    zones = sorted({r.grid_zone for r in scenario.regions})
    base = np.array([cfg.base_gco2_per_kwh[z] for z in zones])
    per_zone = synthetic_diurnal(
        base, hours, rngmod.stream(seed, "carbon"), cfg.amplitude, cfg.phase_h, cfg.noise, cfg.floor_gco2_per_kwh
    )
    rows = [per_zone[zones.index(r.grid_zone)] for r in scenario.regions]
    return HourlySignal(np.vstack(rows), "carbon intensity (gCO2eq/kWh)")


def flat_price(scenario: ScenarioConfig, hours: int) -> HourlySignal:
    """The flat electricity price of each region, repeated for ``hours`` hours."""
    prices = np.array([r.price_usd_per_kwh for r in scenario.regions])
    return HourlySignal(np.repeat(prices[:, None], hours, axis=1), "electricity price (USD/kWh)", allow_negative=True)


def signal_hours(sim_hours: float, drain: bool, max_drain_hours: float) -> int:
    """Hours a run's signals must cover: the arrival window plus the drain bound."""
    return math.ceil(sim_hours + (max_drain_hours if drain else 0.0)) + 1


def compile_world(
    scenario: ScenarioConfig,
    seed: int,
    hours: int,
    carbon: HourlySignal | None = None,
    price: HourlySignal | None = None,
) -> World:
    """Compiles a scenario.

    Measured signals are loaded outside the core (``carbonsim.inputs``) and passed in here.

    Args:
        scenario: The scenario.
        seed: Root seed (carbon noise, profiling draws).
        hours: Hours the signals must cover.
        carbon: A carbon signal to use instead of the scenario's generator.
        price: A price signal (USD/kWh) to use instead of the regions' flat prices.

    Returns:
        The world.
    """
    regions = scenario.regions
    rtt = np.array([[o.rtt_ms[r.name] for r in regions] for o in scenario.origins], dtype=np.float64)
    if carbon is None:
        carbon = carbon_signal(scenario, seed, hours)
    if price is None:
        price = flat_price(scenario, hours)
    for signal in (carbon, price):
        if signal.values.shape[0] != len(regions) or signal.hours < hours:
            raise ValueError(
                f"{signal.name}: expected {len(regions)} regions x >= {hours} hours, got "
                f"{signal.values.shape[0]} x {signal.hours}"
            )
    hardware = sorted({p.hardware for r in regions for p in r.pools})
    profiles: dict[tuple[int, str], ServiceProfile] = {}
    for w, wl in enumerate(scenario.workloads):
        for hw in hardware:
            profiles[(w, hw)] = profile(wl.service[hw], rngmod.stream(seed, f"profile/{wl.name}/{hw}"))

    def fastest_first(region: int, workload: int) -> list[int]:
        pools = regions[region].pools
        return sorted(range(len(pools)), key=lambda p: profiles[(workload, pools[p].hardware)].mean_ms)

    pool_order = [[fastest_first(ri, w) for w in range(len(scenario.workloads))] for ri in range(len(regions))]
    estimates: dict[str, list[tuple[float, ...]]] = {}
    for stat in ESTIMATE_STATS:
        estimates[stat] = [
            tuple(
                profiles[(w, regions[ri].pools[pool_order[ri][w][0]].hardware)].stat(stat) for ri in range(len(regions))
            )
            for w in range(len(scenario.workloads))
        ]
    shares = [wl.share for wl in scenario.workloads]
    mix = tuple(sum(s * estimates["mean"][w][ri] for w, s in enumerate(shares)) for ri in range(len(regions)))
    return World(scenario, rtt, carbon, price, profiles, pool_order, estimates, mix)


__all__ = ["SECONDS_PER_HOUR", "World", "carbon_signal", "compile_world", "flat_price", "signal_hours"]
