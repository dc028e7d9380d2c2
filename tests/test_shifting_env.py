"""carbonsim/Shifting-v0: checkers, the return equals the run's totals, determinism, the same run as the CLI's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from carbonsim.analysis import jobs as job_metrics  # noqa: E402
from carbonsim.config import BatchPolicyConfig  # noqa: E402
from carbonsim.envs import SHIFTING_ID  # noqa: E402
from carbonsim.envs.shifting import ShiftingEnv, unflatten  # noqa: E402
from carbonsim.learn.shifting_config import ShiftingEnvConfig  # noqa: E402
from carbonsim.learn.shifting_features import PAIR_FEATURES  # noqa: E402
from carbonsim.runner import prepare, simulate_policy  # noqa: E402

#: A quarter of an hour of TPC-H DAG jobs, one every 90 s on average (about 10 jobs, a few hundred epochs).
SMALL = ShiftingEnvConfig(
    episode_hours=0.25, max_items=16, overrides=("scenario.batch.generator.mean_interarrival_s=90",)
)


def agnostic(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Every item runs where its job runs, else at home (what ``carbon_agnostic`` decides)."""
    pairs = unflatten(obs, 3)["pairs"]
    where = np.where(pairs[:, :, 1].any(axis=1), pairs[:, :, 1].argmax(axis=1), pairs[:, :, 0].argmax(axis=1))
    return np.where(obs["item_mask"] > 0, 1 + where, 0).astype(np.int64)


def shifting(obs: dict[str, np.ndarray]) -> np.ndarray:
    """Defers while the home region is above its 6-hour forecast mean; every third item moves to region 1."""
    o = unflatten(obs, 3)
    home = o["pairs"][:, :, 0].argmax(axis=1)
    dirty = o["regions"][home, 0] > o["regions"][home, 1]
    choice = np.where(dirty, 0, 1 + home)
    choice[::3] = 2
    return np.where(obs["item_mask"] > 0, choice, 0).astype(np.int64)


def rollout(env: ShiftingEnv, act, **reset) -> tuple[float, list[float], list[dict[str, np.ndarray]]]:  # type: ignore[no-untyped-def]
    obs, _ = env.reset(**reset)
    rewards, seen = [], [obs]
    while True:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        rewards.append(reward)
        seen.append(obs)
        assert not truncated
        if terminated:
            return float(sum(rewards)), rewards, seen


@pytest.fixture(scope="module")
def env() -> ShiftingEnv:
    return ShiftingEnv(SMALL)


def test_registered_and_spaces(env: ShiftingEnv) -> None:
    made = gym.make(SHIFTING_ID, config=SMALL)
    assert isinstance(made.unwrapped, ShiftingEnv)
    assert env.action_space.nvec.tolist() == [4] * 16
    assert env.observation_space["pairs"].shape == (16 * 3 * PAIR_FEATURES,)


def test_gymnasium_and_sb3_checkers() -> None:
    from gymnasium.utils.env_checker import check_env

    env = ShiftingEnv(SMALL)
    check_env(env, skip_render_check=True)
    sb3 = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3.check_env(ShiftingEnv(SMALL), warn=True)


def test_return_equals_weighted_totals_of_the_job_table(env: ShiftingEnv) -> None:
    weights = (2.0, 3.0, 5.0)
    ret, rewards, _ = rollout(env, shifting, seed=3, options={"weights": weights})
    result = env.result
    assert result is not None and len(rewards) == result.batch_epochs
    df = job_metrics.job_table(result)
    carbon_kg = df["carbon_g"].sum() / 1e3
    cost_usd = df["cost_usd"].sum()
    ok = df["status"] != "failed"
    end = np.where(df["status"] == "completed", df["end_s"], result.end_s)
    lateness_h = np.maximum(end - df["deadline_s"], 0.0)[ok].sum() / 3600.0
    assert carbon_kg > 0 and cost_usd > 0
    assert ret == pytest.approx(-(2.0 * carbon_kg + 3.0 * lateness_h + 5.0 * cost_usd), rel=1e-9)
    assert env.totals["lateness_h"] == pytest.approx(lateness_h, rel=1e-9, abs=1e-12)
    assert env.totals["energy_kwh"] == pytest.approx(df["energy_kwh"].sum(), rel=1e-9)


def test_lateness_is_charged_when_the_clusters_are_small() -> None:
    """Clusters of 20 CPUs: jobs queue past their deadlines and the reward says so."""
    small = [f"scenario.regions.{r}.batch_cpus=20" for r in range(3)]
    env = ShiftingEnv(dataclasses.replace(SMALL, episode_hours=0.1, overrides=(*SMALL.overrides, *small)))
    ret, _, _ = rollout(env, agnostic, seed=3, options={"weights": (0.0, 1.0, 0.0)})
    assert env.totals["lateness_h"] > 0
    assert ret == pytest.approx(-env.totals["lateness_h"])


def test_same_seed_same_episode() -> None:
    a, b = ShiftingEnv(SMALL), ShiftingEnv(SMALL)
    _, rewards_a, obs_a = rollout(a, shifting, seed=11)
    _, rewards_b, obs_b = rollout(b, shifting, seed=11)
    assert rewards_a == rewards_b and a.weights == b.weights and a.episode_seed == b.episode_seed
    assert all(all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(obs_a, obs_b, strict=True))


def test_an_episode_is_the_cli_run_of_the_same_decisions(env: ShiftingEnv) -> None:
    """Driving the env with carbon_agnostic's decisions gives carbon_agnostic's run, record for record."""
    rollout(env, agnostic, seed=5)
    result = env.result
    assert result is not None and env.episode_config_ is not None
    cfg = dataclasses.replace(env.episode_config_, batch_policy=BatchPolicyConfig(name="carbon_agnostic"))
    world, requests, jobs = prepare(cfg)
    out = simulate_policy(cfg, cfg.policy, world, requests, jobs=jobs)
    ours = job_metrics.job_table(result)
    assert out.jobs is not None and len(out.jobs) == len(ours) > 10
    for col in ("status", "region", "start_s", "end_s", "carbon_g", "cost_usd"):
        assert ours[col].tolist() == out.jobs[col].tolist(), col
    assert env.forced == 0


def test_weights_are_observed_and_validated(env: ShiftingEnv) -> None:
    obs, info = env.reset(seed=1, options={"weights": (1.0, 0.0, 4.0)})
    assert obs["globals"][:3].tolist() == pytest.approx([0.1, 0.0, 0.4])
    assert info["weights"] == (1.0, 0.0, 4.0)
    obs, _ = env.reset(seed=2)
    assert sum(env.weights) == pytest.approx(SMALL.weight_scale)
    with pytest.raises(Exception, match="weights"):
        env.reset(seed=2, options={"weights": (1.0, -1.0, 0.0)})
    env.reset(seed=2)
    with pytest.raises(ValueError, match="action"):
        env.step(np.full(16, 9))


def test_pair_features_say_whether_waiting_can_pay() -> None:
    """Per item and region: what waiting for the cleanest forecast hour within the slack saves, in [0, 1]."""
    gpu = ShiftingEnv(ShiftingEnvConfig(scenario="gpu_training", episode_hours=2.0, max_items=16, max_drain_hours=72))
    _, _, seen = rollout(gpu, lambda obs: np.zeros(16, dtype=np.int64), seed=4)  # defer all (the guard starts them)
    checked = 0
    for obs in seen[:-1]:
        o = unflatten(obs, 3)
        real = obs["item_mask"] > 0
        pairs = o["pairs"][real]
        saving, cleaner = pairs[:, :, 2], pairs[:, :, 3]
        assert ((saving >= 0) & (saving <= 1) & (cleaner >= 0) & (cleaner <= 1)).all()
        # Some hour of the window is cleaner than now exactly when waiting for the cleanest one saves.
        np.testing.assert_array_equal(saving > 0, cleaner > 0)
        # An item with less than an hour of slack cannot wait: nothing to save anywhere.
        urgent = o["items"][real][:, 3] < np.tanh(1.0 / 0.5)
        assert not saving[urgent].any()
        checked += int(real.sum())
    assert checked > 20
    assert any((unflatten(o, 3)["pairs"][:, :, 2] > 0.05).any() for o in seen)  # deferring pays somewhere
