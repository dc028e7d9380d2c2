"""Importers of published job-trace schemas, each returning a :class:`~carbonsim.data.job_trace.JobTrace`.

Each reads one source family into the stage table (one row per stage of parallel tasks).

=================  ======================================================  ==============================
format             what it reads                                           loader
=================  ======================================================  ==============================
``google_2019``    Google cluster-usage traces v3 (2019), JSON lines       :func:`load_google_2019`
``google_2011``    Google cluster-usage trace 2011 task/job events CSVs    :func:`load_google_2011`
``alibaba_2018``   Alibaba cluster-trace-v2018 ``batch_task`` (DAGs)        :func:`load_alibaba_2018`
``pai_2020``       Alibaba PAI GPU trace 2020 task and job tables          :func:`load_pai_2020`
``swf``            Standard Workload Format (Parallel Workloads Archive)   :func:`load_swf`
``slurm_sacct``    Slurm ``sacct --parsable2`` output                      :func:`load_sacct`
``csv``            carbonsim's plain CSV (one row per job or stage)        :func:`load_csv_jobs`
=================  ======================================================  ==============================

:func:`load_job_trace` reads a :class:`~carbonsim.job_source_config.JobSourceConfig` (the scenario's
``batch.source``). Deadlines are left NaN unless the trace has them; :func:`with_deadlines` applies the
slack-factor or window rule. ``docs/own_data.md`` (Job traces) documents the formats, options and commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from carbonsim.data.errors import DataError
from carbonsim.data.importers.alibaba_2018 import load_alibaba_2018, parse_task_name
from carbonsim.data.importers.dag_stats import job_shapes, summarize
from carbonsim.data.importers.deadlines import critical_path_s, with_deadlines
from carbonsim.data.importers.google_2011 import load_google_2011
from carbonsim.data.importers.google_2019 import load_google_2019
from carbonsim.data.importers.pai_2020 import load_pai_2020
from carbonsim.data.importers.plain_csv import load_csv_jobs
from carbonsim.data.importers.slurm import load_sacct
from carbonsim.data.importers.swf import load_swf
from carbonsim.data.job_trace import JobTrace
from carbonsim.data.paths import PathLike
from carbonsim.job_source_config import JobImportOptions, JobSourceConfig

Loader = Callable[[list[Path], list[Path], JobImportOptions], JobTrace]

FORMATS: dict[str, Loader] = {
    "google_2019": lambda p, j, o: load_google_2019(p, j, o),
    "google_2011": lambda p, j, o: load_google_2011(p, j or None, o),
    "alibaba_2018": lambda p, j, o: load_alibaba_2018(p, o),
    "pai_2020": lambda p, j, o: load_pai_2020(p, j or None, o),
    "swf": lambda p, j, o: load_swf(p, o),
    "slurm_sacct": lambda p, j, o: load_sacct(p, o),
    "csv": lambda p, j, o: load_csv_jobs(p, o),
}
"""Format name (``JobSourceConfig.format``) -> loader taking (paths, job paths, options)."""


def load_job_trace(source: JobSourceConfig, base_dir: PathLike | None = None) -> JobTrace:
    """Reads the job trace a scenario's ``batch.source`` names.

    Args:
        source: Format, files and options.
        base_dir: Folder that relative paths are resolved against (default: the working directory).

    Returns:
        The validated stage table, with ``skipped`` and ``adjusted`` counts.

    Raises:
        DataError: an empty or unknown format, or any problem of the files (naming file, line and field).
    """
    if source.format not in FORMATS:
        raise DataError(f"batch.source.format {source.format!r}: expected one of {sorted(FORMATS)}")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    paths = [base / p for p in source.paths]
    job_paths = [base / p for p in source.job_paths]
    return FORMATS[source.format](paths, job_paths, source.options)


__all__ = [
    "FORMATS",
    "critical_path_s",
    "job_shapes",
    "load_alibaba_2018",
    "load_csv_jobs",
    "load_google_2011",
    "load_google_2019",
    "load_job_trace",
    "load_pai_2020",
    "load_sacct",
    "load_swf",
    "parse_task_name",
    "summarize",
    "with_deadlines",
]
