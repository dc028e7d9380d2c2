"""Deadline rules for imported traces: most traces carry no deadline, so the scenario sets one per job.

* ``slack``: deadline = submission + ``slack_factor`` x the job's critical path (the slack-factor rule of
  CarbonScaler and PCAPS; 1 = no slack).
* ``window``: deadline = submission + critical path + ``window_h`` hours (the fixed waiting windows of GAIA
  and Let's Wait Awhile).

The critical path is the longest chain of stage run times through the job's DAG, each stage taking one
task's run time (its tasks run side by side when there is room): the job's length with unlimited capacity.
Deadlines a trace does have (``deadline_s`` not NaN) are kept.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from carbonsim.data.errors import DataError
from carbonsim.data.job_trace import JobTrace, parent_ids

RULES = ("slack", "window")


def critical_path_s(stages: pd.DataFrame) -> pd.Series:
    """Length of each job's critical path in seconds (float64, indexed by job in order of appearance).

    Args:
        stages: A validated stage table (every stage after its parents).
    """
    out: dict[str, float] = {}
    finish: dict[tuple[str, str], float] = {}
    for job, stage, dur, parents in zip(
        stages["job"], stages["stage"], stages["task_duration_s"], stages["parents"], strict=True
    ):
        start = max((finish[(job, p)] for p in parent_ids(parents)), default=0.0)
        finish[(job, stage)] = start + float(dur)
        out[job] = max(out.get(job, 0.0), finish[(job, stage)])
    return pd.Series(out, dtype=np.float64, name="critical_path_s")


def with_deadlines(trace: JobTrace, rule: str, slack_factor: float = 2.0, window_h: float = 24.0) -> JobTrace:
    """The trace with a deadline for every job that has none (see the module docstring).

    Args:
        trace: An imported trace.
        rule: ``slack`` or ``window``.
        slack_factor: For ``slack``: completion time allowed as a multiple of the critical path (>= 1).
        window_h: For ``window``: hours a job may wait in total (>= 0).

    Raises:
        DataError: an unknown rule or a value out of range.
    """
    if rule not in RULES:
        raise DataError(f"deadline rule {rule!r}: expected one of {list(RULES)}")
    if rule == "slack" and not (math.isfinite(slack_factor) and slack_factor >= 1):
        raise DataError(f"slack_factor {slack_factor!r}: expected a number >= 1")
    if rule == "window" and not (math.isfinite(window_h) and window_h >= 0):
        raise DataError(f"window_h {window_h!r}: expected hours >= 0")
    stages = trace.stages.copy()
    path = stages["job"].map(critical_path_s(stages)).to_numpy(dtype=np.float64)
    submit = stages["submit_s"].to_numpy(dtype=np.float64)
    rule_deadline = submit + slack_factor * path if rule == "slack" else submit + path + window_h * 3600.0
    current = stages["deadline_s"].to_numpy(dtype=np.float64)
    stages["deadline_s"] = np.where(np.isnan(current), rule_deadline, current)
    return dataclasses.replace(trace, stages=stages)
