"""A plain CSV job trace for everything without a published schema: one row per job or per stage.

Columns (header line required, any order; names other than these are errors):

==================  ========  ===================================================================
column              required  meaning
==================  ========  ===================================================================
``job``             yes       job id
``submit_s``        yes       submission, seconds after the trace's origin (the same on a job's rows)
``duration_s``      yes       run time of one task, s (> 0)
``cpus``            one of    CPU cores per task (>= 0; default 0)
``gpus``            these     GPUs per task (>= 0; default 0)
``stage``           no        stage id within the job (default ``0``: one row per job)
``tasks``           no        parallel identical tasks of the stage (default 1)
``gpu_type``        no        GPU model (a ``traces/catalog/gpus.csv`` name or one ``options.gpu_types``
                              maps; empty = any)
``parents``         no        space-separated stage ids of the same job this stage waits for
``home``            no        region (or a pool name that ``options.homes`` maps); empty = ``options.home``
``deadline_s``      no        deadline, s after the origin (empty = by the scenario's deadline rule)
``interruptible``   no        1 or 0 (empty = drawn by the scenario)
==================  ========  ===================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from carbonsim.data.errors import DataError
from carbonsim.data.importers._common import (
    GpuTypes,
    StageRows,
    Window,
    check_dag,
    describe,
    expand_paths,
    home_of,
    iter_chunks,
    read_header_line,
)
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions

REQUIRED = ("job", "submit_s", "duration_s")
OPTIONAL = ("cpus", "gpus", "stage", "tasks", "gpu_type", "parents", "home", "deadline_s", "interruptible")


def load_csv_jobs(paths: PathLike | Sequence[PathLike], options: JobImportOptions | None = None) -> JobTrace:
    """Jobs of a plain CSV trace (see the module docstring for the columns).

    Args:
        paths: The CSV file(s) (plain or gzip'd), each with a header line.
        options: Time window (seconds after the origin), ``home`` / ``homes``, ``missing_parents``,
            ``gpu_types`` / ``unknown_gpu``.

    Returns:
        The stage table; ``skipped`` counts jobs left out by reason.

    Raises:
        DataError: naming file, line and column: an unknown, duplicate or missing column, a row with too
            many or too few fields, a value that is not a number or out of range (a duration <= 0), rows
            of a job that disagree, a duplicate stage, a parent not in the job, a cycle.
    """
    opts = options or JobImportOptions()
    files = expand_paths(paths, "job CSV")
    rows = StageRows(describe("csv", files))
    gpus = GpuTypes(opts)
    jobs: dict[str, list[dict[str, object]]] = {}
    for path in files:
        header = read_header_line(path, ",")
        unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
        if unknown:
            raise DataError(
                f"{path}: line 1: unknown column(s) {unknown}; expected {list(REQUIRED)} and any of {list(OPTIONAL)}"
            )
        if len(set(header)) != len(header):
            raise DataError(f"{path}: line 1: a column appears twice in {header}")
        missing = [c for c in REQUIRED if c not in header]
        if missing or not {"cpus", "gpus"} & set(header):
            need = missing + ([] if {"cpus", "gpus"} & set(header) else ["cpus or gpus"])
            raise DataError(f"{path}: line 1: missing column(s) {need} in {header}")
        for chunk in iter_chunks(path, header, header=(header,), header_required=True):
            nan = math.nan
            has = set(header)
            job = chunk.text("job")
            stage = chunk.text("stage") if "stage" in has else np.full(len(job), "0", dtype=object)
            submit = chunk.number("submit_s", lo=0)
            duration = chunk.number("duration_s")
            if (bad := np.flatnonzero(duration <= 0)).size:
                i = int(bad[0])
                raise DataError(f"{chunk.where(i)}: field duration_s {duration[i]:g}; expected a run time > 0 s")
            cpus = chunk.number("cpus", empty=0.0, lo=0) if "cpus" in has else np.zeros(len(job))
            ngpu = chunk.number("gpus", empty=0.0, lo=0) if "gpus" in has else np.zeros(len(job))
            tasks = chunk.number("tasks", lo=1, integer=True) if "tasks" in has else np.ones(len(job))
            deadline = chunk.number("deadline_s", empty=nan, lo=0) if "deadline_s" in has else np.full(len(job), nan)
            inter = chunk.number("interruptible", empty=nan, lo=0) if "interruptible" in has else np.full(len(job), nan)
            if (bad := np.flatnonzero(~(np.isnan(inter) | (inter == 0) | (inter == 1)))).size:
                i = int(bad[0])
                raise DataError(f"{chunk.where(i)}: field interruptible {inter[i]:g}; expected 0, 1 or empty")
            blank = np.full(len(job), "", dtype=object)
            gpu_type = chunk.text("gpu_type") if "gpu_type" in has else blank
            parents = chunk.text("parents") if "parents" in has else blank
            home = chunk.text("home") if "home" in has else blank
            for i in range(len(job)):
                if not job[i] or not stage[i]:
                    raise DataError(f"{chunk.where(i)}: empty job or stage id")
                jobs.setdefault(str(job[i]), []).append(
                    {
                        "where": chunk.where(i),
                        "stage": str(stage[i]),
                        "submit": float(submit[i]),
                        "duration": float(duration[i]),
                        "cpus": float(cpus[i]),
                        "gpus": float(ngpu[i]),
                        "tasks": int(tasks[i]),
                        "deadline": float(deadline[i]),
                        "inter": float(inter[i]),
                        "gpu_type": str(gpu_type[i]),
                        "parents": str(parents[i]).split(),
                        "home": str(home[i]),
                    }
                )
    window = Window.of(opts)
    for job_id, recs in jobs.items():
        _add_job(job_id, recs, rows, gpus, window, opts)
    return rows.build(None, shift_s=opts.start_s)


def _add_job(
    job: str, recs: list[dict[str, object]], rows: StageRows, gpus: GpuTypes, window: Window, opts: JobImportOptions
) -> None:
    parents: dict[str, list[str]] = {}
    at: dict[str, str] = {}
    for r in recs:
        sid = str(r["stage"])
        if sid in parents:
            raise DataError(f"{r['where']}: job {job}: stage {sid} appears twice (also {at[sid]})")
        parents[sid] = r["parents"]  # type: ignore[assignment]
        at[sid] = str(r["where"])
    missing = check_dag(job, parents, at)
    if missing is not None:
        lost = [p for p in parents[missing] if p not in parents]
        if opts.missing_parents == "error":
            raise DataError(
                f"{at[missing]}: job {job}: stage {missing} has parent(s) {lost} that are not stages of the job"
            )
        rows.skip("depends on a stage that is not in the trace")
        return
    types = []
    for r in recs:
        t = str(r["gpu_type"])
        mapped = gpus(t, str(r["where"])) if t else ""
        if mapped is None:
            rows.skip(f"GPU type {t!r} not in the hardware catalog (map it with options.gpu_types)")
            return
        types.append(mapped)
    submit = float(recs[0]["submit"])  # type: ignore[arg-type]
    if (reason := window.outside(submit)) is not None:
        rows.skip(reason)
        return
    for r, gpu_type in zip(recs, types, strict=True):
        cell = str(r["home"])
        home = (home_of(cell, opts, str(r["where"])) if opts.homes else cell) if cell else opts.home
        rows.add(
            str(r["where"]),
            job=job,
            stage=str(r["stage"]),
            submit_s=float(r["submit"]),  # type: ignore[arg-type]
            tasks=int(r["tasks"]),  # type: ignore[call-overload]
            duration_s=float(r["duration"]),  # type: ignore[arg-type]
            cpus=float(r["cpus"]),  # type: ignore[arg-type]
            gpus=float(r["gpus"]),  # type: ignore[arg-type]
            gpu_type=gpu_type,
            parents=" ".join(r["parents"]),  # type: ignore[arg-type]
            home=home,
            deadline_s=float(r["deadline"]),  # type: ignore[arg-type]
            interruptible=float(r["inter"]),  # type: ignore[arg-type]
        )
