"""Batch jobs: the engine (capacity, suspend/resume, accounting) and the temporal policies, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_scenario, origin, region, run_trace

from carbonsim import ConfigError
from carbonsim.analysis.jobs import job_summary, job_table
from carbonsim.config import BatchConfig
from carbonsim.core import rng as rngmod
from carbonsim.core.jobs import COMPLETED, FAILED, JobContext, Jobs, JobView
from carbonsim.jobs_build import deadlines, make_jobs

H = 3600.0
CPU_W = 3.54
PUE = 1.5


def scenario(cpus=(4,), forecast="perfect", batch=None):
    regions = [region(f"r{i}", f"Z{i}", batch_cpus=c, pue=PUE) for i, c in enumerate(cpus)]
    return make_scenario(
        regions=regions,
        origins=[origin(rtt_ms={f"r{i}": 0.0 for i in range(len(cpus))})],
        forecast={"kind": forecast},
        batch={"cpu_busy_w": CPU_W, **(batch or {})},
    )


def jobs(arrival_h, duration_h, cpus, deadline_h, interruptible=True, home=0) -> Jobs:
    n = len(arrival_h)

    def col(x, dtype):
        return np.full(n, x, dtype=dtype) if np.isscalar(x) else np.asarray(x, dtype=dtype)

    return Jobs(
        arrival_s=col(arrival_h, float) * H,
        duration_s=col(duration_h, float) * H,
        cpus=col(cpus, np.int64),
        deadline_s=col(deadline_h, float) * H,
        interruptible=col(interruptible, bool),
        home=col(home, np.int8),
    )


def run(js, carbon, policy="carbon_agnostic", cpus=(4,), horizon_h=4.0, forecast="perfect", batch=None, **kw):
    sc = scenario(cpus, forecast, batch)
    result = run_trace(
        sc, [], carbon=carbon, horizon_s=horizon_h * H, max_drain_s=24 * H, jobs=js, batch_policy=policy, **kw
    )
    return result, job_table(result)


def carbon_g(cpus, hours_at):
    """Emissions of a job with ``cpus`` CPUs running one hour at each intensity in ``hours_at``."""
    return sum(cpus * CPU_W * PUE * h for h in hours_at) / 1000.0


def test_carbon_agnostic_runs_on_arrival_and_energy_is_exact():
    _, df = run(jobs([0.5], 1.0, 2, 3.0), [[100.0, 10.0, 100.0]])
    row = df.iloc[0]
    assert (row["start_s"], row["end_s"]) == (0.5 * H, 1.5 * H)
    assert row["energy_kwh"] == pytest.approx(2 * CPU_W * PUE * 1.0 / 1000.0)
    # Half an hour at 100 and half an hour at 10.
    assert row["carbon_g"] == pytest.approx(2 * CPU_W * PUE * (0.5 * 100 + 0.5 * 10) / 1000.0)
    assert row["deadline"] == "met" and row["wait_h"] == pytest.approx(0.0)


@pytest.mark.parametrize("policy", ["lets_wait_awhile", "gaia_lowest_window", "gaia_lowest_slot"])
def test_temporal_policies_move_a_job_to_the_clean_hour(policy):
    _, df = run(jobs([0.0], 1.0, 2, 3.0, interruptible=False), [[100.0, 10.0, 100.0]], policy=policy)
    row = df.iloc[0]
    assert (row["start_s"], row["end_s"]) == (H, 2 * H)
    assert row["carbon_g"] == pytest.approx(carbon_g(2, [10.0]))


def test_lets_wait_awhile_runs_interruptible_jobs_in_the_lowest_slots():
    # Two hours of work, deadline at 4 h: the cleanest hours are 1 (10) and 3 (5).
    _, df = run(jobs([0.0], 2.0, 1, 4.0), [[100.0, 10.0, 50.0, 5.0]], policy="lets_wait_awhile")
    row = df.iloc[0]
    assert row["suspensions"] == 1
    assert (row["start_s"], row["end_s"]) == (H, 4 * H)
    assert row["carbon_g"] == pytest.approx(carbon_g(1, [10.0, 5.0]))


def test_lowest_window_and_lowest_slot_differ_on_a_long_job():
    # A 2 h job that may start at 0, 1 or 2 h: the single cleanest hour is 2 (5) but the window [2, 4) has
    # mean (5 + 90) / 2; the window [1, 3) has (20 + 5) / 2, the lowest.
    carbon = [[100.0, 20.0, 5.0, 90.0, 90.0]]
    _, window = run(jobs([0.0], 2.0, 1, 4.0, interruptible=False), carbon, policy="gaia_lowest_window")
    _, slot = run(jobs([0.0], 2.0, 1, 4.0, interruptible=False), carbon, policy="gaia_lowest_slot")
    assert window.iloc[0]["start_s"] == H
    assert slot.iloc[0]["start_s"] == 2 * H


@pytest.mark.parametrize(
    ("carbon", "start_h"),
    [
        # C(0)=100, C(1)=60, C(2)=10 for a 1 h job: saving per completion hour 40/2 = 20 at 1 h, 90/3 = 30 at 2 h.
        ([[100.0, 60.0, 10.0]], 2.0),
        # C(1)=20: 80/2 = 40 at 1 h beats 90/3 = 30 at 2 h although 2 h is cleaner.
        ([[100.0, 20.0, 10.0]], 1.0),
        # Nothing cleaner later: starting now scores 0 and wins.
        ([[10.0, 20.0, 30.0]], 0.0),
    ],
)
def test_gaia_carbon_time_maximises_saving_per_completion_time(carbon, start_h):
    _, df = run(jobs([0.0], 1.0, 1, 3.0, interruptible=False), carbon, policy="gaia_carbon_time")
    assert df.iloc[0]["start_s"] == start_h * H


def test_full_cluster_queues_jobs_in_arrival_order():
    # Capacity 2 CPUs; two 2-CPU jobs at t = 0: the second waits an hour for the first.
    result, df = run(jobs([0.0, 0.0], 1.0, 2, 4.0), [[50.0]], cpus=(2,))
    assert df["start_s"].tolist() == [0.0, H]
    assert df["wait_h"].tolist() == pytest.approx([0.0, 1.0])
    s = job_summary(df, result)
    assert (s["jobs_completed"], s["jobs_deadline_met"]) == (2, 2)


def test_job_larger_than_every_cluster_fails_and_everything_is_accounted_for():
    js = jobs([0.0, 0.0, 3.0], [1.0, 1.0, 30.0], [8, 2, 2], [2.0, 2.0, 40.0])
    result, df = run(js, [[50.0], [50.0]], cpus=(4, 2), horizon_h=4.0)
    assert df["status"].tolist() == ["failed", "completed", "in_flight"]
    assert result.job_records.status[0] == FAILED and result.job_records.status[1] == COMPLETED
    s = job_summary(df, result)
    assert s["jobs"] == s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"] == 3
    assert s["jobs"] == s["jobs_deadline_met"] + s["jobs_deadline_missed"] + s["jobs_deadline_pending"]
    # The failed job missed its deadline; the 30 h job is cut at the 24 h drain bound before its deadline.
    assert df["deadline"].tolist() == ["missed", "met", "pending"]


def test_deadline_is_kept_when_a_plan_cannot_be_followed():
    # The cluster holds one job; both want the clean hour 2 but the second must then start at once to meet
    # its deadline (3 h): it runs at 2 h only if it fits, so it starts at 3 h - 1 h = 2 h at the latest.
    js = jobs([0.0, 0.0], 1.0, 2, [3.0, 3.0], interruptible=False)
    _, df = run(js, [[100.0, 100.0, 10.0, 100.0]], policy="lets_wait_awhile", cpus=(2,))
    assert df["start_s"].tolist() == [2 * H, 3 * H]
    assert df["deadline"].tolist() == ["met", "missed"]


class _Bad:
    def __init__(self, action: str) -> None:
        self.action = action

    def reset(self, context: JobContext) -> None:
        pass

    def schedule(self, view: JobView):
        if view.now_s == 0.0:
            return {job.id: 0 for job in view.active}
        if self.action == "suspend":
            return {}
        return {job.id: 1 for job in view.active}


def test_policy_errors_are_reported():
    js = jobs([0.0], 3.0, 1, 10.0, interruptible=False)
    with pytest.raises(ValueError, match="suspended job 0, which is not interruptible"):
        run(js, [[50.0], [50.0]], policy=_Bad("suspend"), cpus=(4, 4))
    with pytest.raises(ValueError, match="moved job 0, which is not interruptible"):
        run(js, [[50.0], [50.0]], policy=_Bad("move"), cpus=(4, 4))


def test_a_migration_moves_the_state_and_is_charged():
    # 1 GB of state per CPU at 0.01 kWh/GB, sent in half an hour: the job runs 1 h in r0 (50 g/kWh), moves
    # at the 1 h epoch, then runs its 2 h of work plus the 0.5 h restore in r1 (20 g/kWh).
    batch = {"migration_gb_per_cpu": 1.0, "network_kwh_per_gb": 0.01, "migration_gbps": 8.0 / 1800.0}
    result, df = run(
        jobs([0.0], 3.0, 1, 10.0), [[50.0] * 10, [20.0] * 10], policy=_Bad("move"), cpus=(4, 4), batch=batch
    )
    row = df.iloc[0]
    assert (row["region"], row["migrations"], row["end_s"]) == ("r1", 1, 3.5 * H)
    kw = CPU_W * PUE / 1000.0
    assert row["energy_kwh"] == pytest.approx(3.5 * kw + 0.01)
    assert row["carbon_g"] == pytest.approx(kw * (1.0 * 50 + 2.5 * 20) + 0.01 * (50 + 20) / 2)
    assert job_summary(df, result)["job_migrations"] == 1


def test_policies_plan_on_forecasts_not_on_the_truth():
    # With the persistence forecaster every hour looks like the current one (100), so nothing is worth
    # waiting for; the perfect forecaster sees the clean hour.
    carbon = [[100.0, 10.0, 100.0]]
    _, persistent = run(
        jobs([0.0], 1.0, 1, 3.0, interruptible=False), carbon, "lets_wait_awhile", forecast="persistence"
    )
    _, perfect = run(jobs([0.0], 1.0, 1, 3.0, interruptible=False), carbon, "lets_wait_awhile", forecast="perfect")
    assert persistent.iloc[0]["start_s"] == 0.0
    assert perfect.iloc[0]["start_s"] == H


def test_make_jobs_cuts_the_window_and_draws_homes_and_interruptibility():
    cfg = BatchConfig(
        trace="pai_1k", trace_offset_h=1.0, home_shares={"a": 0.25, "b": 0.75}, interruptible_share=0.5, max_jobs=0
    )
    arrival = np.arange(0.0, 10 * H, 60.0)
    js = make_jobs(
        cfg, ("a", "b"), arrival, np.full(arrival.size, 600.0), np.ones(arrival.size), 5 * H, rngmod.stream(0, "jobs")
    )
    assert js.arrival_s[0] == 0.0 and js.arrival_s[-1] < 5 * H and len(js) == 300
    assert 0.65 < (js.home == 1).mean() < 0.85
    assert 0.4 < js.interruptible.mean() < 0.6
    np.testing.assert_allclose(js.deadline_s, js.arrival_s + 600.0 + cfg.window_h * H)
    capped = make_jobs(
        BatchConfig(trace="pai_1k", home_shares={"a": 1.0}, max_jobs=10),
        ("a",),
        arrival,
        np.full(arrival.size, 600.0),
        np.ones(arrival.size),
        5 * H,
        rngmod.stream(0, "jobs"),
    )
    assert (len(capped), capped.dropped_from_trace) == (10, 290)


def test_slack_deadlines():
    cfg = BatchConfig(deadline="slack", slack_factor=3.0)
    np.testing.assert_allclose(deadlines(cfg, np.array([10.0]), np.array([100.0])), [310.0])


def test_batch_config_is_validated():
    with pytest.raises(ConfigError, match=r"batch\.home_shares: unknown region\(s\) mars"):
        make_scenario(regions=[region(batch_cpus=4)], batch={"trace": "pai_1k", "home_shares": {"mars": 1.0}})
    with pytest.raises(ConfigError, match=r"regions\[0\]\.batch_cpus: expected CPUs > 0"):
        make_scenario(regions=[region()], batch={"trace": "pai_1k", "home_shares": {"r0": 1.0}})
    with pytest.raises(ConfigError, match=r"batch\.slack_factor: expected a factor >= 1"):
        make_scenario(batch={"slack_factor": 0.5})


def test_batch_runs_are_reproducible(tmp_path):
    import carbonsim

    cfg = carbonsim.load_config(["scenario=batch_us", "sim_hours=12", "batch_policy=lets_wait_awhile"])
    a = carbonsim.run(cfg)
    b = carbonsim.run(cfg)
    pd.testing.assert_frame_equal(a.jobs, b.jobs)
    # Byte-identical summaries (NaN latency fields of a run without requests compare equal as JSON).
    import json

    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    assert a.summary["jobs"] > 50


def test_batch_shifting_experiment_compares_every_batch_policy_per_variant(tmp_path):
    from helpers import batch_policies_without_checkpoint

    import carbonsim
    from carbonsim.experiment import run_experiment

    # 20 jobs of 3 hours, drained until every one has finished (the bounds compare complete work).
    cfg = carbonsim.load_config(["+experiment=batch_shifting", "sim_hours=3", "scenario.batch.max_jobs=20"])
    tables = run_experiment(cfg, tmp_path)
    jobs_table = tables["jobs"]
    assert set(jobs_table["batch_policy"]) == set(batch_policies_without_checkpoint())
    assert list(dict.fromkeys(jobs_table["variant"])) == ["6 h window", "12 h window", "24 h window", "slack x2"]
    agnostic = jobs_table[jobs_table["label"] == "carbon_agnostic"]
    assert (agnostic["job_carbon_reduction_pct"] == 0).all()
    # Every job finished (drain long enough), so every policy is at or above the clairvoyant bounds.
    assert (jobs_table["jobs_in_flight"] == 0).all()
    assert (jobs_table["job_carbon_kg"] >= jobs_table["bound_any_job_carbon_kg"] - 1e-9).all()
    # Policies that keep every job at home are at or above the home-only bound too; CarbonClipper moves jobs.
    home = jobs_table[jobs_table["job_migrations"] == 0]
    assert (home["job_carbon_kg"] >= home["bound_home_job_carbon_kg"] - 1e-9).all()
    assert (jobs_table[jobs_table["batch_policy"] == "carbonclipper"]["job_migrations"] > 0).any()
    assert (jobs_table["bound_home_job_carbon_kg"] >= jobs_table["bound_any_job_carbon_kg"] - 1e-9).all()
    assert (tmp_path / "jobs_comparison.md").is_file()
    assert (tmp_path / "runs" / "6_h_window_lets_wait_awhile_seed0" / "jobs.csv").is_file()


def test_unknown_variant_path_is_an_error():
    import carbonsim
    from carbonsim.experiment import apply_variant

    cfg = carbonsim.load_config(["scenario=batch_us"])
    with pytest.raises(ConfigError, match=r"unknown configuration path 'scenario\.batch\.windw_h'"):
        apply_variant(cfg, {"scenario.batch.windw_h": 6})
    with pytest.raises(ConfigError, match=r"scenario\.batch\.window_h: expected a number of hours >= 0"):
        apply_variant(cfg, {"scenario.batch.window_h": -1.0})


def test_cap_thresholds_run_from_u_over_alpha_down_to_l():
    from carbonsim.policies.cap import cap_alpha, cap_quota, cap_thresholds

    thresholds = cap_thresholds(100.0, 400.0, 100_000)
    assert thresholds[0] == pytest.approx(400.0 / cap_alpha(100.0, 400.0))
    assert thresholds[-1] == pytest.approx(100.0, rel=1e-3)  # alpha is chosen so that the last one is L
    assert np.all(np.diff(thresholds) < 0)
    # K = 100 CPUs, B = 20: the full quota at or below L, the minimum above U / alpha.
    assert cap_quota(100.0, 100.0, 400.0, 100, 20) == 100
    assert cap_quota(300.0, 100.0, 400.0, 100, 20) == 20
    assert 20 < cap_quota(150.0, 100.0, 400.0, 100, 20) < 100


def test_cap_holds_jobs_back_while_carbon_is_high():
    # 10 CPUs, B = 2: at 400 g/kWh (the forecast maximum) the quota is 2 and 4-CPU jobs wait; at 100 (the
    # minimum) it is 10 and both start. A third job is urgent (1 h of work, deadline in 1 h): it runs at once.
    js = jobs([0.0, 0.0, 0.0], 1.0, 4, [5.0, 5.0, 1.0])
    _, df = run(js, [[400.0, 100.0, 400.0, 400.0, 400.0]], policy="cap", cpus=(10,))
    assert df["start_s"].tolist() == [H, H, 0.0]
    assert (df["deadline"] == "met").all()
