"""The learned shifting scheduler: checkpoints, any number of items and regions, weights as inputs, the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import carbonsim  # noqa: E402
from carbonsim._schema import ConfigError  # noqa: E402
from carbonsim.learn import shifting_imitation as im  # noqa: E402
from carbonsim.learn import shifting_model as sm  # noqa: E402
from carbonsim.learn.checkpoint import CheckpointError  # noqa: E402
from carbonsim.learn.shifting_features import GLOBAL_FEATURES, ITEM_FEATURES, REGION_FEATURES  # noqa: E402

TINY = sm.ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shifting")
    return sm.save(folder / "shifting.npz", sm.build(TINY, seed=0), {"selected_weights": [1.0, 1.0, 1.0]})


def epoch_inputs(n: int, r: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    pairs = np.zeros((n, r, 2), dtype=np.float32)
    pairs[np.arange(n), rng.integers(r, size=n), 0] = 1.0
    return (
        rng.uniform(-1, 1, (n, ITEM_FEATURES)).astype(np.float32),
        pairs,
        rng.uniform(0, 1, (r, REGION_FEATURES)).astype(np.float32),
        rng.uniform(0, 1, GLOBAL_FEATURES).astype(np.float32),
    )


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


def test_cli_reports_a_corrupt_checkpoint_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_text("not a checkpoint")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonsim",
            "scenario=dag_tpch",
            "sim_hours=0.05",
            "batch_policy=learned_shifting",
            f"batch_policy.checkpoint={bad}",
            f"hydra.run.dir={tmp_path / 'out'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "batch_policy.checkpoint" in proc.stderr and "bad.npz" in proc.stderr
    assert "Traceback" not in proc.stderr


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

    for scenario, hours in (("dag_tpch", 0.05), ("gpu_training", 0.5)):
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
