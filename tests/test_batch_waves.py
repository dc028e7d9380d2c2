"""Let's Wait Awhile, GAIA and CarbonScaler plan a DAG wider than its cluster with the time its waves take."""

from __future__ import annotations

import pytest
from test_batch import jobs
from test_batch import run as run_jobs
from test_dag_jobs import KW, Scripted, dag_jobs
from test_dag_jobs import run as run_dag

from carbonsim.analysis.jobs import segment_table
from carbonsim.core.jobs import must_start
from carbonsim.policies.stages import must_run

H = 3600.0
#: Eight 1 h one-CPU tasks on a 4-CPU cluster: two waves, 2 h, though the critical path is 1 h. Graham's
#: bound: 1 h + (8 h - 1 h) / 4 = 2.75 h. Deadline 4 h.
WIDE = {"deadline_h": 4.0, "stages": [(8, 1.0, 1, [])]}
#: Intensity falling hour by hour: the job's cheapest hour is its last before the deadline.
FALLING = [[500.0, 300.0, 200.0, 100.0] + [100.0] * 4]


def segments(result) -> list[list[float]]:
    return segment_table(result)[["start_s", "end_s", "tasks"]].values.tolist()


def test_a_plan_by_the_critical_path_misses_the_deadline_of_a_dag_that_runs_in_waves():
    # What Let's Wait Awhile did: one hour of work (the critical path) in the cheapest hour, 3-4 h, also
    # the latest start by the critical path. The second wave ends at 5 h.
    by_path = Scripted(lambda v: {j.id: 0 for j in v.active if v.now_s >= 3 * H or must_start(j, v.now_s)})
    result, df, _ = run_dag(dag_jobs([WIDE]), FALLING, by_path, cpus=(4,), horizon_h=8.0)
    assert segments(result) == [[3 * H, 4 * H, 4], [4 * H, 5 * H, 4]]
    assert df.iloc[0]["deadline"] == "missed"


@pytest.mark.parametrize("policy", ["lets_wait_awhile", "carbonscaler"])
def test_a_dag_wider_than_the_cluster_is_planned_with_its_waves_and_meets_its_deadline(policy):
    # 2.75 h of work in the cheapest slots before 4 h: hours 3, 2 and 1 (plan [1 h, 4 h)). The job runs
    # both waves at 1-3 h, in time, at 300 then 200.
    result, df, _ = run_dag(dag_jobs([WIDE]), FALLING, policy, cpus=(4,), horizon_h=8.0)
    assert segments(result) == [[H, 2 * H, 4], [2 * H, 3 * H, 4]]
    assert df.iloc[0]["deadline"] == "met"
    assert df.iloc[0]["carbon_g"] == pytest.approx(4 * KW * (300.0 + 200.0))


@pytest.mark.parametrize("policy", ["gaia_carbon_time", "gaia_lowest_window"])
def test_gaia_starts_a_dag_wider_than_the_cluster_by_its_latest_start_with_waves(policy):
    # Its waiting window ends at 4 h - 2.75 h = 1.25 h: the starts are 0 and 1 h, and the later, cleaner
    # one is taken. By the critical path (1 h) the window reached 3 h, whose hour is the cheapest and scores
    # best (carbon-time: 400 / 4 h against 200 / 3 h at 2 h), and the second wave ended at 5 h.
    carbon = [[500.0, 400.0, 300.0, 100.0] + [100.0] * 4]
    result, df, _ = run_dag(dag_jobs([WIDE]), carbon, policy, cpus=(4,), horizon_h=8.0)
    assert segments(result) == [[H, 2 * H, 4], [2 * H, 3 * H, 4]]
    assert df.iloc[0]["deadline"] == "met"


def test_must_run_is_must_start_for_one_task_and_earlier_for_waves():
    seen = []
    wide = dag_jobs([{"deadline_h": 4.5, "stages": [(12, 1.0, 1, [])]}])
    run_dag(wide, [[300.0] * 8], Scripted(lambda v: seen.append(v.active[0]) or {0: 0}), cpus=(4,), horizon_h=1.0)
    job = seen[0]
    need = 3.75 * H
    assert not must_start(job, 0.0)
    assert must_run(job, 0.0, need, 1.0)  # latest start 0.75 h, before the next call at 1 h
    assert not must_run(job, 0.0, job.remaining_s, 1.0)  # no waves: must_start
    assert must_run(job, 0.0, job.remaining_s / 2, 2.0, rate=2.0) == must_start(job, 0.0, 2.0)


@pytest.mark.parametrize("policy", ["lets_wait_awhile", "gaia_carbon_time", "gaia_lowest_window", "carbonscaler"])
def test_one_task_jobs_are_planned_by_their_duration_as_before(policy):
    # A 2 h job due at 4 h, cleanest hours 1 and 2: as before the fix (one task: its duration is its time).
    carbon = [[100.0, 10.0, 20.0, 90.0, 90.0]]
    _, df = run_jobs(jobs([0.0], 2.0, 4, 4.0, interruptible=False), carbon, policy=policy)
    assert (df.iloc[0]["start_s"], df.iloc[0]["end_s"], df.iloc[0]["deadline"]) == (H, 3 * H, "met")
