"""The learned shifting scheduler: checkpoints, any number of items and regions, weights as inputs, the CLI, and
the NumPy network it runs (the same logits and decisions as the torch network, no torch at run time)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import shifting_inputs

torch = pytest.importorskip("torch")

import carbonsim  # noqa: E402
from carbonsim._schema import ConfigError  # noqa: E402
from carbonsim.learn import shifting_imitation as im  # noqa: E402
from carbonsim.learn import shifting_model as sm  # noqa: E402
from carbonsim.learn import shifting_numpy as snp  # noqa: E402
from carbonsim.learn.checkpoint import CheckpointError  # noqa: E402
from carbonsim.learn.shifting_features import GLOBAL_FEATURES  # noqa: E402
from carbonsim.learn.shifting_policy import LearnedShifting, LearnedShiftingConfig  # noqa: E402

TINY = sm.ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32)
ROOT = Path(__file__).resolve().parents[1]


def noisy(config: sm.ShiftingModelConfig, seed: int, scale: float = 0.2) -> sm.ShiftingNet:
    """A network with noise on every parameter: nonzero attention biases, LayerNorm gains and offsets."""
    model = sm.build(config, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shifting")
    return sm.save(folder / "shifting.npz", sm.build(TINY, seed=0), {"selected_weights": [1.0, 1.0, 1.0]})


epoch_inputs = shifting_inputs


def test_checkpoint_round_trip(checkpoint: Path) -> None:
    model = sm.build(TINY, seed=0)
    loaded, header = sm.load(checkpoint)
    assert header["selected_weights"] == [1.0, 1.0, 1.0] and loaded.config == TINY
    inputs = epoch_inputs(9, 3, 0)
    for a, b in zip(model.decide(*inputs), loaded.decide(*inputs), strict=True):
        assert np.array_equal(a, b)


def test_corrupt_or_foreign_checkpoints_are_named(tmp_path: Path, checkpoint: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(checkpoint.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"bad\.npz"):
        sm.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.array('{"format": "carbonsim-mlp-policy"}'))
    with pytest.raises(CheckpointError, match="expected 'carbonsim-shifting-policy'"):
        sm.load(other)
    with pytest.raises(ConfigError, match=r"batch_policy\.checkpoint: .*bad\.npz"):
        carbonsim.make_batch_policy(carbonsim.batch_policy_config({"name": "learned_shifting", "checkpoint": str(bad)}))
    with pytest.raises(ConfigError, match=r"batch_policy\.checkpoint: expected the path"):
        carbonsim.make_batch_policy(carbonsim.batch_policy_config({"name": "learned_shifting"}))
    with pytest.raises(ConfigError, match="checkpoint: only base learned"):
        carbonsim.batch_policy_config({"name": "pcaps", "checkpoint": str(checkpoint)})


@pytest.mark.parametrize("regions", [1, 2, 3, 5])
@pytest.mark.parametrize("items", [1, 4, 300])
def test_any_number_of_items_and_regions(regions: int, items: int) -> None:
    model = sm.build(TINY, seed=1)
    logits, importance = model.decide(*epoch_inputs(items, regions, items + regions))
    assert logits.shape == (items, 1 + regions) and importance.shape == (items,)
    assert np.isfinite(logits).all() and np.isfinite(importance).all()
    # A set: permuting the items permutes the decisions, nothing else.
    x, pairs, reg, glob = epoch_inputs(items, regions, 7)
    perm = np.random.default_rng(0).permutation(items)
    a, _ = model.decide(x, pairs, reg, glob)
    b, _ = model.decide(x[perm], pairs[perm], reg, glob)
    assert np.allclose(a[perm], b, atol=1e-5)


def weights_token(alpha: float, beta: float = 1.0, gamma: float = 0.0) -> np.ndarray:
    g = np.zeros(GLOBAL_FEATURES, dtype=np.float32)
    w = np.array([alpha, beta, gamma])
    g[0:3] = np.clip(w / 10.0, 0, 1)
    g[3:6] = w / w.sum()
    return g


def toy_epoch(rng: np.random.Generator, dirty: bool, alpha: float) -> im.Epoch:
    """Two regions whose current intensity is at the top (dirty) or the bottom of their 24-hour forecast."""
    n = int(rng.integers(1, 6))
    items, pairs, regions, _ = epoch_inputs(n, 2, int(rng.integers(1 << 30)))
    regions[:, 4] = 1.0 if dirty else 0.0  # where now lies between the forecast's min and max
    regions[:, 0] = np.where(dirty, regions[:, 3], regions[:, 2])
    home = pairs[:, :, 0].argmax(axis=1)
    # Teacher of the carbon-heavy weighting defers in a dirty hour; the lateness-heavy one always runs.
    choices = np.where(dirty and alpha > 1.0, -1, home)
    return im.Epoch(items, pairs, regions, weights_token(alpha), choices)


def test_more_alpha_more_deferral_to_the_clean_hour() -> None:
    """A network imitating two teachers, told apart only by the weights token, defers more at high alpha."""
    rng = np.random.default_rng(0)
    data = [toy_epoch(rng, bool(rng.integers(2)), float(rng.choice([0.2, 5.0]))) for _ in range(256)]
    model = sm.build(TINY, seed=2)
    losses = im.fit(model, data, steps=80, rng=np.random.default_rng(1), batch_size=32, learning_rate=1e-2)
    assert losses[-1] < losses[0]

    def p_defer(dirty: bool, alpha: float) -> float:
        e = toy_epoch(np.random.default_rng(5), dirty, alpha)
        logits, _ = model.decide(e.items, e.pairs, e.regions, e.globals_)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return float((p[:, 0] / p.sum(axis=1)).mean())

    assert p_defer(True, 5.0) > 0.5 > p_defer(True, 0.2)
    assert p_defer(True, 5.0) > p_defer(False, 5.0)


def test_runs_on_the_dag_and_gpu_presets_and_as_pcaps_base(checkpoint: Path, tmp_path: Path) -> None:
    from rich.console import Console

    from carbonsim.cli import execute

    for scenario, hours in (("dag_tpch", 0.05), ("gpu_training", 0.25)):
        cfg = carbonsim.load_config(
            [
                f"scenario={scenario}",
                f"sim_hours={hours}",
                "batch_policy=learned_shifting",
                f"batch_policy.checkpoint={checkpoint}",
                "batch_policy.weights=[2.0,1.0,0.5]",
            ]
        )
        execute(cfg, tmp_path / scenario, Console(file=io.StringIO()))
        s = json.loads((tmp_path / scenario / "summary.json").read_text())
        assert s["jobs"] > 0 and s["batch_policy"] == "learned_shifting"
        assert s["jobs"] == s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"]
    cfg = carbonsim.load_config(
        [
            "scenario=dag_tpch",
            "sim_hours=0.05",
            "batch_policy=pcaps",
            "batch_policy.base=learned",
            f"batch_policy.checkpoint={checkpoint}",
        ]
    )
    s = carbonsim.run(cfg).summary
    assert s["jobs"] == s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"] > 0


def test_importing_carbonsim_does_not_import_torch() -> None:
    code = (
        "import sys, carbonsim; assert 'learned_shifting' in carbonsim.batch_policy_names(); "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.strip() == "False"


def test_ppo_takes_gradient_steps_through_the_shared_network() -> None:
    """SB3's PPO with the per-item multi-categorical heads: one short rollout and one update change the network."""
    from stable_baselines3 import PPO

    from carbonsim.envs.shifting import ShiftingEnv
    from carbonsim.learn.shifting_config import ShiftingEnvConfig
    from carbonsim.learn.shifting_sb3 import ShiftingActorCritic

    env = ShiftingEnv(
        ShiftingEnvConfig(
            episode_hours=0.1, max_items=8, overrides=("scenario.batch.generator.mean_interarrival_s=90",)
        )
    )
    model = sm.build(TINY, seed=3)
    before = [p.detach().clone() for p in model.parameters()]
    agent = PPO(
        ShiftingActorCritic, env, n_steps=16, batch_size=8, n_epochs=1, seed=0, device="cpu",
        policy_kwargs={"network": model},
    )  # fmt: skip
    assert agent.policy.action_dist.action_dims == [4] * 8
    agent.learn(total_timesteps=16)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_shipped_training_config_holds_out_selection_and_evaluation_years(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import contextlib

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from carbonsim._hydra import config_dir, register_configs
    from carbonsim._schema import build
    from carbonsim.learn.config import parse_utc_hour
    from carbonsim.learn.shifting_config import TrainShiftingConfig

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = build(TrainShiftingConfig, OmegaConf.to_container(compose("train_shifting"), resolve=True), "")
    end = parse_utc_hour(cfg.env.window_end_utc, "window_end_utc")
    assert end.year == 2023 and parse_utc_hour(cfg.env.window_start_utc, "window_start_utc").year == 2021
    assert all(parse_utc_hour(s, "s").year == 2023 for s in cfg.select_starts)
    # Bad input: one line naming the field, status 2.
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("train_shifting_script", root / "experiments" / "train_shifting.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train_shifting", "n_envs=0", f"hydra.run.dir={tmp_path / 'out'}"])
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
        try:
            module.main()
        finally:
            GlobalHydra.instance().clear()
    assert exit_info.value.code == 2
    assert err.getvalue() == "train_shifting: n_envs: expected an integer >= 1, got 0\n"


@pytest.mark.parametrize(
    "config",
    [TINY, sm.ShiftingModelConfig(), sm.ShiftingModelConfig(width=24, heads=3, layers=3, inducing=5, ffn=40)],
    ids=["tiny", "default", "three-heads"],
)
def test_numpy_network_has_the_torch_networks_parameters(config: sm.ShiftingModelConfig) -> None:
    state = sm.ShiftingNet(config).state_dict()
    assert snp.parameter_shapes(config) == {k: tuple(v.shape) for k, v in state.items()}


@pytest.mark.parametrize("regions", [1, 2, 5])
@pytest.mark.parametrize("items", [0, 1, 7, 300])
def test_numpy_network_gives_the_torch_networks_logits(items: int, regions: int) -> None:
    for config, seed in ((TINY, 1), (sm.ShiftingModelConfig(), 2), (sm.ShiftingModelConfig(width=24, heads=3), 3)):
        model = noisy(config, seed)
        fast = sm.to_numpy(model)
        x, pairs, reg, glob = epoch_inputs(items, regions, items + 10 * regions + seed)
        pairs[np.arange(items), np.random.default_rng(seed).integers(regions, size=items), 1] = 1.0  # runs there
        logits, importance = fast.decide(x, pairs, reg, glob)
        assert logits.shape == (items, 1 + regions) and importance.shape == (items,)
        assert logits.dtype == importance.dtype == np.float64
        if not items:
            continue  # (torch's attention cannot reshape an empty set; the NumPy network returns empty logits)
        want_logits, want_importance = model.decide(x, pairs, reg, glob)
        np.testing.assert_allclose(logits, want_logits, rtol=0, atol=1e-4)
        np.testing.assert_allclose(importance, want_importance, rtol=0, atol=1e-4)


def test_gelu_is_the_exact_one() -> None:
    """The GELU's fitted approximation: erf within 1e-7 in float64; float32 as close as torch's own GELU."""
    from scipy.special import erf, ndtr

    x = np.concatenate([np.linspace(-12.0, 12.0, 480_001), [-1e-6, 1e-6, 6.0, -6.0, 1e3, -1e3]])
    x = x[x != 0.0]
    approx_erf = 2.0 * snp.gelu(x) / x - 1.0
    assert np.abs(approx_erf - erf(x / np.sqrt(2.0))).max() < 1e-7
    x32 = x.astype(np.float32)
    exact = x32.astype(np.float64) * ndtr(x32.astype(np.float64))
    ours = np.abs(snp.gelu(x32).astype(np.float64) - exact).max()
    theirs = np.abs(torch.nn.functional.gelu(torch.from_numpy(x32)).numpy().astype(np.float64) - exact).max()
    assert snp.gelu(x32).dtype == np.float32 and ours < 2e-6 and theirs < 2e-6


def test_both_loaders_share_the_checkpoint_checks(tmp_path: Path, checkpoint: Path) -> None:
    with np.load(checkpoint) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["p.point_v.weight"] = np.zeros((2, 16), dtype=np.float32)
    bad = tmp_path / "misshapen.npz"
    np.savez(bad, **arrays)
    for load in (sm.load, snp.ShiftingNumpy.load):
        with pytest.raises(
            CheckpointError, match=r"misshapen\.npz: point_v\.weight has shape \(2, 16\), expected \(1, 16\)"
        ):
            load(bad)
    arrays["p.point_v.weight"] = np.full((1, 16), np.nan, dtype=np.float32)
    np.savez(bad, **arrays)
    with pytest.raises(CheckpointError, match=r"point_v\.weight holds non-finite values"):
        snp.ShiftingNumpy.load(bad)
    del arrays["p.point_v.weight"]
    arrays["extra"] = np.zeros(1)
    np.savez(bad, **arrays)
    with pytest.raises(CheckpointError, match=r"missing \['point_v.weight'\], unexpected \['extra'\]"):
        sm.load(bad)
    with pytest.raises(ConfigError, match="blas_threads: expected a number of threads >= 0"):
        LearnedShiftingConfig(blas_threads=-1)


def test_a_torch_network_given_to_the_policy_is_copied() -> None:
    model = noisy(TINY, 4)
    policy = LearnedShifting(LearnedShiftingConfig(weights=(1.0, 1.0, 1.0)), model=model)
    inputs = epoch_inputs(20, 3, 4)
    before = policy.model.decide(*inputs)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)
    after = policy.model.decide(*inputs)
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert not np.allclose(model.decide(*inputs)[0], before[0])


class Recorded:
    """A batch policy that records a digest of every decision of the policy it wraps."""

    def __init__(self, inner: LearnedShifting) -> None:
        self.inner, self.digest, self.epochs, self.decided = inner, hashlib.sha256(), 0, 0

    def reset(self, context: Any) -> None:
        self.inner.reset(context)

    def schedule(self, view: Any) -> Mapping[Any, Any]:
        out = self.inner.schedule(view)
        self.digest.update(repr(list(out.items())).encode())
        self.epochs += 1
        self.decided += len(out)
        return out


class TorchForward:
    """The torch network's ``decide`` where the policy calls the NumPy one's."""

    def __init__(self, model: sm.ShiftingNet) -> None:
        self.model = model

    def decide(self, *inputs: np.ndarray, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.model.decide(*inputs)


def one_task_jobs(n: int, seed: int) -> Any:
    """``n`` one-task jobs of 1-3 CPUs over the first hour, 0.5-2 hours long, deadlines 0-3 hours after that."""
    from carbonsim.core.jobs import Jobs, Stages

    rng = np.random.default_rng(seed)
    arrival, work = np.sort(rng.uniform(0, 3600, n)), rng.uniform(1800.0, 7200.0, n)
    return Jobs.from_stages(
        arrival_s=arrival,
        deadline_s=arrival + work + rng.uniform(0, 3 * 3600, n),
        interruptible=rng.random(n) < 0.5,
        home=rng.integers(0, 3, n),
        stages=Stages.single(work, rng.integers(1, 4, n).astype(float)),
    )


@pytest.mark.parametrize("scenario", ["dag_tpch", "gpu_training"])
def test_a_run_decides_the_same_with_the_numpy_and_the_torch_network(scenario: str) -> None:
    """Every decision and the job table; on dag_tpch's regions, 80 one-task jobs on 8 CPUs per region."""
    import dataclasses

    import pandas as pd

    from carbonsim.analysis import jobs as job_metrics
    from carbonsim.policies import make_policy
    from carbonsim.runner import make_simulation, prepare

    model = noisy(sm.ShiftingModelConfig(), 5)
    cfg = carbonsim.load_config([f"scenario={scenario}", "sim_hours=3", "drain=false"])
    if scenario == "dag_tpch":
        regions = tuple(dataclasses.replace(r, batch_cpus=8) for r in cfg.scenario.regions)
        cfg = dataclasses.replace(cfg, scenario=dataclasses.replace(cfg.scenario, regions=regions))
    world, requests, jobs = prepare(cfg)
    jobs = one_task_jobs(80, 0) if scenario == "dag_tpch" else jobs
    tables, digests = [], []
    for forward in ("numpy", "torch"):
        policy = LearnedShifting(LearnedShiftingConfig(weights=(2.0, 1.0, 0.5)), model=model)
        if forward == "torch":
            policy.model = TorchForward(model)  # type: ignore[assignment]
        recorded = Recorded(policy)
        sim = make_simulation(cfg, world, requests, make_policy(cfg.policy), 0, jobs=jobs, batch_policy=recorded)
        tables.append(job_metrics.job_table(sim.run()))
        digests.append((recorded.digest.hexdigest(), recorded.epochs, recorded.decided, policy.forced))
    assert digests[0] == digests[1] and digests[0][1] > 20 and digests[0][2] > 10
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_running_from_a_checkpoint_needs_no_torch(checkpoint: Path) -> None:
    """batch_policy=learned_shifting and PCAPS's learned base, in a process where torch cannot be imported."""
    code = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
import carbonsim
for extra in (["batch_policy=learned_shifting"], ["batch_policy=pcaps", "batch_policy.base=learned"]):
    cfg = carbonsim.load_config(
        ["scenario=dag_tpch", "sim_hours=0.05", "drain=false", *extra, "batch_policy.checkpoint={checkpoint}"]
    )
    s = carbonsim.run(cfg).summary
    assert s["jobs"] > 0 and s["jobs"] == s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"], s
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "['torch']"  # only the blocked entry: nothing imported torch
