"""Throughput of the batch-job engine: a year of GAIA jobs, a week of TPC-H DAG jobs, and cluster size.

Three measurements, each a carbonsim run without inference requests (the batch engine alone), on the
shipped presets and measured signals:

* **GAIA**: ``scenario=batch_us`` (three US regions, 512-CPU clusters, GAIA Azure jobs, 24 h windows) for
  ``--gaia-hours`` (default a year, 8,760 h: the whole 100k trace);
* **TPC-H**: ``scenario=dag_tpch`` (100-CPU clusters, a Poisson stream of TPC-H DAGs, mean gap 30 s) for
  ``--dag-hours`` (default a week);
* **cluster size**: ``dag_tpch`` for ``--scale-hours`` with every cluster and the arrival rate multiplied by
  each factor of ``--scales`` (the load per CPU stays the same, so the engine's work per job should too).

For each it prints the jobs, stages and tasks, the wall-clock seconds of drawing the jobs (``prepare``),
of the simulation (``simulate``: engine + policy) and of the tables (``tables``: job and stage tables,
summary, invariants), and jobs and tasks per wall-second of ``simulate``. It measures and prints; it asserts
nothing. See ``benchmarks/README.md``.

With ``--read-view`` the batch policy also reads ``view.stages`` (the columns over every runnable stage)
at every epoch, as a stage-aware policy such as PCAPS does, to show what building that view costs.

Run: ``python benchmarks/batch_throughput.py [--policy NAME] [--gaia-hours H] [--dag-hours H] [--scales 1 4 16]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import time
from typing import Any

import carbonsim
from carbonsim.analysis import invariants
from carbonsim.analysis import jobs as job_metrics
from carbonsim.core.jobs import JobContext, JobView
from carbonsim.core.policy import Policy
from carbonsim.policies import batch_policy_config, make_batch_policy, make_policy, policy_config
from carbonsim.runner import make_simulation, prepare


class ReadsStages:
    """Wraps a batch policy and reads the stage view (``view.stages``) at every epoch, as a stage-aware policy."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rows = 0

    def reset(self, context: JobContext) -> None:
        self.inner.reset(context)

    def schedule(self, view: JobView) -> Any:
        self.rows += len(view.stages)
        return self.inner.schedule(view)


def measure(overrides: list[str], policy: str, profile: bool = False, read_view: bool = False) -> dict[str, Any]:
    """One run of the batch engine alone; wall times of its parts and the counts."""
    cfg = carbonsim.load_config([*overrides, f"batch_policy={policy}", "write_requests=false"])
    t0 = time.perf_counter()
    world, requests, jobs = prepare(cfg)
    t1 = time.perf_counter()
    routing: Policy = make_policy(policy_config({"name": "latency_first"}))
    batch = make_batch_policy(batch_policy_config(cfg.batch_policy))
    if read_view:
        batch = ReadsStages(batch)
    sim = make_simulation(cfg, world, requests, routing, cfg.seed, jobs=jobs, batch_policy=batch)
    prof = cProfile.Profile() if profile else None
    if prof is not None:
        prof.enable()
    result = sim.run()
    if prof is not None:
        prof.disable()
    t2 = time.perf_counter()
    table = job_metrics.job_table(result)
    summary = {"jobs": len(jobs), **job_metrics.job_summary(table, result)}
    invariants.check_jobs(result, table, summary)
    job_metrics.stage_table(result)
    t3 = time.perf_counter()
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(20)
        print(out.getvalue())
    return {
        "jobs": len(jobs),
        "stages": len(jobs.stages),
        "tasks": int(jobs.tasks_per_job().sum()),
        "completed": summary["jobs_completed"],
        "epochs": result.batch_epochs,
        "segments": int(result.job_records.seg_job.size) if result.job_records is not None else 0,
        "prepare_s": t1 - t0,
        "simulate_s": t2 - t1,
        "tables_s": t3 - t2,
    }


def report(name: str, m: dict[str, Any]) -> None:
    sim = m["simulate_s"]
    print(
        f"{name:<34} jobs {m['jobs']:>8,}  stages {m['stages']:>9,}  tasks {m['tasks']:>11,}  "
        f"epochs {m['epochs']:>8,}  segments {m['segments']:>9,}"
    )
    print(
        f"{'':<34} prepare {m['prepare_s']:7.2f} s  simulate {sim:7.2f} s  tables {m['tables_s']:6.2f} s  "
        f"-> {m['jobs'] / sim:>9,.0f} jobs/s  {m['tasks'] / sim:>12,.0f} tasks/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="carbon_agnostic", help="batch policy (default carbon_agnostic)")
    parser.add_argument("--gaia-hours", type=float, default=8760.0, help="GAIA run length in h (0 skips)")
    parser.add_argument("--dag-hours", type=float, default=168.0, help="TPC-H run length in h (0 skips)")
    parser.add_argument("--scale-hours", type=float, default=24.0, help="run length of the cluster-size runs in h")
    parser.add_argument("--scales", type=float, nargs="*", default=[1.0, 4.0, 16.0], help="cluster-size factors")
    parser.add_argument("--profile", action="store_true", help="profile the simulate part of each run")
    parser.add_argument("--read-view", action="store_true", help="also read view.stages at every epoch")
    args = parser.parse_args()
    print(f"carbonsim batch engine throughput; python {platform.python_version()}, {platform.machine()}, ", end="")
    print(f"{os.cpu_count()} CPUs")
    view = " (reading view.stages at every epoch)" if args.read_view else ""
    print(f"batch policy {args.policy}{view}; wall-clock seconds of one run each (no inference requests)\n")
    if args.gaia_hours:
        m = measure(["scenario=batch_us", f"sim_hours={args.gaia_hours}"], args.policy, args.profile, args.read_view)
        report(f"GAIA azure_100k, {args.gaia_hours:g} h", m)
    if args.dag_hours:
        m = measure(["scenario=dag_tpch", f"sim_hours={args.dag_hours}"], args.policy, args.profile, args.read_view)
        report(f"TPC-H stream, {args.dag_hours:g} h", m)
    for k in args.scales:
        cpus = round(100 * k)
        overrides = [
            "scenario=dag_tpch",
            f"sim_hours={args.scale_hours}",
            f"scenario.batch.generator.mean_interarrival_s={30.0 / k}",
            *(f"scenario.regions.{r}.batch_cpus={cpus}" for r in range(3)),
        ]
        m = measure(overrides, args.policy, args.profile, args.read_view)
        report(f"TPC-H x{k:g}: {cpus} CPUs/region, {args.scale_hours:g} h", m)


if __name__ == "__main__":
    main()
