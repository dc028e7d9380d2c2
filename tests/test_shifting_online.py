"""The learned shifting scheduler learning during the run (``batch_policy.online``): updates change the network,
the rewards are the run's own account, the same seed gives the same run, and the frozen policy is untouched."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import carbonsim  # noqa: E402
from carbonsim._schema import ConfigError  # noqa: E402
from carbonsim.analysis import jobs as job_metrics  # noqa: E402
from carbonsim.config import RunConfig  # noqa: E402
from carbonsim.learn import shifting_model as sm  # noqa: E402
from carbonsim.learn.shifting_config import ShiftingOnlineConfig  # noqa: E402
from carbonsim.learn.shifting_online import mixture  # noqa: E402
from carbonsim.learn.shifting_policy import LearnedShifting, LearnedShiftingConfig  # noqa: E402
from carbonsim.learn.shifting_train import totals  # noqa: E402
from carbonsim.policies import make_policy  # noqa: E402
from carbonsim.runner import make_simulation, prepare  # noqa: E402

TINY = sm.ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32)
WEIGHTS = (2.0, 3.0, 5.0)
#: Updates every 3 simulated minutes: a quarter of an hour of arrivals and its drain make a few.
FAST = ShiftingOnlineConfig(enabled=True, update_every_h=0.05, epochs=2, batch_size=16, learning_rate=1e-3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run() -> RunConfig:
    """A quarter of an hour of TPC-H DAG jobs, one every 90 s on average (as the environment's tests)."""
    return carbonsim.load_config(
        ["scenario=dag_tpch", "sim_hours=0.25", "scenario.batch.generator.mean_interarrival_s=90", "seed=3"]
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("online")
    return sm.save(folder / "shifting.npz", sm.build(TINY, seed=0), {"selected_weights": list(WEIGHTS)})


def simulate(run: RunConfig, policy: LearnedShifting) -> Any:
    world, requests, jobs = prepare(run)
    sim = make_simulation(run, world, requests, make_policy(run.policy), run.seed, jobs=jobs, batch_policy=policy)
    return sim, sim.run()


def learning(checkpoint: Path, online: ShiftingOnlineConfig = FAST) -> LearnedShifting:
    return LearnedShifting(LearnedShiftingConfig(checkpoint=str(checkpoint), online=online))


def parameters(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def learned(run: RunConfig, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    """One learning run (module-wide: several tests read it)."""
    saved = tmp_path_factory.mktemp("saved") / "online.npz"
    policy = learning(checkpoint, dataclasses.replace(FAST, save_to=str(saved)))
    _, result = simulate(run, policy)
    return policy, result, saved


def test_updates_change_the_network_and_the_decisions_network(learned: tuple[Any, Any, Path], checkpoint: Path) -> None:
    policy, result, saved = learned
    stats = policy.stats()
    assert stats["online_updates"] >= 2
    assert 0 < stats["online_samples"] <= stats["online_epochs"] <= result.batch_epochs
    assert stats["online_discarded"] == 0
    before = parameters(sm.load(checkpoint)[0])
    after = parameters(policy.learner.net)
    assert before.keys() == after.keys()
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    # The decisions follow the updated network: its NumPy snapshot has the torch network's current logits.
    from helpers import shifting_inputs

    inputs = shifting_inputs(7, 3, 0)
    assert np.allclose(policy.model.decide(*inputs)[0], policy.learner.net.decide(*inputs)[0], atol=1e-4)
    # save_to holds the network as of the last update.
    written, header = sm.load(saved)
    assert header["online_updates"] == stats["online_updates"]
    assert all(np.array_equal(v, after[k]) for k, v in parameters(written).items())


def test_rewards_sum_to_minus_the_weighted_totals_of_the_job_table(learned: tuple[Any, Any, Path]) -> None:
    policy, result, _ = learned
    t = totals(result)
    alpha, beta, gamma = WEIGHTS
    assert t["carbon_kg"] > 0 and t["cost_usd"] > 0
    expected = -(alpha * t["carbon_kg"] + beta * t["lateness_h"] + gamma * t["cost_usd"])
    rewards = policy.learner.run_rewards()
    assert len(rewards) == policy.stats()["online_epochs"]
    assert sum(rewards) == pytest.approx(expected, rel=1e-9)
    assert policy.stats()["online_return"] == pytest.approx(expected, rel=1e-9)
    assert policy.stats()["online_mean_reward"] == pytest.approx(expected / len(rewards), rel=1e-9)


def test_same_seed_same_run_byte_for_byte(run: RunConfig, checkpoint: Path, learned: tuple[Any, Any, Path]) -> None:
    policy, result, _ = learned
    again = learning(checkpoint, dataclasses.replace(FAST, save_to=""))
    _, result2 = simulate(run, again)
    a, b = job_metrics.job_table(result), job_metrics.job_table(result2)
    assert a.to_csv(index=False) == b.to_csv(index=False)
    assert policy.stats() == again.stats()
    after, after2 = parameters(policy.learner.net), parameters(again.learner.net)
    assert all(np.array_equal(after[k], after2[k]) for k in after)


@pytest.mark.parametrize("explore", ["stay", "all"])
def test_behaviour_log_probabilities_are_the_mixture_the_update_improves(
    run: RunConfig, checkpoint: Path, explore: str
) -> None:
    """Before any update the torch network gives the recorded log-probabilities: PPO's ratios start at 1."""
    online = dataclasses.replace(FAST, update_every_h=1e3, epsilon=0.2, explore=explore)
    policy = learning(checkpoint, online)
    short = dataclasses.replace(run, sim_hours=0.05, drain=False)
    simulate(short, policy)
    learner = policy.learner
    assert learner.updates == 0
    learner.start_run()  # closes the last epoch
    epochs = learner._done[:20]
    t = learner._tensors(epochs)
    with torch.no_grad():
        logits, _, _ = learner.net(t["items"], t["mask"], t["pairs"], t["regions"], t["globals"])
    for i, e in enumerate(epochs):
        k = e.actions.size
        p = mixture(logits[i, :k].numpy().astype(np.float64), 0.2, e.explore)
        assert np.allclose(np.log(p[np.arange(k), e.actions]), e.logp, atol=1e-4)
        assert (e.explore.sum(axis=1) == (2 if explore == "stay" else e.explore.shape[1])).all()
    # The update's log-probabilities (torch, log space) are the same mixture.
    with torch.no_grad():
        got = learner.log_probs(logits, t["explore"], t["actions"])
    assert torch.allclose(got * t["mask"], t["logp"] * t["mask"], atol=1e-4)


def test_frozen_policy_is_unchanged_and_never_reads_the_account(run: RunConfig, checkpoint: Path) -> None:
    """Online settings are inert while ``enabled`` is false: same decisions, no learner, no account made."""
    short = dataclasses.replace(run, sim_hours=0.1)
    frozen = LearnedShifting(LearnedShiftingConfig(checkpoint=str(checkpoint)))
    inert = LearnedShifting(
        LearnedShiftingConfig(checkpoint=str(checkpoint), online=dataclasses.replace(FAST, enabled=False, epsilon=0.5))
    )
    sim, a = simulate(short, frozen)
    _, b = simulate(short, inert)
    assert job_metrics.job_table(a).to_csv(index=False) == job_metrics.job_table(b).to_csv(index=False)
    assert frozen.learner is None and frozen.stats() == {"deadline_forced": frozen.stats()["deadline_forced"]}
    assert sim.batch._accrual is None


def test_learning_continues_across_runs(run: RunConfig, checkpoint: Path) -> None:
    """The same instance over two runs: the first run's last epoch is closed there, the second run counts anew."""
    short = dataclasses.replace(run, sim_hours=0.1, drain=False)
    policy = learning(checkpoint, dataclasses.replace(FAST, update_every_h=0.02))
    simulate(short, policy)
    first = policy.stats()
    _, result = simulate(short, policy)
    second = policy.stats()
    assert second["online_updates"] > first["online_updates"] >= 1
    assert second["online_epochs"] == first["online_epochs"] + len(policy.learner.run_rewards())
    t = totals(result)
    alpha, beta, gamma = WEIGHTS
    expected = -(alpha * t["carbon_kg"] + beta * t["lateness_h"] + gamma * t["cost_usd"])
    assert second["online_return"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epsilon=1.0", r"^batch_policy\.online\.epsilon: expected a fraction in \[0, 1\), got 1\.0$"),
        ("update_every_h=0", r"^batch_policy\.online\.update_every_h: expected a positive number, got 0\.0$"),
        ("epochs=0", r"^batch_policy\.online\.epochs: expected an integer >= 1, got 0$"),
        ("gamma=1.5", r"^batch_policy\.online\.gamma: expected a discount in \(0, 1\], got 1\.5$"),
        ("gae_lambda=-1", r"^batch_policy\.online\.gae_lambda: expected a number in \[0, 1\], got -1\.0$"),
        ("clip_range=-0.1", r"^batch_policy\.online\.clip_range: expected a positive number, got -0\.1$"),
        ("explore=feasible", r"^batch_policy\.online\.explore: expected stay or all, got 'feasible'$"),
        ("save_to=net.pt", r"^batch_policy\.online\.save_to: expected the path of a \.npz file \(or empty\), got"),
    ],
)
def test_bad_online_values_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        carbonsim.load_config(["scenario=dag_tpch", "batch_policy=learned_shifting", f"batch_policy.online.{override}"])


def test_learning_needs_a_torch_network_and_torch(
    checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = sm.to_numpy(sm.build(TINY, seed=0))
    with pytest.raises(ConfigError, match=r"^batch_policy\.online\.enabled: learning needs the torch network"):
        LearnedShifting(LearnedShiftingConfig(online=FAST), model=net)
    with pytest.raises(ConfigError, match=r"^batch_policy\.checkpoint: expected the path"):
        LearnedShifting(LearnedShiftingConfig(online=FAST))
    with pytest.raises(ConfigError, match=r"^batch_policy\.checkpoint: .*missing\.npz"):
        learning(tmp_path / "missing.npz")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(
        ConfigError, match=r"^batch_policy\.online\.enabled: learning during the run needs torch"
    ) as exc:
        learning(checkpoint)
    assert "\n" not in str(exc.value)
    # Frozen, the same checkpoint runs without torch.
    assert LearnedShifting(LearnedShiftingConfig(checkpoint=str(checkpoint))).learner is None


def test_given_torch_network_is_copied_not_changed(run: RunConfig) -> None:
    net = sm.build(TINY, seed=1)
    before = parameters(net)
    policy = LearnedShifting(LearnedShiftingConfig(weights=WEIGHTS, online=FAST), model=net)
    simulate(dataclasses.replace(run, sim_hours=0.1, drain=False), policy)
    assert policy.stats()["online_updates"] >= 1
    assert all(np.array_equal(v, before[k]) for k, v in parameters(net).items())
    assert math.isfinite(policy.stats()["online_mean_reward"])


def test_evaluation_carries_a_learning_group_through_the_windows(checkpoint: Path) -> None:
    """shifting_eval.evaluate(online=...): the learning members keep their network from one window to the next."""
    from carbonsim.learn.shifting_eval import evaluate

    starts = ("2024-02-05T00:00:00Z", "2024-05-06T12:00:00Z")
    models = {"frozen": [str(checkpoint)], "online": [str(checkpoint)]}
    with pytest.raises(ConfigError, match=r"^online: expected the label of a model group \(frozen, online\), got 'x'"):
        evaluate(models, ["dag_tpch"], starts, online={"x": FAST}, log=False)
    df = evaluate(models, ["dag_tpch"], starts, dag_hours=0.1, baselines=(), online={"online": FAST}, log=False)
    learned = df[df["policy"] == "online"]
    assert len(learned) == 2 and learned["online_updates"].is_monotonic_increasing
    assert learned["online_updates"].iloc[1] > learned["online_updates"].iloc[0] >= 1
    assert df.loc[df["policy"] == "frozen", "online_updates"].isna().all()
