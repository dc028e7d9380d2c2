"""Stage-level policies together: CAP on DAG and GPU jobs, CAP unchanged on one-task jobs, deadlines kept with
room for every job (PCAPS, CAP, CASPER's batch analogue), every batch policy on the DAG and GPU presets."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import batch_policies_without_checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_batch import jobs
from test_batch import run as run_jobs
from test_dag_jobs import dag_jobs, random_stages, run

import carbonsim
from carbonsim.analysis.jobs import segment_table, stage_table
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import JobContext, JobView, must_start
from carbonsim.policies.cap import cap_quota

H = 3600.0


# CAP on DAG and GPU jobs.


def test_cap_quota_caps_running_tasks_stage_by_stage():
    # 10 CPUs, B = 2: at 400 (the forecast maximum) the quota is 2 CPUs, so two of the stage's six tasks run;
    # at 100 (the minimum) it is 10 and the other four start. (The job-level CAP held the whole job back.)
    js = dag_jobs([{"stages": [(6, 1.0, 1, [])]}])
    result, _, _ = run(js, [[400.0, 100.0, 400.0, 400.0]], "cap", cpus=(10,))
    assert segment_table(result)[["start_s", "end_s", "tasks"]].values.tolist() == [[0.0, H, 2], [H, 2 * H, 4]]


def test_cap_never_preempts_running_tasks():
    # All ten 2 h tasks start in the clean hour; the quota falls to 2 at 1 h, and they run on.
    js = dag_jobs([{"stages": [(10, 2.0, 1, [])]}])
    result, _, _ = run(js, [[100.0, 400.0, 400.0, 400.0]], "cap", cpus=(10,))
    assert segment_table(result)[["start_s", "end_s", "tasks"]].values.tolist() == [[0.0, 2 * H, 10]]


def test_cap_quota_counts_gpus_of_each_type():
    # 10 A100s (and 100 CPUs), B = 2 GPUs: at 400 one 2-GPU job runs, at 100 the other two start.
    js = dag_jobs([{"stages": [(1, 1.0, 1, [], 2.0, "A100")]} for _ in range(3)])
    _, df, _ = run(js, [[400.0, 100.0, 400.0, 400.0]], "cap", cpus=(100,), gpus=[{"A100": 10}])
    assert df["start_s"].tolist() == [0.0, H, H]


def test_cap_fills_the_quota_in_its_base_schedulers_order():
    # Quota 2 CPUs at 400: FIFO gives it to the first (3 h) job; the critical-path scheduler (peaked) to the
    # job with less work left.
    js = jobs([0.0, 0.0], [3.0, 1.0], 2, 12.0)
    carbon = [[400.0, 100.0] + [400.0] * 10]
    _, fifo = run_jobs(js, carbon, policy="cap", cpus=(10,))
    assert fifo["start_s"].tolist() == [0.0, H]
    cp = {"name": "cap", "base": "critical_path", "temperature": 0.01}
    _, short_first = run_jobs(js, carbon, policy=cp, cpus=(10,))
    assert short_first["start_s"].tolist() == [H, 0.0]


class LegacyCap:
    """The job-level CAP before stage-level quotas (FIFO at home under a CPU quota), kept as a reference."""

    def __init__(self, min_share: float = 0.2) -> None:
        self.min_share = min_share

    def reset(self, context: JobContext) -> None:
        self.context = context

    def schedule(self, view: JobView) -> dict[int, int]:
        quota = []
        for r, capacity in enumerate(self.context.capacity_cpus):
            forecast = view.forecast_gco2_per_kwh(r, MAX_HORIZON_H)
            c = view.intensity_gco2_per_kwh[r]
            quota.append(
                cap_quota(c, float(forecast.min()), float(forecast.max()), capacity, math.floor(0.2 * capacity))
            )
        capacity = self.context.capacity_cpus
        used = [capacity[r] - view.free_cpus[r] for r in range(len(capacity))]
        out = {}
        for job in view.active:
            if job.running:
                out[job.id] = job.region
                continue
            region = job.region if job.region >= 0 else job.home
            if must_start(job, view.now_s) or used[region] + job.cpus <= quota[region]:
                out[job.id] = region
                used[region] += job.cpus
        return out


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 8),
    data=st.data(),
    capacity=st.integers(4, 12),
    carbon=st.lists(st.sampled_from([50.0, 120.0, 300.0, 450.0]), min_size=8, max_size=8),
)
def test_cap_is_unchanged_on_one_task_jobs(n, data, capacity, carbon):
    arrival = sorted(data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]), min_size=n, max_size=n)))
    duration = data.draw(st.lists(st.sampled_from([0.5, 1.0, 2.5]), min_size=n, max_size=n))
    cpus = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    window = data.draw(st.lists(st.sampled_from([0.0, 1.0, 4.0, 10.0]), min_size=n, max_size=n))
    interruptible = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    home = data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    js = jobs(arrival, duration, cpus, [a + d + w for a, d, w in zip(arrival, duration, window, strict=True)])
    js = jobs(arrival, duration, cpus, js.deadline_s / H, interruptible, home)
    intensities = [carbon, carbon[::-1]]
    new, a = run_jobs(js, intensities, policy="cap", cpus=(capacity, capacity), horizon_h=3.0)
    old, b = run_jobs(js, intensities, policy=LegacyCap(), cpus=(capacity, capacity), horizon_h=3.0)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(segment_table(new), segment_table(old))


# Deadlines with room for every job.

STAGE_POLICIES: list[dict[str, Any]] = [
    {"name": "pcaps"},
    {"name": "pcaps", "draw": "sequential", "gamma": 1.0},
    {"name": "pcaps", "base": "fifo"},
    {"name": "cap"},
    {"name": "cap", "base": "critical_path", "min_share": 0.0},
    {"name": "casper_batch"},
    {"name": "casper_batch", "spatial": False, "horizon_h": 6},
]


@st.composite
def roomy_instances(draw):
    """Random DAG jobs on two regions, each with room for every task of every job at once, feasible deadlines."""
    specs = []
    for _ in range(draw(st.integers(1, 4))):
        stages = random_stages(draw, 4, 3, 2)
        specs.append(
            {
                "arrival_h": draw(st.sampled_from([0.0, 0.3, 1.0, 2.5])),
                "slack": draw(st.sampled_from([1.0, 1.2, 2.0, 4.0])),
                "interruptible": draw(st.booleans()),
                "home": draw(st.integers(0, 1)),
                "stages": stages,
            }
        )
    specs.sort(key=lambda s: s["arrival_h"])
    js = dag_jobs(specs)
    # Deadline = arrival + slack x critical path (slack 1: not a second to lose).
    deadline_h = [
        s["arrival_h"] + s["slack"] * float(d) / H for s, d in zip(specs, js.duration_s.tolist(), strict=True)
    ]
    for s, d in zip(specs, deadline_h, strict=True):
        s["deadline_h"] = d
    room = int(sum(n * c for s in specs for n, _, c, _ in s["stages"]))
    carbon = [draw(st.lists(st.sampled_from([30.0, 100.0, 250.0, 500.0]), min_size=30, max_size=30)) for _ in range(2)]
    moves = draw(
        st.sampled_from([{"migration_gb_per_cpu": 0.0}, {"migration_gb_per_cpu": 0.5, "migration_gbps": 0.01}])
    )
    return specs, room, carbon, moves


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instance=roomy_instances())
def test_with_room_for_every_job_no_deadline_is_missed(instance):
    specs, room, carbon, moves = instance
    for policy in STAGE_POLICIES:
        _, df, s = run(dag_jobs(specs), carbon, policy, cpus=(room, room), batch=moves, horizon_h=4.0)
        assert s["jobs_completed"] == len(specs), policy
        assert (df["deadline"] == "met").all(), (policy, df[["arrival_s", "deadline_s", "end_s"]].values.tolist())


# Every batch policy on the DAG and GPU presets.


@pytest.mark.parametrize(("scenario", "hours"), [("dag_tpch", 0.1), ("gpu_training", 1.0)])
@pytest.mark.parametrize("batch_policy", batch_policies_without_checkpoint())
def test_every_batch_policy_runs_on_the_dag_and_gpu_presets(batch_policy, scenario, hours):
    cfg = carbonsim.load_config([f"scenario={scenario}", f"batch_policy={batch_policy}", f"sim_hours={hours}"])
    s = carbonsim.run(cfg).summary
    assert s["jobs"] > 0 and s["batch_policy"] == batch_policy
    assert s["jobs"] == s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"]
    assert s["tasks"] == s["tasks_completed"] + s["tasks_failed"] + s["tasks_in_flight"]
    assert s["jobs_failed"] == 0
    by_region = sum(s[f"job_energy_kwh_{r.name}"] for r in cfg.scenario.regions)
    assert np.isclose(by_region + s["job_network_kwh"], s["job_energy_kwh"])  # moves' network energy apart


def test_carbonclipper_counts_gpu_power_and_state():
    # A GPU-only job (no CPUs): its energy is its GPU's (the job energy was once CPUs only, 0 here, and every
    # cost undefined). With free moves it runs at once in the clean region, like a CPU job.
    js = dag_jobs([{"deadline_h": 8.0, "stages": [(1, 1.0, 0, [], 1.0, "A100")]}])
    free = {"migration_gb_per_cpu": 0.0, "migration_gb_per_gpu": 0.0}
    _, df, _ = run(js, [[400.0] * 10, [100.0] * 10], "carbonclipper", cpus=(4, 4), gpus=[{"A100": 2}] * 2, batch=free)
    assert (df.iloc[0]["start_s"], df.iloc[0]["region"]) == (0.0, "r1")
    assert df.iloc[0]["carbon_g"] == pytest.approx(400.0 * 1.5 / 1000.0 * 100.0)


@pytest.mark.parametrize(
    ("policy", "interruptible", "starts_h"),
    [
        ("gaia_lowest_window", False, [1.0, 2.0]),
        ("gaia_lowest_slot", False, [2.0, 3.0]),
        ("lets_wait_awhile", False, [1.0, 2.0]),
        ("lets_wait_awhile", True, [1.0, 2.0]),
    ],
)
def test_temporal_baselines_plan_a_dags_critical_path_as_its_length(policy, interruptible, starts_h):
    # Two 1 h tasks, then one 1 h task: critical path 2 h (room for both first tasks), deadline 5 h,
    # intensities 100, 20, 5, 90, 90. Lowest-Window (and Let's Wait Awhile) start the 2 h window at 1 h
    # (mean 12.5); Lowest-Slot starts in the cleanest hour, 2 h (window mean 47.5).
    js = dag_jobs([{"deadline_h": 5.0, "interruptible": interruptible, "stages": [(2, 1.0, 1, []), (1, 1.0, 1, [0])]}])
    result, df, _ = run(js, [[100.0, 20.0, 5.0, 90.0, 90.0] + [90.0] * 5], policy, cpus=(4,))
    assert (stage_table(result)["start_s"] / H).tolist() == starts_h
    assert df.iloc[0]["deadline"] == "met"
