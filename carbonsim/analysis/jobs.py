"""Tables and headline numbers of batch jobs: completion, waiting, deadlines, energy, carbon and cost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from carbonsim.core.batch import COMPLETED, FAILED, JOB_STATUS_NAMES, job_account
from carbonsim.core.simulation import SimResult

#: Completion later than the deadline by more than this (s) counts as a miss (floating-point slack).
DEADLINE_SLACK_S = 1e-6


def job_table(result: SimResult) -> pd.DataFrame:
    """One row per job: its trace facts, the policy's outcome, and energy, carbon and cost.

    Columns: ``job``, ``arrival_s``, ``duration_s``, ``cpus``, ``deadline_s``, ``interruptible``,
    ``home`` and ``region`` (names; region empty if never started), ``status`` (completed / failed /
    in_flight), ``start_s``, ``end_s``, ``completion_h`` (end - arrival), ``wait_h`` (completion minus
    running time: queueing and deliberate delay), ``deadline`` (``met``: completed by its deadline;
    ``missed``: completed late, failed, or unfinished when the run ended after its deadline; ``pending``:
    unfinished with its deadline after the end of the run), ``suspensions``, ``migrations`` (region
    changes, including a first start away from home), ``energy_kwh`` (running energy with PUE plus the
    network energy of migrations), ``carbon_g``, ``cost_usd``.
    """
    jobs, rec = result.jobs, result.job_records
    if rec is None:
        raise ValueError("the run has no batch jobs")
    scenario = result.world.scenario
    names = np.array([*scenario.region_names, ""], dtype=object)
    pue = np.array([r.pue for r in scenario.regions])
    energy, carbon, cost = job_account(
        jobs, rec, result.world.carbon, result.world.price, pue, scenario.batch.cpu_busy_w
    )
    status = np.array(JOB_STATUS_NAMES, dtype=object)[rec.status]
    completion_s = rec.end_s - jobs.arrival_s
    completed = rec.status == COMPLETED
    met = completed & (rec.end_s <= jobs.deadline_s + DEADLINE_SLACK_S)
    pending = ~completed & (rec.status != FAILED) & (jobs.deadline_s > result.end_s)
    deadline = np.where(met, "met", np.where(pending, "pending", "missed"))
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
            "energy_kwh": energy,
            "carbon_g": carbon,
            "cost_usd": cost,
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
        }
    )[list(_JOB_COLUMNS)]


_JOB_COLUMNS = (
    "job", "arrival_s", "duration_s", "cpus", "deadline_s", "interruptible", "home", "region", "status",
    "start_s", "end_s", "completion_h", "wait_h", "deadline", "suspensions", "migrations", "energy_kwh",
    "carbon_g", "cost_usd",
)  # fmt: skip


def job_summary(df: pd.DataFrame, result: SimResult) -> dict[str, Any]:
    """Headline numbers of the jobs (flat keys, prefixed ``jobs``/``job_``).

    Every job is counted in exactly one of ``jobs_completed``, ``jobs_failed`` (needs more CPUs than any
    cluster) and ``jobs_in_flight``, and in exactly one of ``jobs_deadline_met``, ``jobs_deadline_missed``
    and ``jobs_deadline_pending``; ``deadline_met_pct`` is met / (met + missed). Waiting and completion
    times are over completed jobs.
    """
    done = df[df["status"] == JOB_STATUS_NAMES[COMPLETED]]
    n = len(df)
    met = int((df["deadline"] == "met").sum())
    missed = int((df["deadline"] == "missed").sum())
    return {
        "jobs": n,
        "jobs_completed": len(done),
        "jobs_failed": int((df["status"] == JOB_STATUS_NAMES[FAILED]).sum()),
        "jobs_in_flight": int((df["status"] == "in_flight").sum()),
        "jobs_left_out_of_trace": result.jobs.dropped_from_trace,
        "jobs_deadline_met": met,
        "jobs_deadline_missed": missed,
        "jobs_deadline_pending": n - met - missed,
        "deadline_met_pct": 100.0 * met / (met + missed) if met + missed else float("nan"),
        "job_mean_wait_h": float(done["wait_h"].mean()) if len(done) else float("nan"),
        "job_p95_wait_h": float(done["wait_h"].quantile(0.95)) if len(done) else float("nan"),
        "job_mean_completion_h": float(done["completion_h"].mean()) if len(done) else float("nan"),
        "job_energy_kwh": float(df["energy_kwh"].sum()),
        "job_carbon_kg": float(df["carbon_g"].sum() / 1e3),
        "job_cost_usd": float(df["cost_usd"].sum()),
        "job_suspensions": int(df["suspensions"].sum()),
        "job_migrations": int(df["migrations"].sum()),
    }


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
    policy reached the bound, 0 % that it saved nothing.
    """
    if "job_carbon_kg" not in summary:
        return
    base = summary.get("baseline_job_carbon_kg", float("nan"))
    for rule, kg in bounds.items():
        summary[f"bound_{rule}_job_carbon_kg"] = kg
        gap = base - kg
        summary[f"job_share_of_{rule}_bound_pct"] = (
            float((base - summary["job_carbon_kg"]) / gap * 100.0) if gap > 0 else float("nan")
        )
