"""CASPER's batch analogue: a linear program over regions and the forecast's hours, per planning interval.

CASPER (Souza et al., "CASPER: Carbon-Aware Scheduling and Provisioning for Distributed Web Services", IGSC
2023; the routing version is :mod:`carbonsim.policies.casper`) solves, every planning interval, a linear
program that places the coming interval's load on the regions so as to minimise forecast emissions within
each region's capacity, and follows it until the next interval. Its load is web requests that must be
served now; batch jobs may also wait, so the batch analogue plans over the forecast's next hours as well as
over regions, and executes only the first hour of the plan:

* **When**: at the first epoch of every planning interval (``planning_interval_min``; the engine wakes at
  every hour boundary). Jobs that arrive between plans are planned on arrival (``replan_on_arrival``)
  against the capacity the current plan leaves, with the same program restricted to them.
* **Variables** (aggregated per job, so the program stays small): ``x[j, r, h]``, task-seconds of job ``j``
  run in region ``r`` during hour ``h`` of the next ``horizon_h`` hours (the first one from now to the end
  of the current hour), for the hours before the job's deadline; ``later[j]``, work left beyond the
  horizon.
* **Objective**: forecast emissions, ``x x P_j x PUE_r x I[r, h]`` (``P_j`` the power of one of the job's
  tasks, the mean over its runnable tasks), plus moving a job away from where it is (the network energy of
  its state at the two regions' mean intensity, and the restore time's energy; spread over its work, the
  linear relaxation of a fixed cost), plus ``later`` at the mean forecast intensity of its region (a job
  whose deadline lies beyond the horizon may run later, at no better than an average hour) or, for a job
  due within the horizon, at ten times the highest forecast (late work is a last resort). Each hour's
  cost is raised by 0.001 % per hour ahead, so that equal forecasts are used earliest first.
* **Constraints**: each job's work left (task-seconds: its tasks not started, plus what its running tasks
  have left, :func:`work_left_s`) is done; per job and hour, at
  most its runnable tasks' count in parallel; per region and hour, the CPU-seconds (and GPU-seconds per
  type, and in total for tasks of any GPU type) within ``max_utilisation`` x the cluster. A running job
  that is not interruptible stays where it runs; with ``spatial: false`` every job stays home (the temporal
  version).
* **Execution**: until the next plan, job ``j`` runs in the region with most of its work in the current
  hour, and does that hour's planned work as soon as it can: its runnable stages, in decreasing remaining
  critical path, start tasks while the hour's planned task-seconds not yet started last (a stage's last
  task may overshoot); running tasks go on while the hour has work planned for the job (an interruptible
  job without any is suspended). A job moves only if the move's restore time leaves it more slack than
  the time to the next sure wake-up. Stages that must start now for their job's deadline
  (:mod:`carbonsim.policies.stages`) run regardless. The program is a fluid relaxation: it ignores
  precedence inside a job (the execution order and the deadline guard deal with it) and splits of a job
  across regions (it runs in one).

Kept from CASPER: a linear program per planning interval over regions, on forecasts, under per-region
capacity, minimising emissions, solved with ``scipy.optimize.linprog`` (HiGHS). Different: time is a
dimension (deferral), work replaces request rates, migration costs replace latency SLOs (batch jobs have
deadlines, not SLOs), and there is no server provisioning (idle batch capacity draws nothing in carbonsim).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from carbonsim._schema import ConfigError
from carbonsim.config import BatchPolicyConfig
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.jobs import Decision, JobContext, JobInfo, JobView, RunnableStages
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.policies.registry import register_batch
from carbonsim.policies.stages import (
    context_gpu_w,
    job_region,
    next_wakeup_s,
    settle_deadlines,
    stage_decisions,
    urgent_rows,
)

#: Cost of late work, as a multiple of the highest forecast intensity.
LATE_PENALTY = 10.0
#: Relative cost added per hour of delay, so that among hours of equal forecast the earliest is used.
TIE_BREAK = 1e-5
#: Planned work of a job in an hour below which it does not run then (solver noise), in s.
MIN_WORK_S = 1e-3


@dataclass(frozen=True)
class CasperBatchConfig(BatchPolicyConfig):
    """Parameters of the CASPER batch analogue.

    Attributes:
        name: ``casper_batch``.
        planning_interval_min: Minutes between full plans (CASPER's planning interval).
        horizon_h: Forecast hours planned over (1..48).
        spatial: Whether jobs may move between regions (false: each job stays home).
        max_utilisation: Share of each cluster the plan may fill, in (0, 1].
        replan_on_arrival: Plan jobs that arrive between plans at once (else they wait for the next plan
            unless their deadline forces them).
    """

    planning_interval_min: float = 60.0
    horizon_h: int = 24
    spatial: bool = True
    max_utilisation: float = 1.0
    replan_on_arrival: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.planning_interval_min) and self.planning_interval_min > 0):
            raise ConfigError(f"planning_interval_min: expected minutes > 0, got {self.planning_interval_min!r}")
        if not 1 <= self.horizon_h <= MAX_HORIZON_H:
            raise ConfigError(f"horizon_h: expected 1..{MAX_HORIZON_H} hours, got {self.horizon_h!r}")
        if not 0 < self.max_utilisation <= 1:
            raise ConfigError(f"max_utilisation: expected a fraction in (0, 1], got {self.max_utilisation!r}")


@dataclass
class _JobPlan:
    """What the current plan says about one job, per hour from the plan's first hour.

    Attributes:
        region: Region with most of the job's work in each hour.
        work_s: The job's work in each hour, task-seconds.
        cpu_rate: CPUs in use per (region, hour), on average.
        gpu_rate: GPUs in use per (region, GPU type or total (last), hour), on average.
    """

    region: np.ndarray
    work_s: np.ndarray
    cpu_rate: np.ndarray
    gpu_rate: np.ndarray


@dataclass
class _Job:
    """One job's columns for the program."""

    info: JobInfo
    rows: np.ndarray  # its rows of view.stages
    work_s: float
    power_w: float
    cpus: float  # per task
    gpus: float  # per task
    gpu_type: int
    width: int
    regions: list[int]
    here: int


@register_batch("casper_batch", CasperBatchConfig)
class CasperBatch:
    """CASPER's batch analogue (see the module docstring).

    Attributes:
        plans: Full and on-arrival programs solved so far.
        late_plans: Programs that left work of a job due within the horizon unplanned.
    """

    def __init__(self, cfg: CasperBatchConfig) -> None:
        self.cfg = cfg
        self.plan: dict[int, _JobPlan] = {}
        self.hour_mark: dict[int, tuple[int, float]] = {}
        self.plans = 0
        self.late_plans = 0

    def reset(self, context: JobContext) -> None:
        """Keeps the clusters and forgets the plan."""
        self.context = context
        self.plan = {}
        self.hour_mark = {}
        self.plan_start_h = -1
        self.next_plan_s = -math.inf
        self.plans = 0
        self.late_plans = 0
        n_types = len(context.gpu_types)
        self.cpu_cap = np.array(context.capacity_cpus, dtype=np.float64)
        self.gpu_cap = np.array(
            [[*(float(g) for g in row), float(sum(row))] for row in context.capacity_gpus], dtype=np.float64
        ).reshape(len(context.region_names), n_types + 1)

    def schedule(self, view: JobView) -> Mapping[Any, Decision]:
        """Plans when an interval starts (or jobs arrived), then follows the plan (see the module docstring)."""
        st = view.stages
        if not len(st):
            return {}
        now = view.now_s
        jobs = {job.id: job for job in view.active}
        self.plan = {j: p for j, p in self.plan.items() if j in jobs}
        self.hour_mark = {j: m for j, m in self.hour_mark.items() if j in jobs}
        if now >= self.next_plan_s - 1e-9:
            interval = self.cfg.planning_interval_min * 60.0
            self.next_plan_s = (math.floor(now / interval + 1e-9) + 1.0) * interval
            self._solve(view, list(jobs), full=True)
        elif self.cfg.replan_on_arrival:
            new = [j for j in jobs if j not in self.plan]
            if new:
                self._solve(view, new, full=False)
        return self._decide(view, jobs)

    # The program.

    def _columns(self, view: JobView, ids: list[int]) -> list[_Job]:
        st = view.stages
        ctx = self.context
        out = []
        order = np.argsort(st.job, kind="stable")
        starts = np.searchsorted(st.job[order], ids, side="left")
        ends = np.searchsorted(st.job[order], ids, side="right")
        infos = {job.id: job for job in view.active}
        for j, a, b in zip(ids, starts.tolist(), ends.tolist(), strict=True):
            rows = order[a:b]
            count = (st.waiting[rows] + st.running[rows]).astype(np.float64)
            weight = count if count.sum() > 0 else np.ones(rows.size)
            cpus = st.cpus_per_task[rows]
            gpus = st.gpus_per_task[rows]
            types = st.gpu_type[rows]
            gpu_w = np.array([context_gpu_w(ctx, int(t)) for t in types.tolist()])
            power = cpus * ctx.cpu_busy_w + gpus * gpu_w
            info = infos[j]
            here = job_region(info)
            typed = types[gpus > 0]
            gtype = int(typed[0]) if typed.size and np.all(typed == typed[0]) else -1
            if not self.cfg.spatial or (info.running and not info.interruptible):
                regions = [here]
            else:
                regions = [r for r in range(len(ctx.region_names)) if self._fits(r, cpus.max(), gpus.max(), gtype)]
                regions = regions if here in regions else [here, *regions]
            out.append(
                _Job(
                    info=info,
                    rows=rows,
                    work_s=work_left_s(info, st, rows),
                    power_w=float(np.average(power, weights=weight)),
                    cpus=float(np.average(cpus, weights=weight)),
                    gpus=float(np.average(gpus, weights=weight)),
                    gpu_type=gtype,
                    width=max(1, int(count.sum())),
                    regions=regions,
                    here=here,
                )
            )
        return out

    def _fits(self, r: int, cpus: float, gpus: float, gpu_type: int) -> bool:
        if cpus > self.cpu_cap[r] + 1e-9:
            return False
        if gpus <= 0:
            return True
        return bool(self.gpu_cap[r, gpu_type if gpu_type >= 0 else -1] >= gpus - 1e-9)

    def _solve(self, view: JobView, ids: list[int], full: bool) -> None:
        """Solves the program for jobs ``ids`` (all active ones when ``full``) and stores their first hour."""
        ctx = self.context
        now = view.now_s
        n_r = len(ctx.region_names)
        h0 = math.floor(now / SECONDS_PER_HOUR)
        forecast = [view.forecast_gco2_per_kwh(r, self.cfg.horizon_h) for r in range(n_r)]
        n_h = min(f.size for f in forecast)
        if n_h == 0:
            return
        intensity = np.nan_to_num(np.array([f[:n_h] for f in forecast]), nan=0.0)
        slot_start = np.maximum(now, (h0 + np.arange(n_h)) * SECONDS_PER_HOUR)
        slot_end = (h0 + 1 + np.arange(n_h)) * SECONDS_PER_HOUR
        length = slot_end - slot_start
        pue = np.array(ctx.pue)
        util = self.cfg.max_utilisation
        cpu_room = util * self.cpu_cap[:, None] * length[None, :]
        gpu_room = util * self.gpu_cap[:, :, None] * length[None, None, :]
        if full:
            self.plan = {}
            self.hour_mark = {}  # the plan's first hour counts work from now
            self.plan_start_h = h0
        else:
            # What the plan holds of each hour, at its average rate over the hour's rest.
            shift = h0 - self.plan_start_h
            for p in self.plan.values():
                cols = p.cpu_rate.shape[1]
                k = min(n_h, max(0, cols - shift))
                if k:
                    cpu_room[:, :k] -= p.cpu_rate[:, shift : shift + k] * length[None, :k]
                    gpu_room[:, :, :k] -= p.gpu_rate[:, :, shift : shift + k] * length[None, None, :k]
            np.maximum(cpu_room, 0.0, out=cpu_room)
            np.maximum(gpu_room, 0.0, out=gpu_room)
        cols = self._columns(view, ids)
        if not cols:
            return
        self.plans += 1
        top = float(intensity.max()) if intensity.size else 0.0
        var_job: list[int] = []
        var_region: list[int] = []
        var_hour: list[int] = []
        cost: list[float] = []
        upper: list[float] = []
        current = np.array(view.intensity_gco2_per_kwh, dtype=np.float64)
        for q, job in enumerate(cols):
            before = np.minimum(slot_end, job.info.deadline_s) - slot_start
            hours = np.flatnonzero(before > 1e-9)
            kwh_per_s = job.power_w / 3.6e6
            for r in job.regions:
                move = self._move_g(job, r, current, pue) / job.work_s if r != job.here and job.work_s > 0 else 0.0
                for k in hours.tolist():
                    var_job.append(q)
                    var_region.append(r)
                    var_hour.append(k)
                    cost.append(kwh_per_s * pue[r] * intensity[r, k] * (1.0 + TIE_BREAK * k) + move)
                    upper.append(job.width * float(before[k]))
        n_x = len(cost)
        n_j = len(cols)
        later_cost = []
        for job in cols:
            kwh_per_s = job.power_w / 3.6e6
            if job.info.deadline_s <= slot_end[-1]:
                later_cost.append(LATE_PENALTY * max(top, 1.0) * float(pue.max()) * kwh_per_s)
            else:
                later_cost.append(float(intensity[job.here].mean()) * pue[job.here] * kwh_per_s)
        c = np.concatenate([np.array(cost), np.array(later_cost)])
        bounds = np.column_stack([np.zeros(n_x + n_j), np.concatenate([upper, np.full(n_j, np.inf)])])
        vj = np.array(var_job, dtype=np.int64)
        vr = np.array(var_region, dtype=np.int64)
        vh = np.array(var_hour, dtype=np.int64)
        # Work: sum of a job's x plus its later work = its work left.
        a_eq = sp.csr_matrix(
            (np.ones(n_x + n_j), (np.concatenate([vj, np.arange(n_j)]), np.arange(n_x + n_j))), shape=(n_j, n_x + n_j)
        )
        b_eq = np.array([job.work_s for job in cols])
        # Capacity: CPU-seconds per (region, hour); GPU-seconds per (region, type or total, hour).
        cpu_per = np.array([job.cpus for job in cols])[vj]
        gpu_per = np.array([job.gpus for job in cols])[vj]
        gtype = np.array([job.gpu_type for job in cols], dtype=np.int64)[vj]
        n_t = self.gpu_cap.shape[1]
        rows_i: list[np.ndarray] = [vr * n_h + vh]
        rows_v: list[np.ndarray] = [cpu_per]
        cols_i: list[np.ndarray] = [np.arange(n_x)]
        g = np.flatnonzero(gpu_per > 0)
        base = n_r * n_h
        total = n_t - 1
        rows_i.append(base + (vr[g] * n_t + total) * n_h + vh[g])
        rows_v.append(gpu_per[g])
        cols_i.append(g)
        typed = g[gtype[g] >= 0]
        rows_i.append(base + (vr[typed] * n_t + gtype[typed]) * n_h + vh[typed])
        rows_v.append(gpu_per[typed])
        cols_i.append(typed)
        n_rows = base + n_r * n_t * n_h
        a_ub = sp.csr_matrix(
            (np.concatenate(rows_v), (np.concatenate(rows_i), np.concatenate(cols_i))), shape=(n_rows, n_x + n_j)
        )
        b_ub = np.concatenate([cpu_room.reshape(-1), gpu_room.reshape(-1)])
        # Solved in hours (task-hours, CPU-hours) with costs scaled to at most 1: HiGHS's tolerances are
        # absolute, and the tie-break must stay above them.
        scale = float(c.max()) if c.size and c.max() > 0 else 1.0
        hour = SECONDS_PER_HOUR
        res = linprog(
            c / scale,
            A_ub=a_ub,
            b_ub=b_ub / hour,
            A_eq=a_eq,
            b_eq=b_eq / hour,
            bounds=bounds / hour,
            method="highs",
        )
        if res.status != 0:
            raise RuntimeError(f"casper_batch: the program failed at {now:.0f} s: {res.message}")
        x = res.x[:n_x] * hour
        later = res.x[n_x:] * hour
        if any(
            later[q] > 1e-6 * max(job.work_s, 1.0) and later_cost[q] > 0 and job.info.deadline_s <= slot_end[-1]
            for q, job in enumerate(cols)
        ):
            self.late_plans += 1
        pad = h0 - self.plan_start_h  # hours between the plan's first hour and this program's
        for q, job in enumerate(cols):
            mine = vj == q
            work = np.zeros((n_r, n_h))
            np.add.at(work, (vr[mine], vh[mine]), x[mine])
            per_hour = work.sum(axis=0)
            region = np.where(per_hour > MIN_WORK_S, np.argmax(work, axis=0), job.here)
            cpu_rate = work * job.cpus / length[None, :]
            gpu_rate = np.zeros((n_r, n_t, n_h))
            if job.gpus > 0:
                gpu_rate[:, total, :] = work * job.gpus / length[None, :]
                if job.gpu_type >= 0:
                    gpu_rate[:, job.gpu_type, :] = gpu_rate[:, total, :]
            self.plan[job.info.id] = _JobPlan(
                np.concatenate([np.full(pad, job.here), region]).astype(np.int64),
                np.concatenate([np.zeros(pad), per_hour]),
                np.concatenate([np.zeros((n_r, pad)), cpu_rate], axis=1),
                np.concatenate([np.zeros((n_r, n_t, pad)), gpu_rate], axis=2),
            )

    def _move_g(self, job: _Job, r: int, current: np.ndarray, pue: np.ndarray) -> float:
        """Emissions of moving the job's state from where it is to ``r`` now, in g."""
        ctx = self.context
        a = job.here
        network = ctx.migration_kwh(job.info.cpus, job.info.gpus) * (current[a] + current[r]) / 2.0
        restore_kwh = ctx.migration_s(job.info.cpus, job.info.gpus) * job.width * job.power_w / 3.6e6
        return float(network + restore_kwh * pue[r] * current[r])

    # Execution.

    def _hour_plan(self, job: JobInfo, hour: int, forced: bool, margin_s: float, now_s: float) -> tuple[int, float]:
        """Where the job runs now and its planned work in the current hour (task-seconds).

        A job stays where it is when it may not move (running and not interruptible) or when the move's
        restore time would delay a stage its deadline forces now, or leave the job less slack than the time
        to the next sure wake-up (the deadline guard could not catch it in time).
        """
        plan = self.plan.get(job.id)
        here = job_region(job)
        if plan is None or not 0 <= hour < plan.work_s.size or plan.work_s[hour] <= MIN_WORK_S:
            return here, 0.0
        region, work = int(plan.region[hour]), float(plan.work_s[hour])
        if region != here:
            pinned = job.running and not job.interruptible
            delay_s = self.context.migration_s(job.cpus, job.gpus)
            late = delay_s > 0 and (forced or job.deadline_s - now_s - job.remaining_s - delay_s <= margin_s)
            if pinned or late:
                return here, work
        return region, work

    def _decide(self, view: JobView, jobs: dict[int, JobInfo]) -> dict[Any, Decision]:
        """Each job's planned work for the current hour, as soon as it can run (see the module docstring)."""
        st = view.stages
        n = len(st)
        now = view.now_s
        keys = list(zip(st.job.tolist(), st.stage.tolist(), strict=True))
        urgent = urgent_rows(view)
        running = st.running.astype(np.int64)
        total = running + st.waiting.astype(np.int64)
        allow = np.zeros(n, dtype=np.int64)
        region = np.zeros(n, dtype=np.int64)
        order = np.lexsort((-st.path_s, st.job))  # per job, stages by decreasing remaining critical path
        abs_hour = math.floor(now / SECONDS_PER_HOUR)
        hour = abs_hour - self.plan_start_h
        margin = next_wakeup_s(view) - now
        forced = set(st.job[urgent].tolist())
        # Work not started yet per job: its work left minus its running tasks (counted whole in work_s).
        in_flight = np.bincount(st.job, weights=running * st.task_duration_s, minlength=max(jobs, default=-1) + 1)
        budget: dict[int, float] = {}
        where: dict[int, int] = {}
        keep_running: dict[int, bool] = {}
        for i in order.tolist():
            j = keys[i][0]
            job = jobs[j]
            if j not in where:
                where[j], planned = self._hour_plan(job, hour, j in forced, margin, now)
                unstarted = max(job.work_s - float(in_flight[j]), 0.0)
                mark = self.hour_mark.get(j)
                if mark is None or mark[0] != abs_hour:
                    mark = self.hour_mark[j] = (abs_hour, unstarted)
                budget[j] = planned - (mark[1] - unstarted)  # the hour's work not yet started
                keep_running[j] = planned > MIN_WORK_S or (job.running and not job.interruptible)
            region[i] = where[j]
            if urgent[i]:
                allow[i] = total[i]
                continue
            start = 0
            if budget[j] > MIN_WORK_S and st.waiting[i] > 0:
                start = min(int(st.waiting[i]), math.ceil(budget[j] / float(st.task_duration_s[i]) - 1e-9))
                budget[j] -= start * float(st.task_duration_s[i])
            allow[i] = (int(running[i]) if keep_running[j] else 0) + start
        settle_deadlines(view, allow, total)
        return stage_decisions(st, region, allow, total)


def work_left_s(job: JobInfo, st: RunnableStages, rows: np.ndarray) -> float:
    """A job's work left in task-seconds: its tasks not started, plus what its running tasks have left.

    ``JobInfo.work_s`` counts running tasks whole; a running stage's ``remaining_s`` (its longest task
    left) bounds what each of its running tasks has left.
    """
    running = st.running[rows].astype(np.float64)
    duration = st.task_duration_s[rows]
    left = np.minimum(st.remaining_s[rows], duration)
    return max(job.work_s - float((running * (duration - left)).sum()), 0.0)
