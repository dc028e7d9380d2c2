"""The clairvoyant bound of batch jobs with precedence: a time-indexed linear program over stages, regions and hours.

It knows every arrival, every stage's tasks and durations and the true intensity of every hour, and
relaxes everything the engine makes discrete (whole tasks, one region per job at a time, waves), so no
schedule the engine can produce that completes every job by its deadline emits less (same power model).
Independent jobs (one stage of one task, the GAIA traces) are the case without precedence rows, where it
is exactly the job-level fluid bound carbonsim has always had.

**Variables.** ``x[s, o, t, k]``: seconds during hour ``t`` in which the ``k``-th allocation of tasks of
stage ``s`` runs on placement ``o`` (a region, and for a stage with GPUs one GPU type of that region: a
stage of ``ANY_GPU`` type has one placement per type with room for a task), summed over the stage's
tasks. The ``k``-th allocation of a task adds ``m_k = c(k) - c(k - 1)`` work per second (Amdahl's
speed-up ``c``, ``batch.max_scale`` > 1; one column ``k = 1`` with ``m_1 = 1`` otherwise) for one
allocation's power, so a task running on ``k`` copies is columns ``1..k`` side by side. Because the
speed-up is concave, the cheap low-``k`` columns fill first.

**Windows.** With ``c_top = c(max_scale)``, ``head_s`` the longest chain of task durations among the
stage's ancestors and ``tail_s`` the one among its descendants (one task's duration per stage),
stage ``s`` of job ``j`` can run only within ``[a_j + head_s / c_top, D_j - tail_s / c_top]``, where
``D_j = min(deadline_j, end of the signal)``: before its parents can have finished, or so late that its
descendants cannot finish in time, no on-time schedule runs it. Only hours meeting the window get columns.

**Program.**

    minimise    sum x[s, o, t, k] P_o,s PUE_r I_r(t) / 3.6e6                              (g CO2)
    subject to  sum_{o, t, k} m_k x[s, o, t, k] = tasks_s x duration_s                    (work)
                sum_o x[s, o, t, k] <= tasks_s x |hour t within the window of s|           (parallelism)
                sum x[s, o, t, k] cpus_s <= cpus_r x 3600, per region and hour            (CPU capacity)
                sum x[s, o, t, k] gpus_s <= gpus_r,g x 3600, per region, GPU type, hour   (GPU capacity)
                W_c(<= t) <= A_c(t) x W_p(<= t) / work_p, per edge p -> c, hour t          (across hours)
                y[s, t] >= (1 + off_s(t) / len_s(t)) W_s(t) / (tasks_s c_top)             (clock)
                y[c, t] >= y[p, t] + W_c(t) / (tasks_c c_top), per edge p -> c, hour t     (within an hour)
                0 <= y[s, t] <= min(end of hour t, latest finish of s) - start of hour t
                x >= 0

with ``P`` the power of one allocation of one task (``cpus x cpu_busy_w + gpus x gpu_busy_w[type]``),
``W_s(t)`` and ``W_s(<= t)`` the stage's work (``sum m_k x``) in hour ``t`` and by its end,
``A_c(t) = min(work_c, tasks_c x c_top x (end of hour t - earliest start of c))`` the most work the child
can have done by then, ``len_s(t)`` the length of hour ``t`` within the window of ``s`` and ``off_s(t)``
the part of the hour before the window opens.

*Across hours*: valid for every schedule, since a child that has done any work by the end of hour ``t``
started after all its parents finished, so ``W_p(<= t) = work_p`` and the row reads ``W_c(<= t) <=
A_c(t)``, which holds; a child that has done none satisfies it trivially. It implies the cumulative-
fraction row ``W_c(<= t) / work_c <= W_p(<= t) / work_p`` and is stronger whenever the child could not
finish by then. Rows are built for the hours from the child's first to the one before the parent's last
(later the parent is done, earlier the child cannot run).

*Within an hour*: ``y[s, t]`` stands for the time from the start of hour ``t`` until ``s`` completes,
clipped to the hour. In any schedule, a stage's work in the hour runs after ``off`` and takes at least
``W / (tasks c_top)`` seconds (at most ``tasks`` tasks, each at most ``c_top`` work per second), and
``W / len <= tasks c_top`` bounds the share of ``off`` charged; a child's work in the hour runs after its
parent completed, so ``y[c] >= y[p] + W_c / (tasks_c c_top)`` (and ``y[c] >= y[p]`` when it does none).
So along a path the stages share the hour instead of filling it side by side, which the columns alone
allow. Clocks exist for the stages and hours an edge's two windows share.

Neither kind is built for a job whose stages can all run only in one and the same hour (most TPC-H jobs,
whose deadlines are seconds away): each stage then does all its work in that hour, where neither cost nor
capacity depends on the order, and running every stage from its earliest start with all its tasks at top
speed meets every row, so they cannot change the optimum.

**Why it is a lower bound.** Every engine schedule that completes each job by its deadline maps to a
feasible point of equal emissions: a task running on ``k`` copies for ``d`` seconds fills columns
``1..k`` for ``d`` seconds; tasks, waves, suspensions, the one-region-per-job rule and the
non-interruptible rule only restrict it. Migration energy (network) and the restore time a migration adds
to a task (more running time, more energy) only add emissions, so the program ignores them; so does the
engine's relative completion tolerance (1e-9 of a task) and the 1e-6 s by which a run may pass a deadline
and still meet it. A non-interruptible job could be started at a
scale > 1 by a policy (the engine allows it), so every job gets the scaling columns, not only interruptible
ones.

**Regions.** ``any``: a stage may run in every region where one of its tasks fits; ``home``: only in its
job's home region (where a stage fits nowhere at home, wherever it fits), the bound of temporal shifting.

**Excluded jobs**: those that fail on arrival under every policy (no region fits all their stages, a GPU
type no region has, a critical path longer than the time to the deadline) and those that cannot finish
before the end of the signal even with room for every task from their arrival (in flight under every
policy). They add nothing (every policy's emissions are >= 0 for them).

**Blocks.** Jobs are solved in blocks by arrival (``block_h``, a week by default), each block's program
with the clusters' full capacity. The sum is still a lower bound (the joint program's optimum restricted
to one block's jobs is feasible for that block's program; only capacity couples blocks, and each block
gets all of it), identical to the joint program whenever the jobs of different blocks never compete for
capacity, and it keeps a year of jobs to a set of week-sized programs.

**Late work.** If some deadline cannot be met (capacity), the block's program lets its stages run after
the deadline up to the end of the signal (less the tail), first minimises that late work (allocation-
seconds in late columns, lexicographically), then emissions at that late work, and reports it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from carbonsim.core.jobs import ANY_GPU, Jobs, Stages, resources, speedups
from carbonsim.core.signals import SECONDS_PER_HOUR
from carbonsim.core.world import World

#: Region rules of the bound.
RULES = ("home", "any")


@dataclass(frozen=True)
class BatchBound:
    """The batch bound of one instance.

    Attributes:
        carbon_g: Minimum emissions of the jobs in g (clairvoyant).
        energy_kwh: Energy of that schedule in kWh.
        late_s: Allocation-seconds that had to run after their deadline (0 when every deadline can be met).
        regions: ``any`` (stages may run in any region that fits them) or ``home`` (only in their home).
        variables: Columns of the programs solved (summed over blocks).
        excluded: Jobs left out: those that fail on arrival under every policy and those that cannot
            finish before the end of the signal even if run from arrival (in flight under every policy).
        constraints: Rows of the programs solved (summed over blocks).
        precedence_rows: Of those, precedence rows.
        blocks: Programs solved (blocks of jobs by arrival).
        solve_s: Wall-clock seconds spent in the solver (HiGHS), summed over blocks (building the programs
            not included).
    """

    carbon_g: float
    energy_kwh: float
    late_s: float
    regions: str
    variables: int
    excluded: int
    constraints: int = 0
    precedence_rows: int = 0
    blocks: int = 0
    solve_s: float = 0.0


@dataclass(frozen=True)
class _Cluster:
    """The run's batch clusters as the bound needs them."""

    cpus: np.ndarray  # CPUs per region
    gpus: np.ndarray  # (regions, GPU types) GPUs
    gpu_types: tuple[str, ...]
    cpu_w: float
    gpu_w: np.ndarray  # per GPU type
    pue: np.ndarray
    speedup: np.ndarray  # c(0..max_scale)


def _cluster(world: World) -> _Cluster:
    """Capacities and power as the engine sees them (GPU types in the order the simulation builds them)."""
    scenario = world.scenario
    gpu_types = tuple(sorted({g for r in scenario.regions for g, c in r.batch_gpus.items() if c > 0}))
    missing = [g for g in gpu_types if g not in scenario.batch.gpu_busy_w]
    if missing:
        raise ValueError(f"batch bound: batch.gpu_busy_w has no busy power for GPU type(s) {', '.join(missing)}")
    return _Cluster(
        cpus=np.array([r.batch_cpus for r in scenario.regions], dtype=np.float64),
        gpus=np.array(
            [[r.batch_gpus.get(g, 0) for g in gpu_types] for r in scenario.regions], dtype=np.float64
        ).reshape(len(scenario.regions), len(gpu_types)),
        gpu_types=gpu_types,
        cpu_w=float(scenario.batch.cpu_busy_w),
        gpu_w=np.array([float(scenario.batch.gpu_busy_w[g]) for g in gpu_types]),
        pue=np.array([r.pue for r in scenario.regions], dtype=np.float64),
        speedup=np.array(speedups(scenario.batch.max_scale, scenario.batch.parallel_fraction)),
    )


def batch_bound(
    world: World, jobs: Jobs, regions: str = "any", block_h: float = 168.0, precedence: bool = True
) -> BatchBound:
    """Solves the batch-job bound of a run (see the module docstring).

    Args:
        world: The compiled scenario (true intensity, PUE, cluster capacities, power).
        jobs: The jobs of the run (independent or DAGs, CPUs and GPUs).
        regions: ``any``: a stage may run in every region whose cluster fits one of its tasks; ``home``:
            only at home.
        block_h: Jobs are solved in blocks of this many hours of arrivals (0: one program for all).
        precedence: Include the precedence rows (False gives the weaker bound of windows alone, to measure
            what the rows add).

    Returns:
        The bound.

    Raises:
        ValueError: for an unknown ``regions``, a GPU type without busy power, or if the solver fails.
    """
    if regions not in RULES:
        raise ValueError(f"regions: expected any or home, got {regions!r}")
    n = len(jobs)
    if not n:
        return BatchBound(0.0, 0.0, 0.0, regions, 0, 0)
    cl = _cluster(world)
    st = jobs.stages
    hours = world.carbon.hours
    end_s = hours * SECONDS_PER_HOUR
    top = float(cl.speedup[-1])
    # Which regions fit one task of each stage (the engine's own test), and which jobs can run at all.
    cpu_m = np.rint(st.cpus_per_task * resources.UNIT).astype(np.int64)
    gpu_m = np.rint(st.gpus_per_task * resources.UNIT).astype(np.int64)
    gtype = resources.map_gpu_types(st, cl.gpu_types).astype(np.int64)
    fits = resources.fits_regions(cpu_m, gpu_m, gtype, cl.cpus.tolist(), cl.gpus.astype(np.int64).tolist())
    ptr = jobs.stage_ptr
    job_fits = np.logical_and.reduceat(fits, ptr[:-1], axis=0).any(axis=1)
    arrival = np.asarray(jobs.arrival_s, dtype=np.float64)
    deadline = np.asarray(jobs.deadline_s, dtype=np.float64)
    path = np.asarray(jobs.duration_s, dtype=np.float64)
    span = deadline - arrival
    on_time_possible = path <= span + 1e-9 * np.maximum(span, 1.0)
    keep = job_fits & on_time_possible & (arrival + path <= end_s)
    excluded = int(n - keep.sum())
    # Stage windows (top speed: scaling shortens chains).
    head = _heads(st.task_duration_s, st.parent_ptr, st.parent_idx)
    a = arrival[st.job]
    due = np.minimum(deadline, end_s)[st.job]
    earliest = a + head / top
    latest = np.maximum(due - st.tail_s / top, earliest)
    latest_late = np.maximum(end_s - st.tail_s / top, latest)
    home = np.asarray(jobs.home, dtype=np.int64)[st.job]
    allowed = fits.copy()
    if regions == "home":
        at_home = fits[np.arange(len(st)), home]
        allowed[at_home] = False
        allowed[at_home, home[at_home]] = True
    # Placements: (region, GPU type column) per stage; column G is "no GPU".
    n_types = len(cl.gpu_types)
    gpus_m = np.rint(cl.gpus * resources.UNIT).astype(np.int64)
    place = np.zeros((len(st), cl.cpus.size, n_types + 1), dtype=bool)
    no_gpu = gpu_m == 0
    place[:, :, n_types] = allowed & no_gpu[:, None]
    for g in range(n_types):
        wants = ~no_gpu & ((gtype == g) | (gtype == ANY_GPU))
        place[:, :, g] = allowed & wants[:, None] & (gpus_m[None, :, g] >= gpu_m[:, None])
    block = np.zeros(n, dtype=np.int64) if block_h <= 0 else (arrival // (block_h * SECONDS_PER_HOUR)).astype(np.int64)
    stage_keep = keep[st.job]
    carbon_g = energy_kwh = late_s = solve_s = 0.0
    variables = constraints = prec_rows = blocks = 0
    inst = _Instance(world, cl, st, place, earliest, latest, latest_late, hours, precedence)
    for b in np.unique(block[keep]).tolist():
        stages = np.flatnonzero(stage_keep & (block[st.job] == b))
        out = inst.solve(stages)
        carbon_g += out[0]
        energy_kwh += out[1]
        late_s += out[2]
        variables += out[3]
        constraints += out[4]
        prec_rows += out[5]
        solve_s += out[6]
        blocks += 1
    return BatchBound(
        carbon_g, energy_kwh, late_s, regions, variables, excluded, constraints, prec_rows, blocks, solve_s
    )


def _heads(duration_s: np.ndarray, parent_ptr: np.ndarray, parent_idx: np.ndarray) -> np.ndarray:
    """Longest chain of task durations among each stage's ancestors, in s (0 for a root).

    Parents come before their children in storage order, so one forward pass sees them final.
    """
    dur = np.asarray(duration_s, dtype=np.float64).tolist()
    ptr = parent_ptr.tolist()
    idx = parent_idx.tolist()
    head = [0.0] * len(dur)
    for s in np.flatnonzero(np.diff(parent_ptr) > 0).tolist():
        head[s] = max(head[p] + dur[p] for p in idx[ptr[s] : ptr[s + 1]])
    return np.array(head, dtype=np.float64)


def _ranges(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ``counts[i]`` items per owner ``i``: each item's owner and its position within the owner."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.size, dtype=np.int64) - starts[owner]


class _Instance:
    """The data shared by the blocks of one bound; :meth:`solve` builds and solves one block's program."""

    def __init__(
        self,
        world: World,
        cl: _Cluster,
        st: Stages,
        place: np.ndarray,
        earliest: np.ndarray,
        latest: np.ndarray,
        latest_late: np.ndarray,
        hours: int,
        precedence: bool,
    ) -> None:
        self.world = world
        self.cl = cl
        self.st = st
        self.place = place
        self.earliest = earliest
        self.latest = latest
        self.latest_late = latest_late
        self.hours = hours
        self.precedence = precedence
        self.marginal = np.diff(cl.speedup)  # work per second of the k-th allocation

    def solve(self, stages: np.ndarray) -> tuple[float, float, float, int, int, int, float]:
        """(carbon g, energy kWh, late s, columns, rows, precedence rows, solver s) of one block."""
        cols = self._columns(stages, late=False)
        prog = self._program(stages, cols, late=False)
        res = _linprog(prog["c"], prog)
        late_s = 0.0
        if res.status == 2:  # infeasible: some deadline cannot be met
            cols = self._columns(stages, late=True)
            solver_s = prog["solver_s"]
            prog = self._program(stages, cols, late=True)
            prog["solver_s"] = solver_s
            is_late = prog["late"].astype(np.float64)
            first = _linprog(is_late, prog)
            _check(first, "late work")
            late_s = float(first.fun)
            # Fix the late work at its minimum (with a small tolerance for the solver) and minimise carbon.
            prog["a_ub"] = sp.vstack([prog["a_ub"], sp.csr_matrix(is_late)]).tocsr()
            prog["b_ub"] = np.concatenate([prog["b_ub"], [late_s * (1 + 1e-9) + 1e-6]])
            res = _linprog(prog["c"], prog)
        _check(res, "carbon")
        energy_kwh = float((prog["power_w"] * res.x).sum() / 3.6e6)
        rows = prog["a_ub"].shape[0] + prog["a_eq"].shape[0]
        return (
            float(res.fun),
            energy_kwh,
            late_s,
            int(prog["columns"]),
            int(rows),
            int(prog["prec_rows"]),
            prog["solver_s"],
        )

    def _columns(self, stages: np.ndarray, late: bool) -> dict[str, np.ndarray]:
        """The block's columns, sorted by stage, then hour, then on-time before late, placement and ``k``."""
        h = float(SECONDS_PER_HOUR)
        end_s = self.hours * h
        e = self.earliest[stages]
        on_end = self.latest[stages]
        last = self.latest_late[stages] if late else on_end
        h0 = np.floor(e / h).astype(np.int64)
        h1 = np.maximum(np.ceil(last / h).astype(np.int64) - 1, h0)
        h1 = np.minimum(h1, self.hours - 1)
        local, pos = _ranges(h1 - h0 + 1)
        hour = h0[local] + pos
        lo = np.maximum(e[local], hour * h)
        hi = np.minimum((hour + 1) * h, end_s)
        length = np.stack(
            [
                np.maximum(0.0, np.minimum(on_end[local], hi) - lo),
                np.maximum(0.0, hi - np.maximum(lo, on_end[local])) if late else np.zeros(hour.size),
            ],
            axis=1,
        ).ravel()
        part = np.flatnonzero(length > 0)
        slot_local = local[part // 2]
        slot_hour = hour[part // 2]
        slot_late = (part % 2).astype(bool)
        slot_len = length[part]
        # Placements of each stage (regions x GPU type columns, in order).
        opt_s, opt_r, opt_g = np.nonzero(self.place[stages])
        n_opt = np.bincount(opt_s, minlength=stages.size)
        opt_ptr = np.cumsum(n_opt) - n_opt
        slot, within = _ranges(n_opt[slot_local])
        option = opt_ptr[slot_local[slot]] + within
        k_count = self.marginal.size
        slot = np.repeat(slot, k_count)
        option = np.repeat(option, k_count)
        k = np.tile(np.arange(1, k_count + 1, dtype=np.int64), option.size // k_count if k_count else 0)
        return {
            "local": slot_local[slot],
            "stage": stages[slot_local[slot]],
            "hour": slot_hour[slot],
            "late": slot_late[slot],
            "length": slot_len[slot],
            "slot": slot,
            "region": opt_r[option],
            "gpu": opt_g[option],
            "k": k,
        }

    def _program(self, stages: np.ndarray, cols: dict[str, np.ndarray], late: bool) -> dict[str, Any]:
        """Objective, rows, right-hand sides and column bounds of one block's program."""
        cl, st = self.cl, self.st
        hours = self.hours
        n_types = len(cl.gpu_types)
        local, s, hour, region, gpu, k = (cols[x] for x in ("local", "stage", "hour", "region", "gpu", "k"))
        n = s.size
        col = np.arange(n)
        work = self.marginal[k - 1]
        cpus = st.cpus_per_task[s]
        gpus = st.gpus_per_task[s]
        gpu_w = np.append(cl.gpu_w, 0.0)[gpu]
        power_w = (cpus * cl.cpu_w + gpus * gpu_w) * cl.pue[region]
        cost = power_w * self.world.carbon.values[region, hour] / 3.6e6  # g per s
        stage_work = (st.tasks * st.task_duration_s)[stages]
        # Parallelism: per (stage, hour part, k), the sum over placements <= tasks x the part's length.
        par_key = cols["slot"] * (self.marginal.size + 1) + k
        par_keys, par_row = np.unique(par_key, return_inverse=True)
        par_len = np.zeros(par_keys.size)
        par_len[par_row] = cols["length"] * st.tasks[s]
        blocks = [sp.csr_matrix((np.ones(n), (par_row, col)), shape=(par_keys.size, n))]
        rhs = [par_len]
        # CPU capacity per (region, hour); GPU capacity per (region, type, hour).
        has_cpu = cpus > 0
        cap_keys, cap_row = np.unique(region[has_cpu] * hours + hour[has_cpu], return_inverse=True)
        blocks.append(sp.csr_matrix((cpus[has_cpu], (cap_row, col[has_cpu])), shape=(cap_keys.size, n)))
        rhs.append(cl.cpus[cap_keys // hours] * SECONDS_PER_HOUR)
        has_gpu = gpu < n_types
        if has_gpu.any():
            g_key = (region[has_gpu] * n_types + gpu[has_gpu]) * hours + hour[has_gpu]
            g_keys, g_row = np.unique(g_key, return_inverse=True)
            blocks.append(sp.csr_matrix((gpus[has_gpu], (g_row, col[has_gpu])), shape=(g_keys.size, n)))
            rhs.append(cl.gpus.ravel()[g_keys // hours] * SECONDS_PER_HOUR)
        n_clock = 0
        upper = np.full(n, np.inf)
        prec_rows = 0
        if self.precedence:
            prec = _Precedence(self, stages, cols, work, stage_work, late)
            n_clock = prec.clock_ub.size
            upper = np.concatenate([upper, prec.clock_ub])
            blocks = [sp.hstack([b, sp.csr_matrix((b.shape[0], n_clock))]) for b in blocks]
            blocks.extend(prec.rows)
            rhs.extend(np.zeros(r.shape[0]) for r in prec.rows)
            prec_rows = sum(r.shape[0] for r in prec.rows)
        total = n + n_clock
        a_eq = sp.csr_matrix((work, (local, col)), shape=(stages.size, total))
        return {
            "c": np.concatenate([cost, np.zeros(n_clock)]),
            "a_ub": sp.vstack(blocks).tocsr(),
            "b_ub": np.concatenate(rhs),
            "a_eq": a_eq,
            "b_eq": stage_work,
            "bounds": np.column_stack([np.zeros(total), upper]),
            "power_w": np.concatenate([power_w, np.zeros(n_clock)]),
            "late": np.concatenate([cols["late"], np.zeros(n_clock, dtype=bool)]),
            "prec_rows": prec_rows,
            "columns": total,
        }


class _Precedence:
    """The precedence rows of one block and the clock columns they add (see the module docstring).

    * **Across hours**, per edge ``p -> c`` and hour ``t`` from the child's first hour to the hour before
      the parent's last: ``W_c(<= t) - A_c(t) W_p(<= t) / work_p <= 0``.
    * **Within an hour**, a clock ``y[s, t]`` per stage and hour shared with a parent or child: the time
      from the start of hour ``t`` until ``s`` completes, clipped to the hour. ``y[s, t] >= (1 +
      off / len) W_s(t) / (tasks_s c_top)`` (its work in the hour takes at least that long, after the
      ``off`` seconds of the hour before its earliest start), ``y[c, t] >= y[p, t] + W_c(t) / (tasks_c
      c_top)`` (a child works only after its parent completed) and ``y[s, t] <= min(end of hour, latest
      finish) - start of hour``. So a chain of stages shares each hour: in an hour, the stages of a path
      run one after the other, never beside each other as the fluid columns otherwise allow.
    """

    def __init__(
        self,
        inst: _Instance,
        stages: np.ndarray,
        cols: dict[str, np.ndarray],
        work: np.ndarray,
        stage_work: np.ndarray,
        late: bool,
    ) -> None:
        st = inst.st
        h = float(SECONDS_PER_HOUR)
        local, hour = cols["local"], cols["hour"]
        n = local.size
        m = stages.size
        top = float(inst.cl.speedup[-1])
        col_ptr = np.searchsorted(local, np.arange(m + 1))  # columns are sorted by stage, then hour
        first_h = hour[np.minimum(col_ptr[:-1], n - 1)]
        last_h = hour[np.maximum(col_ptr[1:] - 1, 0)]
        # Edges within the block (local indices); a parent is always in its child's block.
        child, within = _ranges(np.diff(st.parent_ptr)[stages])
        parent = np.searchsorted(stages, st.parent_idx[st.parent_ptr[stages][child] + within])
        # A job whose stages can all run only in one and the same hour needs no rows: each stage does all
        # its work in that hour, where neither cost nor capacity depends on the order, and running every
        # stage from its earliest start with all its tasks at top speed satisfies every row.
        _, job_of = np.unique(st.job[stages], return_inverse=True)
        lowest = np.full(job_of.max() + 1 if m else 0, np.iinfo(np.int64).max)
        highest = np.full(lowest.size, -1)
        np.minimum.at(lowest, job_of, first_h)
        np.maximum.at(highest, job_of, last_h)
        spread = (highest > lowest)[job_of[child]]
        child, parent = child[spread], parent[spread]
        self.rows: list[sp.csr_matrix] = []
        # Clocks: every (stage, hour) of an edge's shared hours [first hour of the child, last of both].
        lo = first_h[child]
        hi = np.minimum(last_h[child], last_h[parent])
        edge, off = _ranges(np.maximum(0, hi - lo + 1))
        t_edge = lo[edge] + off
        keys = np.concatenate([child[edge] * inst.hours + t_edge, parent[edge] * inst.hours + t_edge])
        clock_keys = np.unique(keys)
        n_clock = clock_keys.size
        clock_s, clock_t = clock_keys // inst.hours, clock_keys % inst.hours
        g_s = stages[clock_s]
        start = clock_t * h
        last = inst.latest_late[g_s] if late else inst.latest[g_s]
        self.clock_ub = np.maximum(0.0, np.minimum(start + h, last) - start)
        # Columns of each clock's stage in its hour (columns are sorted by stage and hour).
        col_key = local * inst.hours + hour
        lo_col = np.searchsorted(col_key, clock_keys, side="left")
        hi_col = np.searchsorted(col_key, clock_keys, side="right")
        owner, pos = _ranges(hi_col - lo_col)
        c_idx = lo_col[owner] + pos
        e = inst.earliest[g_s]
        offset = np.maximum(0.0, e - start)
        length = np.maximum(1e-9, np.minimum(start + h, last) - np.maximum(start, e))
        coef = (1.0 + offset / length) / (st.tasks[g_s] * top)
        self.rows.append(
            sp.csr_matrix(
                (
                    np.concatenate([work[c_idx] * coef[owner], -np.ones(n_clock)]),
                    (np.concatenate([owner, np.arange(n_clock)]), np.concatenate([c_idx, n + np.arange(n_clock)])),
                ),
                shape=(n_clock, n + n_clock),
            )
        )
        # y[p, t] - y[c, t] + W_c(t) / (tasks_c c_top) <= 0 for each edge and shared hour.
        if edge.size:
            y_c = n + np.searchsorted(clock_keys, child[edge] * inst.hours + t_edge)
            y_p = n + np.searchsorted(clock_keys, parent[edge] * inst.hours + t_edge)
            c_clock = y_c - n
            w_owner, w_pos = _ranges(hi_col[c_clock] - lo_col[c_clock])
            w_idx = lo_col[c_clock][w_owner] + w_pos
            scale = 1.0 / (st.tasks[stages[child[edge]]] * top)
            r = np.arange(edge.size)
            self.rows.append(
                sp.csr_matrix(
                    (
                        np.concatenate([np.ones(edge.size), -np.ones(edge.size), work[w_idx] * scale[w_owner]]),
                        (np.concatenate([r, r, w_owner]), np.concatenate([y_p, y_c, w_idx])),
                    ),
                    shape=(edge.size, n + n_clock),
                )
            )
        # Across hours: rows for t in [first hour of the child, last hour of the parent - 1].
        lo = first_h[child]
        hi = last_h[parent] - 1
        live = hi >= lo
        child, parent, lo, hi = child[live], parent[live], lo[live], hi[live]
        n_rows = hi - lo + 1
        if not n_rows.size:
            return
        row_base = np.cumsum(n_rows) - n_rows
        edge_of_row, t_off = _ranges(n_rows)
        t_row = lo[edge_of_row] + t_off
        c_global = stages[child[edge_of_row]]
        span = np.maximum(0.0, (t_row + 1) * h - inst.earliest[c_global])
        cap_work = np.minimum(stage_work[child[edge_of_row]], st.tasks[c_global] * top * span)
        weight = cap_work / stage_work[parent[edge_of_row]]
        rows_: list[np.ndarray] = []
        cols_: list[np.ndarray] = []
        vals_: list[np.ndarray] = []
        for side, is_child in ((child, True), (parent, False)):
            e_side, pos = _ranges(col_ptr[side + 1] - col_ptr[side])
            idx = col_ptr[side[e_side]] + pos
            first_row = np.maximum(hour[idx], lo[e_side])
            entry, off = _ranges(np.maximum(0, hi[e_side] - first_row + 1))
            e_of = e_side[entry]
            row = row_base[e_of] + (first_row[entry] - lo[e_of]) + off
            rows_.append(row)
            cols_.append(idx[entry])
            vals_.append(work[idx[entry]] * (1.0 if is_child else -weight[row]))
        total = int(n_rows.sum())
        self.rows.append(
            sp.csr_matrix(
                (np.concatenate(vals_), (np.concatenate(rows_), np.concatenate(cols_))), shape=(total, n + n_clock)
            )
        )


def _linprog(cost: np.ndarray, prog: dict[str, Any]) -> Any:
    """HiGHS on a block's program with the given objective (its wall time is added to ``prog["solver_s"]``)."""
    # Costs are grams per second (about 1e-6 for one CPU): HiGHS's optimality tolerances (1e-7) are absolute, so
    # unscaled it accepts a column dearer by less than 1e-7 g/s as optimal (a 6 % dearer hour, in one test).
    # The objective is solved divided by its largest coefficient and its value recomputed unscaled.
    scale = float(np.abs(cost).max()) if cost.size else 0.0
    scale = scale if scale > 0.0 else 1.0
    t0 = time.perf_counter()
    res = linprog(
        cost / scale,
        A_ub=prog["a_ub"],
        b_ub=prog["b_ub"],
        A_eq=prog["a_eq"],
        b_eq=prog["b_eq"],
        bounds=prog["bounds"],
        method="highs",
    )
    prog["solver_s"] = prog.get("solver_s", 0.0) + time.perf_counter() - t0
    if getattr(res, "x", None) is not None:
        res.fun = float(cost @ res.x)
    return res


def _check(res: object, what: str) -> None:
    status = getattr(res, "status", -1)
    if status != 0:
        raise ValueError(f"batch bound ({what}): the linear program failed: {getattr(res, 'message', '')}")


def job_bounds(world: World, jobs: Jobs, precedence: bool = True) -> dict[str, float]:
    """Both region rules' bounds of a run's jobs, in kg CO2eq by rule (``home``, ``any``); empty without jobs.

    ``precedence=False`` leaves out the precedence rows (:func:`batch_bound`): a looser bound, far faster.
    """
    if not len(jobs):
        return {}
    return {rule: batch_bound(world, jobs, rule, precedence=precedence).carbon_g / 1e3 for rule in RULES}
