"""The stage table: the one form in which every job trace reaches the simulator.

Every importer of a job trace (GAIA, TPC-H DAGs, Google, Alibaba, PAI, SWF, Slurm, plain CSV) returns a
:class:`JobTrace`, whose ``stages`` frame has one row per *stage* of a job. A stage is a set of identical,
parallel tasks; it may start once every one of its parents (stages of the same job) has finished. An
independent job is a job with one stage of one task. :func:`validate_stages` checks a frame against this
contract, naming the source, the job and the stage of the first problem.

Columns of ``stages`` (exactly these, in this order):

========================  ==========  ====================================================================
column                    dtype       meaning
========================  ==========  ====================================================================
``job``                   object/str  job id, as in the trace
``stage``                 object/str  stage id, unique within its job
``submit_s``              float64     job submission, s after the trace's origin (the same on every row of
                                      a job)
``tasks``                 int64       parallel tasks of the stage (>= 1)
``task_duration_s``       float64     run time of one task on its resources, s (> 0)
``cpus_per_task``         float64     CPU cores one task holds (>= 0)
``gpus_per_task``         float64     GPUs one task holds (>= 0)
``gpu_type``              object/str  GPU model from ``traces/catalog/gpus.csv`` ("" = none or any)
``parents``               object/str  space-separated stage ids of the same job ("" for a root stage)
``home``                  object/str  region the trace places the job in ("" = drawn by the scenario)
``deadline_s``            float64     deadline from the trace, s after the origin (NaN = by the scenario's
                                      deadline rule)
``interruptible``         float64     1.0 / 0.0 from the trace, NaN = drawn by the scenario
========================  ==========  ====================================================================

Rows are ordered by ``submit_s`` (stable), then by job, with every stage after its parents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.limits import JOB_DURATION_S
from carbonsim.limits import MAX_CPUS_PER_TASK as MAX_CPUS_PER_TASK  # re-exported: importers use them from here
from carbonsim.limits import MAX_GPUS_PER_TASK as MAX_GPUS_PER_TASK
from carbonsim.limits import MAX_TASKS as MAX_TASKS

STAGE_COLUMNS: tuple[str, ...] = (
    "job",
    "stage",
    "submit_s",
    "tasks",
    "task_duration_s",
    "cpus_per_task",
    "gpus_per_task",
    "gpu_type",
    "parents",
    "home",
    "deadline_s",
    "interruptible",
)
_STRING_COLUMNS = ("job", "stage", "gpu_type", "parents", "home")
_FLOAT_COLUMNS = ("submit_s", "task_duration_s", "cpus_per_task", "gpus_per_task", "deadline_s", "interruptible")

#: Physical bounds that no real job exceeds (:mod:`carbonsim.limits`); beyond them is a unit error, not a job.
MAX_TASK_DURATION_S = JOB_DURATION_S.high


@dataclass(frozen=True)
class JobTrace:
    """A job trace in the stage-table form.

    Attributes:
        stages: One row per stage (see the module docstring for the columns).
        source: What was read (file names and format), for messages and provenance.
        origin_utc: Calendar time of ``submit_s = 0`` if the trace says it (UTC), else None.
        skipped: Reasons and counts of trace records an importer left out on purpose (for example the
            failed or killed jobs of a trace that only replays finished ones); reported in the run summary,
            never silent.
        adjusted: Reasons and counts of records replayed with a documented change (for example a task whose
            run time rounds to 0 s in a trace of 1 s resolution, replayed as 0.5 s); reported like
            ``skipped``, but these records are in ``stages``.
    """

    stages: pd.DataFrame
    source: str
    origin_utc: pd.Timestamp | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    adjusted: dict[str, int] = field(default_factory=dict)

    @property
    def n_jobs(self) -> int:
        """Number of distinct jobs."""
        return int(self.stages["job"].nunique())


def empty_stages() -> pd.DataFrame:
    """A stage table with no rows and the contract's columns and dtypes."""
    data: dict[str, pd.Series] = {}
    for col in STAGE_COLUMNS:
        if col in _STRING_COLUMNS:
            data[col] = pd.Series([], dtype=object)
        elif col == "tasks":
            data[col] = pd.Series([], dtype=np.int64)
        else:
            data[col] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(data)


def one_task_jobs(submit_s: np.ndarray, task_duration_s: np.ndarray, cpus: np.ndarray, source: str) -> JobTrace:
    """A validated trace of independent jobs: job ``i`` (id ``str(i)``) is one stage ``"0"`` of one CPU task.

    Args:
        submit_s: Submission times in s after the trace's origin.
        task_duration_s: Run times in s.
        cpus: CPUs per job.
        source: What was read, for messages.
    """
    n = len(submit_s)
    stages = pd.DataFrame(
        {
            "job": np.arange(n).astype(str).astype(object),
            "stage": np.full(n, "0", dtype=object),
            "submit_s": np.asarray(submit_s, dtype=np.float64),
            "tasks": np.ones(n, dtype=np.int64),
            "task_duration_s": np.asarray(task_duration_s, dtype=np.float64),
            "cpus_per_task": np.asarray(cpus, dtype=np.float64),
            "gpus_per_task": np.zeros(n),
            "gpu_type": np.full(n, "", dtype=object),
            "parents": np.full(n, "", dtype=object),
            "home": np.full(n, "", dtype=object),
            "deadline_s": np.full(n, np.nan),
            "interruptible": np.full(n, np.nan),
        }
    )
    return JobTrace(validate_stages(stages, source), source)


def parent_ids(parents: str) -> list[str]:
    """The stage ids of a ``parents`` cell."""
    return parents.split()


def _where(source: str, job: object, stage: object | None = None) -> str:
    return f"{source}: job {job!s}" + (f" stage {stage!s}" if stage is not None else "")


def validate_stages(stages: pd.DataFrame, source: str) -> pd.DataFrame:
    """Checks a stage table against the contract and returns it in canonical order.

    Canonical order: jobs by ``submit_s`` (stable, so ties keep the input's order), each job's stages in a
    topological order that keeps the input's order where precedence allows.

    Args:
        stages: The frame an importer built.
        source: The file(s) it came from, for messages.

    Returns:
        The validated frame (a new frame, index reset).

    Raises:
        DataError: naming the source, job and stage: missing or extra columns, an empty id, a duplicate
            stage id, a value out of its bounds, a job whose rows disagree on submission, deadline, home or
            interruptibility, a parent that is not a stage of the job, a cycle, or a stage with no
            resources.
    """
    if list(stages.columns) != list(STAGE_COLUMNS):
        missing = [c for c in STAGE_COLUMNS if c not in stages.columns]
        extra = [c for c in stages.columns if c not in STAGE_COLUMNS]
        raise DataError(f"{source}: stage table columns {list(stages.columns)}: missing {missing}, unexpected {extra}")
    df = stages.reset_index(drop=True).copy()
    for col in _STRING_COLUMNS:
        df[col] = df[col].astype(str)
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="raise").astype(np.float64)
    df["tasks"] = pd.to_numeric(df["tasks"], errors="raise").astype(np.int64)
    job = df["job"].to_numpy(dtype=object)
    stage = df["stage"].to_numpy(dtype=object)

    empty = (df["job"] == "").to_numpy() | (df["stage"] == "").to_numpy()
    if empty.any():
        raise DataError(f"{source}: stage row {int(np.flatnonzero(empty)[0]) + 1}: empty job or stage id")
    bounds = (
        ("submit_s", 0.0, math.inf, "s", False),
        ("task_duration_s", 0.0, MAX_TASK_DURATION_S, "s", True),
        ("cpus_per_task", 0.0, MAX_CPUS_PER_TASK, "cores", False),
        ("gpus_per_task", 0.0, MAX_GPUS_PER_TASK, "GPUs", False),
    )
    for col, lo, hi, unit, positive in bounds:
        v = df[col].to_numpy(dtype=np.float64)
        low_ok = (v > lo) if positive else (v >= lo)
        if (i := _first(~low_ok | ~(v <= hi))) is not None:
            rel = f"> {lo:g}" if positive else f">= {lo:g}"
            raise DataError(f"{_where(source, job[i], stage[i])}: {col} {v[i]:g}; expected {rel} and <= {hi:g} {unit}")
    tasks = df["tasks"].to_numpy(dtype=np.int64)
    if (i := _first((tasks < 1) | (tasks > MAX_TASKS))) is not None:
        raise DataError(f"{_where(source, job[i], stage[i])}: tasks {tasks[i]}; expected 1..{MAX_TASKS}")
    cpus = df["cpus_per_task"].to_numpy(dtype=np.float64)
    gpus = df["gpus_per_task"].to_numpy(dtype=np.float64)
    if (i := _first((cpus <= 0) & (gpus <= 0))) is not None:
        raise DataError(f"{_where(source, job[i], stage[i])}: no CPUs or GPUs; expected a resource demand")
    inter = df["interruptible"].to_numpy(dtype=np.float64)
    if (i := _first(~(np.isnan(inter) | (inter == 0.0) | (inter == 1.0)))) is not None:
        raise DataError(f"{_where(source, job[i], stage[i])}: interruptible {inter[i]:g}; expected 0, 1 or empty")
    submit = df["submit_s"].to_numpy(dtype=np.float64)
    deadline = df["deadline_s"].to_numpy(dtype=np.float64)
    if (i := _first(deadline < submit)) is not None:
        raise DataError(f"{_where(source, job[i], stage[i])}: deadline_s {deadline[i]:g} before submit_s {submit[i]:g}")
    # Per job (ranked by first appearance): its rows' agreement, checked column by column in one pass;
    # precedence and order only for the jobs with parents (a job of one root stage is in order already).
    rank, _ = pd.factorize(df["job"], sort=False)
    n_jobs = int(rank.max()) + 1 if len(rank) else 0
    lead = np.full(n_jobs, len(df), dtype=np.int64)
    np.minimum.at(lead, rank, np.arange(len(df)))
    bad_job = n_jobs
    for col in ("submit_s", "home", "deadline_s", "interruptible"):
        v = df[col].to_numpy()
        ref = v[lead[rank]]
        differ = v != ref
        if col in _FLOAT_COLUMNS:
            differ &= ~(np.isnan(v.astype(np.float64)) & np.isnan(ref.astype(np.float64)))
        if differ.any():
            bad_job = min(bad_job, int(rank[differ].min()))
    parents = df["parents"].to_numpy(dtype=object)
    has_parents = parents != ""
    counts = np.bincount(rank, minlength=n_jobs)
    check = np.zeros(n_jobs, dtype=bool)
    check[rank[has_parents]] = True
    check |= counts > 1
    if bad_job < n_jobs:
        check[bad_job + 1 :] = False
        check[bad_job] = True
    position = np.zeros(len(df), dtype=np.int64)
    if check.any():
        rows_of = np.argsort(rank, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)])
        for r in np.flatnonzero(check).tolist():
            rows = rows_of[starts[r] : starts[r + 1]]
            job_id = job[rows[0]]
            if r == bad_job:
                group = df.iloc[rows]
                for col in ("submit_s", "home", "deadline_s", "interruptible"):
                    values = group[col].unique()
                    if len(values) > 1 and not (col in ("deadline_s", "interruptible") and pd.isna(values).all()):
                        raise DataError(f"{_where(source, job_id)}: its stages disagree on {col} ({list(values)[:3]})")
            local = _topological(list(stage[rows]), list(parents[rows]), source, str(job_id))
            position[rows[local]] = np.arange(len(rows))
    # Jobs by submission (stable); a job's rows stay together in their topological order.
    first = df["submit_s"].to_numpy(dtype=np.float64)[lead[rank]]
    order = np.lexsort((position, rank, first))
    return df.iloc[order].reset_index(drop=True)


def _first(bad: np.ndarray) -> int | None:
    """Index of the first true element, or None."""
    rows = np.flatnonzero(bad)
    return int(rows[0]) if rows.size else None


def _topological(ids: list[str], parent_cells: list[str], source: str, job: str) -> np.ndarray:
    """Positions of one job's stages (given in input order) in a topological order.

    The order keeps the input's order where precedence allows.
    """
    seen: set[str] = set()
    for sid in ids:
        if sid in seen:
            raise DataError(f"{_where(source, job, sid)}: duplicate stage id")
        seen.add(sid)
    parents = {sid: parent_ids(p) for sid, p in zip(ids, parent_cells, strict=True)}
    for sid, ps in parents.items():
        for p in ps:
            if p not in seen:
                raise DataError(f"{_where(source, job, sid)}: parent {p!r} is not a stage of the job")
            if p == sid:
                raise DataError(f"{_where(source, job, sid)}: depends on itself")
    label = {sid: i for i, sid in enumerate(ids)}
    done: set[str] = set()
    out: list[int] = []
    pending = list(ids)
    while pending:
        ready = [sid for sid in pending if all(p in done for p in parents[sid])]
        if not ready:
            raise DataError(f"{_where(source, job)}: the dependencies of stages {pending[:5]} form a cycle")
        for sid in ready:
            done.add(sid)
            out.append(label[sid])
        pending = [sid for sid in pending if sid not in done]
    return np.array(out, dtype=np.int64)
