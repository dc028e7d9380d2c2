"""The seed study: offered load (generator.target_load), the hourly cluster load, the study's tables and figures."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
