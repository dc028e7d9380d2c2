"""CarbonClipper: the threshold, the robust rule and the advice, on instances small enough to check by hand."""

from __future__ import annotations

import pytest
from scipy.integrate import quad
from test_batch import CPU_W, PUE, H, jobs, run
from test_dag_jobs import KW, Scripted, dag_jobs
from test_dag_jobs import run as run_dag

from carbonsim import ConfigError
from carbonsim.analysis.jobs import segment_table
from carbonsim.core.jobs import must_start
from carbonsim.policies import batch_policy_config
from carbonsim.policies.cap import cap_alpha
from carbonsim.policies.carbonclipper import Threshold, clipper_eta
from carbonsim.policies.stages import job_time_left_s

#: No migration cost: every region is a point of every job's instance.
FREE_MOVES = {"migration_gb_per_cpu": 0.0}
#: The robust algorithm (PCM), without advice.
ROBUST = {"name": "carbonclipper", "epsilon": None}


def test_without_movement_eta_is_online_min_search_and_psi_ends_at_the_lower_bound():
    # D = 0: eta is El-Yaniv et al.'s ratio for one-way trading (CAP's alpha), and psi(1) = L, psi(0) = U / eta.
    for low, high in ((100.0, 500.0), (10.0, 900.0), (299.0, 300.0)):
        th = Threshold.make(low, high, 0.0)
        assert th.eta == pytest.approx(cap_alpha(low, high))
        assert th.psi(0.0) == pytest.approx(high / th.eta)
        assert th.psi(1.0) == pytest.approx(low)
    assert clipper_eta(200.0, 200.0, 0.0) == 1.0


def test_movement_raises_the_ratio_and_the_first_threshold():
    base, moving = Threshold.make(100.0, 500.0, 0.0), Threshold.make(100.0, 500.0, 50.0)
    assert moving.eta > base.eta
    assert moving.psi(0.0) == pytest.approx(500.0 / moving.eta + 50.0)
    with pytest.raises(ValueError, match="at least half"):
        clipper_eta(100.0, 500.0, 250.0)


def test_the_pseudo_cost_integral_is_the_integral_of_psi():
    th = Threshold.make(80.0, 450.0, 30.0)
    for a, b in ((0.0, 1.0), (0.2, 0.35), (0.9, 1.0)):
        assert th.integral(a, b) == pytest.approx(quad(th.psi, a, b)[0], rel=1e-9)
    # psi falls: the threshold for the first unit of work is above the one for the last.
    assert th.psi(0.0) > th.psi(0.5) > th.psi(1.0)


def test_robust_rule_waits_for_the_clean_hour():
    # L = 100, U = 500: psi(0) = U / eta ~ 264, so hour 0 (500) is refused and hour 1 (100 < integral of psi
    # over the whole job) is taken. The job of one hour then runs exactly in hour 1.
    _, df = run(jobs([0.0], 1.0, 2, 3.0), [[500.0, 100.0, 500.0]], policy=ROBUST, batch=FREE_MOVES)
    row = df.iloc[0]
    assert (row["start_s"], row["end_s"]) == (H, 2 * H)
    assert row["carbon_g"] == pytest.approx(2 * CPU_W * PUE * 100.0 / 1000.0)


def test_flat_intensity_means_the_compulsory_phase_runs_the_job_at_its_latest_start():
    # L = U: running never beats the threshold (pseudo-cost 0), so the job waits until it must run, and
    # still meets its deadline exactly.
    _, df = run(jobs([0.0], 1.5, 1, 4.0), [[300.0] * 5], policy=ROBUST, batch=FREE_MOVES, horizon_h=5.0)
    row = df.iloc[0]
    assert row["start_s"] == pytest.approx(2.5 * H)
    assert row["end_s"] == pytest.approx(4.0 * H)
    assert row["deadline"] == "met"


def test_free_moves_take_the_job_to_the_clean_region():
    _, df = run(jobs([0.0], 1.0, 1, 3.0), [[500.0] * 4, [100.0] * 4], policy=ROBUST, cpus=(4, 4), batch=FREE_MOVES)
    row = df.iloc[0]
    assert (row["region"], row["migrations"], row["start_s"]) == ("r1", 1, 0.0)


def test_a_move_dearer_than_half_the_highest_cost_is_never_made():
    # 100 GB per CPU at 0.06 kWh/GB for a job of 3.54 Wh: moving costs far more than running anywhere.
    dear = {"migration_gb_per_cpu": 100.0, "network_kwh_per_gb": 0.06}
    _, df = run(jobs([0.0], 1.0, 1, 3.0), [[500.0] * 4, [100.0] * 4], policy=ROBUST, cpus=(4, 4), batch=dear)
    row = df.iloc[0]
    assert (row["region"], row["migrations"]) == ("r0", 0)


def test_advice_pulls_the_robust_rule_toward_the_forecast_plan():
    # Hours: 400, 300, 100. Robust PCM (L=100, U=400, psi(0) ~ 232) refuses 400 and 300 and runs in hour 2.
    # So does ST-CLIP with perfect advice (the advice is the cheapest hour) for any epsilon.
    carbon = [[400.0, 300.0, 100.0, 400.0]]
    for epsilon in (None, 0.0, 1.0):
        policy = {"name": "carbonclipper", "epsilon": epsilon}
        _, df = run(jobs([0.0], 1.0, 1, 3.0), carbon, policy=policy, batch=FREE_MOVES)
        assert df.iloc[0]["start_s"] == 2 * H, epsilon
    # Where the robust rule takes a merely good hour (hour 0 at 170, below the mean threshold ~181 with
    # L=100, U=450), the consistency budget of a trusted advice (epsilon=0) makes it wait for the advice's
    # hour (100).
    carbon = [[170.0, 450.0, 100.0, 450.0]]
    _, robust = run(jobs([0.0], 1.0, 1, 3.0), carbon, policy=ROBUST, batch=FREE_MOVES)
    trusted_policy = {"name": "carbonclipper", "epsilon": 0.0}
    _, trusted = run(jobs([0.0], 1.0, 1, 3.0), carbon, policy=trusted_policy, batch=FREE_MOVES)
    assert robust.iloc[0]["start_s"] == 0.0
    assert trusted.iloc[0]["start_s"] == 2 * H
    assert trusted.iloc[0]["carbon_g"] < robust.iloc[0]["carbon_g"]


def test_non_interruptible_jobs_start_once_and_run_through():
    _, df = run(
        jobs([0.0], 2.0, 1, 5.0, interruptible=False),
        [[500.0, 500.0, 100.0, 100.0, 500.0, 500.0]],
        policy=ROBUST,
        batch=FREE_MOVES,
        horizon_h=6.0,
    )
    row = df.iloc[0]
    assert (row["start_s"], row["end_s"], row["suspensions"]) == (2 * H, 4 * H, 0)


def test_epsilon_is_validated():
    with pytest.raises(ConfigError, match="epsilon"):
        batch_policy_config({"name": "carbonclipper", "epsilon": -1.0})
    assert batch_policy_config({"name": "carbonclipper", "epsilon": None}).epsilon is None


def test_a_stage_wider_than_the_cluster_enters_the_compulsory_phase_in_time():
    # Eight 1 h one-CPU tasks on a 4-CPU cluster: two waves, 2 h, though the critical path is 1 h. Deadline
    # 4 h; intensity 500 for three hours, then 100. Starting at deadline - critical path (3 h), as the
    # compulsory phase once did, runs 3-5 h and misses by an hour:
    wide = dag_jobs([{"deadline_h": 4.0, "stages": [(8, 1.0, 1, [])]}])
    carbon = [[500.0] * 3 + [100.0] * 5]
    late = Scripted(lambda v: {j.id: 0 for j in v.active if j.running or must_start(j, v.now_s)})
    result, df, _ = run_dag(wide, carbon, late, cpus=(4,), batch=FREE_MOVES, horizon_h=8.0)
    segments = segment_table(result)[["start_s", "end_s", "tasks"]].values.tolist()
    assert segments == [[3 * H, 4 * H, 4], [4 * H, 5 * H, 4]]
    assert df.iloc[0]["deadline"] == "missed"
    # CarbonClipper needs Graham's bound, 1 h + (8 h - 1 h) / 4 = 2.75 h, so its latest start is 1.25 h and
    # the last sure call before it is at 1 h: its compulsory phase runs both waves, 1-3 h, in time.
    for policy in (ROBUST, {"name": "carbonclipper", "epsilon": 1.0}):
        result, df, _ = run_dag(wide, carbon, policy, cpus=(4,), batch=FREE_MOVES, horizon_h=8.0)
        segments = segment_table(result)[["start_s", "end_s", "tasks"]].values.tolist()
        assert segments == [[H, 2 * H, 4], [2 * H, 3 * H, 4]], policy
        assert df.iloc[0]["deadline"] == "met"
        assert df.iloc[0]["carbon_g"] == pytest.approx(8 * KW * 500.0)


def test_time_left_is_the_critical_path_with_room_and_grahams_bound_without():
    # Eight 1 h tasks, then one 2 h task: 9 tasks, critical path 3 h, work 10 h (as the engine reports them).
    wide = dag_jobs([{"stages": [(8, 1.0, 1, []), (1, 2.0, 1, [0])]}])
    seen = []
    run_dag(wide, [[300.0] * 30], Scripted(lambda v: seen.append(v.active[0]) or {0: 0}), cpus=(8,), horizon_h=1.0)
    job = seen[0]
    assert (job.remaining_s, job.work_s, job.tasks) == (3 * H, 10 * H, 9)
    assert job_time_left_s(job, 9) == job_time_left_s(job, 20) == 3 * H  # a slot for every task
    assert job_time_left_s(job, 4) == pytest.approx(3 * H + 7 * H / 4)
    assert job_time_left_s(job, 1) == pytest.approx(10 * H)  # one at a time: all the work


def test_a_dag_wider_than_the_cluster_runs_in_clean_hours_before_its_compulsory_phase():
    # The same eight tasks, due at 10 h, intensity 500 except for hours 2 and 3 (100). The job fits where the
    # whole cluster is free (its full rate), and PCM runs both waves in the clean hours (L = 100, U = 500).
    wide = dag_jobs([{"deadline_h": 10.0, "stages": [(8, 1.0, 1, [])]}])
    _, df, _ = run_dag(wide, [[500.0, 500.0, 100.0, 100.0] + [500.0] * 8], ROBUST, cpus=(4,), batch=FREE_MOVES)
    assert (df.iloc[0]["start_s"], df.iloc[0]["end_s"], df.iloc[0]["deadline"]) == (2 * H, 4 * H, "met")
    assert df.iloc[0]["carbon_g"] == pytest.approx(8 * KW * 100.0)
    # With a clean region and free moves, both stages of a wider DAG run there at once.
    wider = dag_jobs([{"deadline_h": 10.0, "stages": [(8, 1.0, 1, []), (2, 1.0, 1, [0])]}])
    _, df, _ = run_dag(wider, [[500.0] * 12, [100.0] * 12], ROBUST, cpus=(4, 4), batch=FREE_MOVES)
    assert (df.iloc[0]["region"], df.iloc[0]["start_s"], df.iloc[0]["end_s"]) == ("r1", 0.0, 3 * H)
    assert df.iloc[0]["carbon_g"] == pytest.approx(10 * KW * 100.0)
