"""Training the transformer scheduler: imitation of a teacher, PPO fine-tuning, held-out evaluation.

:func:`train` is what ``experiments/train_transformer.py`` runs (extras ``rl`` and ``llm``). Files written
into the output folder:

* ``imitation.safetensors``: the network after imitation; ``imitation_history.csv``: loss and agreement
  with the teacher per epoch (training and validation decisions);
* ``transformer.safetensors``: the final network (after PPO fine-tuning, if any): what
  ``python -m carbonsim policy=transformer policy.checkpoint=PATH`` reads;
* ``tensorboard/``: SB3's fine-tuning curves;
* ``evaluation_by_window.csv``, ``evaluation.csv`` / ``.md``: the held-out comparison;
* ``training.json``: sizes, steps and wall times.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from carbonsim._hydra import load_config
from carbonsim.analysis import tables
from carbonsim.config import RunConfig
from carbonsim.learn import imitation
from carbonsim.learn import transformer as tf
from carbonsim.learn.config import TrainTransformerConfig
from carbonsim.learn.evaluation import evaluate, summarise
from carbonsim.learn.ppo import ppo_arguments, vec_envs
from carbonsim.learn.sb3_transformer import TransformerActorCritic
from carbonsim.runner import write_json, write_text


def env_config(cfg: TrainTransformerConfig) -> Any:
    """The fine-tuning environment's configuration: the configured one, with the network's token features."""
    return dataclasses.replace(cfg.env, features=cfg.model.features)


def make_vec_env(cfg: TrainTransformerConfig, run: RunConfig) -> VecEnv:
    """``ppo.n_envs`` environments with token observations, environment k seeded with ``seed + k``."""
    return vec_envs(env_config(cfg), run, cfg.ppo, cfg.seed)


def fine_tune(
    model: tf.PointerTransformer, cfg: TrainTransformerConfig, run: RunConfig, tensorboard: Path | None
) -> tuple[int, float]:
    """PPO in the routing environment, updating ``model`` in place; returns (steps, wall seconds)."""
    vec = make_vec_env(cfg, run)
    agent = PPO(
        TransformerActorCritic,
        vec,
        policy_kwargs={"transformer": model},
        **ppo_arguments(cfg.ppo, cfg.seed, tensorboard),
    )
    t0 = time.perf_counter()
    agent.learn(cfg.ppo.total_timesteps, tb_log_name="ppo")
    wall_s = time.perf_counter() - t0
    vec.close()
    model.eval()
    return int(agent.num_timesteps), wall_s


def train(
    cfg: TrainTransformerConfig, out_dir: Path, run: RunConfig | None = None, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Imitation, fine-tuning and evaluation; writes everything into ``out_dir`` and returns the facts.

    Args:
        cfg: Training configuration.
        out_dir: Output folder.
        run: Run configuration to use instead of composing ``cfg.env.scenario`` (tests build toy ones).
        log: Where progress lines go.
    """
    torch.set_num_threads(cfg.ppo.torch_threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = run if run is not None else load_config([f"scenario={cfg.env.scenario}", *cfg.env.overrides])
    rng = np.random.default_rng(cfg.seed)
    if cfg.init_checkpoint:
        model, header = tf.load(cfg.init_checkpoint)
        log(f"starting from {cfg.init_checkpoint}")
    else:
        model, header = tf.build_model(cfg.model, seed=cfg.seed), {}
    facts: dict[str, Any] = {
        "backbone": model.config.backbone,
        "parameters": tf.parameter_count(model),
        "scenario": run.scenario.name,
        "training_window": [cfg.env.window_start_utc, cfg.env.window_end_utc],
        "imitation_decisions": int(header.get("imitation_decisions", 0)),
        "ppo_steps": int(header.get("ppo_steps", 0)),
    }
    sc = run.scenario
    meta = {"regions_trained_on": list(sc.region_names), "workloads": list(sc.workload_names)}
    im = cfg.imitation
    if im.windows:
        t0 = time.perf_counter()
        windows = imitation.training_windows(cfg.env, im.windows, rng)
        demos = imitation.collect(
            run, cfg.env, im.teacher, windows, model.config.features, im.keep_fraction, rng, log=log
        )
        train_set, val_set = imitation.split(demos, im.validation_fraction, rng)
        t1 = time.perf_counter()
        history = imitation.fit(model, train_set, val_set, im, rng, log=log)
        pd.DataFrame(history).to_csv(out_dir / "imitation_history.csv", index=False)
        facts.update(
            imitation_decisions=len(demos),
            imitation_collect_s=t1 - t0,
            imitation_fit_s=time.perf_counter() - t1,
            imitation_val_agreement=history[-1]["val_agreement"],
            imitation_train_agreement=history[-1]["train_agreement"],
            teacher=dict(im.teacher),
        )
        tf.save(out_dir / "imitation.safetensors", model, {**meta, **_trained(facts)})
    if cfg.ppo.total_timesteps:
        steps, wall_s = fine_tune(model, cfg, run, out_dir / "tensorboard")
        facts.update(ppo_steps=facts["ppo_steps"] + steps, ppo_wall_s=wall_s, ppo_steps_per_s=steps / wall_s)
        log(f"PPO fine-tuning: {steps} steps in {wall_s:.1f} s")
    path = tf.save(out_dir / "transformer.safetensors", model, {**meta, **_trained(facts)})
    result: dict[str, Any] = {"checkpoint": path, **facts}
    if cfg.eval_windows:
        label = f"transformer({model.config.backbone})"
        policies = [{"name": "transformer", "checkpoint": str(path), "label": label}, *cfg.eval_policies]
        table = evaluate(run, cfg.env, cfg.eval_windows, policies, cfg.seed)
        table.to_csv(out_dir / "evaluation_by_window.csv", index=False)
        means = summarise(table)
        means.to_csv(out_dir / "evaluation.csv", index=False)
        write_text(out_dir / "evaluation.md", tables.to_markdown(means, digits=4))
        result["evaluation"] = means
        log(means.to_string(index=False))
    write_json(out_dir / "training.json", facts)
    return result


def _trained(facts: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint's header records of its training."""
    keys = ("imitation_decisions", "ppo_steps", "training_window", "teacher", "imitation_val_agreement")
    return {k: facts[k] for k in keys if k in facts}


__all__ = ["env_config", "fine_tune", "make_vec_env", "train"]
