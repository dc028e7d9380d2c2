"""Batch jobs: DAGs of stages of identical tasks on per-region CPU and GPU clusters, under a batch policy.

* :mod:`~carbonsim.core.jobs.model`: the columnar job and stage tables (:class:`Jobs`, :class:`Stages`);
* :mod:`~carbonsim.core.jobs.dag`: precedence checks and the DAG features computed once (critical paths,
  descendants);
* :mod:`~carbonsim.core.jobs.resources`: capacity, demand and power of CPUs and GPUs;
* :mod:`~carbonsim.core.jobs.policy`: what a batch policy receives and returns (:class:`BatchPolicy`);
* :mod:`~carbonsim.core.jobs.engine`: the SimPy process that runs them (:class:`BatchEngine`);
* :mod:`~carbonsim.core.jobs.records`: outcomes, segments and the exact energy account.
"""

from __future__ import annotations

from carbonsim.core.jobs.engine import DONE_TOLERANCE, BatchEngine
from carbonsim.core.jobs.model import ANY_GPU, Jobs, Stages, critical_path_s, speedups
from carbonsim.core.jobs.policy import (
    URGENCY_SLACK_S,
    BatchPolicy,
    Decision,
    DecisionKey,
    JobContext,
    JobInfo,
    JobView,
    Run,
    RunnableStages,
    must_start,
)
from carbonsim.core.jobs.records import (
    COMPLETED,
    FAILED,
    FAILURE_REASONS,
    JOB_STATUS_NAMES,
    RUNNING,
    WAITING,
    JobAccount,
    JobRecords,
    job_account,
    segment_power_w,
)

__all__ = [
    "ANY_GPU",
    "COMPLETED",
    "DONE_TOLERANCE",
    "FAILED",
    "FAILURE_REASONS",
    "JOB_STATUS_NAMES",
    "RUNNING",
    "URGENCY_SLACK_S",
    "WAITING",
    "BatchEngine",
    "BatchPolicy",
    "Decision",
    "DecisionKey",
    "JobAccount",
    "JobContext",
    "JobInfo",
    "JobRecords",
    "JobView",
    "Jobs",
    "Run",
    "RunnableStages",
    "Stages",
    "critical_path_s",
    "job_account",
    "must_start",
    "segment_power_w",
    "speedups",
]
