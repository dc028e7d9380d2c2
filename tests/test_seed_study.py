"""The seed study: offered load (generator.target_load), the hourly cluster load, the study's tables and figures."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

import carbonsim
from carbonsim._schema import ConfigError
from carbonsim.analysis.jobs import hourly_load
from carbonsim.analysis.seed_study import saved_matrix, study_table
from carbonsim.experiment import run_experiment
from carbonsim.job_streams import expected_work_per_job, generated_trace, mean_interarrival_for_load
from carbonsim.jobs_config import JobGeneratorConfig
from carbonsim.policies import make_batch_policy, make_policy
from carbonsim.report import write_report
from carbonsim.runner import make_simulation, prepare


def _offered_load(cfg: JobGeneratorConfig, hours: float, capacity: float, seed: int = 0) -> float:
    stages = generated_trace(cfg, hours * 3600.0, np.random.default_rng(seed), capacity).stages
    units = stages["gpus_per_task"] if cfg.kind == "gpu_training" else stages["cpus_per_task"]
    return float((stages["tasks"] * stages["task_duration_s"] * units).sum()) / (hours * 3600.0 * capacity)


def test_tpch_stream_offers_its_target_load():
    cfg = JobGeneratorConfig(kind="tpch", target_load=0.8, executor_cpus=2.0)
    # About 6,500 jobs over 100 h on 40 CPUs: the mean work per job and the count are known to ~2 %.
    assert _offered_load(cfg, 100.0, 40.0) == pytest.approx(0.8, rel=0.04)


def test_gpu_training_stream_offers_its_target_load():
    cfg = JobGeneratorConfig(kind="gpu_training", target_load=0.5, max_duration_h=48.0)
    # About 34,000 jobs of heavy-tailed run times on 160 GPUs over 2,000 h.
    assert _offered_load(cfg, 2000.0, 160.0) == pytest.approx(0.5, rel=0.05)


def test_the_load_rule_by_hand():
    cfg = JobGeneratorConfig(kind="gpu_training", gpus_per_job=(2, 4), gpus_per_job_shares=(0.5, 0.5), target_load=0.5)
    # E[GPUs] = 3, so a job offers 3 x the trace's mean run time; 0.5 of 60 GPUs is 30 GPUs busy.
    work = expected_work_per_job(cfg)
    assert work == pytest.approx(3.0 * expected_work_per_job(dataclasses.replace(cfg, gpus_per_job=(1, 1))))
    assert mean_interarrival_for_load(cfg, 60.0) == pytest.approx(work / 30.0)
    tpch = JobGeneratorConfig(kind="tpch", queries=(1,), sizes_gb=(2,), duration_scale=10.0, target_load=0.25)
    one = expected_work_per_job(dataclasses.replace(tpch, duration_scale=1.0))
    assert expected_work_per_job(tpch) == pytest.approx(10.0 * one)
    assert mean_interarrival_for_load(tpch, 40.0) == pytest.approx(10.0 * one / 10.0)


def test_target_load_is_validated():
    with pytest.raises(ConfigError, match="target_load"):
        JobGeneratorConfig(kind="tpch", target_load=-0.1)
    with pytest.raises(ConfigError, match="target_load"):
        JobGeneratorConfig(kind="tpch", target_load=math.inf)
    with pytest.raises(ConfigError, match=r"generator.target_load: expected regions with batch GPUs"):
        generated_trace(JobGeneratorConfig(kind="gpu_training", target_load=0.5), 3600.0, np.random.default_rng(0))


def test_presets_reach_their_load_and_have_five_measured_regions():
    for preset, unit in (("seed_dag", "cpus"), ("seed_gpu", "gpus")):
        cfg = carbonsim.load_config([f"scenario={preset}"])
        sc = cfg.scenario
        assert [r.grid_zone for r in sc.regions] == ["US-MIDA-PJM", "US-CAL-CISO", "US-TEX-ERCO", "CA-ON", "DE-LU"]
        assert [r.price_market for r in sc.regions] == [r.grid_zone for r in sc.regions]
        assert sc.batch.generator.target_load == 0.5
        capacity = sum(r.batch_cpus if unit == "cpus" else sum(r.batch_gpus.values()) for r in sc.regions)
        assert capacity == (100 if unit == "cpus" else 160)


def test_hourly_load_accounts_for_every_busy_second():
    cfg = carbonsim.load_config(["scenario=seed_gpu", "sim_hours=3", "max_drain_hours=12"])
    world, requests, jobs = prepare(cfg)
    assert len(jobs) > 5
    policy, batch_policy = make_policy(cfg.policy), make_batch_policy(cfg.batch_policy)
    result = make_simulation(cfg, world, requests, policy, cfg.seed, jobs=jobs, batch_policy=batch_policy).run()
    table = hourly_load(result)
    rec = result.job_records
    assert rec is not None
    st = jobs.stages
    gpu_s = (rec.seg_tasks * rec.seg_scale * st.gpus_per_task[rec.seg_stage] * (rec.seg_end_s - rec.seg_start_s)).sum()
    cpu_s = (rec.seg_tasks * rec.seg_scale * st.cpus_per_task[rec.seg_stage] * (rec.seg_end_s - rec.seg_start_s)).sum()
    assert table["busy_gpus"].sum() * 3600.0 == pytest.approx(gpu_s, rel=1e-9)
    assert table["busy_cpus"].sum() * 3600.0 == pytest.approx(cpu_s, rel=1e-9)
    assert (table["gpu_share"] <= 1.0 + 1e-9).all() and (table["cpu_share"] >= 0).all()
    assert table.groupby("region").size().nunique() == 1  # every region, every hour


def _row(label: str, kg: float, base: float, **extra: float) -> dict[str, object]:
    return {
        "job": f"runs/{label}",
        "status": "done",
        "scenario": "s",
        "variant": "v",
        "label": label,
        "jobs": 4,
        "tasks_completed": 8,
        "job_carbon_kg": kg,
        "baseline_job_carbon_kg": base,
        "job_energy_kwh": 2.0,
        "deadline_met_pct": 75.0,
        "bound_home_job_carbon_kg": 800.0,
        "bound_any_job_carbon_kg": 500.0,
        **extra,
    }


def test_study_table_and_saved_matrix_by_hand():
    results = pd.DataFrame(
        [_row("carbon_agnostic", 1000.0, 1000.0), _row("p", 900.0, 1000.0), _row("q", 1200.0, 1000.0)]
    )
    study = study_table(results)
    by = study.set_index("label")
    assert list(by.index) == ["carbon_agnostic", "p", "q", "bound (home)", "bound (any)"]
    assert by.loc["p", "job_carbon_t"] == pytest.approx(0.9)
    assert by.loc["p", "saved_vs_agnostic_t"] == pytest.approx(0.1)
    assert by.loc["p", "saved_vs_agnostic_pct"] == pytest.approx(10.0)
    assert by.loc["q", "saved_vs_agnostic_pct"] == pytest.approx(-20.0)
    assert by.loc["p", "energy_per_task_kwh"] == pytest.approx(0.25)  # 2 kWh over 8 tasks
    assert by.loc["bound (any)", "saved_vs_agnostic_pct"] == pytest.approx(50.0)
    assert math.isnan(by.loc["p", "decision_cpu_ms"])  # no timing.json without a sweep folder
    saved = saved_matrix(study).set_index(["label", "against"])
    assert saved.loc[("p", "q"), "saved_t"] == pytest.approx(0.3)
    assert saved.loc[("p", "q"), "saved_pct"] == pytest.approx(25.0)
    assert saved.loc[("q", "p"), "saved_pct"] == pytest.approx(-100.0 * 0.3 / 0.9)
    assert saved.loc[("bound (home)", "q"), "saved_pct"] == pytest.approx(100.0 * 0.4 / 1.2)
    assert ("p", "bound (home)") not in saved.index  # bounds are never baselines
    assert len(saved) == 5 * 3


def test_seed_study_writes_its_tables_figures_and_report(tmp_path: Path):
    cfg = carbonsim.load_config(["+experiment=seed_study", "sim_hours=2", "max_drain_hours=24"])
    exp = cfg.experiment
    assert exp is not None and cfg.scenario.name == "seed_dag"
    # Two policies on one variant (50 % load, 24 h windows): the full grid runs in the Hydra sweep.
    small = dataclasses.replace(exp, runs=(exp.runs[0], exp.runs[1]), variants=(exp.variants[4],))
    tables = run_experiment(dataclasses.replace(cfg, experiment=small), tmp_path)
    assert (tables["results"]["status"] == "done").all()
    study = pd.read_csv(tmp_path / "study_table.csv")
    assert list(study["label"]) == ["carbon_agnostic", "pcaps", "bound (home)", "bound (any)"]
    assert (study["decision_cpu_ms"].iloc[:2] > 0).all() and (study["peak_memory_mb"].iloc[:2] > 0).all()
    assert (study["energy_per_task_kwh"].iloc[:2] > 0).all()
    manifest = json.loads((tmp_path / "study.json").read_text())
    names = [name for name, _ in manifest["figures"]]
    assert names == ["study_carbon_vs_misses", "study_load_seed_dag", "study_gantt_seed_dag"]
    for name in names:
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 0
        assert (tmp_path / "figures" / f"{name}.pdf").is_file()
    html = write_report(tmp_path).read_text()
    assert all(f"id='fig-{name}'" in html for name in names)
    assert "table-study_table" in html and "table-study_saved" in html
    # Overhead is measured, not simulated: it stays out of the summaries that determinism compares.
    summary = json.loads(next((tmp_path / "runs").glob("*pcaps*/summary.json")).read_text())
    assert not any("cpu_ms" in key or "memory" in key for key in summary)


# --- the learned shifting scheduler in the study (experiment.shifting_checkpoint) --------------------------------

#: The study's baseline on the GPU mix's 50 % window variant over two hours: the tiny sweep of the tests below
#: (the GPU mix, because its few jobs make it the cheaper one to simulate).
TINY_STUDY = (
    "+experiment=seed_study",
    "hydra/launcher=basic",  # the jobs in this process, one after the other
    "scenario=seed_gpu",
    "experiment.variant=4",
    "experiment.runs=[{batch_policy: {name: carbon_agnostic}, label: carbon_agnostic}]",
    "sim_hours=2",
    "max_drain_hours=24",
)


@pytest.fixture(scope="module")
def shifting_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained shifting network whose header selects the weights 2, 0.5, 0."""
    pytest.importorskip("torch")
    from carbonsim.learn import shifting_model as sm

    model = sm.build(sm.ShiftingModelConfig(width=16, heads=2, layers=1, inducing=2, ffn=32), seed=0)
    return sm.save(tmp_path_factory.mktemp("shifting") / "shifting.npz", model, {"selected_weights": [2.0, 0.5, 0.0]})


def _sweep_jobs(*overrides: str) -> list[dict[str, str]]:
    """The jobs Hydra's basic sweeper launches for ``python -m carbonsim *overrides`` (nothing runs)."""
    from hydra import compose, initialize_config_dir

    from carbonsim._hydra import config_dir, register_configs
    from carbonsim.cli import expected_jobs

    register_configs()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    return expected_jobs([*params, *cfg.hydra.overrides.task])


def _jobs_key(jobs: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return sorted(tuple(job[k] for k in ("scenario", "experiment.variant", "experiment.run")) for job in jobs)


def test_the_learned_run_is_swept_only_with_a_checkpoint(shifting_checkpoint: Path):
    from carbonsim.policies import make_batch_policy

    # Without a checkpoint, the sweep is the study's 96 jobs as before: 2 mixes x 6 variants x runs 0-7.
    before = [(s, str(v), str(r)) for s in ("seed_dag", "seed_gpu") for v in range(6) for r in range(8)]
    assert _jobs_key(_sweep_jobs("+experiment=seed_study")) == sorted(before)
    cfg = carbonsim.load_config(["+experiment=seed_study"])
    assert cfg.experiment is not None and cfg.experiment.all_runs == cfg.experiment.runs
    # With one, the same jobs and one more run in every (mix, variant): run 8, learned_shifting.
    with_ckpt = f"experiment.shifting_checkpoint={shifting_checkpoint}"
    after = before + [(s, str(v), "8") for s in ("seed_dag", "seed_gpu") for v in range(6)]
    assert _jobs_key(_sweep_jobs("+experiment=seed_study", with_ckpt)) == sorted(after)
    cfg = carbonsim.load_config(["+experiment=seed_study", with_ckpt, "experiment.run=8"])
    exp = cfg.experiment
    assert exp is not None and exp.all_runs[:-1] == exp.runs and exp.all_runs[-1]["label"] == "learned_shifting"
    # No weights given: the policy takes those the checkpoint's header selected; given ones win.
    bc = exp.all_runs[-1]["batch_policy"]
    assert make_batch_policy(carbonsim.batch_policy_config(bc)).weights == (2.0, 0.5, 0.0)
    weighted = carbonsim.load_config(["+experiment=seed_study", with_ckpt, "experiment.shifting_weights=[1,0,0]"])
    assert weighted.experiment is not None
    bc = weighted.experiment.all_runs[-1]["batch_policy"]
    assert make_batch_policy(carbonsim.batch_policy_config(bc)).weights == (1.0, 0.0, 0.0)
    # Weights without a checkpoint, a run already labelled learned_shifting, or no batch jobs: rejected.
    with pytest.raises(ConfigError, match=r"^experiment.shifting_weights: .*without a shifting_checkpoint"):
        carbonsim.load_config(["+experiment=seed_study", "experiment.shifting_weights=[1,0,0]"])
    taken = "experiment.runs=[{batch_policy: {name: pcaps}, label: learned_shifting}]"
    with pytest.raises(ConfigError, match=r"^experiment.shifting_checkpoint: .*labelled 'learned_shifting'"):
        carbonsim.load_config(["+experiment=seed_study", with_ckpt, taken])
    with pytest.raises(ConfigError, match=r"^experiment.shifting_checkpoint: expected a scenario with batch jobs"):
        carbonsim.load_config(["+experiment=pareto_sweep", with_ckpt])


def test_the_study_sweep_runs_the_learned_shifting_scheduler_beside_the_others(
    shifting_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sweep = tmp_path / "sweep"
    code, out, err = run_cli(
        tmp_path,
        monkeypatch,
        *TINY_STUDY,
        f"experiment.shifting_checkpoint={shifting_checkpoint}",
        f"hydra.sweep.dir={sweep}",
    )
    assert code == 0, err[-3000:]
    assert out.count(": done") == 2 and "jobs finished: 2 / 2" in out
    results = pd.read_csv(sweep / "results.csv")
    assert list(results["label"]) == ["carbon_agnostic", "learned_shifting"]
    assert (results["status"] == "done").all() and (results["batch_policy"].iloc[1] == "learned_shifting")
    learned = results.iloc[1]
    assert learned["jobs"] == learned["jobs_completed"] + learned["jobs_failed"] + learned["jobs_in_flight"] > 0
    # Its row in the study table, compared with carbon-agnostic like the others, and in the saved matrix.
    study = pd.read_csv(sweep / "study_table.csv").set_index("label")
    assert list(study.index) == ["carbon_agnostic", "learned_shifting", "bound (home)", "bound (any)"]
    row = study.loc["learned_shifting"]
    base = study.loc["carbon_agnostic", "job_carbon_kg"]
    assert row["saved_vs_agnostic_pct"] == pytest.approx((1.0 - row["job_carbon_kg"] / base) * 100.0, rel=1e-5)
    assert row["decision_cpu_ms"] > 0 and math.isfinite(row["job_share_of_any_bound_pct"])
    saved = pd.read_csv(sweep / "study_saved.csv").set_index(["label", "against"])
    pair = ("learned_shifting", "carbon_agnostic")
    assert pair in saved.index and pair[::-1] in saved.index
    assert "learned_shifting" in (sweep / "study_table.md").read_text()


def test_a_bad_shifting_checkpoint_stops_the_study_before_any_job(
    shifting_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    foreign = tmp_path / "ppo.npz"
    np.savez(foreign, header=np.array('{"format": "carbonsim-mlp-policy"}'))
    sweep = tmp_path / "sweep"
    cases = (
        (["experiment.shifting_checkpoint=missing.npz"], "experiment.shifting_checkpoint: missing.npz: no such"),
        ([f"experiment.shifting_checkpoint={foreign}"], "experiment.shifting_checkpoint: " + str(foreign)),
        (["experiment.shifting_weights=[1,1,1]"], "experiment.shifting_weights: expected [] without"),
        # The sweep's own run values leave the learned run out (an experiment whose range is fixed in YAML).
        (
            [f"experiment.shifting_checkpoint={shifting_checkpoint}", "experiment.run=0"],
            "experiment.shifting_checkpoint: the sweep's experiment.run values (0) leave out the learned shifting run",
        ),
    )
    for overrides, start in cases:
        code, out, err = run_cli(tmp_path, monkeypatch, *TINY_STUDY, *overrides, f"hydra.sweep.dir={sweep}")
        assert code == 2, (overrides, err[-2000:])
        assert err.splitlines() == [err.strip()] and err.startswith("carbonsim: " + start), err
        assert not sweep.exists() and ": done" not in out
    # In one process (hydra.mode=RUN), the same check before the first job.
    cfg = carbonsim.load_config(["+experiment=seed_study", "experiment.shifting_checkpoint=missing.npz"])
    with pytest.raises(ConfigError, match=r"^experiment.shifting_checkpoint: missing.npz: no such checkpoint file"):
        run_experiment(cfg, tmp_path / "in_process")
    assert not (tmp_path / "in_process").exists()
