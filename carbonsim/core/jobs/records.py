"""What the batch engine leaves behind (outcomes, running segments, migrations) and their exact account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from carbonsim.core.jobs.model import Jobs
from carbonsim.core.signals import HourlySignal

WAITING, RUNNING, COMPLETED, FAILED = 0, 1, 2, 3
JOB_STATUS_NAMES = ("in_flight", "in_flight", "completed", "failed")
#: Why a job failed on arrival (index 0: it did not).
FAILURE_REASONS = (
    "",
    "larger_than_every_cluster",  # some task needs more CPUs or GPUs than any one region's cluster has
    "gpu_type_in_no_region",  # some task needs GPUs of a type (or any GPU) that no region has
    "deadline_shorter_than_critical_path",  # even with room for every task it cannot finish in time
)


@dataclass(frozen=True)
class JobRecords:
    """Per-job and per-stage outcomes, the running segments and the migrations.

    A *segment* is a group of identical tasks of one stage running together in one region at one scale
    from ``seg_start_s`` to ``seg_end_s``: the unit of the energy account and of a Gantt chart.

    Attributes:
        status: ``COMPLETED``, ``FAILED``, or ``WAITING``/``RUNNING`` (in flight) at the end, per job.
        region: Region each job ran in last (-1 if it never started).
        start_s: First start of any of its tasks in s (NaN if never started).
        end_s: Completion time in s (NaN if not completed).
        remaining_s: Critical path of the work left at the end in s (0 when completed).
        suspensions: Epochs at which running tasks of the job were suspended.
        seg_job: Job of each running segment.
        seg_region: Region of each segment.
        seg_start_s: Segment starts in s.
        seg_end_s: Segment ends in s.
        seg_scale: Allocation copies per task of each segment.
        migrations: Times each job changed region (including a first start away from home).
        mig_job: Job of each migration.
        mig_from: Region it left.
        mig_to: Region it moved to.
        mig_time_s: When it moved, in s.
        mig_kwh: Network energy of each migration, in kWh.
        failure: Index into ``FAILURE_REASONS`` per job (0 unless it failed).
        tasks_done: Tasks completed per job.
        tasks_running: Tasks running at the end per job.
        stage_start_s: First start of a task of each stage in s (NaN if none started).
        stage_end_s: Completion of each stage in s (NaN if not completed).
        stage_done: Tasks completed per stage.
        seg_stage: Stage of each segment.
        seg_tasks: Tasks running together in each segment.
        seg_gpu: GPU type of each segment's tasks (index into the context's ``gpu_types``; -1 without GPUs).
    """

    status: np.ndarray
    region: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    remaining_s: np.ndarray
    suspensions: np.ndarray
    seg_job: np.ndarray
    seg_region: np.ndarray
    seg_start_s: np.ndarray
    seg_end_s: np.ndarray
    seg_scale: np.ndarray
    migrations: np.ndarray
    mig_job: np.ndarray
    mig_from: np.ndarray
    mig_to: np.ndarray
    mig_time_s: np.ndarray
    mig_kwh: np.ndarray
    failure: np.ndarray
    tasks_done: np.ndarray
    tasks_running: np.ndarray
    stage_start_s: np.ndarray
    stage_end_s: np.ndarray
    stage_done: np.ndarray
    seg_stage: np.ndarray
    seg_tasks: np.ndarray
    seg_gpu: np.ndarray


class JobAccount(NamedTuple):
    """Energy, emissions and cost of the jobs, per job and per region (exact over hourly signals).

    Attributes:
        energy_kwh: Per job: running energy with PUE plus the network energy of its migrations.
        carbon_g: Per job, in g CO2eq.
        cost_usd: Per job, electricity cost in USD.
        gpu_kwh: Per job: the GPUs' share of the running energy (with PUE).
        region_kwh: Running energy per region (with PUE).
        network_kwh: Network energy of all migrations.
    """

    energy_kwh: np.ndarray
    carbon_g: np.ndarray
    cost_usd: np.ndarray
    gpu_kwh: np.ndarray
    region_kwh: np.ndarray
    network_kwh: float


def segment_power_w(
    jobs: Jobs, records: JobRecords, cpu_busy_w: float, gpu_busy_w: tuple[float, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """IT power of each segment before PUE, in W: (CPUs and GPUs, GPUs only).

    ``tasks x scale x (cpus_per_task x cpu_busy_w + gpus_per_task x gpu_busy_w[type])``.
    """
    st = jobs.stages
    units = records.seg_tasks * records.seg_scale
    cpu_w = (units * st.cpus_per_task[records.seg_stage]) * cpu_busy_w
    watts = np.asarray(gpu_busy_w, dtype=np.float64)
    gpus = units * st.gpus_per_task[records.seg_stage]
    gpu_w = np.zeros(gpus.size)
    used = records.seg_gpu >= 0
    if watts.size and used.any():
        gpu_w[used] = gpus[used] * watts[records.seg_gpu[used]]
    return cpu_w + gpu_w, gpu_w


def job_account(
    jobs: Jobs,
    records: JobRecords,
    carbon: HourlySignal,
    price: HourlySignal,
    pue: np.ndarray,
    cpu_busy_w: float,
    gpu_busy_w: tuple[float, ...] = (),
) -> JobAccount:
    """Energy (kWh), emissions (g) and electricity cost (USD) per job, exact over hourly signals.

    Running energy is the segments' power (:func:`segment_power_w`) times the region's PUE over their
    length; migrations add their network energy, at the mean intensity and price of the two regions at
    the moment of the move.
    """
    n = len(jobs)
    it_w, gpu_it_w = segment_power_w(jobs, records, cpu_busy_w, gpu_busy_w)
    power_w = it_w * pue[records.seg_region]
    length_s = records.seg_end_s - records.seg_start_s
    energy_j = power_w * length_s
    carbon_g = power_w * carbon.integral(records.seg_region, records.seg_start_s, records.seg_end_s) / 3.6e6
    cost_usd = power_w * price.integral(records.seg_region, records.seg_start_s, records.seg_end_s) / 3.6e6
    idx = np.concatenate([records.seg_job, records.mig_job])
    kwh = records.mig_kwh
    moved = [
        (sig.values_at(records.mig_from, records.mig_time_s) + sig.values_at(records.mig_to, records.mig_time_s)) / 2
        for sig in (carbon, price)
    ]
    out = []
    for run, mig in ((energy_j / 3.6e6, kwh), (carbon_g, kwh * moved[0]), (cost_usd, kwh * moved[1])):
        out.append(np.bincount(idx, weights=np.concatenate([run, mig]), minlength=n))
    gpu_kwh = np.bincount(records.seg_job, weights=gpu_it_w * pue[records.seg_region] * length_s / 3.6e6, minlength=n)
    region_kwh = np.bincount(records.seg_region, weights=energy_j / 3.6e6, minlength=pue.size)
    return JobAccount(out[0], out[1], out[2], gpu_kwh, region_kwh, float(kwh.sum()))
