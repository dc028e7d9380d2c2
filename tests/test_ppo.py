"""PPO training, the exported policy, safe checkpoints and ``policy=ppo``."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_env import toy_run

pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

from carbonsim import ConfigError, load_config, run  # noqa: E402
from carbonsim.envs.routing import RoutingEnv  # noqa: E402
from carbonsim.learn import checkpoint as ckpt  # noqa: E402
from carbonsim.learn.config import EvalWindow, PPOConfig, RoutingEnvConfig, TrainConfig  # noqa: E402
from carbonsim.learn.ppo import load_train_state, make_model, make_vec_env, train  # noqa: E402
from carbonsim.policies import policy_config  # noqa: E402
from carbonsim.runner import prepare, simulate_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOY_PPO = PPOConfig(total_timesteps=4096, n_envs=1, n_steps=256, batch_size=64, n_epochs=5, learning_rate=1e-3)


def toy_train_config(**kw) -> TrainConfig:
    env = RoutingEnvConfig(episode_hours=0.02, max_drain_hours=0.1)
    return TrainConfig(seed=0, env=env, ppo=TOY_PPO, **kw)


@pytest.fixture(scope="module")
def toy_trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy_ppo")
    windows = (EvalWindow(start_utc="2023-01-02T00:00:00Z", hours=0.02),)
    cfg = toy_train_config(
        eval_windows=windows,
        eval_every_steps=2048,
        checkpoint_every_steps=2048,
        eval_policies=({"name": "latency_first"}, {"name": "constrained_hybrid"}),
    )
    result = train(cfg, out, run=toy_run(), log=lambda _line: None)
    return cfg, out, result


def clean_share(policy_file: Path, seed: int) -> float:
    cfg = dataclasses.replace(toy_run(), sim_hours=0.05, seed=seed, baseline="")
    world, requests, _jobs = prepare(cfg)
    out = simulate_policy(cfg, policy_config({"name": "ppo", "checkpoint": str(policy_file)}), world, requests)
    by_region = out.per_region.set_index("region")["requests"]
    return float(by_region["clean"] / by_region.sum())


def test_trained_agent_picks_the_obviously_best_region(toy_trained):
    # Both regions are 10 ms away with the same servers and far inside the SLO; one is 10x cleaner.
    _cfg, _out, result = toy_trained
    for seed in (11, 12):
        assert clean_share(result["policy"], seed) > 0.9


def test_untrained_agent_does_not_already_pick_it():
    # The >90 % above comes from training: PPO's initial policy is close to uniform over the two regions.
    cfg = toy_train_config()
    model = make_model(cfg, make_vec_env(cfg, toy_run()), None)
    env = RoutingEnv(cfg.env, run=toy_run())
    obs, _ = env.reset(seed=0)
    actions = [int(model.predict(obs, deterministic=False)[0]) for _ in range(400)]
    assert 0.3 < np.mean(actions) < 0.7


def test_training_writes_checkpoints_logs_and_the_evaluation_table(toy_trained):
    _cfg, out, result = toy_trained
    assert result["trained_steps"] == 4096
    for name in ("policy.npz", "train_state.pt", "eval_history.csv", "evaluation.csv", "evaluation.md"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.is_dir()) == ["step_2048", "step_4096"]
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))
    history = (out / "eval_history.csv").read_text().splitlines()
    assert history[0].startswith("step,") and "best_heuristic_penalty" in history[0]
    assert [line.split(",")[0] for line in history[1:]] == ["2048", "4096"]
    table = result["evaluation"]
    assert set(table["policy"]) == {"ppo", "latency_first", "constrained_hybrid"}
    ppo_row = table.set_index("policy").loc["ppo"]
    lf_row = table.set_index("policy").loc["latency_first"]
    # latency_first routes to the first region on ties (the dirty one); the agent learned the clean one.
    assert ppo_row["carbon_kg"] < lf_row["carbon_kg"]


def test_exported_network_acts_like_the_stable_baselines3_model(toy_trained, tmp_path):
    cfg, out, _result = toy_trained
    model = make_model(cfg, make_vec_env(cfg, toy_run()), None)
    load_train_state(model, out / "train_state.pt")
    network = ckpt.load(out / "policy.npz")
    env = RoutingEnv(cfg.env, run=toy_run(rate_per_s=80.0))
    obs, _ = env.reset(seed=7)
    rng = np.random.default_rng(0)
    for _ in range(300):
        want = int(model.predict(obs, deterministic=True)[0])
        assert network.act(obs) == want
        with torch.no_grad():
            logits = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0]).distribution.logits
        # Categorical logits are normalised (log-probabilities): compare up to that shift.
        mine = network.logits(obs)
        assert mine - mine.max() == pytest.approx((logits - logits.max()).numpy()[0], abs=1e-4)
        obs, _r, done, _t, _i = env.step(int(rng.integers(2)))
        if done:
            obs, _ = env.reset(seed=8)


def test_resume_continues_from_the_saved_state(toy_trained, tmp_path):
    cfg, out, _result = toy_trained
    resumed = dataclasses.replace(
        cfg, resume=str(out / "checkpoints" / "step_2048" / "train_state.pt"), eval_windows=(), checkpoint_every_steps=0
    )
    result = train(resumed, tmp_path, run=toy_run(), log=lambda _line: None)
    assert result["steps_this_session"] == 2048
    assert result["trained_steps"] == 4096
    assert clean_share(result["policy"], 11) > 0.9


def test_training_state_loading_refuses_arbitrary_objects(tmp_path, toy_trained):
    cfg, _out, _result = toy_trained
    model = make_model(cfg, make_vec_env(cfg, toy_run()), None)
    evil = tmp_path / "evil.pt"
    torch.save({"policy": _Evil(), "optimizer": {}, "num_timesteps": 1}, evil)
    with pytest.raises(pickle.UnpicklingError):
        load_train_state(model, evil)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(FileNotFoundError, match="resume"):
        load_train_state(model, tmp_path / "missing.pt")


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("pwned"),))


def test_checkpoint_loading_is_safe_and_validated(tmp_path, toy_trained):
    _cfg, out, _result = toy_trained
    good = ckpt.load(out / "policy.npz")
    assert good.meta["regions"] == ["dirty", "clean"] and good.n_actions == 2
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, header=np.array([{"format": ckpt.FORMAT}], dtype=object))
    with pytest.raises(ckpt.CheckpointError, match="pickled"):
        ckpt.load(pickled)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, header=np.array('{"format": "other"}'))
    with pytest.raises(ckpt.CheckpointError, match="format"):
        ckpt.load(wrong)
    broken = dataclasses.replace(good, weights=(good.weights[0], good.weights[1][:, :3], good.weights[2]))
    ckpt.save(tmp_path / "broken.npz", broken)
    with pytest.raises(ckpt.CheckpointError, match="layer1"):
        ckpt.load(tmp_path / "broken.npz")
    with pytest.raises(ckpt.CheckpointError, match="no such"):
        ckpt.load(tmp_path / "missing.npz")


def test_policy_ppo_needs_a_checkpoint_that_fits_the_scenario(toy_trained):
    _cfg, out, _result = toy_trained
    with pytest.raises(ConfigError, match=r"policy\.checkpoint"):
        run(load_config(["policy=ppo", "sim_hours=0.01"]))
    with pytest.raises(ConfigError, match=r"policy\.checkpoint: .*regions \['dirty', 'clean'\]"):
        run(load_config(["policy=ppo", f"policy.checkpoint={out / 'policy.npz'}", "sim_hours=0.01"]))


@pytest.fixture(scope="module")
def script_trained(tmp_path_factory):
    """experiments/train_ppo.py on the default scenario, a few hundred steps (the real script, via Hydra)."""
    out = tmp_path_factory.mktemp("script_ppo")
    cmd = [
        sys.executable,
        str(ROOT / "experiments" / "train_ppo.py"),
        f"out_dir={out}",
        f"hydra.run.dir={out / 'hydra'}",
        "ppo.total_timesteps=512",
        "ppo.n_steps=256",
        "ppo.batch_size=128",
        "ppo.n_epochs=1",
        "env.episode_hours=0.01",
        "eval_windows=[{start_utc: '2023-06-05T12:00:00Z', hours: 0.01}]",
        "eval_every_steps=0",
        "checkpoint_every_steps=0",
        "eval_policies=[{name: constrained_hybrid}]",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def test_train_script_produces_an_agent_the_cli_runs(script_trained):
    out, stdout = script_trained
    assert "policy=ppo policy.checkpoint=" in stdout
    table = (out / "evaluation.csv").read_text()
    assert "ppo" in table and "constrained_hybrid" in table
    cfg = load_config(["policy=ppo", f"policy.checkpoint={out / 'policy.npz'}", "sim_hours=0.02", "baseline="])
    result = run(cfg)
    assert result.summary["policy"] == "ppo"
    assert result.summary["requests"] == result.summary["completed"] > 0


def test_train_script_rejects_a_bad_configuration():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "train_ppo.py"), "ppo.n_envs=0"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert "n_envs" in proc.stderr


def test_shipped_training_config_validates_and_holds_out_its_evaluation_windows():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from carbonsim._hydra import config_dir, register_configs
    from carbonsim._schema import build
    from carbonsim.learn.config import parse_utc_hour

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = build(TrainConfig, OmegaConf.to_container(compose("train_ppo"), resolve=True), "")
    train_end = parse_utc_hour(cfg.env.window_end_utc, "window_end_utc")
    assert len(cfg.eval_windows) >= 3
    for window in cfg.eval_windows:
        assert parse_utc_hour(window.start_utc, "start_utc") >= train_end
    names = {p["name"] for p in cfg.eval_policies}
    assert {"constrained_hybrid", "hybrid"} <= names
