"""From a job trace to the jobs of one run: time window, deadlines, interruptibility and home regions.

Every job source (the GAIA traces, the TPC-H job stream, the synthetic GPU-training mix, the traces the
importers read) reaches the simulator as a :class:`~carbonsim.data.job_trace.JobTrace` (the stage table);
:func:`build_jobs` turns it into the core's :class:`~carbonsim.core.jobs.Jobs` for one run, applying the
scenario's batch configuration:

* the jobs submitted in ``[trace_offset_h, trace_offset_h + sim_hours)`` of the trace, shifted so that
  the window starts at simulated t = 0, at most ``max_jobs`` of them (the first ones; the cut is counted);
* one pair of uniform draws per job from the ``jobs`` random stream, in job order, whatever the trace says
  (so a job's draws never depend on the jobs after it, and traces that set some values keep the others'
  draws): the first decides whether it is interruptible (``< interruptible_share``) where the trace does
  not say, the second its home region by ``home_shares`` where the trace names none, among the home
  regions whose cluster can run every task of the job (shares renormalised; all of them if none can, and
  the job then fails on arrival): users submit GPU jobs where their GPUs are;
* a deadline by the scenario's rule where the trace has none: ``slack``: arrival + ``slack_factor`` x the
  job's critical path; ``window``: arrival + critical path + ``window_h``. The critical path is the
  longest chain of stages, each taking one task's duration (its tasks side by side): the job's length
  with room for every task, and for a job of one task its duration (the rule of CarbonScaler and PCAPS,
  and GAIA's waiting windows).

This is the conversion from configuration to plain arrays; the core never sees the configuration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carbonsim.config import BatchConfig, RegionConfig
from carbonsim.core.jobs import ANY_GPU, Jobs, Stages, critical_path_s
from carbonsim.core.jobs.resources import UNIT, fits_regions
from carbonsim.data.errors import DataError
from carbonsim.data.job_trace import JobTrace, one_task_jobs, parent_ids


def deadlines(cfg: BatchConfig, arrival_s: np.ndarray, path_s: np.ndarray) -> np.ndarray:
    """Deadline of each job by the scenario's rule (``slack`` or ``window``) on its critical path, in s."""
    if cfg.deadline == "slack":
        return np.asarray(arrival_s + cfg.slack_factor * path_s, dtype=np.float64)
    return np.asarray(arrival_s + path_s + cfg.window_h * 3600.0, dtype=np.float64)


def draw_homes(
    cfg: BatchConfig, region_names: tuple[str, ...], u: np.ndarray, fits: np.ndarray | None = None
) -> np.ndarray:
    """Home region indices from uniform draws ``u`` by ``home_shares`` (int8).

    ``fits`` (jobs x regions), if given, restricts each job to the home regions that can run it (shares
    renormalised), unless none can.
    """
    homes = [region_names.index(name) for name in cfg.home_shares]
    if not homes:
        return np.full(u.size, -1, dtype=np.int8)
    shares = np.array([cfg.home_shares[region_names[h]] for h in homes])
    cumulative = np.cumsum(shares)
    cumulative[-1] = 1.0
    home = np.asarray(np.asarray(homes, dtype=np.int8)[np.searchsorted(cumulative, u, side="right")], dtype=np.int8)
    if fits is None:
        return home
    ok = fits[:, homes] & (shares > 0)[None, :]
    position = np.zeros(len(region_names), dtype=np.int64)
    position[homes] = np.arange(len(homes))
    redraw = ~ok[np.arange(u.size), position[home.astype(np.int64)]] & ok.any(axis=1)
    for i in np.flatnonzero(redraw).tolist():
        weights = np.where(ok[i], shares, 0.0)
        cum = np.cumsum(weights) / weights.sum()
        cum[-1] = 1.0
        home[i] = homes[int(np.searchsorted(cum, u[i], side="right"))]
    return home


def build_jobs(
    trace: JobTrace,
    cfg: BatchConfig,
    region_names: tuple[str, ...],
    horizon_s: float,
    rng: np.random.Generator,
    regions: Sequence[RegionConfig] = (),
) -> Jobs:
    """The jobs of a run from a validated trace (see the module docstring).

    Args:
        trace: The job trace (stage table in canonical order).
        cfg: The batch configuration.
        region_names: Region names in scenario order.
        horizon_s: Arrival window of the run in s.
        rng: The ``jobs`` stream.
        regions: The scenario's regions, for their batch clusters (homes are drawn among the regions that
            can run a job); empty to draw homes by ``home_shares`` alone.

    Returns:
        The jobs, in arrival order.

    Raises:
        DataError: a job's home names no region of the scenario, or a job has no home while
            ``home_shares`` is empty.
    """
    st = trace.stages
    codes, _ = pd.factorize(st["job"], sort=False)
    n_all = int(codes.max()) + 1 if codes.size else 0
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if codes.size else np.zeros(0, np.int64)
    submit = st["submit_s"].to_numpy(dtype=np.float64)[starts]
    t0 = cfg.trace_offset_h * 3600.0
    sel = np.flatnonzero((submit >= t0) & (submit < t0 + horizon_s))
    dropped = 0
    if cfg.max_jobs and sel.size > cfg.max_jobs:
        dropped = int(sel.size - cfg.max_jobs)
        sel = sel[: cfg.max_jobs]
    n = sel.size
    new_index = np.full(n_all, -1, dtype=np.int64)
    new_index[sel] = np.arange(n)
    rows = np.flatnonzero(new_index[codes] >= 0) if codes.size else np.zeros(0, np.int64)
    job_of_row = new_index[codes[rows]]
    first_row = starts[sel]
    arrival = submit[sel] - t0

    u = rng.random((n, 2))
    trace_inter = st["interruptible"].to_numpy(dtype=np.float64)[first_row]
    interruptible = np.where(np.isnan(trace_inter), u[:, 0] < cfg.interruptible_share, trace_inter == 1.0)
    stages = _stages(st, rows, job_of_row)
    fits = _job_fits(stages, n, regions) if regions else None
    trace_home = st["home"].to_numpy(dtype=object)[first_row]
    home = draw_homes(cfg, region_names, u[:, 1], fits)
    named = trace_home != ""
    if named.any():
        lookup = {name: i for i, name in enumerate(region_names)}
        for i in np.flatnonzero(named).tolist():
            if trace_home[i] not in lookup:
                raise DataError(
                    f"{trace.source}: job {st['job'].iat[first_row[i]]}: home {trace_home[i]!r} is not a region "
                    f"of the scenario ({', '.join(region_names)})"
                )
            home[i] = lookup[trace_home[i]]
    if (home < 0).any():
        i = int(np.flatnonzero(home < 0)[0])
        raise DataError(
            f"{trace.source}: job {st['job'].iat[first_row[i]]} names no home region and batch.home_shares is empty"
        )

    path = critical_path_s(stages, n)
    trace_deadline = st["deadline_s"].to_numpy(dtype=np.float64)[first_row]
    deadline = np.where(np.isnan(trace_deadline), deadlines(cfg, arrival, path), trace_deadline - t0)
    return Jobs.from_stages(
        arrival_s=arrival,
        deadline_s=deadline,
        interruptible=interruptible,
        home=home,
        stages=stages,
        dropped_from_trace=dropped,
        trace_id=tuple(st["job"].to_numpy(dtype=object)[first_row].tolist()),
        trace_notes=(
            *((f"skipped: {reason}", count) for reason, count in trace.skipped.items()),
            *((f"adjusted: {reason}", count) for reason, count in trace.adjusted.items()),
        ),
    )


def _job_fits(stages: Stages, n: int, regions: Sequence[RegionConfig]) -> np.ndarray:
    """Whether each region's batch cluster can run every task of each job: bool (jobs, regions)."""
    types = tuple(sorted({g for r in regions for g in r.batch_gpus}))
    lookup = np.array([types.index(t) if t in types else -2 for t in stages.gpu_types], dtype=np.int64)
    own = stages.gpu_type.astype(np.int64)
    gtype = np.where(own == ANY_GPU, ANY_GPU, lookup[np.maximum(own, 0)] if lookup.size else -2)
    fits = fits_regions(
        np.rint(stages.cpus_per_task * UNIT).astype(np.int64),
        np.rint(stages.gpus_per_task * UNIT).astype(np.int64),
        gtype,
        [r.batch_cpus for r in regions],
        [[r.batch_gpus.get(t, 0) for t in types] for r in regions],
    )
    if not n:
        return np.zeros((0, len(regions)), dtype=bool)
    starts = np.searchsorted(stages.job, np.arange(n))
    return np.asarray(np.logical_and.reduceat(fits, starts, axis=0), dtype=bool)


def _stages(st: pd.DataFrame, rows: np.ndarray, job_of_row: np.ndarray) -> Stages:
    """The core's stage table of the selected rows (parents resolved to stage indices, GPU types indexed)."""
    sub = st.iloc[rows]
    parents = sub["parents"].to_numpy(dtype=object)
    counts = np.zeros(rows.size, dtype=np.int64)
    parent_idx: list[int] = []
    with_parents = np.flatnonzero(parents != "")
    if with_parents.size:
        stage_ids = sub["stage"].to_numpy(dtype=object)
        position = {(int(job_of_row[i]), stage_ids[i]): i for i in range(rows.size)}
        for i in with_parents.tolist():
            ids = parent_ids(parents[i])
            counts[i] = len(ids)
            parent_idx.extend(position[(int(job_of_row[i]), p)] for p in ids)
    parent_ptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(counts, out=parent_ptr[1:])
    gpus = sub["gpus_per_task"].to_numpy(dtype=np.float64)
    type_names = sub["gpu_type"].to_numpy(dtype=object)
    used = sorted({str(t) for t in type_names[gpus > 0]} - {""})
    lookup = {t: i for i, t in enumerate(used)}
    gpu_type = np.array([lookup.get(t, ANY_GPU) for t in type_names], dtype=np.int16)
    multi = with_parents.size > 0 or np.unique(job_of_row).size != rows.size
    return Stages(
        job=job_of_row,
        tasks=sub["tasks"].to_numpy(dtype=np.int64),
        task_duration_s=sub["task_duration_s"].to_numpy(dtype=np.float64),
        cpus_per_task=sub["cpus_per_task"].to_numpy(dtype=np.float64),
        gpus_per_task=gpus,
        gpu_type=gpu_type,
        parent_ptr=parent_ptr,
        parent_idx=np.asarray(parent_idx, dtype=np.int64),
        gpu_types=tuple(used),
        names=tuple(sub["stage"].astype(str).tolist()) if multi else None,
    )


def make_jobs(
    cfg: BatchConfig,
    region_names: tuple[str, ...],
    arrival_s: np.ndarray,
    duration_s: np.ndarray,
    cpus: np.ndarray,
    horizon_s: float,
    rng: np.random.Generator,
) -> Jobs:
    """The jobs of a run from the columns of a trace of independent jobs (times relative to its start)."""
    return build_jobs(one_task_jobs(arrival_s, duration_s, cpus, "job columns"), cfg, region_names, horizon_s, rng)
