"""Size and solve time of the clairvoyant batch bound (:func:`carbonsim.job_bound.batch_bound`).

On the shipped presets and measured signals, for both region rules (``home``, ``any``):

* **TPC-H**: ``scenario=dag_tpch`` (TPC-H DAG jobs, mean gap 30 s, three 100-CPU clusters) for
  ``--dag-hours`` (default a week), with and without the precedence rows (what they add), and with the
  arrival rate multiplied by each factor of ``--dag-scales`` (more jobs per hour on clusters as large);
* **GPU training**: ``scenario=gpu_training`` for ``--gpu-hours`` (default a week): one-task jobs on A100
  and H100 clusters, some of any type;
* **GAIA**: ``scenario=batch_us`` (GAIA Azure jobs, 24 h windows, scaling to 4 allocations) for
  ``--gaia-hours`` (default a year: the whole 100k trace), in blocks of a week;
* **blocks**: ``batch_us`` for ``--joint-hours`` (default four weeks) in blocks of a week and as one
  program, to show what the blocks give away.

For each it prints the jobs, stages and precedence edges, the programs solved (blocks), their columns,
rows and precedence rows (summed over blocks), the wall-clock seconds of the whole bound and of the solver
alone (HiGHS through ``scipy.optimize.linprog``), the bound in kg CO2eq and the late work. It measures and
prints; it asserts nothing. See ``benchmarks/README.md``.

Run: ``python benchmarks/batch_bound.py [--dag-hours H] [--gpu-hours H] [--gaia-hours H] [--joint-hours H]``
(0 skips a part).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
import scipy

import carbonsim
from carbonsim.core.jobs import Jobs
from carbonsim.core.world import World
from carbonsim.job_bound import batch_bound
from carbonsim.runner import prepare


def instance(overrides: list[str]) -> tuple[World, Jobs, float]:
    """The world and jobs of a preset (as a run draws them) and the seconds it took."""
    t0 = time.perf_counter()
    world, _, jobs = prepare(carbonsim.load_config([*overrides, "write_requests=false"]))
    return world, jobs, time.perf_counter() - t0


def measure(name: str, world: World, jobs: Jobs, **kwargs: object) -> None:
    """Solves both rules and prints one line each."""
    st = jobs.stages
    print(
        f"{name}: {len(jobs):,} jobs, {len(st):,} stages, {st.parent_idx.size:,} edges, "
        f"{int(st.tasks.sum()):,} tasks, {world.carbon.hours} h of signal"
    )
    for rule in ("home", "any"):
        t0 = time.perf_counter()
        b = batch_bound(world, jobs, rule, **kwargs)  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
        print(
            f"  {rule:<4} blocks {b.blocks:>3}  columns {b.variables:>11,}  rows {b.constraints:>11,}  "
            f"precedence rows {b.precedence_rows:>9,}  wall {wall:8.1f} s  solver {b.solve_s:8.1f} s  "
            f"bound {b.carbon_g / 1e3:12.3f} kg  late {b.late_s / 3600:.2f} h  excluded {b.excluded}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dag-hours", type=float, default=168.0, help="TPC-H run length in h (0 skips)")
    parser.add_argument("--dag-scales", type=float, nargs="*", default=[4.0], help="TPC-H arrival-rate factors")
    parser.add_argument("--gpu-hours", type=float, default=168.0, help="GPU-training run length in h (0 skips)")
    parser.add_argument("--gaia-hours", type=float, default=8760.0, help="GAIA run length in h (0 skips)")
    parser.add_argument("--joint-hours", type=float, default=672.0, help="GAIA blocks-vs-one-program length (0 skips)")
    args = parser.parse_args()
    print(f"carbonsim batch bound; python {platform.python_version()}, scipy {scipy.__version__} (HiGHS), ", end="")
    print(f"numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs\n")
    if args.dag_hours:
        world, jobs, prep = instance(["scenario=dag_tpch", f"sim_hours={args.dag_hours}"])
        print(f"(drawing the TPC-H jobs: {prep:.1f} s)")
        measure(f"TPC-H stream, {args.dag_hours:g} h", world, jobs)
        measure(f"TPC-H stream, {args.dag_hours:g} h, without precedence rows", world, jobs, precedence=False)
        for k in args.dag_scales:
            world, jobs, _ = instance(
                [
                    "scenario=dag_tpch",
                    f"sim_hours={args.dag_hours}",
                    f"scenario.batch.generator.mean_interarrival_s={30.0 / k}",
                ]
            )
            measure(f"TPC-H stream x{k:g} arrival rate, {args.dag_hours:g} h", world, jobs)
    if args.gpu_hours:
        world, jobs, _ = instance(["scenario=gpu_training", f"sim_hours={args.gpu_hours}"])
        measure(f"GPU training, {args.gpu_hours:g} h", world, jobs)
    if args.gaia_hours:
        world, jobs, _ = instance(["scenario=batch_us", f"sim_hours={args.gaia_hours}"])
        measure(f"GAIA azure_100k, {args.gaia_hours:g} h, blocks of 168 h", world, jobs)
    if args.joint_hours:
        world, jobs, _ = instance(["scenario=batch_us", f"sim_hours={args.joint_hours}"])
        measure(f"GAIA azure_100k, {args.joint_hours:g} h, blocks of 168 h", world, jobs)
        measure(f"GAIA azure_100k, {args.joint_hours:g} h, one program", world, jobs, block_h=0.0)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"\npeak resident memory {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
