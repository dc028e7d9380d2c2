"""The Gymnasium routing environment: API checks, determinism, the reward-return invariant, and that it
is the CLI's simulator (same decisions, same records)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from helpers import make_scenario, origin, pool, region, service, workload

gym = pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

from gymnasium.utils.env_checker import check_env as gym_check_env  # noqa: E402
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402

import carbonsim  # noqa: E402,F401  (registers the environment)
from carbonsim import ConfigError, PolicyConfig, RunConfig, load_config  # noqa: E402
from carbonsim.analysis import metrics  # noqa: E402
from carbonsim.core.simulation import Simulation  # noqa: E402
from carbonsim.envs import ROUTING_ID  # noqa: E402
from carbonsim.envs.routing import RoutingEnv, penalty  # noqa: E402
from carbonsim.learn.config import FeatureConfig, RewardConfig, RoutingEnvConfig  # noqa: E402
from carbonsim.learn.evaluation import weighted_penalty  # noqa: E402
from carbonsim.policies import make_policy, policy_config  # noqa: E402
from carbonsim.runner import prepare  # noqa: E402

REWARD = RewardConfig(carbon_per_kg=2e5, sla_per_s=3.0, cost_per_usd=5e4, unserved_s=0.5)


def toy_run(rate_per_s: float = 20.0, max_queue_length: int | None = None, count: int = 2) -> RunConfig:
    """Two regions 10 ms away: ``dirty`` (500 g/kWh) and ``clean`` (50 g/kWh), exponential 20 ms service."""
    extra = {} if max_queue_length is None else {"max_queue_length": max_queue_length}
    sc = make_scenario(
        regions=[
            region("dirty", "Z0", pools=[pool(count=count)], **extra),
            region("clean", "Z1", pools=[pool(count=count)], **extra),
        ],
        workloads=[workload(slo_ms=200.0, services={"gpu": service("exponential", 20.0)})],
        origins=[origin(rtt_ms={"dirty": 10.0, "clean": 10.0})],
        base={"Z0": 500.0, "Z1": 50.0},
        arrivals={"kind": "poisson", "rate_per_s": rate_per_s},
    )
    return RunConfig(scenario=sc, policy=PolicyConfig("latency_first"))


def toy_env(hours: float = 0.01, reward: RewardConfig = REWARD, **run_kw: float) -> RoutingEnv:
    cfg = RoutingEnvConfig(episode_hours=hours, max_drain_hours=0.5, reward=reward)
    return RoutingEnv(cfg, run=toy_run(**run_kw))


def rollout(env: RoutingEnv, seed: int, actions_seed: int) -> tuple[list[np.ndarray], list[float], list[dict]]:
    rng = np.random.default_rng(actions_seed)
    obs, info = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        done = terminated or truncated
    return observations, rewards, infos


def summary_of(env: RoutingEnv) -> dict:
    result = env.result
    assert result is not None
    energy = metrics.energy_account(result)
    return metrics.summary(metrics.request_table(result, energy), energy, result)


def test_importing_carbonsim_registers_the_environment():
    assert ROUTING_ID == "carbonsim/Routing-v0"
    assert ROUTING_ID in gym.registry
    env = gym.make(ROUTING_ID, config=RoutingEnvConfig(episode_hours=0.002), run=toy_run())
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.close()


def test_gymnasium_env_checker_passes():
    env = gym.make(ROUTING_ID, config=RoutingEnvConfig(episode_hours=0.005, reward=REWARD), run=toy_run())
    gym_check_env(env.unwrapped)


def test_stable_baselines3_env_checker_passes():
    sb3_check_env(toy_env(hours=0.005), warn=True)


def test_same_seed_same_actions_same_rollout():
    a = rollout(toy_env(), seed=3, actions_seed=1)
    b = rollout(toy_env(), seed=3, actions_seed=1)
    assert len(a[0]) == len(b[0]) > 10
    for x, y in zip(a[0], b[0], strict=True):
        assert x.tobytes() == y.tobytes()
    assert a[1] == b[1]
    assert [i["sim_time_s"] for i in a[2]] == [i["sim_time_s"] for i in b[2]]
    other = rollout(toy_env(), seed=4, actions_seed=1)
    assert [i["sim_time_s"] for i in other[2]] != [i["sim_time_s"] for i in a[2]]


@pytest.mark.parametrize("max_queue_length", [None, 2])
def test_return_equals_minus_weighted_totals_of_the_episode(max_queue_length):
    # A queue limit under heavy load makes the episode drop requests, which the penalty also covers.
    env = toy_env(rate_per_s=150.0, max_queue_length=max_queue_length)
    _obs, rewards, _infos = rollout(env, seed=0, actions_seed=0)
    s = summary_of(env)
    assert (s["rejected"] > 0) == (max_queue_length is not None)
    assert s["requests"] == len(rewards)
    expected = -(
        REWARD.carbon_per_kg * s["carbon_kg"]
        + REWARD.sla_per_s * (s["slo_excess_s"] + REWARD.unserved_s * (s["rejected"] + s["failed"]))
        + REWARD.cost_per_usd * s["electricity_cost_usd"]
    )
    assert s["slo_excess_s"] > 0
    assert sum(rewards) == pytest.approx(expected, rel=1e-9)
    assert sum(rewards) == pytest.approx(-weighted_penalty(s, REWARD), rel=1e-9)
    totals = env.totals
    assert totals["carbon_g"] == pytest.approx(s["carbon_kg"] * 1e3, rel=1e-9)
    assert totals["energy_kwh"] == pytest.approx(s["energy_kwh"], rel=1e-9)
    assert totals["completed"] == s["completed"]
    assert totals["unserved"] == s["rejected"]


def test_return_invariant_on_the_real_data_scenario():
    # Measured signals, several pools, dynamic batching, jitter: the default scenario, a 36 s episode.
    env = RoutingEnv(RoutingEnvConfig(episode_hours=0.01, max_drain_hours=0.5, reward=REWARD))
    _obs, rewards, _infos = rollout(env, seed=1, actions_seed=2)
    s = summary_of(env)
    assert s["requests"] == len(rewards) > 1000
    assert sum(rewards) == pytest.approx(-weighted_penalty(s, REWARD), rel=1e-9)


def test_an_undrained_episode_credits_running_services_up_to_the_stop():
    env = RoutingEnv(
        RoutingEnvConfig(episode_hours=0.01, drain=False, reward=REWARD), run=toy_run(rate_per_s=150.0, count=1)
    )
    _obs, rewards, _infos = rollout(env, seed=0, actions_seed=0)
    s = summary_of(env)
    assert s["in_flight"] > 0
    assert sum(rewards) == pytest.approx(-weighted_penalty(s, REWARD), rel=1e-9)


def test_lateness_is_penalised_while_requests_wait():
    # One server, 150 requests/s of 20 ms work: the queue grows, deadlines pass before services end, and
    # the SLA penalty arrives with the steps during which it accrues, not only at completions.
    env = toy_env(rate_per_s=150.0, count=1)
    _obs, _rewards, infos = rollout(env, seed=0, actions_seed=0)
    accruing = [i for i in infos[1:] if i["completed"] == 0 and i["slo_excess_s"] > 0]
    assert len(accruing) > 10
    assert all(i["slo_excess_s"] >= 0 for i in infos[1:])
    s = summary_of(env)
    assert sum(i["slo_excess_s"] for i in infos[1:]) == pytest.approx(s["slo_excess_s"], rel=1e-9)


def test_reward_weights_can_change_during_an_episode():
    env = toy_env()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    other = RewardConfig(carbon_per_kg=1.0, sla_per_s=100.0, cost_per_usd=0.0, unserved_s=0.0)
    total, expected, steps, done = 0.0, 0.0, 0, False
    while not done:
        if steps == 20:
            env.set_reward(other)
        _obs, reward, done, _trunc, info = env.step(int(rng.integers(2)))
        credit = dataclasses.replace(_credit_of(info))
        expected -= penalty(credit, REWARD if steps < 20 else other)
        total += reward
        steps += 1
    assert steps > 20
    assert total == pytest.approx(expected, rel=1e-12)


def _credit_of(info: dict):
    from carbonsim.core.ledger import Credit

    return Credit(**{f.name: info[f.name] for f in dataclasses.fields(Credit)})


def test_weights_in_the_observation_follow_the_reward():
    cfg = RoutingEnvConfig(episode_hours=0.005, features=FeatureConfig(observe_weights=True), reward=REWARD)
    env = RoutingEnv(cfg, run=toy_run())
    obs, _ = env.reset(seed=0)
    assert obs[-4:] == pytest.approx([x / (x + 1) for x in (2e5, 3.0, 5e4, 0.5)], rel=1e-6)
    env.set_reward(RewardConfig(carbon_per_kg=0.0, sla_per_s=1.0, cost_per_usd=0.0, unserved_s=1.0))
    obs, *_ = env.step(0)
    assert obs[-4:].tolist() == [0.0, 0.5, 0.0, 0.5]


def test_the_environment_is_the_cli_simulator():
    """Driven by constrained_hybrid's own choices, an episode reproduces the CLI run's records exactly."""
    env = RoutingEnv(RoutingEnvConfig(episode_hours=0.01, max_drain_hours=0.5))
    env.reset(seed=5)
    sim = env.sim
    assert sim is not None
    chooser = make_policy(policy_config({"name": "constrained_hybrid"}))
    chooser.reset(sim.context)
    done = False
    while not done:
        _obs, _r, done, _t, _i = env.step(chooser.decide(sim.view))
    mine = env.result
    cfg = env.episode_config(0, env.episode_seed)
    world, requests, _jobs = prepare(cfg)
    cli = Simulation(
        world,
        requests,
        make_policy(policy_config({"name": "constrained_hybrid"})),
        seed=cfg.seed,
        horizon_s=cfg.sim_hours * 3600.0,
        max_drain_s=cfg.max_drain_hours * 3600.0,
    ).run()
    assert mine is not None and mine.end_s == cli.end_s
    for column in ("region", "pool", "status", "batch_size", "start_s", "end_s"):
        assert np.array_equal(getattr(mine.records, column), getattr(cli.records, column), equal_nan=True), column


def test_episodes_start_inside_the_configured_window():
    cfg = RoutingEnvConfig(
        episode_hours=0.005, window_start_utc="2022-03-01T00:00:00Z", window_end_utc="2022-03-03T00:00:00Z"
    )
    env = RoutingEnv(cfg)
    starts = set()
    for seed in range(4):
        env.reset(seed=seed)
        starts.add(env.episode_start_utc)
        assert "2022-03-01T00:00:00Z" <= env.episode_start_utc < "2022-03-03T00:00:00Z"
    assert len(starts) > 1
    env.reset(seed=0, options={"start_hour": 47})
    assert env.episode_start_utc == "2022-03-02T23:00:00Z"
    with pytest.raises(ValueError, match="start_hour"):
        env.reset(seed=0, options={"start_hour": 48})


def test_bad_actions_and_configurations_are_refused():
    env = toy_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (2, -1, 0.5):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    with pytest.raises(ConfigError, match="window_end_utc"):
        RoutingEnvConfig(
            episode_hours=48.0, window_start_utc="2022-03-01T00:00:00Z", window_end_utc="2022-03-02T00:00:00Z"
        )
    with pytest.raises(ConfigError, match="window_start_utc"):
        RoutingEnvConfig(window_start_utc="2022-03-01T00:30:00Z", window_end_utc="2022-03-02T00:00:00Z")
    with pytest.raises(ConfigError, match="carbon_per_kg"):
        RewardConfig(carbon_per_kg=-1.0)
    with pytest.raises(ConfigError, match=r"batch\.trace"):
        RoutingEnv(RoutingEnvConfig(), run=load_config(["scenario=batch_us"]))
