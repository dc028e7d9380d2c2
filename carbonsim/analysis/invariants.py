"""Accounting invariants, checked at the end of every run.

Three books must balance, whatever the policy and whatever failed:

* **Requests**: every request that arrived is exactly one of completed, rejected (admission control),
  failed or still in flight: ``requests = completed + rejected + failed + in_flight``, in the records and in
  the summary alike.
* **Energy**: the energy of the regions adds up to the run's total, busy and idle alike, and no hour of a
  region has more busy and offline server-seconds than its servers have (idle energy is never negative).
* **Carbon**: the emissions equal the integral of facility power x intensity over the run, computed two
  ways that share no arithmetic: per request (each service interval's exact integral of the hourly
  intensity, :meth:`~carbonsim.core.signals.HourlySignal.integral`) plus the idle energy of every hour at
  that hour's intensity, against the per-hour busy and idle energy at the hour's intensity.

With batch jobs (:func:`check_jobs`), two more:

* **Jobs and tasks**: every job is exactly one of completed, failed or in flight, and so is every task
  (the tasks of a failed job failed; a completed job's tasks all completed), in the records, the job table
  and the summary alike; no stage started before all its parents had finished.
* **Job energy**: the running energy of the regions plus the network energy of migrations adds up to the
  jobs' total.

A run that breaks one raises :class:`AccountingError` naming the book, the two numbers and their gap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from carbonsim.core.energy import J_PER_KWH, EnergyAccount
from carbonsim.core.jobs import COMPLETED as JOB_COMPLETED
from carbonsim.core.jobs import FAILED as JOB_FAILED
from carbonsim.core.recorder import COMPLETED, FAILED, IN_FLIGHT, REJECTED
from carbonsim.core.simulation import SimResult

#: Relative tolerance of the floating-point comparisons (sums of millions of terms in different orders).
RTOL = 1e-9


class AccountingError(RuntimeError):
    """A run whose books do not balance: a bug in the simulator or the analysis, never a user error."""


def _close(name: str, a: float, b: float, scale: float | None = None) -> None:
    tol = RTOL * max(abs(a), abs(b), scale or 0.0, 1e-12)
    if not abs(a - b) <= tol:
        raise AccountingError(f"{name}: {a!r} != {b!r} (gap {a - b:.3e}, tolerance {tol:.3e})")


def check_run(result: SimResult, energy: EnergyAccount, summary: dict[str, Any]) -> None:
    """Raises :class:`AccountingError` unless the run's requests, energy and carbon books balance."""
    status = result.records.status
    counts = {name: int((status == code).sum()) for name, code in _STATUS}
    n = len(result.requests)
    if sum(counts.values()) != n:
        raise AccountingError(f"requests: {n} arrived, but the records hold {counts} (sum {sum(counts.values())})")
    for name, value in counts.items():
        if summary.get(name) != value:
            raise AccountingError(f"requests: summary says {name} = {summary.get(name)}, the records {value}")
    if summary.get("requests") != n:
        raise AccountingError(f"requests: summary says {summary.get('requests')}, the request stream holds {n}")

    busy_kwh = energy.busy_kwh.sum(axis=1)
    idle_kwh = energy.idle_kwh.sum(axis=1)
    total_kwh = float(summary["energy_kwh"])
    _close("energy: sum over regions vs total (kWh)", float(busy_kwh.sum() + idle_kwh.sum()), total_kwh)
    _close(
        "energy: busy energy of the requests vs of the regions (kWh)",
        float(energy.request_energy_j.sum()) / J_PER_KWH,
        float(energy.busy_kwh.sum()),
    )
    if (energy.idle_kwh < -RTOL * max(float(np.abs(energy.idle_kwh).max(initial=0.0)), 1e-12)).any():
        r, h = np.unravel_index(int(np.argmin(energy.idle_kwh)), energy.idle_kwh.shape)
        raise AccountingError(
            f"energy: region {result.world.scenario.region_names[r]} hour {h} has negative idle energy "
            f"{energy.idle_kwh[r, h]:.3e} kWh (more busy and offline server-seconds than servers)"
        )

    per_request_g = float(energy.request_carbon_g.sum()) + float(energy.idle_g.sum())
    hours = energy.busy_kwh.shape[1]
    intensity = result.world.carbon.values[:, :hours]
    per_hour_g = float(((energy.busy_kwh + energy.idle_kwh) * intensity).sum())
    _close("carbon: per-request integrals + idle vs power x intensity per hour (g)", per_request_g, per_hour_g)
    _close("carbon: summary vs power x intensity per hour (g)", float(summary["carbon_kg"]) * 1e3, per_hour_g)


def check_jobs(result: SimResult, jobs: pd.DataFrame, summary: dict[str, Any]) -> None:
    """Raises :class:`AccountingError` unless the run's jobs, tasks and job energy books balance.

    Args:
        result: The run.
        jobs: Its job table (:func:`carbonsim.analysis.jobs.job_table`).
        summary: Its summary with the job keys (:func:`carbonsim.analysis.jobs.job_summary`).
    """
    rec = result.job_records
    if rec is None:
        return
    n = len(result.jobs)
    completed = int((rec.status == JOB_COMPLETED).sum())
    failed = int((rec.status == JOB_FAILED).sum())
    counts = {"jobs_completed": completed, "jobs_failed": failed, "jobs_in_flight": n - completed - failed}
    if summary.get("jobs") != n or len(jobs) != n:
        raise AccountingError(f"jobs: {n} arrived, summary says {summary.get('jobs')}, the table holds {len(jobs)}")
    for name, value in counts.items():
        if summary.get(name) != value:
            raise AccountingError(f"jobs: summary says {name} = {summary.get(name)}, the records {value}")
    tasks = result.jobs.tasks_per_job()
    parts = jobs["tasks_completed"].to_numpy() + jobs["tasks_failed"].to_numpy() + jobs["tasks_in_flight"].to_numpy()
    if not np.array_equal(parts, tasks) or (jobs["tasks_in_flight"].to_numpy() < 0).any():
        j = int(np.flatnonzero((parts != tasks) | (jobs["tasks_in_flight"].to_numpy() < 0))[0])
        raise AccountingError(f"tasks: job {j} has {tasks[j]} tasks, completed + failed + in flight = {parts[j]}")
    done_by_stage = int(rec.stage_done.sum())
    if done_by_stage != int(rec.tasks_done.sum()) or summary.get("tasks_completed") != done_by_stage:
        raise AccountingError(
            f"tasks: {done_by_stage} completed by the stages, {int(rec.tasks_done.sum())} by the jobs, "
            f"summary {summary.get('tasks_completed')}"
        )
    whole = rec.tasks_done == tasks
    if not np.array_equal(rec.status == JOB_COMPLETED, whole) or (rec.tasks_done[rec.status == JOB_FAILED] > 0).any():
        raise AccountingError("tasks: a completed job with unfinished tasks, or a failed job with finished ones")
    for key in ("tasks", "tasks_completed", "tasks_failed", "tasks_in_flight"):
        if summary.get(key) != int(jobs[key].sum()):
            raise AccountingError(f"tasks: summary says {key} = {summary.get(key)}, the table {int(jobs[key].sum())}")
    st = result.jobs.stages
    child = np.repeat(np.arange(len(st)), np.diff(st.parent_ptr))
    started = np.isfinite(rec.stage_start_s[child])
    early = started & ~(rec.stage_start_s[child] >= rec.stage_end_s[st.parent_idx])
    if early.any():
        k = int(np.flatnonzero(early)[0])
        raise AccountingError(
            f"precedence: stage {int(child[k])} started at {rec.stage_start_s[child[k]]!r} s, its parent stage "
            f"{int(st.parent_idx[k])} ended at {rec.stage_end_s[st.parent_idx[k]]!r} s"
        )
    regions = sum(float(summary[f"job_energy_kwh_{r}"]) for r in result.world.scenario.region_names)
    _close(
        "job energy: regions + network vs total (kWh)",
        regions + float(summary["job_network_kwh"]),
        float(summary["job_energy_kwh"]),
    )


_STATUS = (("completed", COMPLETED), ("rejected", REJECTED), ("failed", FAILED), ("in_flight", IN_FLIGHT))

__all__ = ["RTOL", "AccountingError", "check_jobs", "check_run"]
