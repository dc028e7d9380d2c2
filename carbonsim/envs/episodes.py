"""What the Gymnasium environments share: the run configuration of an episode."""

from __future__ import annotations

import dataclasses
import datetime

from carbonsim.config import PolicyConfig, RunConfig


def episode_run_config(
    base: RunConfig,
    window_start: datetime.datetime | None,
    start_hour: int,
    seed: int,
    episode_hours: float,
    drain: bool,
    max_drain_hours: float,
) -> RunConfig:
    """The run configuration of an episode starting ``start_hour`` hours into the window.

    Args:
        base: The environment's run configuration.
        window_start: Start of the episode window (UTC), or None to keep the scenario's start.
        start_hour: Whole hours after ``window_start`` at which the episode starts.
        seed: The episode's seed.
        episode_hours: Arrival window of an episode, in hours.
        drain: Whether the run drains after its arrival window.
        max_drain_hours: Longest drain, in hours.
    """
    scenario = base.scenario
    if window_start is not None:
        start = window_start + datetime.timedelta(hours=start_hour)
        scenario = dataclasses.replace(scenario, start_utc=start.strftime("%Y-%m-%dT%H:00:00Z"))
    return dataclasses.replace(
        base,
        scenario=scenario,
        policy=PolicyConfig(name="latency_first"),
        seed=seed,
        sim_hours=episode_hours,
        drain=drain,
        max_drain_hours=max_drain_hours,
        experiment=None,
    )
