"""CASPER's batch analogue: the hourly program over regions and forecast hours, by hand."""

from __future__ import annotations

import pytest
from test_batch import carbon_g, jobs
from test_batch import run as run_jobs
from test_dag_jobs import FREE_MOVES, KW, dag_jobs, run

from carbonsim import ConfigError
from carbonsim.analysis.jobs import segment_table, stage_table
from carbonsim.policies import batch_policy_config, make_batch_policy

H = 3600.0


def test_a_job_moves_to_the_clean_region_and_runs_at_once():
    # Two 1 h tasks, then one: 3 task-hours. Free moves to r1 (100 g/kWh against 400): everything runs there now.
    js = dag_jobs([{"deadline_h": 8.0, "stages": [(2, 1.0, 1, []), (1, 1.0, 1, [0])]}])
    result, df, _ = run(js, [[400.0] * 10, [100.0] * 10], "casper_batch", cpus=(4, 4), batch=FREE_MOVES)
    st_ = stage_table(result)
    assert st_["start_s"].tolist() == [0.0, H] and st_["regions"].tolist() == ["r1", "r1"]
    assert df.iloc[0]["carbon_g"] == pytest.approx(KW * 3 * 100.0)


def test_the_move_must_pay_for_the_state():
    # 100 GB per CPU at 0.01 kWh/GB costs more than the hour saved: the job stays home.
    js = dag_jobs([{"deadline_h": 8.0, "stages": [(1, 1.0, 1, [])]}])
    batch = {"migration_gb_per_cpu": 100.0, "network_kwh_per_gb": 0.01}
    _, df, _ = run(js, [[400.0] * 10, [100.0] * 10], "casper_batch", cpus=(4, 4), batch=batch)
    assert df.iloc[0]["region"] == "r0" and df.iloc[0]["migrations"] == 0
    _, df, _ = run(js, [[400.0] * 10, [100.0] * 10], {"name": "casper_batch", "spatial": False}, cpus=(4, 4))
    assert df.iloc[0]["region"] == "r0"


def test_the_program_defers_to_the_clean_hours_within_the_deadline():
    # One 2-CPU job of 1 h, window [0, 3 h), intensities 100, 10, 50: the hour at 10.
    _, df = run_jobs(jobs([0.0], 1.0, 2, 3.0), [[100.0, 10.0, 50.0]], policy="casper_batch")
    assert (df.iloc[0]["start_s"], df.iloc[0]["end_s"]) == (H, 2 * H)
    assert df.iloc[0]["carbon_g"] == pytest.approx(carbon_g(2, [10.0]))
    # An interruptible 2 h job with deadline 4 h and intensities 100, 10, 50, 5: hours 1 and 3.
    result, df = run_jobs(jobs([0.0], 2.0, 1, 4.0), [[100.0, 10.0, 50.0, 5.0]], policy="casper_batch")
    assert segment_table(result)[["start_s", "end_s"]].values.tolist() == [[H, 2 * H], [3 * H, 4 * H]]
    assert df.iloc[0]["carbon_g"] == pytest.approx(carbon_g(1, [10.0, 5.0]))


def test_capacity_is_shared_by_the_program():
    # Two 4-CPU jobs of 1 h in a 4-CPU cluster, window [0, 3 h), intensities 100, 10, 50: one runs at 10, the
    # other at 50 (the clairvoyant bound's example, here on the perfect forecast).
    _, df = run_jobs(jobs([0.0, 0.0], 1.0, 4, 3.0), [[100.0, 10.0, 50.0]], policy="casper_batch")
    assert sorted(df["start_s"].tolist()) == [H, 2 * H]
    assert df["carbon_g"].sum() == pytest.approx(carbon_g(4, [10.0, 50.0]))


def test_plans_every_hour_and_on_arrival():
    # A job at 0 h and one at 0.5 h, each 1 h of work with a 4 h deadline, flat intensity: both run on arrival
    # (equal forecasts go to the earliest hour). Programs: at 0 h (full), at 0.5 h (the new job), at 1 h (full).
    policy = make_batch_policy(batch_policy_config({"name": "casper_batch"}))
    _, df = run_jobs(jobs([0.0, 0.5], 1.0, 1, [4.0, 4.5]), [[100.0] * 6], policy=policy)
    assert df["start_s"].tolist() == [0.0, 0.5 * H]
    assert policy.plans == 3 and policy.late_plans == 0
    late = make_batch_policy(batch_policy_config({"name": "casper_batch", "replan_on_arrival": False}))
    _, df = run_jobs(jobs([0.0, 0.5], 1.0, 1, [4.0, 4.5]), [[100.0] * 6], policy=late)
    assert df["start_s"].tolist() == [0.0, H]  # the second job waits for the next plan


def test_casper_batch_config_is_validated():
    for bad, match in (
        ({"horizon_h": 0}, r"batch_policy\.horizon_h: expected 1\.\.48 hours"),
        ({"max_utilisation": 1.5}, r"batch_policy\.max_utilisation: expected a fraction in \(0, 1\]"),
        ({"planning_interval_min": 0.0}, r"batch_policy\.planning_interval_min: expected minutes > 0"),
    ):
        with pytest.raises(ConfigError, match=match):
            batch_policy_config({"name": "casper_batch", **bad})
