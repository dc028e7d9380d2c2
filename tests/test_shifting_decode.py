"""Capacity-aware decoding of the learned shifting scheduler (``batch_policy.decode: capacity``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import carbonsim
from carbonsim._schema import ConfigError
from carbonsim.core.jobs import JobView
from carbonsim.core.jobs.policy import RunnableStages
from carbonsim.learn.shifting_config import ShiftingOnlineConfig
from carbonsim.learn.shifting_decode import capacity_choices
from carbonsim.learn.shifting_policy import LearnedShiftingConfig

DEFER = -1


def toy_view(
    free_cpus: tuple[float, ...],
    free_gpus: tuple[tuple[float, ...], ...] = (),
    *,
    job: list[int] | None = None,
    waiting: list[int] | None = None,
    running: list[int] | None = None,
    cpus: list[float] | None = None,
    gpus: list[float] | None = None,
    gpu_type: list[int] | None = None,
    region: list[int] | None = None,
    interruptible: list[bool] | None = None,
    n: int = 0,
) -> JobView:
    """A view of ``n`` runnable rows (one-task one-CPU jobs at home 0 unless given) and free capacity."""
    n = n or len(job or waiting or running or [])
    ints = lambda v, d: np.asarray(v if v is not None else [d] * n, dtype=np.int64)  # noqa: E731
    floats = lambda v, d: np.asarray(v if v is not None else [d] * n, dtype=np.float64)  # noqa: E731
    wait, run = ints(waiting, 1), ints(running, 0)
    st = RunnableStages(
        job=ints(job, 0) if job is not None else np.arange(n),
        stage=np.zeros(n, dtype=np.int64),
        tasks=wait + run,
        waiting=wait,
        running=run,
        done=np.zeros(n, dtype=np.int64),
        task_duration_s=floats(None, 3600.0),
        remaining_s=floats(None, 3600.0),
        path_s=floats(None, 3600.0),
        descendants=np.zeros(n, dtype=np.int64),
        descendant_work_s=floats(None, 0.0),
        job_work_s=floats(None, 3600.0),
        cpus_per_task=floats(cpus, 1.0),
        gpus_per_task=floats(gpus, 0.0),
        gpu_type=ints(gpu_type, -1),
        arrival_s=floats(None, 0.0),
        deadline_s=floats(None, 86400.0),
        region=ints(region, -1),
        home=np.zeros(n, dtype=np.int64),
        interruptible=np.asarray(interruptible if interruptible is not None else [True] * n, dtype=bool),
    )
    gpus_free = free_gpus or tuple(() for _ in free_cpus)
    zeros = tuple(0.0 for _ in free_cpus)
    return JobView(0.0, free_cpus, gpus_free, zeros, zeros, None, None, lambda: (), lambda: st)  # type: ignore[arg-type]


def logits_of(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float64)


def test_items_preferring_one_small_cluster_take_its_room_and_the_rest_move_on() -> None:
    """Five one-CPU jobs all prefer region 1, which has room for two: the two most confident get it."""
    # choices: defer, region 0, region 1, region 2
    logits = logits_of(
        [
            [0.0, 2.0, 5.0, -9.0],  # next: region 0
            [0.0, 2.0, 9.0, -9.0],  # the most confident
            [3.0, 0.0, 6.0, -9.0],  # next: defer
            [0.0, 1.0, 8.0, 4.0],  # second most confident
            [0.0, -9.0, 6.0, 3.0],  # next: region 2, which has no room: defer
        ]
    )
    view = toy_view((10.0, 2.0, 0.0), n=5)
    assert (logits.argmax(axis=1) - 1).tolist() == [1, 1, 1, 1, 1]  # independent: all to region 1
    assert capacity_choices(view, logits).tolist() == [0, 1, DEFER, 1, DEFER]


def test_each_item_takes_what_its_tasks_that_fit_use() -> None:
    """An item of 2 one-CPU tasks takes 2 of the 3 CPUs; the next item, of 2 CPUs, no longer fits there."""
    logits = logits_of([[0.0, 9.0], [1.0, 5.0], [0.0, 3.0]])
    view = toy_view((3.0,), waiting=[2, 1, 1], cpus=[1.0, 2.0, 1.0])
    assert capacity_choices(view, logits).tolist() == [0, DEFER, 0]


def test_gpus_count_per_type() -> None:
    """Region 0 has 4 free GPUs of type 0 and none of type 1: type-1 tasks do not fit, any-type ones do."""
    logits = logits_of([[0.0, 9.0], [0.0, 8.0], [0.0, 7.0], [0.0, 6.0]])
    view = toy_view(
        (64.0,), ((4.0, 0.0),), waiting=[1, 1, 1, 1], cpus=[8.0] * 4, gpus=[1.0, 2.0, 2.0, 1.0], gpu_type=[1, 0, -1, 0]
    )
    assert capacity_choices(view, logits).tolist() == [DEFER, 0, 0, DEFER]


def test_staying_where_a_job_runs_is_feasible_and_running_items_keep_their_choice() -> None:
    """No room anywhere: the job that runs in region 1 stays; all-running items keep their choice."""
    logits = logits_of([[0.0, 1.0, 9.0], [0.0, 1.0, 9.0], [0.0, 9.0, 1.0], [5.0, 0.0, 1.0]])
    view = toy_view((0.0, 0.0), waiting=[1, 1, 0, 0], running=[1, 0, 2, 1], region=[1, -1, 0, 1])
    assert capacity_choices(view, logits).tolist() == [1, DEFER, 0, DEFER]


def test_a_job_decides_one_region_and_a_pinned_job_stays() -> None:
    """Rows of one job follow its most confident row's region; a running job that cannot move stays put."""
    logits = logits_of(
        [
            [0.0, 5.0, 1.0, 4.0],  # job 0, row 0: prefers region 0, but its job goes to region 2
            [0.0, 1.0, 1.0, 9.0],  # job 0, row 1: the most confident, region 2
            [0.0, 1.0, 1.0, 8.0],  # job 1: runs in region 1, not interruptible: region 2 is not for it
        ]
    )
    view = toy_view(
        (9.0, 9.0, 9.0),
        job=[0, 0, 1],
        waiting=[1, 1, 1],
        running=[0, 0, 1],
        region=[-1, -1, 1],
        interruptible=[True, True, False],
    )
    assert capacity_choices(view, logits).tolist() == [2, 2, 1]


def test_ties_are_broken_by_row_order() -> None:
    logits = logits_of([[0.0, 4.0]] * 4)
    view = toy_view((2.0,), n=4)
    assert capacity_choices(view, logits).tolist() == [0, 0, DEFER, DEFER]
    assert capacity_choices(view, logits).tolist() == [0, 0, DEFER, DEFER]


def test_decode_is_validated_and_independent_by_default() -> None:
    assert LearnedShiftingConfig().decode == "independent"
    assert LearnedShiftingConfig(decode="capacity").decode == "capacity"
    with pytest.raises(ConfigError, match=r"^decode: expected one of independent, capacity, got 'greedy'$"):
        LearnedShiftingConfig(decode="greedy")
    with pytest.raises(ConfigError, match=r"^decode: 'capacity' .*sample: false"):
        LearnedShiftingConfig(decode="capacity", sample=True)
    with pytest.raises(ConfigError, match=r"^decode: 'capacity' .*online.enabled: false"):
        LearnedShiftingConfig(decode="capacity", online=ShiftingOnlineConfig(enabled=True))
    cfg = carbonsim.load_config(["batch_policy=learned_shifting", "batch_policy.decode=capacity"])
    assert isinstance(cfg.batch_policy, LearnedShiftingConfig) and cfg.batch_policy.decode == "capacity"


class Checked:
    """Wraps a learned shifting policy; records, per epoch, the CPUs newly sent to each region vs what was free."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.over, self.epochs, self.log = inner, 0, 0, []

    def reset(self, context: Any) -> None:
        self.inner.reset(context)

    def schedule(self, view: JobView) -> Any:
        st = view.stages
        if len(st):
            choices = self.inner.choices(view)
            new = (st.waiting > 0) & (st.running == 0) & (choices >= 0)
            sent = np.bincount(choices[new], weights=st.cpus_per_task[new], minlength=len(view.free_cpus))
            self.over += int(np.any(sent > np.asarray(view.free_cpus) + 1e-9))
            self.log.append(choices.tolist())
            self.epochs += 1
        return self.inner.schedule(view)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_never_sends_more_than_fits_and_is_deterministic() -> None:
    """80 one-task jobs of 1-3 CPUs on 8 CPUs per region (dag_tpch's regions), a random network."""
    import dataclasses

    pytest.importorskip("torch")
    from test_learned_shifting import noisy, one_task_jobs

    from carbonsim.analysis import jobs as job_metrics
    from carbonsim.learn import shifting_model as sm
    from carbonsim.learn.shifting_policy import LearnedShifting
    from carbonsim.policies import make_policy
    from carbonsim.runner import make_simulation, prepare

    model = sm.to_numpy(noisy(sm.ShiftingModelConfig(), 5))
    cfg = carbonsim.load_config(["scenario=dag_tpch", "sim_hours=3", "drain=false"])
    regions = tuple(dataclasses.replace(r, batch_cpus=8) for r in cfg.scenario.regions)
    cfg = dataclasses.replace(cfg, scenario=dataclasses.replace(cfg.scenario, regions=regions))
    world, requests, _ = prepare(cfg)
    jobs = one_task_jobs(80, 0)
    out = {}
    for decode in ("independent", "capacity", "capacity"):
        policy = Checked(LearnedShifting(LearnedShiftingConfig(weights=(2.0, 1.0, 0.5), decode=decode), model=model))
        sim = make_simulation(cfg, world, requests, make_policy(cfg.policy), 0, jobs=jobs, batch_policy=policy)
        table = job_metrics.job_table(sim.run())
        assert len(table) == 80
        if decode in out:
            assert policy.log == out[decode][0] and table.equals(out[decode][1])
        out[decode] = (policy.log, table, policy.over, policy.epochs)
    assert out["independent"][2] > 0  # the network alone over-fills a region at some epoch ...
    assert out["capacity"][2] == 0 and out["capacity"][3] > 20  # ... capacity decoding never does


def test_evaluation_decodes_a_group_as_asked(tmp_path: Any) -> None:
    """shifting_eval.evaluate(decode=...): bad labels and modes are named before any run; a group runs decoded."""
    pytest.importorskip("torch")
    from test_learned_shifting import TINY

    from carbonsim.learn import shifting_model as sm
    from carbonsim.learn.shifting_eval import evaluate

    path = str(sm.save(tmp_path / "shifting.npz", sm.build(TINY, seed=0), {"selected_weights": [1.0, 1.0, 1.0]}))
    models = {"independent": [path], "capacity": [path]}
    starts = ("2024-02-05T00:00:00Z",)
    with pytest.raises(ConfigError, match=r"^decode: expected the label of a frozen model group .*got 'x'$"):
        evaluate(models, ["gpu_training"], starts, decode={"x": "capacity"}, log=False)
    with pytest.raises(ConfigError, match=r"^decode: expected one of independent, capacity, got 'greedy'$"):
        evaluate(models, ["gpu_training"], starts, decode={"capacity": "greedy"}, log=False)
    df = evaluate(
        models, ["gpu_training"], starts, gpu_hours=1.0, baselines=(), decode={"capacity": "capacity"}, log=False
    )
    assert sorted(df["policy"]) == ["capacity", "carbon_agnostic", "independent"]
    assert (df["jobs"] == df["jobs"].iloc[0]).all() and df["jobs"].iloc[0] > 0
