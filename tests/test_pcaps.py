"""PCAPS: the threshold, the carbon-scaled grants, the base schedulers and their draws, hand-checked DAGs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import run_trace
from hypothesis import given
from hypothesis import strategies as st
from test_dag_jobs import KW, dag_jobs, run, scenario

from carbonsim import ConfigError
from carbonsim.analysis.jobs import job_table, segment_table, stage_table
from carbonsim.policies import batch_policy_config, make_batch_policy
from carbonsim.policies.pcaps import granted_tasks, psi
from carbonsim.policies.scorers import (
    FIFO_STEP,
    SCORERS,
    draw_order,
    relative_importance,
    sequential_draws,
    softmax,
)

H = 3600.0


# The threshold.


@given(
    low=st.floats(0.0, 500.0),
    spread=st.floats(0.0, 500.0),
    gamma=st.floats(0.0, 1.0),
    r=st.floats(0.0, 1.0),
    dr=st.floats(0.0, 1.0),
)
def test_psi_runs_from_the_convex_combination_to_u_and_rises_with_importance(low, spread, gamma, r, dr):
    high = low + spread
    assert psi(1.0, gamma, low, high) == pytest.approx(high)  # the most important stage always runs (c <= U)
    if gamma > 0:
        assert psi(0.0, gamma, low, high) == pytest.approx(gamma * low + (1 - gamma) * high)
    r2 = min(1.0, r + dr)
    assert psi(r, gamma, low, high) <= psi(r2, gamma, low, high) + 1e-9
    assert gamma * low + (1 - gamma) * high - 1e-9 <= psi(r, gamma, low, high) <= high + 1e-9


def test_psi_at_the_endpoints_of_gamma():
    # gamma = 0: Psi = U whatever the importance (carbon-agnostic: c <= U always).
    assert [psi(r, 0.0, 100.0, 400.0) for r in (0.0, 0.3, 1.0)] == [400.0, 400.0, 400.0]
    # gamma = 1: Psi = L + (U - L) (e^r - 1) / (e - 1).
    assert psi(0.5, 1.0, 100.0, 400.0) == pytest.approx(100.0 + 300.0 * math.expm1(0.5) / math.expm1(1.0))
    # More carbon awareness lowers the threshold of every stage but the most important one.
    assert psi(0.2, 0.9, 100.0, 400.0) < psi(0.2, 0.5, 100.0, 400.0) < psi(0.2, 0.1, 100.0, 400.0)


def test_granted_tasks_follow_the_authors_scaling():
    # c well above L: e^(gamma (L - c)) is tiny, so n' = floor(n - gamma (n - 1)).
    assert [granted_tasks(n, 0.5, 95.0, 400.0) for n in (1, 2, 10, 100)] == [1, 1, 5, 50]
    assert granted_tasks(10, 0.0, 95.0, 400.0) == 10  # gamma = 0: every task
    assert granted_tasks(10, 1.0, 95.0, 400.0) == 1
    # c at L: f = 1 - gamma = 0.5, ceil(5) = 5, n' = floor(10 - 0.5 x 5) = 7.
    assert granted_tasks(10, 0.5, 95.0, 95.0) == 7


def test_pcaps_config_is_validated():
    for bad, match in (
        ({"gamma": 1.5}, r"batch_policy\.gamma: expected a number in \[0, 1\]"),
        ({"draw": "ranked"}, r"batch_policy\.draw: expected sample or sequential"),
        ({"base": "decima"}, r"batch_policy\.base: expected one of critical_path, fifo, learned, got 'decima'"),
        ({"temperature": 0.0}, r"batch_policy\.temperature: expected a number > 0"),
        ({"low_factor": 0.0}, r"batch_policy\.low_factor: expected a number in \(0, 1\]"),
    ):
        with pytest.raises(ConfigError, match=match):
            batch_policy_config({"name": "pcaps", **bad})


# Base schedulers and draws.


def test_sequential_draws_renormalise_over_the_rows_left():
    logits = np.log(np.array([0.5, 0.25, 0.125, 0.125]))
    rows = np.arange(4)
    for seed in range(20):
        left = set(range(4))
        for row, r in sequential_draws(logits, rows, np.random.default_rng(seed)):
            assert r == pytest.approx(math.exp(logits[row] - max(logits[k] for k in left)))
            left.remove(row)
        assert not left
    # The last row drawn is the only one left: importance 1.
    assert list(sequential_draws(logits, np.array([3]), np.random.default_rng(0))) == [(3, 1.0)]


def test_draw_order_samples_the_softmax():
    # Gumbel-top-k: the first row drawn follows softmax(logits).
    logits = np.log(np.array([0.6, 0.3, 0.1]))
    rng = np.random.default_rng(7)
    first = np.bincount([int(draw_order(logits, np.arange(3), rng)[0]) for _ in range(20_000)], minlength=3)
    np.testing.assert_allclose(first / first.sum(), [0.6, 0.3, 0.1], atol=0.01)
    assert draw_order(logits, np.array([2, 0]), None).tolist() == [0, 2]  # without a stream: by logit
    np.testing.assert_allclose(relative_importance(logits, np.arange(3)), [1.0, 0.5, 1 / 6])
    np.testing.assert_allclose(softmax(logits), [0.6, 0.3, 0.1])


def _view_of(specs, scorer_name, **params):
    """Logits of a base scheduler over the first view of a run of ``specs``."""
    cfg = batch_policy_config({"name": "pcaps", "base": scorer_name, **params})
    scorer = SCORERS[scorer_name](cfg)
    seen = []

    class Record:
        def reset(self, context):
            pass

        def schedule(self, view):
            if not seen:
                seen.append((scorer.logits(view), view.stages.job.tolist(), view.stages.stage.tolist()))
            return {j.id: j.home for j in view.active}

    run(dag_jobs(specs), [[100.0]], Record(), cpus=(8,))
    return seen[0]


def test_fifo_is_degenerate_in_arrival_then_topological_order():
    logits, jobs, stages = _view_of(
        [{"stages": [(1, 1.0, 1, []), (1, 1.0, 1, [])]}, {"stages": [(1, 1.0, 1, [])]}], "fifo"
    )
    assert (jobs, stages) == ([0, 0, 1], [0, 1, 0])
    assert logits.tolist() == [0.0, -FIFO_STEP, -2 * FIFO_STEP]
    assert relative_importance(logits, np.arange(3)).tolist() == [1.0, 0.0, 0.0]


def test_critical_path_favours_the_critical_stage_and_the_shorter_job():
    # Job 0: A (3 h) and B (1 h) side by side, both before C (1 h): paths 4 h and 2 h, work 5 h.
    # Job 1: one 1 h stage: path 1 h (its critical path), work 1 h.
    specs = [
        {"stages": [(1, 3.0, 1, []), (1, 1.0, 1, []), (1, 1.0, 1, [0, 1])]},
        {"stages": [(1, 1.0, 1, [])]},
    ]
    logits, _, _ = _view_of(specs, "critical_path", temperature=0.25, work_weight=1.0)
    # (path / job path - work / max work) / temperature.
    np.testing.assert_allclose(logits, [(1 - 1) / 0.25, (0.5 - 1) / 0.25, (1 - 0.2) / 0.25])
    np.testing.assert_allclose(relative_importance(logits, np.arange(3)), np.exp([-3.2, -5.2, 0.0]))
    alone, _, _ = _view_of(specs, "critical_path", temperature=0.5, work_weight=0.0)
    np.testing.assert_allclose(alone, [2.0, 1.0, 2.0])


# PCAPS on hand-checked DAGs.

# A (1 task, 3 h) and B (1 task, 1 h) run side by side, then C (1 h). One region of 4 CPUs, intensities
# 400, 400, 100, then 400: L = 0.95 x 100 = 95, U = 400.
THREE = [{"deadline_h": 8.0, "stages": [(1, 3.0, 1, []), (1, 1.0, 1, []), (1, 1.0, 1, [0, 1])]}]
CARBON = [[400.0, 400.0, 100.0] + [400.0] * 7]


def test_pcaps_defers_the_stage_with_slack_to_the_clean_hour_and_runs_the_critical_one():
    # At 0 h: r(B) = exp((2/4 - 1) / 0.25) = e^-2, Psi = 247.5 + 152.5 (e^(r/2) - 1) / (e^(1/2) - 1) = 264 < 400:
    # B waits. At 1 h: r(B) = exp((2/3 - 1) / 0.25), Psi = 281 < 400: it waits again. At 2 h, c = 100 <= Psi:
    # B runs; A (r = 1) ran from the start, and C follows A at 3 h.
    result, df, _ = run(dag_jobs(THREE), CARBON, {"name": "pcaps"}, cpus=(4,))
    assert stage_table(result)["start_s"].tolist() == [0.0, 2 * H, 3 * H]
    assert df.iloc[0]["carbon_g"] == pytest.approx(KW * (400 + 400 + 100 + 100 + 400))
    agnostic, ag, _ = run(dag_jobs(THREE), CARBON, "carbon_agnostic", cpus=(4,))
    assert stage_table(agnostic)["start_s"].tolist() == [0.0, 0.0, 3 * H]
    assert ag.iloc[0]["carbon_g"] == pytest.approx(KW * (400 + 400 + 100 + 400 + 400))
    assert df.iloc[0]["end_s"] == ag.iloc[0]["end_s"] == 4 * H  # B had the slack: no delay to the job


def test_pcaps_with_gamma_zero_is_its_base_scheduler():
    zero, _, _ = run(dag_jobs(THREE), CARBON, {"name": "pcaps", "gamma": 0.0}, cpus=(4,))
    agnostic, _, _ = run(dag_jobs(THREE), CARBON, "carbon_agnostic", cpus=(4,))
    pd.testing.assert_frame_equal(segment_table(zero), segment_table(agnostic))


def test_the_deadline_forces_a_deferred_stage():
    # Deadline 4 h = the critical path: A must start at once; B's latest start is 4 - 2 = 2 h, before the
    # clean hour (3 h), so B runs at 2 h at 400 and the job ends exactly at its deadline.
    specs = [{**THREE[0], "deadline_h": 4.0}]
    carbon = [[400.0, 400.0, 400.0, 100.0] + [400.0] * 6]
    result, df, _ = run(dag_jobs(specs), carbon, {"name": "pcaps"}, cpus=(4,))
    assert stage_table(result)["start_s"].tolist() == [0.0, 2 * H, 3 * H]
    assert df.iloc[0]["deadline"] == "met" and df.iloc[0]["end_s"] == 4 * H


def test_granted_executors_stay_with_their_stage():
    # Ten 1 h tasks on ten CPUs at a steady 300 g/kWh: PCAPS grants floor(10 - 0.5 x 9) = 5 executors and the
    # stage runs in two waves of five; without the scaling it runs at once.
    js = dag_jobs([{"stages": [(10, 1.0, 1, [])]}])
    scaled, _, _ = run(js, [[300.0] * 4], {"name": "pcaps"}, cpus=(10,))
    assert segment_table(scaled)[["start_s", "end_s", "tasks"]].values.tolist() == [[0.0, H, 5], [H, 2 * H, 5]]
    plain, _, _ = run(js, [[300.0] * 4], {"name": "pcaps", "scale_executors": False}, cpus=(10,))
    assert segment_table(plain)[["start_s", "end_s", "tasks"]].values.tolist() == [[0.0, H, 10]]


def test_jobs_stay_in_their_home_region():
    specs = [
        {"home": 0, "stages": [(2, 1.0, 1, []), (1, 1.0, 1, [0])]},
        {"home": 1, "stages": [(1, 1.0, 1, []), (2, 0.5, 1, [0])]},
    ]
    result, df, _ = run(dag_jobs(specs), [[400.0] * 8, [50.0] * 8], {"name": "pcaps"}, cpus=(4, 4))
    assert df["region"].tolist() == ["r0", "r1"] and (df["migrations"] == 0).all()
    assert set(stage_table(result)["regions"]) == {"r0", "r1"}


def _start_hours(draw: str, seed: int) -> list[float]:
    # Two one-task jobs: a 1 h one and a 3 h one (importance e^(-(1 - 1/3) / 0.25) = 0.07); intensity 400 now,
    # 100 in an hour. Which of them start at 0 h?
    js = dag_jobs([{"stages": [(1, 1.0, 1, [])]}, {"stages": [(1, 3.0, 1, [])]}])
    result = run_trace(
        scenario((4,)),
        [],
        carbon=[[400.0, 100.0] + [400.0] * 8],
        horizon_s=H,
        max_drain_s=24 * H,
        jobs=js,
        batch_policy={"name": "pcaps", "draw": draw},
        seed=seed,
    )
    return (job_table(result)["start_s"] / H).tolist()


def test_sample_defers_the_less_important_job_and_sequential_stops_at_the_first_deferral():
    # sample: the 1 h job (r = 1) starts at once and the 3 h one waits for the clean hour, whatever the draw.
    assert {tuple(_start_hours("sample", seed)) for seed in range(6)} == {(0.0, 1.0)}
    # sequential (the authors' event loop): if the 1 h job is drawn first it runs and the other, then the
    # only one left, has r = 1 and runs too; if the 3 h job is drawn first it is deferred and the rest of the
    # epoch idles, so neither starts before the next epoch. Both happen over a few seeds.
    outcomes = {tuple(_start_hours("sequential", seed)) for seed in range(12)}
    assert outcomes <= {(0.0, 0.0), (1.0, 1.0)} and len(outcomes) == 2


def test_pcaps_runs_are_deterministic():
    specs = [
        {"arrival_h": 0.0, "stages": [(3, 0.5, 1, []), (2, 1.0, 2, [0]), (1, 0.25, 1, [0, 1])]},
        {"arrival_h": 0.5, "home": 1, "stages": [(4, 0.5, 1, []), (1, 1.0, 1, [0])]},
    ]
    carbon = [[300.0, 100.0, 250.0, 80.0] * 3, [60.0, 200.0] * 6]
    for draw in ("sample", "sequential"):
        a = run(dag_jobs(specs), carbon, {"name": "pcaps", "draw": draw}, cpus=(4, 3))
        b = run(dag_jobs(specs), carbon, {"name": "pcaps", "draw": draw}, cpus=(4, 3))
        pd.testing.assert_frame_equal(a[1], b[1])
        pd.testing.assert_frame_equal(segment_table(a[0]), segment_table(b[0]))


def test_a_policy_object_keeps_its_counters():
    policy = make_batch_policy(batch_policy_config({"name": "pcaps"}))
    run(dag_jobs(THREE), CARBON, policy, cpus=(4,))
    assert policy.draws >= 3 and policy.deferrals == 2  # B at 0 h and at 1 h
