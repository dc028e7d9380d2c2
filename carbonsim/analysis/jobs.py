"""Tables and headline numbers of batch jobs: completion, waiting, deadlines, energy, carbon and cost."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from carbonsim.core.jobs import COMPLETED, FAILED, FAILURE_REASONS, JOB_STATUS_NAMES, JobAccount, job_account
from carbonsim.core.simulation import SimResult

#: Completion later than the deadline by more than this (s) counts as a miss (floating-point slack).
DEADLINE_SLACK_S = 1e-6


def account(result: SimResult) -> JobAccount:
    """Energy, emissions and cost of a run's jobs, per job and per region (:func:`job_account`)."""
    rec = result.job_records
    if rec is None or result.job_context is None:
        raise ValueError("the run has no batch jobs")
    ctx = result.job_context
    return job_account(
        result.jobs, rec, result.world.carbon, result.world.price, np.array(ctx.pue), ctx.cpu_busy_w, ctx.gpu_busy_w
    )


def job_table(result: SimResult) -> pd.DataFrame:
    """One row per job: its trace facts, the policy's outcome, and energy, carbon and cost.

    Columns: ``job``, ``arrival_s``, ``duration_s`` (critical path: the running time of a one-task job),
    ``cpus`` (of the widest stage), ``deadline_s``, ``interruptible``, ``home`` and ``region`` (names;
    region empty if never started), ``status`` (completed / failed / in_flight), ``start_s``, ``end_s``,
    ``completion_h`` (end - arrival), ``wait_h`` (completion minus critical path: queueing and deliberate
    delay), ``deadline`` (``met``: completed by its deadline; ``missed``: completed late, failed, or
    unfinished when the run ended after its deadline; ``pending``: unfinished with its deadline after the
    end of the run), ``suspensions``, ``migrations`` (region changes, including a first start away from
    home), ``energy_kwh`` (running energy with PUE plus the network energy of migrations), ``carbon_g``,
    ``cost_usd``; then ``trace_job`` (the trace's job id), ``stages``, ``tasks``, ``tasks_completed``,
    ``tasks_failed``, ``tasks_in_flight``, ``gpus`` (of the widest stage), ``gpu_energy_kwh`` (the GPUs'
    share of ``energy_kwh``) and ``failure`` (why a failed job could not run, see
    :data:`~carbonsim.core.jobs.FAILURE_REASONS`).
    """
    jobs, rec = result.jobs, result.job_records
    if rec is None:
        raise ValueError("the run has no batch jobs")
    scenario = result.world.scenario
    names = np.array([*scenario.region_names, ""], dtype=object)
    acc = account(result)
    status = np.array(JOB_STATUS_NAMES, dtype=object)[rec.status]
    completion_s = rec.end_s - jobs.arrival_s
    completed = rec.status == COMPLETED
    failed = rec.status == FAILED
    met = completed & (rec.end_s <= jobs.deadline_s + DEADLINE_SLACK_S)
    pending = ~completed & ~failed & (jobs.deadline_s > result.end_s)
    deadline = np.where(met, "met", np.where(pending, "pending", "missed"))
    tasks = jobs.tasks_per_job()
    st = jobs.stages
    ptr = jobs.stage_ptr[:-1]
    gpus = np.maximum.reduceat(st.tasks * st.gpus_per_task, ptr) if len(jobs) else np.zeros(0)
    trace_id = jobs.trace_id if jobs.trace_id is not None else np.arange(len(jobs)).astype(str)
    return pd.DataFrame(
        {
            "job": np.arange(len(jobs)),
            "arrival_s": jobs.arrival_s,
            "duration_s": jobs.duration_s,
            "cpus": jobs.cpus,
            "deadline_s": jobs.deadline_s,
            "interruptible": jobs.interruptible,
            "home": names[jobs.home.astype(np.int64)],
            "region": names[rec.region.astype(np.int64)],
            "status": pd.Categorical(status, categories=sorted(set(JOB_STATUS_NAMES))),
            "start_s": rec.start_s,
            "end_s": rec.end_s,
            "completion_h": completion_s / 3600.0,
            "wait_h": (completion_s - jobs.duration_s) / 3600.0,
            "deadline": pd.Categorical(deadline, categories=["met", "missed", "pending"]),
            "suspensions": rec.suspensions,
            "migrations": rec.migrations,
            "energy_kwh": acc.energy_kwh,
            "carbon_g": acc.carbon_g,
            "cost_usd": acc.cost_usd,
            "trace_job": np.asarray(trace_id, dtype=object),
            "stages": jobs.stages_per_job(),
            "tasks": tasks,
            "tasks_completed": rec.tasks_done,
            "tasks_failed": np.where(failed, tasks, 0),
            "tasks_in_flight": np.where(failed, 0, tasks - rec.tasks_done),
            "gpus": gpus,
            "gpu_energy_kwh": acc.gpu_kwh,
            "failure": np.array(FAILURE_REASONS, dtype=object)[rec.failure],
        }
    )


def empty_job_table() -> pd.DataFrame:
    """The job table of a run whose trace window holds no job: no rows, every column of :func:`job_table`."""
    return pd.DataFrame(
        {
            **{c: pd.Series([], dtype=np.int64) for c in ("job", "cpus", "suspensions", "migrations")},
            **{c: pd.Series([], dtype=np.float64) for c in ("arrival_s", "duration_s", "deadline_s")},
            "interruptible": pd.Series([], dtype=bool),
            "home": pd.Series([], dtype=object),
            "region": pd.Series([], dtype=object),
            "status": pd.Categorical([], categories=sorted(set(JOB_STATUS_NAMES))),
            **{c: pd.Series([], dtype=np.float64) for c in ("start_s", "end_s", "completion_h", "wait_h")},
            "deadline": pd.Categorical([], categories=["met", "missed", "pending"]),
            **{c: pd.Series([], dtype=np.float64) for c in ("energy_kwh", "carbon_g", "cost_usd")},
            "trace_job": pd.Series([], dtype=object),
            **{c: pd.Series([], dtype=np.int64) for c in ("stages", "tasks", "tasks_completed", "tasks_failed")},
            "tasks_in_flight": pd.Series([], dtype=np.int64),
            **{c: pd.Series([], dtype=np.float64) for c in ("gpus", "gpu_energy_kwh")},
            "failure": pd.Series([], dtype=object),
        }
    )[list(_JOB_COLUMNS)]


_JOB_COLUMNS = (
    "job", "arrival_s", "duration_s", "cpus", "deadline_s", "interruptible", "home", "region", "status",
    "start_s", "end_s", "completion_h", "wait_h", "deadline", "suspensions", "migrations", "energy_kwh",
    "carbon_g", "cost_usd", "trace_job", "stages", "tasks", "tasks_completed", "tasks_failed", "tasks_in_flight",
    "gpus", "gpu_energy_kwh", "failure",
)  # fmt: skip


def stage_table(result: SimResult) -> pd.DataFrame:
    """One row per stage: where and when it ran (a Gantt chart's bars), its tasks and its energy.

    Columns: ``job``, ``trace_job``, ``stage`` (within the job, topological order), ``stage_id`` (the
    trace's), ``parents`` (stage numbers within the job, space-separated), ``tasks``, ``task_duration_s``,
    ``cpus_per_task``, ``gpus_per_task``, ``gpu_type`` (name; empty: none or any), ``tasks_completed``,
    ``start_s`` (first task start), ``end_s`` (last task end), ``regions`` (the regions its tasks ran in,
    in order of first use), ``segments`` (task groups run), ``energy_kwh`` (with PUE; migrations are the
    job's, not a stage's).
    """
    jobs, rec = result.jobs, result.job_records
    if rec is None:
        raise ValueError("the run has no batch jobs")
    st = jobs.stages
    m = len(st)
    region_names = result.world.scenario.region_names
    first = st.first
    parents = [
        " ".join(str(int(p - first[s])) for p in st.parent_idx[st.parent_ptr[s] : st.parent_ptr[s + 1]])
        for s in range(m)
    ]
    acc_power, _ = _segment_power(result)
    pue = np.array(result.job_context.pue) if result.job_context is not None else np.ones(len(region_names))
    seg_kwh = acc_power * pue[rec.seg_region] * (rec.seg_end_s - rec.seg_start_s) / 3.6e6
    energy = np.bincount(rec.seg_stage, weights=seg_kwh, minlength=m)
    used: list[list[str]] = [[] for _ in range(m)]
    for s, r in zip(rec.seg_stage.tolist(), rec.seg_region.tolist(), strict=True):
        if region_names[r] not in used[s]:
            used[s].append(region_names[r])
    type_names = np.array([*st.gpu_types, ""], dtype=object)
    trace_id = jobs.trace_id if jobs.trace_id is not None else tuple(str(j) for j in range(len(jobs)))
    return pd.DataFrame(
        {
            "job": st.job,
            "trace_job": np.asarray(trace_id, dtype=object)[st.job] if m else np.zeros(0, dtype=object),
            "stage": np.arange(m) - first,
            "stage_id": st.names if st.names is not None else (np.arange(m) - first).astype(str),
            "parents": parents,
            "tasks": st.tasks,
            "task_duration_s": st.task_duration_s,
            "cpus_per_task": st.cpus_per_task,
            "gpus_per_task": st.gpus_per_task,
            "gpu_type": np.where(st.gpus_per_task > 0, type_names[st.gpu_type.astype(np.int64)], ""),
            "tasks_completed": rec.stage_done,
            "start_s": rec.stage_start_s,
            "end_s": rec.stage_end_s,
            "regions": [" ".join(r) for r in used],
            "segments": np.bincount(rec.seg_stage, minlength=m),
            "energy_kwh": energy,
        }
    )


def segment_table(result: SimResult) -> pd.DataFrame:
    """One row per running segment (a group of a stage's tasks running together): the finest Gantt view.

    Columns: ``job``, ``stage`` (within the job), ``region`` (name), ``start_s``, ``end_s``, ``tasks``,
    ``scale`` (allocation copies per task), ``gpu_type`` (name; empty without GPUs).
    """
    jobs, rec = result.jobs, result.job_records
    if rec is None or result.job_context is None:
        raise ValueError("the run has no batch jobs")
    names = np.array(result.world.scenario.region_names, dtype=object)
    gpu_names = np.array([*result.job_context.gpu_types, ""], dtype=object)
    return pd.DataFrame(
        {
            "job": rec.seg_job,
            "stage": rec.seg_stage - jobs.stages.first[rec.seg_stage],
            "region": names[rec.seg_region],
            "start_s": rec.seg_start_s,
            "end_s": rec.seg_end_s,
            "tasks": rec.seg_tasks,
            "scale": rec.seg_scale,
            "gpu_type": gpu_names[rec.seg_gpu],
        }
    )


def hourly_load(result: SimResult) -> pd.DataFrame:
    """Busy batch CPUs and GPUs per region and simulated hour (the clusters' load over time).

    Each running segment holds ``tasks x scale x cpus_per_task`` CPUs (and likewise GPUs) from its start to
    its end; an hour's value is the time-average over the hour (busy CPU-seconds / 3600). Columns: ``hour``
    (from the start of the run), ``region``, ``busy_cpus``, ``busy_gpus``, ``cpu_share`` and ``gpu_share``
    (of the region's batch CPUs and GPUs; NaN where it has none). Every hour from 0 to the last segment's
    end, every region.
    """
    jobs, rec, ctx = result.jobs, result.job_records, result.job_context
    if rec is None or ctx is None:
        raise ValueError("the run has no batch jobs")
    names = result.world.scenario.region_names
    n = len(names)
    st = jobs.stages
    units = (rec.seg_tasks * rec.seg_scale).astype(np.float64)
    cpus = units * st.cpus_per_task[rec.seg_stage]
    gpus = units * st.gpus_per_task[rec.seg_stage]
    start, end = rec.seg_start_s, rec.seg_end_s
    hours = math.ceil(float(end.max()) / 3600.0) if end.size else 0
    first = np.floor(start / 3600.0).astype(np.int64)
    last = np.maximum(np.ceil(end / 3600.0).astype(np.int64) - 1, first)
    span = last - first + 1
    seg = np.repeat(np.arange(start.size), span)
    hour = first[seg] + (np.arange(seg.size) - np.repeat(np.cumsum(span) - span, span))
    overlap = np.minimum(end[seg], (hour + 1) * 3600.0) - np.maximum(start[seg], hour * 3600.0)
    overlap = np.maximum(overlap, 0.0)
    cell = rec.seg_region[seg].astype(np.int64) * max(hours, 1) + hour
    size = n * max(hours, 1)
    busy_cpu = np.bincount(cell, weights=cpus[seg] * overlap, minlength=size)[:size] / 3600.0
    busy_gpu = np.bincount(cell, weights=gpus[seg] * overlap, minlength=size)[:size] / 3600.0
    cap_cpu = np.repeat(np.asarray(ctx.capacity_cpus, dtype=np.float64), max(hours, 1))
    cap_gpu = np.repeat(np.array([sum(row) for row in ctx.capacity_gpus], dtype=np.float64), max(hours, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        cpu_share = np.where(cap_cpu > 0, busy_cpu / cap_cpu, np.nan)
        gpu_share = np.where(cap_gpu > 0, busy_gpu / cap_gpu, np.nan)
    table = pd.DataFrame(
        {
            "hour": np.tile(np.arange(max(hours, 1)), n),
            "region": np.repeat(np.array(names, dtype=object), max(hours, 1)),
            "busy_cpus": busy_cpu,
            "busy_gpus": busy_gpu,
            "cpu_share": cpu_share,
            "gpu_share": gpu_share,
        }
    )
    return table if hours else table.iloc[:0]


def _segment_power(result: SimResult) -> tuple[np.ndarray, np.ndarray]:
    from carbonsim.core.jobs import segment_power_w

    rec, ctx = result.job_records, result.job_context
    assert rec is not None and ctx is not None
    return segment_power_w(result.jobs, rec, ctx.cpu_busy_w, ctx.gpu_busy_w)


def job_summary(df: pd.DataFrame, result: SimResult) -> dict[str, Any]:
    """Headline numbers of the jobs (flat keys, prefixed ``jobs``/``job_``/``tasks``/``stages``).

    Every job is counted in exactly one of ``jobs_completed``, ``jobs_failed`` (it cannot run anywhere:
    ``jobs_failed_<reason>`` per reason) and ``jobs_in_flight``, and in exactly one of
    ``jobs_deadline_met``, ``jobs_deadline_missed`` and ``jobs_deadline_pending``; every task likewise in
    ``tasks_completed``, ``tasks_failed`` and ``tasks_in_flight`` (``tasks_running`` of these run at the
    end). ``deadline_met_pct`` is met / (met + missed). Waiting and completion times are over completed
    jobs. ``job_energy_kwh`` is the sum of ``job_energy_kwh_<region>`` (running energy per region) and
    ``job_network_kwh`` (migrations).
    """
    done = df[df["status"] == JOB_STATUS_NAMES[COMPLETED]]
    n = len(df)
    met = int((df["deadline"] == "met").sum())
    missed = int((df["deadline"] == "missed").sum())
    rec = result.job_records
    out: dict[str, Any] = {
        "jobs": n,
        "jobs_completed": len(done),
        "jobs_failed": int((df["status"] == JOB_STATUS_NAMES[FAILED]).sum()),
        "jobs_in_flight": int((df["status"] == "in_flight").sum()),
        "jobs_left_out_of_trace": result.jobs.dropped_from_trace,
        # Records of a user's trace its importer did not replay, or replayed changed (reasons in jobs_trace_notes).
        "jobs_skipped_by_importer": sum(c for r, c in result.jobs.trace_notes if r.startswith("skipped: ")),
        "jobs_adjusted_by_importer": sum(c for r, c in result.jobs.trace_notes if r.startswith("adjusted: ")),
        "jobs_trace_notes": "; ".join(f"{reason} ({count})" for reason, count in result.jobs.trace_notes),
        "jobs_deadline_met": met,
        "jobs_deadline_missed": missed,
        "jobs_deadline_pending": n - met - missed,
        "deadline_met_pct": 100.0 * met / (met + missed) if met + missed else float("nan"),
        "job_mean_wait_h": float(done["wait_h"].mean()) if len(done) else float("nan"),
        "job_p95_wait_h": float(done["wait_h"].quantile(0.95)) if len(done) else float("nan"),
        "job_mean_completion_h": float(done["completion_h"].mean()) if len(done) else float("nan"),
        "job_p95_completion_h": float(done["completion_h"].quantile(0.95)) if len(done) else float("nan"),
        "job_energy_kwh": float(df["energy_kwh"].sum()),
        "job_carbon_kg": float(df["carbon_g"].sum() / 1e3),
        "job_cost_usd": float(df["cost_usd"].sum()),
        "job_suspensions": int(df["suspensions"].sum()),
        "job_migrations": int(df["migrations"].sum()),
    }
    if rec is None:  # a job source whose window holds no job: every count 0, every column present
        out.update({f"jobs_failed_{reason}": 0 for reason in FAILURE_REASONS[1:]})
        out.update(dict.fromkeys(("stages", "stages_completed", "tasks", "tasks_completed", "tasks_failed"), 0))
        out.update({"tasks_in_flight": 0, "tasks_running": 0, "job_gpu_energy_kwh": 0.0, "job_network_kwh": 0.0})
        out.update({f"job_energy_kwh_{name}": 0.0 for name in result.world.scenario.region_names})
        return out
    for code, reason in enumerate(FAILURE_REASONS):
        if code:
            out[f"jobs_failed_{reason}"] = int((rec.failure == code).sum())
    acc = account(result)
    out.update(
        {
            "stages": len(result.jobs.stages),
            "stages_completed": int(np.isfinite(rec.stage_end_s).sum()),
            "tasks": int(df["tasks"].sum()),
            "tasks_completed": int(df["tasks_completed"].sum()),
            "tasks_failed": int(df["tasks_failed"].sum()),
            "tasks_in_flight": int(df["tasks_in_flight"].sum()),
            "tasks_running": int(rec.tasks_running.sum()),
            "job_gpu_energy_kwh": float(df["gpu_energy_kwh"].sum()),
            "job_network_kwh": acc.network_kwh,
        }
    )
    for name, kwh in zip(result.world.scenario.region_names, acc.region_kwh.tolist(), strict=True):
        out[f"job_energy_kwh_{name}"] = kwh
    return out


def add_job_reduction(summary: dict[str, Any], baseline: dict[str, Any]) -> None:
    """Adds ``job_carbon_reduction_pct`` against the baseline run's job emissions (in place)."""
    if "job_carbon_kg" not in summary or "job_carbon_kg" not in baseline:
        return
    base = baseline["job_carbon_kg"]
    summary["baseline_batch_policy"] = baseline.get("batch_policy", "")
    summary["baseline_job_carbon_kg"] = base
    summary["job_carbon_reduction_pct"] = (
        float((1.0 - summary["job_carbon_kg"] / base) * 100.0) if base else float("nan")
    )


def add_bound(summary: dict[str, Any], bounds: dict[str, float]) -> None:
    """Adds the clairvoyant batch bounds and the policy's share of the bound's reduction (in place).

    Args:
        summary: A run's summary with ``job_carbon_kg`` and, after :func:`add_job_reduction`,
            ``baseline_job_carbon_kg``.
        bounds: Bound emissions in kg by region rule (``home``: jobs stay in their home region, the bound
            of temporal shifting; ``any``: jobs may run anywhere).

    ``job_share_of_<rule>_bound_pct`` = (baseline - policy) / (baseline - bound) x 100: 100 % means the
    policy reached the bound, 0 % that it saved nothing. It is NaN when the bound saves nothing, or less
    than a millionth of the baseline (e.g. deadlines of seconds, which leave no hour to shift to): a
    share of the solver's rounding is no measure.
    """
    if "job_carbon_kg" not in summary:
        return
    base = summary.get("baseline_job_carbon_kg", float("nan"))
    for rule, kg in bounds.items():
        summary[f"bound_{rule}_job_carbon_kg"] = kg
        gap = base - kg
        summary[f"job_share_of_{rule}_bound_pct"] = (
            float((base - summary["job_carbon_kg"]) / gap * 100.0) if gap > 1e-6 * abs(base) else float("nan")
        )
