"""Statistics of job DAG shapes.

Stages per job, fan-in and fan-out, critical paths, task counts, durations and CPU requests: they describe
a trace and can calibrate a synthetic DAG generator.

* :func:`job_shapes` measures the jobs of any imported trace (complete DAGs).
* :func:`alibaba_name_shapes` measures what the task names of an Alibaba 2018 ``batch_task`` table say,
  also when jobs are incomplete, as in the shipped distinct-names sample: each name states its task's
  parents, so fan-in is exact per task and the known edges give lower bounds of a job's size and depth.
* :func:`summarize` turns either into a table of count, mean and percentiles per measure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carbonsim.data.importers.alibaba_2018 import SUCCEEDED, parse_task_name, read_batch_task
from carbonsim.data.job_trace import JobTrace, parent_ids
from carbonsim.data.paths import PathLike


def _depth(parents: dict[str, list[str]]) -> int:
    """Longest chain of stages (in stages) of a DAG given as stage -> parents; parents outside are ignored."""
    depth: dict[str, int] = {}

    def visit(s: str, trail: frozenset[str]) -> int:
        if s in depth:
            return depth[s]
        ps = [p for p in parents.get(s, []) if p not in trail]
        d = 1 + max((visit(p, trail | {s}) for p in ps), default=0)
        depth[s] = d
        return d

    nodes = set(parents) | {p for ps in parents.values() for p in ps}
    return max((visit(s, frozenset()) for s in nodes), default=0)


def job_shapes(trace: JobTrace) -> pd.DataFrame:
    """One row per job of a trace: its DAG's shape and size.

    Returns:
        Columns ``job``, ``stages``, ``edges``, ``max_fan_in`` and ``max_fan_out`` (parents / children of
        the busiest stage), ``depth`` (stages on the longest chain), ``critical_path_s``, ``tasks`` (all
        stages), ``task_seconds`` (sum of tasks x run time), ``max_cpus_per_task``, ``max_gpus_per_task``.
    """
    out = []
    for job, g in trace.stages.groupby("job", sort=False):
        parents = {str(s): parent_ids(str(p)) for s, p in zip(g["stage"], g["parents"], strict=True)}
        children: dict[str, int] = {}
        for ps in parents.values():
            for p in ps:
                children[p] = children.get(p, 0) + 1
        finish: dict[str, float] = {}
        for s, d in zip(g["stage"], g["task_duration_s"], strict=True):
            finish[str(s)] = max((finish[p] for p in parents[str(s)]), default=0.0) + float(d)
        out.append(
            {
                "job": str(job),
                "stages": len(g),
                "edges": sum(len(ps) for ps in parents.values()),
                "max_fan_in": max(len(ps) for ps in parents.values()),
                "max_fan_out": max(children.values(), default=0),
                "depth": _depth(parents),
                "critical_path_s": max(finish.values()),
                "tasks": int(g["tasks"].sum()),
                "task_seconds": float((g["tasks"] * g["task_duration_s"]).sum()),
                "max_cpus_per_task": float(g["cpus_per_task"].max()),
                "max_gpus_per_task": float(g["gpus_per_task"].max()),
            }
        )
    return pd.DataFrame(out)


def alibaba_name_shapes(paths: PathLike | Sequence[PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the task names of an Alibaba 2018 ``batch_task`` table (or its sample) say about DAG shapes.

    Args:
        paths: ``batch_task`` file(s), or ``traces/workloads/alibaba2018_batch_task_distinct_names.csv.gz``.

    Returns:
        (tasks, jobs). ``tasks``: one row per row of the table: ``job``, ``dag`` (name follows the DAG
        convention), ``truncated`` (name cut at 50 characters), ``fan_in`` (parents named), ``instances``,
        ``duration_s`` (end - start for Terminated tasks with both times, else NaN), ``cpus`` (plan_cpu / 100).
        ``jobs``: one row per job: ``tasks_seen`` (rows), ``dag``, ``max_task_id`` (the largest task number
        named, a lower bound of the job's number of tasks), ``edges_named``, ``depth_lower_bound`` (longest
        chain of the named edges), ``complete`` (every named parent has a row and no name was cut).
    """
    frame, _source = read_batch_task(paths)
    parsed = [parse_task_name(str(n)) for n in frame["task_name"]]
    start = frame["start_time"].to_numpy(dtype=np.float64)
    end = frame["end_time"].to_numpy(dtype=np.float64)
    good = (frame["status"].to_numpy(dtype=object) == SUCCEEDED) & (start > 0) & (end >= start)
    tasks = pd.DataFrame(
        {
            "job": frame["job_name"].to_numpy(dtype=object),
            "dag": [p.dag for p in parsed],
            "truncated": [p.truncated for p in parsed],
            "fan_in": [len(p.parents) for p in parsed],
            "instances": frame["instance_num"].to_numpy(dtype=np.float64),
            "duration_s": np.where(good, end - start, np.nan),
            "cpus": frame["plan_cpu"].to_numpy(dtype=np.float64) / 100.0,
        }
    )
    jobs = []
    by_job: dict[str, list[int]] = {}
    for i, job in enumerate(tasks["job"]):
        by_job.setdefault(str(job), []).append(i)
    for job, idx in by_job.items():
        names = [parsed[i] for i in idx]
        dag = [n for n in names if n.dag]
        parents = {n.task: list(n.parents) for n in dag}
        ids = [int(n.task) for n in dag] + [int(p) for n in dag for p in n.parents]
        jobs.append(
            {
                "job": job,
                "tasks_seen": len(idx),
                "dag": bool(dag),
                "max_task_id": max(ids, default=0),
                "edges_named": sum(len(n.parents) for n in dag),
                "depth_lower_bound": _depth(parents) if dag else 1,
                "complete": all(p in parents for ps in parents.values() for p in ps)
                and not any(n.truncated for n in names),
            }
        )
    return tasks, pd.DataFrame(jobs)


def summarize(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Count, mean and percentiles (50, 90, 99) and maximum of numeric columns, one row per column.

    Args:
        frame: A table from :func:`job_shapes` or :func:`alibaba_name_shapes`.
        columns: Columns to describe (default: every numeric or boolean column).
    """
    cols = list(columns) if columns is not None else [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
    rows = []
    for c in cols:
        v = frame[c].to_numpy(dtype=np.float64)
        v = v[~np.isnan(v)]
        if v.size == 0:
            rows.append({"measure": c, "count": 0})
            continue
        q = np.percentile(v, [50, 90, 99])
        rows.append(
            {
                "measure": c,
                "count": int(v.size),
                "mean": float(v.mean()),
                "p50": float(q[0]),
                "p90": float(q[1]),
                "p99": float(q[2]),
                "max": float(v.max()),
            }
        )
    return pd.DataFrame(rows).set_index("measure")
