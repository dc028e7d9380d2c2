"""The clairvoyant bound with precedence: hand-solved DAGs, GPUs, the independent-job case and, by property,
never above any policy that met every deadline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import batch_policies_without_checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from test_dag_jobs import FREE_MOVES, KW, PUE, H, Scripted, dag_jobs, run, scenario

import carbonsim
from carbonsim.config import JOB_BOUNDS
from carbonsim.core.jobs import Jobs, speedups
from carbonsim.core.signals import HourlySignal
from carbonsim.core.world import compile_world
from carbonsim.job_bound import batch_bound
from carbonsim.runner import prepare


def bound(js: Jobs, carbon, cpus=(4,), gpus=None, rule="any", batch=None, **kw):
    values = np.asarray(carbon, dtype=float)
    world = compile_world(scenario(cpus, gpus, batch), 0, values.shape[1], carbon=HourlySignal(values, "carbon"))
    return batch_bound(world, js, rule, **kw)


def stages_to(regions, after=None):
    """Each runnable stage ``k`` in ``regions[k]``, and only from ``after[k]`` hours on (a scripted schedule)."""
    after = after or [0.0] * len(regions)
    return Scripted(
        lambda v: {
            (int(j), int(k)): regions[int(k)]
            for j, k in zip(v.stages.job, v.stages.stage, strict=True)
            if v.now_s >= after[int(k)] * H
        }
    )


def test_two_stages_cannot_share_the_clean_hour():
    # A -> B, one 1-CPU task of 1 h each, due at 3 h; r0 costs 100, 10, 50 and r1 20, 200, 300. A may run in
    # [0, 2 h], B in [1 h, 3 h]. Without precedence both take hour 1 at 10 (20 in all); with it they share
    # hour 1 (a + b <= 1 h of it), and the best is A in r1's hour 0 (20) and B in hour 1 (10): 30, which a
    # real schedule reaches. At home: A in hour 1 (10), B in hour 2 (50).
    js = dag_jobs([{"deadline_h": 3.0, "stages": [(1, 1.0, 1, []), (1, 1.0, 1, [0])]}])
    carbon = [[100.0, 10.0, 50.0], [20.0, 200.0, 300.0]]
    any_ = bound(js, carbon, cpus=(4, 4))
    assert any_.carbon_g == pytest.approx(KW * 30.0)
    assert any_.energy_kwh == pytest.approx(2 * KW) and any_.late_s == 0.0 and any_.precedence_rows > 0
    assert bound(js, carbon, cpus=(4, 4), rule="home").carbon_g == pytest.approx(KW * 60.0)
    assert bound(js, carbon, cpus=(4, 4), precedence=False).carbon_g == pytest.approx(KW * 20.0)
    _, df, _ = run(js, carbon, stages_to([1, 0]), cpus=(4, 4), batch=FREE_MOVES)
    assert df.iloc[0]["deadline"] == "met" and df.iloc[0]["carbon_g"] == pytest.approx(KW * 30.0)


def test_a_chain_of_three_stages_shares_each_hour():
    # A -> B -> C, one 1-CPU task of 0.5 h each, due at 3 h; r0 costs 100, 10, 100, r1 60 throughout. The
    # chain puts at most 1 h of its 1.5 h of work into the clean hour 1 (pairs alone would let all three
    # stages fill it: 15); the other 0.5 h costs at least 60: 10 + 30 = 40, reached by A in r1 at [0, 0.5 h]
    # and B, C in r0's hour 1.
    js = dag_jobs([{"deadline_h": 3.0, "stages": [(1, 0.5, 1, []), (1, 0.5, 1, [0]), (1, 0.5, 1, [1])]}])
    carbon = [[100.0, 10.0, 100.0], [60.0, 60.0, 60.0]]
    assert bound(js, carbon, cpus=(4, 4)).carbon_g == pytest.approx(KW * 40.0)
    assert bound(js, carbon, cpus=(4, 4), precedence=False).carbon_g == pytest.approx(KW * 15.0)
    _, df, _ = run(js, carbon, stages_to([1, 0, 0], after=[0.0, 1.0, 1.0]), cpus=(4, 4), batch=FREE_MOVES)
    assert df.iloc[0]["deadline"] == "met" and df.iloc[0]["carbon_g"] == pytest.approx(KW * 40.0)


def test_a_child_works_in_an_hour_only_as_far_as_its_parent_is_done():
    # A (1 CPU, 1 h) -> B (2 CPUs, 1 h), due at 4 h, one region at 100, 10, 20, 100: A may run in hours 0-2,
    # B in hours 1-3. With a_t, b_t the hours of A and B in hour t, hour sharing gives a1 + b1 <= 1 and
    # a2 + b2 <= 1, and the row across hours b1 <= A's fraction done by the end of hour 1 = a0 + a1. The
    # optimum of 100 a0 + 10 a1 + 20 a2 + 20 b1 + 40 b2 + 200 b3 is a1 = a2 = b1 = b2 = 1/2: 45 (without the
    # row across hours: B in hour 1, A in hour 2, 40; without precedence: 30). No schedule reaches it: the
    # best runs A in hour 1 and B in hour 2 (50).
    js = dag_jobs([{"deadline_h": 4.0, "stages": [(1, 1.0, 1, []), (1, 1.0, 2, [0])]}])
    carbon = [[100.0, 10.0, 20.0, 100.0]]
    b = bound(js, carbon)
    assert b.carbon_g == pytest.approx(KW * 45.0)
    assert bound(js, carbon, precedence=False).carbon_g == pytest.approx(KW * 30.0)
    _, df, _ = run(js, carbon, stages_to([0, 0], after=[1.0, 2.0]))
    assert df.iloc[0]["carbon_g"] == pytest.approx(KW * 50.0)


def test_gpu_stages_take_their_type_and_any_type_the_cheapest_with_room():
    # r0: one A100 (400 W) and one H100 (700 W). Two jobs of one 1-GPU task of any type for 1 h, due at 1 h:
    # one on each type. A job needing an H100 (and 2 CPUs) runs on it whatever the A100 costs.
    gpus = [{"A100": 1, "H100": 1}]
    any_type = {"deadline_h": 1.0, "stages": [(1, 1.0, 0, [], 1.0, "")]}
    two = bound(dag_jobs([any_type, any_type]), [[100.0]], cpus=(4,), gpus=gpus)
    assert two.carbon_g == pytest.approx((400.0 + 700.0) * PUE / 1000.0 * 100.0)
    one = bound(dag_jobs([any_type]), [[100.0]], cpus=(4,), gpus=gpus)
    assert one.energy_kwh == pytest.approx(400.0 * PUE / 1000.0)
    h100 = bound(dag_jobs([{"deadline_h": 1.0, "stages": [(1, 1.0, 2, [], 1.0, "H100")]}]), [[100.0]], gpus=gpus)
    assert h100.energy_kwh == pytest.approx(700.0 * PUE / 1000.0 + 2 * KW)
    # A type no region has: the job fails under every policy and is left out.
    assert bound(dag_jobs([{"stages": [(1, 1.0, 0, [], 1.0, "H100")]}]), [[100.0]], gpus=[{"A100": 1}]).excluded == 1


def test_unmeetable_dag_deadlines_give_minimal_late_work():
    # One CPU; two jobs A -> B of 0.5 h stages, both due at 1 h: 2 h of work for 1 h of capacity.
    spec = {"deadline_h": 1.0, "stages": [(1, 0.5, 1, []), (1, 0.5, 1, [0])]}
    b = bound(dag_jobs([spec, spec]), [[100.0, 10.0, 10.0]], cpus=(1,))
    assert b.late_s == pytest.approx(H)
    assert b.carbon_g == pytest.approx(KW * (100.0 + 10.0))


def _job_level_bound(world, jobs: Jobs, rule: str) -> float:
    """The job-level fluid bound of independent jobs, built job by job as carbonsim's first batch bound was."""
    sc = world.scenario
    capacity = np.array([r.batch_cpus for r in sc.regions], dtype=float)
    pue = np.array([r.pue for r in sc.regions])
    hours = world.carbon.hours
    end = hours * H
    marginal = np.diff(speedups(sc.batch.max_scale, sc.batch.parallel_fraction))
    cost, work, eq_row, slot_row, slot_len, cap_row, cpu = [], [], [], [], [], [], []
    fits = (jobs.cpus <= capacity.max()) & (jobs.arrival_s + jobs.duration_s <= end)
    keep = np.flatnonzero(fits).tolist()
    for row, j in enumerate(keep):
        a, d = jobs.arrival_s[j], min(jobs.deadline_s[j], end)
        home = int(jobs.home[j])
        at_home = rule == "home" and capacity[home] >= jobs.cpus[j]
        regions = [home] if at_home else np.flatnonzero(capacity >= jobs.cpus[j]).tolist()
        for t in range(int(a // H), hours):
            length = min(d, (t + 1) * H) - max(a, t * H)
            if length <= 0:
                continue
            for m in marginal:
                slot_len.append(length)
                for r in regions:
                    cost.append(jobs.cpus[j] * sc.batch.cpu_busy_w * pue[r] * world.carbon.values[r, t] / 3.6e6)
                    work.append(m)
                    eq_row.append(row)
                    slot_row.append(len(slot_len) - 1)
                    cap_row.append(r * hours + t)
                    cpu.append(jobs.cpus[j])
    n = len(cost)
    cols = np.arange(n)
    a_eq = sp.csr_matrix((work, (eq_row, cols)), shape=(len(keep), n))
    a_ub = sp.vstack(
        [
            sp.csr_matrix((np.ones(n), (slot_row, cols)), shape=(len(slot_len), n)),
            sp.csr_matrix((cpu, (cap_row, cols)), shape=(capacity.size * hours, n)),
        ]
    )
    b_ub = np.concatenate([slot_len, np.repeat(capacity * H, hours)])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=jobs.duration_s[keep], method="highs")
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("rule", ["home", "any"])
def test_independent_gaia_jobs_give_the_job_level_bound(rule: str):
    # Six hours of the GAIA Azure trace on the batch_us preset (scaling to 4 allocations): no precedence
    # rows, and the same optimum as the job-level program.
    cfg = carbonsim.load_config(["scenario=batch_us", "sim_hours=6", "max_drain_hours=12"])
    world, _, jobs = prepare(cfg)
    assert len(jobs) > 20 and jobs.independent
    b = batch_bound(world, jobs, rule)
    assert b.precedence_rows == 0 and b.blocks == 1
    assert b.carbon_g == pytest.approx(_job_level_bound(world, jobs, rule), rel=1e-7)


def test_blocks_never_exceed_one_program_for_all():
    # Six 1-CPU jobs of 1 h due at 3 h, one 2-CPU region at 100, 10, 50: together they fill all three hours
    # (320); in blocks of 1 h of arrivals (three jobs each), each block gets the whole cluster and puts two
    # jobs in hour 1 and one in hour 2 (70 each). The sum is lower, never higher.
    specs = [{"arrival_h": a, "deadline_h": 3.0, "stages": [(1, 1.0, 1, [])]} for a in (0.0, 0.0, 0.5, 1.0, 1.0, 1.0)]
    carbon = [[100.0, 10.0, 50.0]]
    whole = bound(dag_jobs(specs), carbon, cpus=(2,), block_h=0)
    split = bound(dag_jobs(specs), carbon, cpus=(2,), block_h=1.0)
    assert (whole.blocks, split.blocks) == (1, 2)
    assert whole.carbon_g == pytest.approx(KW * (2 * 100 + 2 * 10 + 2 * 50))
    assert split.carbon_g == pytest.approx(KW * 2 * (2 * 10 + 50))


@st.composite
def dag_instances(draw):
    specs = []
    for _ in range(draw(st.integers(1, 3))):
        stages = []
        for k in range(draw(st.integers(1, 3))):
            parents = [p for p in range(k) if draw(st.booleans())]
            stage = (
                draw(st.integers(1, 3)),
                draw(st.sampled_from([0.25, 0.5, 1.0, 1.5])),
                draw(st.integers(1, 2)),
                parents,
            )
            if draw(st.integers(0, 4)) == 0:  # now and then a GPU stage (1 GPU of any type, or an A100)
                stage = (*stage, 1.0, draw(st.sampled_from(["", "A100"])))
            stages.append(stage)
        specs.append(
            {
                "arrival_h": draw(st.sampled_from([0.0, 0.5, 1.0, 2.0])),
                "slack_h": draw(st.sampled_from([0.5, 2.0, 6.0])),
                "interruptible": draw(st.booleans()),
                "home": draw(st.integers(0, 1)),
                "stages": stages,
            }
        )
    specs.sort(key=lambda s: s["arrival_h"])
    js = dag_jobs(specs)
    # Deadline: arrival + critical path + slack.
    deadline = js.arrival_s + js.duration_s + np.array([s["slack_h"] for s in specs]) * H
    js = dataclasses.replace(js, deadline_s=deadline)
    carbon = [[draw(st.floats(10.0, 500.0)) for _ in range(10)] for _ in range(2)]
    cpus = (draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    gpus = [{"A100": 1}, {"A100": 1, "H100": 1}]
    batch = {"max_scale": draw(st.integers(1, 2)), "parallel_fraction": draw(st.sampled_from([0.5, 1.0]))}
    if draw(st.booleans()):
        batch.update(FREE_MOVES)
    return js, carbon, cpus, gpus, batch


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(dag_instances())
def test_the_bound_never_exceeds_a_policy_that_met_every_deadline(instance):
    js, carbon, cpus, gpus, batch = instance
    bounds = None
    for name in batch_policies_without_checkpoint():
        result, df, s = run(js, carbon, name, cpus=cpus, gpus=gpus, batch=batch)
        if bounds is None:  # the run's own world: the same signal, capacities and power
            bounds = {rule: batch_bound(result.world, js, rule) for rule in ("home", "any")}
            assert bounds["any"].late_s <= bounds["home"].late_s * (1 + 1e-9) + 1e-6
        if s["jobs_deadline_met"] != s["jobs"]:
            continue
        carbon_g = df["carbon_g"].sum()
        assert bounds["any"].late_s == 0.0
        assert bounds["any"].carbon_g <= carbon_g * (1 + 1e-7) + 1e-9, name
        rec = result.job_records
        if np.all(rec.seg_region == js.home[rec.seg_job]):  # it kept every job at home
            assert bounds["home"].carbon_g <= carbon_g * (1 + 1e-7) + 1e-9, name


def test_runs_and_experiments_report_the_bound_and_shares_for_gpu_and_dag_jobs(tmp_path):
    from carbonsim.experiment import run_experiment

    # A single run of GPU training jobs carries both bounds and its share of their reductions.
    s = carbonsim.run(
        carbonsim.load_config(["scenario=gpu_training", "sim_hours=3", "batch_policy=gaia_lowest_window"])
    )
    summary = s.summary
    assert summary["jobs"] > 5 and summary["jobs_failed"] == 0
    assert 0 < summary["bound_any_job_carbon_kg"] <= summary["bound_home_job_carbon_kg"]
    base = summary["baseline_job_carbon_kg"]
    for rule in ("home", "any"):
        saved = base - summary["job_carbon_kg"]
        share = 100.0 * saved / (base - summary[f"bound_{rule}_job_carbon_kg"])
        assert summary[f"job_share_of_{rule}_bound_pct"] == pytest.approx(share) and saved > 0
    # An experiment on TPC-H DAGs: every policy's row has the bounds (the same for all) in its table.
    cfg = carbonsim.load_config(["+experiment=batch_shifting", "scenario=dag_tpch", "sim_hours=0.25"])
    assert cfg.experiment is not None
    exp = dataclasses.replace(cfg.experiment, runs=cfg.experiment.runs[:2], variants=())
    jobs_table = run_experiment(dataclasses.replace(cfg, experiment=exp), tmp_path)["jobs"]
    assert len(jobs_table) == 2
    for rule in ("home", "any"):
        values = jobs_table[f"bound_{rule}_job_carbon_kg"]
        assert values.notna().all() and values.nunique() == 1 and (values > 0).all()
    assert "job_share_of_any_bound_pct" in jobs_table.columns


#: One job of two chained 2 h stages of one CPU task, due a day after it arrives (a plain CSV job trace).
CHAIN_CSV = """\
job,stage,submit_s,tasks,duration_s,cpus,parents,deadline_s,interruptible
a,first,0,1,7200,1,,86400,1
a,second,0,1,7200,1,first,86400,1
"""


def test_a_single_runs_job_bound_is_with_precedence_relaxed_or_off(tmp_path, monkeypatch):
    # Without precedence rows both stages may take the cleanest two hours side by side; with them, the
    # second follows the first, so the relaxed bound is below. Off: no bound and no share in the summary.
    (tmp_path / "jobs.csv").write_text(CHAIN_CSV, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    base = ["scenario=gpu_training", "scenario.batch.generator.kind=", "scenario.batch.source.format=csv"]
    base += ["scenario.batch.source.paths=[jobs.csv]", "sim_hours=1", "write_requests=false"]
    summaries = {
        mode: carbonsim.run(carbonsim.load_config([*base, f"job_bound={mode}"])).summary for mode in JOB_BOUNDS
    }
    tight, relaxed, off = (summaries[mode] for mode in ("precedence", "relaxed", "off"))
    assert carbonsim.load_config(base).job_bound == "precedence"  # the default
    for rule in ("home", "any"):
        key = f"bound_{rule}_job_carbon_kg"
        assert 0 < relaxed[key] < tight[key] <= tight["job_carbon_kg"] * (1 + 1e-9)
        assert f"job_share_of_{rule}_bound_pct" in tight and f"job_share_of_{rule}_bound_pct" in relaxed
    assert not [k for k in off if k.startswith(("bound_", "job_share_of_"))]
    assert [s["job_bound"] for s in (tight, relaxed, off)] == ["precedence", "relaxed", "off"]
    assert off["job_carbon_kg"] == tight["job_carbon_kg"]  # the bound changes nothing else


def test_a_bad_job_bound_is_one_line(tmp_path, monkeypatch):
    from test_hardening import carbonsim_cli

    result = carbonsim_cli(tmp_path, "sim_hours=0.1", "job_bound=maybe", monkeypatch=monkeypatch)
    assert result.code == 2, result.stderr
    assert result.errors == ["carbonsim: job_bound: expected one of precedence, relaxed, off, got 'maybe'"]
    assert not (result.out / "summary.json").exists()
    # An experiment's bounds follow experiment.bound_precedence: a job_bound there would be ignored.
    with pytest.raises(carbonsim.ConfigError, match=r"^job_bound: .*experiment.bound_precedence, got 'off'$"):
        carbonsim.load_config(["+experiment=seed_study", "job_bound=off"])
