"""carbonsim beside the PCAPS paper's simulator experiment (experiment ``pcaps_reproduction``, docs/reference.md).

Lechowicz, Shenoy, Bashir, Hajiesmaili, Wierman, Delimitrou, "Carbon- and Precedence-Aware Scheduling for
Data Processing Clusters", SIGCOMM 2025 (arXiv 2502.09717), evaluate PCAPS and CAP in a fork of Decima's
Spark simulator (umass-solar/carbon-aware-dag): 1 + 50 TPC-H jobs streaming into 100 executors under a
German carbon trace. Their committed figure reports, for one trial, each scheduler's end-to-end time (last
completion, in simulated minutes, which are carbon hours under their time dilation) and its carbon relative
to Spark's FIFO. This module turns the jobs of a sweep of the experiment into the same two numbers per trial
(a start hour and a job stream) and puts their mean and 95 % confidence interval beside the published ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from carbonsim import sweep
from carbonsim.analysis import tables
from carbonsim.data.errors import DataError

PUBLISHED_SOURCE = (
    "Lechowicz et al., SIGCOMM 2025 (arXiv 2502.09717); umass-solar/carbon-aware-dag @05b8d203, "
    "simulator/results/aggregated_carbon_usage.png (one trial, values read off the bars)"
)

#: carbonsim run label -> (the authors' scheduler, end-to-end time in simulated minutes, carbon / FIFO's).
PUBLISHED: Mapping[str, tuple[str, float, float]] = {
    "FIFO": ("Spark FIFO", 27.5, 1.00),
    "critical_path": ("Decima", 27.5, 0.70),
    "CAP-FIFO": ("CAP on Spark FIFO", 35.9, 0.75),
    "CAP-critical_path": ("CAP on Decima", 28.9, 0.64),
    "PCAPS": ("PCAPS (over Decima)", 27.6, 0.54),
    "PCAPS-sequential": ("PCAPS (over Decima)", 27.6, 0.54),
}

BASELINE = "FIFO"
#: Row of the clairvoyant bound (the least carbon any schedule of the trial's jobs within their deadlines has).
BOUND = "clairvoyant bound"
TRIAL = ["variant", "seed"]
COLUMNS = (
    "policy",
    "their scheduler",
    "trials",
    "carbon / FIFO (carbonsim)",
    "carbon / FIFO (published)",
    "end-to-end h (carbonsim)",
    "end-to-end (published, sim. min = carbon h)",
    "mean job wait h (carbonsim)",
)


def trial_rows(sweep_dir: Path) -> pd.DataFrame:
    """One row per finished job of the sweep: its policy, trial and the numbers the comparison needs.

    Columns: ``label``, ``variant``, ``seed``, ``jobs``, ``jobs_completed``, ``job_carbon_kg``,
    ``end_to_end_h`` (last completion minus first arrival), ``job_mean_wait_h``, ``bound_job_carbon_kg`` (the
    clairvoyant bound of the trial, :mod:`carbonsim.job_bound`, NaN if absent) and ``guard_margin_h``: the
    least, over the jobs, of ``deadline - critical path - completion``. A stage can be forced by its deadline
    only within an hour of its job's latest start (``carbonsim.policies.stages``), so a margin above 1 h says
    that the deadline guard never fired: the run is one without deadlines, as in the paper.

    Raises:
        DataError: the sweep has no finished job, or a job folder has no ``jobs.csv``.
    """
    df = sweep.collect(sweep_dir)
    done = df[df["status"] == "done"] if len(df) else df
    if not len(done):
        raise DataError(f"{sweep_dir}: no finished job of the experiment")
    rows = []
    for _, row in done.iterrows():
        path = sweep_dir / str(row["job"]) / "jobs.csv"
        if not path.is_file():
            raise DataError(f"{path}: missing; expected the jobs of a finished batch run")
        jobs = pd.read_csv(path)
        margin_s = (jobs["deadline_s"] - jobs["duration_s"] - jobs["end_s"]).min()
        rows.append(
            {
                "label": row["label"],
                "variant": row.get("variant", ""),
                "seed": int(row["seed"]),
                "jobs": int(row["jobs"]),
                "jobs_completed": int(row["jobs_completed"]),
                "job_carbon_kg": float(row["job_carbon_kg"]),
                "end_to_end_h": float(jobs["end_s"].max() - jobs["arrival_s"].min()) / 3600.0,
                "job_mean_wait_h": float(row["job_mean_wait_h"]),
                "bound_job_carbon_kg": float(row.get("bound_home_job_carbon_kg", np.nan)),
                "guard_margin_h": float(margin_s) / 3600.0,
            }
        )
    return pd.DataFrame(rows)


def relative_carbon(trials: pd.DataFrame, baseline: str = BASELINE) -> pd.Series:
    """Each row's job carbon divided by the baseline policy's in the same trial (variant and seed).

    Raises:
        DataError: a trial has no baseline row (the ratio would be undefined) or a baseline with no carbon.
    """
    base = trials[trials["label"] == baseline].set_index(TRIAL)["job_carbon_kg"]
    if base.index.has_duplicates:
        raise DataError(f"policy {baseline!r}: more than one run per trial")
    keys = pd.MultiIndex.from_frame(trials[TRIAL])
    denominator = base.reindex(keys).to_numpy(dtype=np.float64)
    missing = ~np.isfinite(denominator) | (denominator <= 0)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        trial = ", ".join(f"{c} {trials[c].iloc[i]}" for c in TRIAL)
        raise DataError(
            f"trial ({trial}): no {baseline!r} run with carbon to compare against; expected every trial to run it"
        )
    return pd.Series(trials["job_carbon_kg"].to_numpy() / denominator, index=trials.index, name="carbon_vs_fifo")


def comparison(trials: pd.DataFrame, published: Mapping[str, tuple[str, float, float]] = PUBLISHED) -> pd.DataFrame:
    """The mean (95 % CI over trials) of carbonsim beside the published single trial, one row per policy.

    A last row gives the trials' clairvoyant bound relative to FIFO, when the jobs carry it.
    """
    data = trials.assign(carbon_vs_fifo=relative_carbon(trials))
    stats = tables.mean_ci(data, ["label"], ["carbon_vs_fifo", "end_to_end_h", "job_mean_wait_h"])
    rows = []
    for _, s in stats.iterrows():
        theirs = published.get(str(s["label"]))
        rows.append(
            {
                "policy": s["label"],
                "their scheduler": theirs[0] if theirs else "",
                "trials": int(s["seeds"]),
                "carbon / FIFO (carbonsim)": _with_ci(s, "carbon_vs_fifo", 3),
                "carbon / FIFO (published)": f"{theirs[2]:.2f}" if theirs else "",
                "end-to-end h (carbonsim)": _with_ci(s, "end_to_end_h", 1),
                "end-to-end (published, sim. min = carbon h)": f"{theirs[1]:.1f}" if theirs else "",
                "mean job wait h (carbonsim)": _with_ci(s, "job_mean_wait_h", 3),
            }
        )
    base = data[data["label"] == BASELINE]
    if "bound_job_carbon_kg" in base.columns and base["bound_job_carbon_kg"].notna().any():
        ratio = base.assign(label=BOUND, carbon_vs_fifo=base["bound_job_carbon_kg"] / base["job_carbon_kg"])
        s = tables.mean_ci(ratio, ["label"], ["carbon_vs_fifo"]).iloc[0]
        rows.append(
            {
                "policy": BOUND,
                "their scheduler": "",
                "trials": int(s["seeds"]),
                "carbon / FIFO (carbonsim)": _with_ci(s, "carbon_vs_fifo", 3),
                "carbon / FIFO (published)": "",
                "end-to-end h (carbonsim)": "",
                "end-to-end (published, sim. min = carbon h)": "",
                "mean job wait h (carbonsim)": "",
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _with_ci(row: pd.Series, metric: str, digits: int) -> str:
    mean, half = float(row[f"{metric}_mean"]), float(row[f"{metric}_ci95"])
    return f"{mean:.{digits}f}" + (f" ± {half:.{digits}f}" if np.isfinite(half) else "")


def checks(trials: pd.DataFrame) -> list[str]:
    """What makes a run unlike the paper's: jobs left out or unfinished, a deadline that could bind."""
    problems = []
    for _, t in trials.iterrows():
        where = f"{t['label']} {t['variant']} seed {t['seed']}"
        if t["jobs_completed"] != t["jobs"]:
            problems.append(f"{where}: {t['jobs_completed']} of {t['jobs']} jobs completed")
        if not t["guard_margin_h"] > 1.0:
            problems.append(
                f"{where}: a job's deadline could bind (it ended {t['guard_margin_h']:.2f} h before its latest "
                "start, under the 1 h within which the deadline guard may force a stage)"
            )
    jobs = sorted(set(trials["jobs"].tolist()))
    if len(jobs) > 1:
        problems.append(f"trials with different numbers of jobs: {jobs}")
    return problems


def write_comparison(sweep_dir: Path) -> pd.DataFrame:
    """Writes ``pcaps_reproduction_trials.csv`` and ``pcaps_reproduction.csv`` / ``.md`` into ``sweep_dir``.

    Returns:
        The comparison table (:func:`comparison`).
    """
    from carbonsim.runner import write_text

    trials = trial_rows(sweep_dir)
    trials = trials.assign(carbon_vs_fifo=relative_carbon(trials))
    table = comparison(trials)
    problems = checks(trials)
    write_text(sweep_dir / "pcaps_reproduction_trials.csv", trials.to_csv(index=False, float_format="%.6g"))
    write_text(sweep_dir / "pcaps_reproduction.csv", table.to_csv(index=False))
    lines = [
        tables.markdown(table),
        "",
        f"Published: {PUBLISHED_SOURCE}. carbonsim: mean ± 95 % CI over {trials.groupby(TRIAL).ngroups} trials, "
        f"{int(trials['jobs'].max())} jobs each; every job completed and no deadline could bind"
        if not problems
        else "Checks failed: " + "; ".join(problems),
        "",
    ]
    write_text(sweep_dir / "pcaps_reproduction.md", "\n".join(lines))
    return table


__all__ = ["PUBLISHED", "PUBLISHED_SOURCE", "checks", "comparison", "relative_carbon", "trial_rows", "write_comparison"]
