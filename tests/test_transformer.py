"""The transformer scheduler: tokens, the pointer network, safe checkpoints, imitation, PPO fine-tuning,
continuous learning and ``policy=transformer``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import make_scenario, origin, pool, probe, region, service, workload
from test_env import toy_run

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("stable_baselines3")

from carbonsim import ConfigError, PolicyConfig, RunConfig, load_config, run  # noqa: E402
from carbonsim.analysis import metrics  # noqa: E402
from carbonsim.core.simulation import Simulation  # noqa: E402
from carbonsim.envs.routing import RoutingEnv  # noqa: E402
from carbonsim.learn import imitation  # noqa: E402
from carbonsim.learn import transformer as tf  # noqa: E402
from carbonsim.learn.config import (  # noqa: E402
    CompareConfig,
    DriftConfig,
    EvalWindow,
    FeatureConfig,
    ImitationConfig,
    OnlineConfig,
    PPOConfig,
    RewardConfig,
    RoutingEnvConfig,
    TrainTransformerConfig,
    TransformerConfig,
)
from carbonsim.learn.tokens import FIXED_TOKENS, TokenBuilder, token_width  # noqa: E402
from carbonsim.learn.transformer_policy import TransformerPolicy, TransformerPolicyConfig  # noqa: E402
from carbonsim.runner import prepare, simulate_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SMALL = TransformerConfig(hidden_size=32, layers=1, heads=2, ffn_size=64)


def tokens_of(n_regions: int, seed: int = 0, width: int | None = None) -> np.ndarray:
    width = width or token_width(SMALL.features)
    return np.random.default_rng(seed).uniform(-1, 1, (FIXED_TOKENS + n_regions, width)).astype(np.float32)


# -- the network -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_regions", [1, 2, 5, 17])
def test_one_network_scores_any_number_of_regions(n_regions):
    model = tf.build_model(SMALL, seed=0)
    logits, defer, value = model(torch.from_numpy(tokens_of(n_regions))[None])
    assert logits.shape == (1, n_regions) and defer.shape == (1,) and value.shape == (1,)


def test_regions_are_a_set_permuting_them_permutes_the_scores():
    model = tf.build_model(SMALL, seed=0)
    x = tokens_of(6, seed=3)
    perm = np.array([4, 0, 5, 2, 1, 3])
    y = x.copy()
    y[FIXED_TOKENS:] = x[FIXED_TOKENS:][perm]
    np.testing.assert_allclose(model.region_logits(y), model.region_logits(x)[perm], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_regions", [2, 6, 11])
def test_the_fast_decision_path_computes_the_transformers_forward(n_regions):
    model = tf.build_model(TransformerConfig(), seed=1)
    x = tokens_of(n_regions, seed=n_regions, width=model.width)
    with torch.inference_mode():
        reference = model(torch.from_numpy(x)[None])[0][0].numpy()
    np.testing.assert_allclose(model.region_logits(x), reference, rtol=1e-5, atol=1e-5)


def test_initialisation_is_seeded_and_leaves_torchs_global_random_state_alone():
    state = torch.random.get_rng_state()
    a, b, c = (tf.build_model(SMALL, seed=s) for s in (7, 7, 8))
    assert torch.equal(torch.random.get_rng_state(), state)
    x = tokens_of(3)
    assert np.array_equal(a.region_logits(x), b.region_logits(x))
    assert not np.array_equal(a.region_logits(x), c.region_logits(x))


def test_the_pretrained_minilm_encoder_loads_offline_from_its_package():
    try:
        tf.minilm_archive()
    except ImportError as exc:
        pytest.skip(str(exc))
    bert, state = tf.minilm_weights()
    assert (bert.hidden_size, bert.num_hidden_layers, bert.num_attention_heads) == (384, 6, 12)
    model = tf.build_model(TransformerConfig(backbone="minilm"), seed=0)
    # The encoder holds the published weights, untouched (only the word embeddings are left out).
    for name in ("encoder.layer.0.attention.self.query.weight", "embeddings.position_embeddings.weight"):
        assert torch.equal(model.encoder.state_dict()[name], state[name])
    x = tokens_of(4, width=model.width)
    with torch.inference_mode():
        reference = model(torch.from_numpy(x)[None])[0][0].numpy()
    np.testing.assert_allclose(model.region_logits(x), reference, rtol=1e-4, atol=1e-4)


# -- checkpoints -------------------------------------------------------------------------------------------


def test_a_saved_and_loaded_checkpoint_decides_identically(tmp_path):
    model = tf.build_model(SMALL, seed=2)
    path = tf.save(tmp_path / "net.safetensors", model, {"note": "test"})
    loaded, header = tf.load(path)
    assert header["note"] == "test" and loaded.config == SMALL
    for n in (2, 6):
        x = tokens_of(n, seed=n)
        assert np.array_equal(loaded.region_logits(x), model.region_logits(x))
    # Whole runs: the same routing, request by request.
    cfg = dataclasses.replace(toy_run(), sim_hours=0.02, seed=4, baseline="")
    world, requests, _ = prepare(cfg)
    regions = []
    for _ in range(2):
        pcfg = TransformerPolicyConfig(checkpoint=str(path))
        out = simulate_policy(cfg, pcfg, world, requests)
        regions.append(out.requests["region"].to_numpy())
    assert np.array_equal(regions[0], regions[1])


def test_checkpoints_are_validated_and_never_unpickled(tmp_path):
    bad = tmp_path / "pickled.safetensors"
    bad.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(tf.CheckpointError, match="not a safetensors checkpoint"):
        tf.load(bad)
    with pytest.raises(tf.CheckpointError, match="no such checkpoint"):
        tf.load(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    model = tf.build_model(SMALL, seed=0)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp_path / "no_header.safetensors")
    with pytest.raises(tf.CheckpointError, match="no carbonsim header"):
        tf.load(tmp_path / "no_header.safetensors")
    good = tf.save(tmp_path / "good.safetensors", model)
    header = json.dumps({"format": tf.FORMAT, "version": 99})
    save_file(state, tmp_path / "version.safetensors", metadata={"carbonsim": header})
    with pytest.raises(tf.CheckpointError, match="version 99"):
        tf.load(tmp_path / "version.safetensors")
    from safetensors import safe_open

    with safe_open(str(good), "pt") as f:
        metadata = f.metadata()
    state["score.weight"] = torch.full_like(state["score.weight"], float("nan"))
    save_file(state, tmp_path / "nan.safetensors", metadata=metadata)
    with pytest.raises(tf.CheckpointError, match="non-finite"):
        tf.load(tmp_path / "nan.safetensors")
    del state["score.weight"]
    save_file(state, tmp_path / "missing_tensor.safetensors", metadata=metadata)
    with pytest.raises(tf.CheckpointError, match="missing"):
        tf.load(tmp_path / "missing_tensor.safetensors")


def test_policy_transformer_needs_a_readable_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match=r"policy\.checkpoint: expected the path"):
        TransformerPolicy(TransformerPolicyConfig())
    with pytest.raises(ConfigError, match="no such checkpoint"):
        TransformerPolicy(TransformerPolicyConfig(checkpoint=str(tmp_path / "nope.safetensors")))
    with pytest.raises(ConfigError, match="torch_threads"):
        TransformerPolicyConfig(torch_threads=-1)
    with pytest.raises(ConfigError, match="update_every_h"):
        OnlineConfig(update_every_h=0.0)


# -- routing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_regions", [2, 3, 7])
def test_the_policy_routes_over_any_region_set(n_regions, tmp_path):
    path = tf.save(tmp_path / "net.safetensors", tf.build_model(SMALL, seed=0))
    policy = TransformerPolicy(TransformerPolicyConfig(checkpoint=str(path)))
    rng = np.random.default_rng(n_regions)
    choices, tokens = probe(
        [policy],
        rtt_ms=rng.uniform(5, 80, n_regions).tolist(),
        intensity=rng.uniform(20, 700, n_regions).tolist(),
        inspect=lambda view: policy._builder.build(view),
    )
    assert 0 <= choices[0] < n_regions
    assert tokens.shape == (FIXED_TOKENS + n_regions, token_width(SMALL.features))
    assert np.isfinite(tokens).all() and (np.abs(tokens) <= 1.0).all()


def test_tokens_carry_what_the_decision_depends_on():
    # Region 1 is cleaner, region 0 is nearer and has a queue: the tokens say so, in bounded values.
    builder_tokens = probe(
        [],
        rtt_ms=[10.0, 60.0],
        intensity=[600.0, 60.0],
        queue_length=[3, 0],
        busy=[1, 0],
        inspect=lambda view: TokenBuilder(view.context, FeatureConfig(forecast_hours=2, layout="tokens")).build(view),
    )[1]
    r0, r1 = builder_tokens[FIXED_TOKENS], builder_tokens[FIXED_TOKENS + 1]
    assert r0[0] > r1[0]  # intensity now
    assert r0[4] < r1[4] or r0[5] < r1[5]  # price or round trip differ in the right direction
    rtt_col, queue_col, busy_col = 5, 6, 7
    assert r0[rtt_col] < r1[rtt_col] and r0[queue_col] > r1[queue_col] == 0.0 and r0[busy_col] == 1.0


def test_every_request_is_accounted_for_with_the_real_data_scenario(tmp_path):
    path = tf.save(tmp_path / "net.safetensors", tf.build_model(TransformerConfig(), seed=0))
    cfg = load_config(["policy=transformer", f"policy.checkpoint={path}", "sim_hours=0.01", "seed=2"])
    s = run(cfg).summary
    assert s["requests"] > 0 and s["requests"] == s["completed"] + s["rejected"] + s["failed"] + s["in_flight"]


# -- imitation ---------------------------------------------------------------------------------------------


def three_region_run() -> RunConfig:
    """Three regions 10-30 ms away with few servers: the teacher (constrained_hybrid) must weigh queues."""
    names = ["a", "b", "c"]
    sc = make_scenario(
        regions=[region(n, f"Z{i}", pools=[pool(count=2)]) for i, n in enumerate(names)],
        workloads=[
            workload("small", slo_ms=60.0, share=0.7, services={"gpu": service("exponential", 8.0)}),
            workload("large", slo_ms=120.0, share=0.3, services={"gpu": service("exponential", 25.0)}),
        ],
        origins=[
            origin("o0", 0.5, {"a": 10.0, "b": 30.0, "c": 20.0}),
            origin("o1", 0.5, {"a": 30.0, "b": 10.0, "c": 20.0}),
        ],
        base={"Z0": 400.0, "Z1": 100.0, "Z2": 250.0},
        arrivals={"kind": "poisson", "rate_per_s": 120.0},
    )
    return RunConfig(scenario=sc, policy=PolicyConfig("latency_first"))


def test_imitation_on_a_toy_problem_agrees_with_its_teacher():
    run_cfg = three_region_run()
    env = RoutingEnvConfig(episode_hours=0.05, max_drain_hours=0.5)
    rng = np.random.default_rng(0)
    features = SMALL.features
    train_windows = [(EvalWindow("2023-01-02T00:00:00Z", 0.05), seed) for seed in (1, 2)]
    demos = imitation.collect(
        run_cfg, env, {"name": "constrained_hybrid"}, train_windows, features, 1.0, rng, log=lambda _: None
    )
    assert len(set(demos.actions.tolist())) == 3  # the teacher uses every region: not a constant to copy
    model = tf.build_model(SMALL, seed=0)
    cfg = ImitationConfig(epochs=6, batch_size=128, learning_rate=3e-3)
    history = imitation.fit(
        model, demos, imitation.Demonstrations(demos.tokens[:0], demos.actions[:0]), cfg, rng, log=lambda _: None
    )
    assert history[-1]["loss"] < history[0]["loss"]
    # Agreement on fresh arrivals (a seed not trained on), decision by decision, in a real run.
    fresh = imitation.collect(
        run_cfg,
        env,
        {"name": "constrained_hybrid"},
        [(EvalWindow("2023-01-02T00:00:00Z", 0.05), 9)],
        features,
        1.0,
        np.random.default_rng(1),
        log=lambda _: None,
    )
    assert imitation.agreement(model, fresh) > 0.95


# -- PPO fine-tuning ---------------------------------------------------------------------------------------


def test_ppo_fine_tunes_the_transformer_through_stable_baselines3(tmp_path):
    from carbonsim.learn.train_transformer import train

    env = RoutingEnvConfig(episode_hours=0.02, max_drain_hours=0.1, features=SMALL.features)
    cfg = TrainTransformerConfig(
        seed=0,
        model=SMALL,
        imitation=ImitationConfig(windows=0),
        env=env,
        ppo=PPOConfig(total_timesteps=256, n_envs=1, n_steps=128, batch_size=64, n_epochs=2, learning_rate=1e-3),
    )
    before = tf.build_model(SMALL, seed=0)
    result = train(cfg, tmp_path, run=toy_run(), log=lambda _: None)
    after, header = tf.load(result["checkpoint"])
    assert header["ppo_steps"] == 256
    x = tokens_of(2)
    assert not np.allclose(after.region_logits(x), before.region_logits(x))
    assert (tmp_path / "tensorboard").is_dir()


def test_the_environment_offers_token_observations():
    env = RoutingEnv(
        RoutingEnvConfig(episode_hours=0.01, max_drain_hours=0.1, features=FeatureConfig(layout="tokens")),
        run=toy_run(),
    )
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (FIXED_TOKENS + 2, token_width(FeatureConfig()))
    from gymnasium.utils.env_checker import check_env

    check_env(env, skip_render_check=True)


def test_train_script_writes_a_checkpoint_the_cli_runs(tmp_path):
    out = tmp_path / "trained"
    args = [
        sys.executable,
        str(ROOT / "experiments" / "train_transformer.py"),
        f"out_dir={out}",
        "model.hidden_size=16",
        "model.layers=1",
        "model.heads=2",
        "model.ffn_size=32",
        "imitation.windows=1",
        "imitation.epochs=1",
        "imitation.keep_fraction=0.5",
        "env.episode_hours=0.01",
        "ppo.total_timesteps=64",
        "ppo.n_envs=1",
        "ppo.n_steps=64",
        "ppo.batch_size=32",
        "ppo.n_epochs=1",
        "eval_windows=[{start_utc: '2023-06-05T12:00:00Z', hours: 0.01}]",
        "eval_policies=[{name: constrained_hybrid}]",
    ]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("imitation.safetensors", "transformer.safetensors", "imitation_history.csv", "evaluation.md"):
        assert (out / name).is_file(), name
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonsim",
            "policy=transformer",
            f"policy.checkpoint={out / 'transformer.safetensors'}",
            "sim_hours=0.005",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    bad = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train_transformer.py"), "model.backbone=gpt5"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert bad.returncode == 2 and "backbone" in bad.stderr


# -- continuous learning -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dirty_network(tmp_path_factory) -> Path:
    """A network that imitated latency_first on the toy: with equal round trips it routes to region 0, the dirty one."""
    model = tf.build_model(SMALL, seed=5)
    rng = np.random.default_rng(0)
    env = RoutingEnvConfig(episode_hours=0.02, max_drain_hours=0.1)
    windows = [(EvalWindow("2023-01-02T00:00:00Z", 0.02), 1)]
    demos = imitation.collect(toy_run(), env, {"name": "latency_first"}, windows, SMALL.features, 1.0, rng, log=print)
    empty = imitation.Demonstrations(demos.tokens[:0], demos.actions[:0])
    imitation.fit(model, demos, empty, ImitationConfig(epochs=3, batch_size=128, learning_rate=3e-3), rng, log=print)
    return tf.save(tmp_path_factory.mktemp("dirty") / "net.safetensors", model)


def toy_policy(checkpoint: Path, online: bool) -> TransformerPolicy:
    cfg = TransformerPolicyConfig(
        checkpoint=str(checkpoint),
        online=OnlineConfig(enabled=online, update_every_h=0.05, learning_rate=3e-3, epochs=4, batch_size=128),
    )
    return TransformerPolicy(cfg)


def run_with(policy: TransformerPolicy, seed: int, hours: float = 0.05) -> dict:
    cfg = dataclasses.replace(toy_run(), sim_hours=hours, seed=seed, baseline="", planning_interval_min=1.0)
    world, requests, _ = prepare(cfg)
    sim = Simulation(
        world, requests, policy, seed=seed, horizon_s=hours * 3600.0, max_drain_s=3600.0, planning_interval_s=60.0
    )
    result = sim.run()
    energy = metrics.energy_account(result)
    df = metrics.request_table(result, energy)
    s = metrics.summary(df, energy, result)
    s["clean_share"] = float((df["region"] == "clean").mean())
    s.update(result.policy_stats)
    return s


def test_continuous_learning_moves_the_policy_towards_the_cleaner_region(dirty_network):
    # Two regions, same distance and servers, far inside the SLO; one is ten times cleaner. A network that
    # starts out routing to the dirty one, learning only from its own outcomes, moves to the clean one.
    policy = toy_policy(dirty_network, online=True)
    shares = [run_with(policy, seed)["clean_share"] for seed in (1, 2, 3, 4)]
    stats = policy.stats()
    assert stats["online_updates"] >= 3 and stats["online_samples"] > 0
    assert shares[-1] > shares[0] + 0.2, shares
    frozen = toy_policy(dirty_network, online=False)
    frozen_shares = [run_with(frozen, seed)["clean_share"] for seed in (1, 4)]
    assert frozen.stats() == {}
    assert shares[-1] > frozen_shares[-1] + 0.2


def test_a_learning_run_keeps_its_books_and_is_reproducible(dirty_network):
    a = run_with(toy_policy(dirty_network, online=True), seed=3)
    b = run_with(toy_policy(dirty_network, online=True), seed=3)
    assert a == b
    assert a["requests"] == a["completed"] + a["rejected"] + a["failed"] + a["in_flight"]
    assert a["online_decisions"] == a["requests"]
    used = a["online_samples"] + a["online_discarded"] + a["online_unresolved"] + a["online_waiting"]
    assert used == a["online_decisions"]


def test_the_learner_accounts_for_every_decision_across_runs(dirty_network):
    # Overloaded runs that stop without draining leave decisions without outcomes (given up when the next run
    # starts); a small sample budget discards some of those with outcomes.
    cfg = TransformerPolicyConfig(
        checkpoint=str(dirty_network),
        online=OnlineConfig(enabled=True, update_every_h=0.01, max_samples=50, epochs=1, batch_size=32),
    )
    policy = TransformerPolicy(cfg)
    for seed in (1, 2):
        run = dataclasses.replace(toy_run(rate_per_s=200.0, count=1), sim_hours=0.02, seed=seed, baseline="")
        world, requests, _ = prepare(run)
        Simulation(world, requests, policy, seed=seed, horizon_s=72.0, drain=False, planning_interval_s=18.0).run()
    stats = policy.stats()
    assert stats["online_discarded"] > 0 and stats["online_unresolved"] > 0
    used = stats["online_samples"] + stats["online_discarded"] + stats["online_unresolved"] + stats["online_waiting"]
    assert used == stats["online_decisions"]


def test_the_policy_reads_only_outcomes_of_requests_already_routed(dirty_network):
    policy = toy_policy(dirty_network, online=False)
    cfg = dataclasses.replace(toy_run(), sim_hours=0.01, seed=1, baseline="")
    world, requests, _ = prepare(cfg)
    sim = Simulation(world, requests, policy, seed=1, horizon_s=36.0)
    sim.start()
    sim.env.run(until=5.0)
    outcomes = sim.context.outcomes
    assert outcomes is not None
    routed = int((sim.records.region >= 0).sum())
    known = outcomes.read(np.arange(routed))
    assert (known.latency_ms[known.finished] > 0).all()
    with pytest.raises(ValueError, match="has not been routed yet"):
        outcomes.read(np.array([routed]))


def test_reward_weights_decide_what_the_learner_optimises():
    with pytest.raises(ConfigError, match="carbon_per_kg"):
        RewardConfig(carbon_per_kg=-1.0)


# -- the drift and comparison experiments -------------------------------------------------------------------


def test_drift_windows_cover_the_years_every_hour_of_day_and_the_added_region():
    cfg = DriftConfig(
        checkpoint="x",
        start_utc="2023-01-02T00:00:00Z",
        end_utc="2023-03-01T00:00:00Z",
        every_days=7,
        region_added_utc="2023-02-01T00:00:00Z",
    )
    windows = cfg.windows()
    assert windows[0] == ("2023-01-02T00:00:00Z", False)
    assert windows[1] == ("2023-01-09T07:00:00Z", False)
    assert [added for _, added in windows] == [False] * 5 + [True] * 4
    assert windows[-1][0] < "2023-03-01"
    with pytest.raises(ConfigError, match="checkpoint"):
        DriftConfig()
    with pytest.raises(ConfigError, match="end_utc"):
        DriftConfig(checkpoint="x", end_utc="2022-01-01T00:00:00Z")


def test_drift_deploys_one_learning_and_one_frozen_copy_through_a_region_addition(tmp_path):
    from carbonsim.analysis import timeline
    from carbonsim.learn.drift import FROZEN, LEARNING, run_drift, summarise_drift

    path = tf.save(tmp_path / "net.safetensors", tf.build_model(SMALL, seed=0))
    cfg = DriftConfig(
        checkpoint=str(path),
        start_utc="2023-12-25T00:00:00Z",
        end_utc="2024-01-09T00:00:00Z",
        every_days=7,
        window_hours=0.005,
        online=OnlineConfig(enabled=True, update_every_h=0.002),
        references=({"name": "constrained_hybrid"},),
    )
    table = run_drift(cfg, log=lambda _: None)
    assert list(table["regions"].unique()) == [6, 7]
    assert set(table["policy"]) == {LEARNING, FROZEN, "constrained_hybrid"}
    learning = table[table["policy"] == LEARNING]
    assert learning["policy_online_updates"].is_monotonic_increasing and learning["policy_online_updates"].iloc[-1] > 0
    assert (table.loc[table["regions"] == 6, "new_region_share"] == 0).all()
    summary = summarise_drift(table)
    assert set(summary["period"]) == {"2023-H2", "2024-H1"}
    png = timeline.save(timeline.fig_drift(table, cfg.region_added_utc), tmp_path / "figures", "drift")
    assert png.stat().st_size > 10_000 and (tmp_path / "figures" / "drift.pdf").is_file()


def test_the_comparison_runs_each_policy_apart_and_says_why_one_cannot_run(tmp_path):
    from carbonsim.learn import checkpoint as ckpt
    from carbonsim.learn.comparison import BOUND, compare, summarise

    sc = load_config([]).scenario
    ppo = ckpt.save(tmp_path / "ppo.npz", ckpt.random_policy(list(sc.region_names), list(sc.workload_names)))
    cfg = CompareConfig(
        scenarios=("default", "us"),
        windows=(EvalWindow("2023-03-14T09:00:00Z", 0.005),),
        policies=({"name": "ppo", "checkpoint": str(ppo), "label": "PPO"}, {"name": "constrained_hybrid"}),
    )
    table = compare(cfg, log=lambda _: None)
    means = summarise(table).set_index(["scenario", "policy"])
    assert "trained for regions" in means.loc[("us", "PPO"), "not_run"]
    assert np.isfinite(means.loc[("default", "PPO"), "carbon_kg"])
    for scenario in ("default", "us"):
        assert means.loc[(scenario, BOUND), "carbon_kg"] <= means.loc[(scenario, "constrained_hybrid"), "carbon_kg"]
        assert means.loc[(scenario, "constrained_hybrid"), "peak_rss_mb"] > 50
