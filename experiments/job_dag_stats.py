"""Prints DAG-shape statistics of a job trace, to describe it or to calibrate a synthetic DAG generator.

Usage::

    python experiments/job_dag_stats.py                      # the shipped Alibaba 2018 distinct-names sample
    python experiments/job_dag_stats.py alibaba_2018 batch_task.csv
    python experiments/job_dag_stats.py csv my_jobs.csv      # any format of carbonsim.data.importers

For the Alibaba ``batch_task`` table (and its sample) it reports what the task names say, per task and per
job, also for incomplete jobs; for every format it reports the shapes of the jobs the importer replays
(stages, edges, fan-in and fan-out, depth, critical path, tasks, work, CPU and GPU requests).
"""

from __future__ import annotations

import sys

import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.importers import load_job_trace
from carbonsim.data.importers.dag_stats import alibaba_name_shapes, job_shapes, summarize
from carbonsim.data.paths import trace_path
from carbonsim.job_source_config import JobImportOptions, JobSourceConfig


def main(argv: list[str]) -> int:
    fmt = argv[0] if argv else "alibaba_2018"
    paths = tuple(argv[1:]) or (str(trace_path("workloads", "alibaba2018_batch_task_distinct_names.csv.gz")),)
    pd.set_option("display.width", 120)
    try:
        if fmt == "alibaba_2018":
            tasks, jobs = alibaba_name_shapes(list(paths))
            print(f"{len(tasks)} task rows, {len(jobs)} jobs; what the task names say:\n")
            print("per task (fan_in = parents named; duration of Terminated tasks, s; cpus = plan_cpu / 100):")
            print(summarize(tasks, ["fan_in", "instances", "duration_s", "cpus"]).round(2).to_string())
            print("\nper job (lower bounds where jobs are incomplete):")
            print(summarize(jobs, ["tasks_seen", "max_task_id", "edges_named", "depth_lower_bound"]).round(2))
            print(f"\njobs whose every named parent has a row: {int(jobs['complete'].sum())}")
        source = JobSourceConfig(format=fmt, paths=paths, options=JobImportOptions(missing_parents="skip"))
        trace = load_job_trace(source)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\n{trace.n_jobs} replayable jobs ({sum(trace.skipped.values())} left out: {trace.skipped})")
    if trace.n_jobs:
        print(summarize(job_shapes(trace)).round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
