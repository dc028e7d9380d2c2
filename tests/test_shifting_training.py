"""Training and evaluating the learned shifting scheduler: relabelled imitation, the ablations, the evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import shifting_inputs

torch = pytest.importorskip("torch")

from carbonsim.learn import shifting_imitation as im  # noqa: E402
from carbonsim.learn import shifting_model as sm  # noqa: E402
from carbonsim.learn.shifting_config import ShiftingEnvConfig, ShiftingModelConfig, TrainShiftingConfig  # noqa: E402
from carbonsim.learn.shifting_eval import markdown, summarise  # noqa: E402
from carbonsim.learn.shifting_features import (  # noqa: E402
    FORECAST_COLUMNS,
    FORECAST_PAIR_COLUMNS,
    GLOBAL_FEATURES,
    set_weights,
)

TINY = ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32)


inputs = shifting_inputs


def test_without_forecasts_the_network_ignores_the_forecast_columns() -> None:
    items, pairs, regions, g = inputs(7, 3, 0)
    other = regions.copy()
    other[:, list(FORECAST_COLUMNS)] = np.random.default_rng(1).uniform(0, 1, (3, len(FORECAST_COLUMNS)))
    other_pairs = pairs.copy()
    other_pairs[:, :, list(FORECAST_PAIR_COLUMNS)] = np.random.default_rng(2).uniform(0, 1, (7, 3, 2))
    blind = sm.build(ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32, forecasts=False), 0)
    seeing = sm.build(TINY, 0)
    np.testing.assert_array_equal(
        blind.decide(items, pairs, regions, g)[0], blind.decide(items, other_pairs, other, g)[0]
    )
    assert not np.allclose(seeing.decide(items, pairs, regions, g)[0], seeing.decide(items, pairs, other, g)[0])
    assert not np.allclose(seeing.decide(items, pairs, regions, g)[0], seeing.decide(items, other_pairs, regions, g)[0])
    # The now column still matters, and the ablation survives a checkpoint round trip.
    now = regions.copy()
    now[:, 0] += 0.5
    assert not np.allclose(blind.decide(items, pairs, regions, g)[0], blind.decide(items, pairs, now, g)[0])


def test_forecast_ablation_survives_a_checkpoint(tmp_path: Path) -> None:
    blind = sm.build(ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32, forecasts=False), 3)
    loaded, header = sm.load(sm.save(tmp_path / "blind.npz", blind))
    assert header["config"]["forecasts"] is False and loaded.config.forecasts is False
    items, pairs, regions, g = inputs(5, 2, 4)
    np.testing.assert_array_equal(loaded.decide(items, pairs, regions, g)[0], blind.decide(items, pairs, regions, g)[0])


def test_relabelling_takes_the_best_teacher_at_each_weighting() -> None:
    scores = [
        {"carbon_kg": 100.0, "lateness_h": 0.0, "cost_usd": 60.0},  # carbon-aware: clean, dearer
        {"carbon_kg": 130.0, "lateness_h": 0.0, "cost_usd": 50.0},  # agnostic: dirtier, cheaper
        {"carbon_kg": 90.0, "lateness_h": 20.0, "cost_usd": 55.0},  # cleanest, but late
    ]
    assert im.best_teacher(scores, (1.0, 1.0, 1.0)) == 0
    assert im.best_teacher(scores, (0.1, 0.0, 2.9)) == 1
    assert im.best_teacher(scores, (3.0, 0.0, 0.0)) == 2
    assert im.best_teacher(scores, (1.0, 1.0, 0.0)) == 0
    items, pairs, regions, g = inputs(3, 2, 0)
    epoch = im.Epoch(items, pairs, regions, g, np.array([-1, 0, 1]))
    (moved,) = im.relabel([epoch], (2.0, 0.5, 0.5))
    np.testing.assert_allclose(moved.globals_[:6], [0.2, 0.05, 0.05, 2 / 3, 1 / 6, 1 / 6], rtol=1e-6)
    np.testing.assert_array_equal(moved.globals_[6:], g[6:])
    assert epoch.globals_ is g and moved.choices is epoch.choices  # the recorded epoch is left alone


def test_set_weights_writes_what_global_features_writes() -> None:
    row = np.zeros(GLOBAL_FEATURES, dtype=np.float32)
    set_weights(row, (0.0, 0.0, 0.0))
    assert not row.any()
    set_weights(row, (20.0, 5.0, 0.0))
    np.testing.assert_allclose(row[:6], [1.0, 0.5, 0.0, 0.8, 0.2, 0.0])


@pytest.mark.slow
def test_train_from_scratch_relabels_imitates_runs_ppo_and_selects(tmp_path: Path) -> None:
    """The whole pipeline at a toy budget on the GPU preset: files, scores, and the teachers' wins."""
    from carbonsim.learn.shifting_config import TeacherConfig
    from carbonsim.learn.shifting_train import train

    cfg = TrainShiftingConfig(
        seed=3,
        model=TINY,
        teachers=(TeacherConfig({"name": "casper_batch"}), TeacherConfig({"name": "carbon_agnostic"})),
        imitation_windows=1,
        relabel=3,
        imitation_steps=4,
        env=ShiftingEnvConfig(
            scenario="gpu_training",
            episode_hours=0.5,
            max_drain_hours=72.0,
            window_start_utc="2021-03-01T00:00:00Z",
            window_end_utc="2021-03-03T00:00:00Z",
            max_items=8,
        ),
        ppo_timesteps=16,
        n_envs=1,
        n_steps=16,
        batch_size=8,
        n_epochs=1,
        select_starts=("2023-03-06T00:00:00Z",),
        select_hours=0.5,
    )
    summary = train(cfg, tmp_path)
    assert {p.name for p in tmp_path.glob("*.npz")} == {"imitation.npz", "ppo.npz", "shifting.npz"}
    assert sum(summary["imitation"]["teacher_wins"].values()) == 3
    assert summary["selected"] in ("imitation", "ppo")
    chosen = summary["selection"][summary["selected"]]["weighted"]
    assert chosen == min(s["weighted"] for s in summary["selection"].values())
    assert json.loads((tmp_path / "train_summary.json").read_text())["ppo"]["timesteps"] == 16


def test_summary_gives_the_mean_and_a_t_interval_over_seeds() -> None:
    rows = [
        {"scenario": "s", "start_utc": "a", "policy": "carbon_agnostic", "member": 0, "carbon_kg": 100.0},
        *(
            {"scenario": "s", "start_utc": "a", "policy": "learned", "member": m, "carbon_kg": kg}
            for m, kg in enumerate((90.0, 80.0, 70.0))
        ),
        {"scenario": "s", "start_utc": "a", "policy": "bound_any", "member": 0, "carbon_kg": 50.0},
    ]
    common = {"hours": 12.0, "cost_usd": 1.0, "lateness_h": 0.0, "migrations": 0.0, "deadline_met_pct": 100.0}
    df = pd.DataFrame([{**common, **r} for r in rows])
    t = summarise(df)["s"].set_index("policy")
    assert t.loc["learned", "members"] == 3
    assert t.loc["learned", "saved_pct"] == pytest.approx(20.0)
    # Student's t with 2 degrees of freedom: 4.303 x sd 10 / sqrt 3.
    assert t.loc["learned", "saved_pct_ci95"] == pytest.approx(4.3027 * 10 / math.sqrt(3), rel=1e-4)
    assert math.isnan(t.loc["carbon_agnostic", "saved_pct_ci95"])
    assert t.loc["bound_any", "saved_pct"] == pytest.approx(50.0)
    assert t.loc["learned", "saved_t"] == pytest.approx(0.02)
    assert t.loc["learned", "saved_t_per_year"] == pytest.approx(0.02 * 730)  # 12 h of arrivals, 730 per year
    assert "| learned | 3 | 80 | 20.0 ± 24.8 | 14.6 |" in markdown({"s": t.reset_index()}, 1)


def test_the_shift_experiment_writes_a_cleaner_grid_read_as_the_users_own_data(tmp_path: Path) -> None:
    """experiments/shift_shifting.py: PJM x 0.3 from the shift on, the other regions and the hours before untouched."""
    import importlib.util

    from carbonsim._schema import ConfigError
    from carbonsim.learn.shifting_eval import scenario_run
    from carbonsim.runner import prepare

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("shift_shifting_script", root / "experiments" / "shift_shifting.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    name = module.shifted_scenario(tmp_path, "gpu_training", "us-east", 0.3, "2024-01-01T03:00:00Z")
    assert name == "gpu_training_clean"
    search = f"hydra.searchpath=[file://{(tmp_path / 'conf').resolve()}]"
    shifted = prepare(scenario_run(name, "2024-01-01T00:00:00Z", 1.0, 0, 0.0, (search,)))[0].carbon.values
    plain = prepare(scenario_run("gpu_training", "2024-01-01T00:00:00Z", 1.0, 0, 0.0))[0].carbon.values
    np.testing.assert_array_equal(shifted[1:], plain[1:])  # us-west, us-south
    np.testing.assert_array_equal(shifted[0, :3], plain[0, :3])  # before the shift
    np.testing.assert_allclose(shifted[0, 3:], 0.3 * plain[0, 3:], atol=0.006)  # rounded to 0.01 g/kWh
    with pytest.raises(ConfigError, match="--region: expected one of us-east, us-west, us-south, got 'x'"):
        module.shifted_scenario(tmp_path / "other", "gpu_training", "x", 0.3, "2024-01-01T00:00:00Z")
    assert not (tmp_path / "other").exists()
