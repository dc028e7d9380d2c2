"""Wall time of a small experiment sweep, end to end, as a user runs it from the command line.

Runs ``python -m carbonsim +experiment=<experiment> scenario=<scenario> sim_hours=<hours>
hydra.sweep.dir=<temporary folder> hydra.launcher.n_jobs=<n>`` in a subprocess and times it: Hydra's start,
every job (one per policy run and seed, each with its own latency-first baseline), and the sweep's
collection (results tables, figures, ``report.html``). The default is the main Pareto sweep (13 runs x 3
seeds = 39 jobs) on the illustrative scenario for 0.1 simulated hours, one job at a time.

Run: ``python benchmarks/sweep_time.py [--experiment NAME] [--scenario NAME] [--sim-hours H] [--n-jobs N]
[--repeat K]``; the last line is ``sweep_wall_s <seconds>`` (the fastest of ``--repeat`` sweeps).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import carbonsim


def sweep_command(experiment: str, scenario: str, sim_hours: float, n_jobs: int, sweep_dir: Path) -> list[str]:
    """The command line of the sweep."""
    return [
        sys.executable,
        "-m",
        "carbonsim",
        f"+experiment={experiment}",
        f"scenario={scenario}",
        f"sim_hours={sim_hours:g}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.launcher.n_jobs={n_jobs}",
    ]


def time_sweep(cmd: list[str], sweep_dir: Path) -> tuple[float, int]:
    """Runs the sweep once; returns its wall time in s and the number of finished jobs (``summary.json``).

    Raises:
        RuntimeError: if the sweep exits with an error, with the end of its output.
    """
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall_s = time.perf_counter() - t0
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"the sweep exited with status {done.returncode}:\n{tail}")
    return wall_s, len(list(sweep_dir.glob("*/summary.json")))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--experiment", default="pareto_sweep", help="experiment config (default: pareto_sweep)")
    p.add_argument("--scenario", default="illustrative", help="scenario (default: illustrative)")
    p.add_argument("--sim-hours", type=float, default=0.1, help="simulated hours per job (default: 0.1)")
    p.add_argument("--n-jobs", type=int, default=1, help="jobs in parallel (hydra.launcher.n_jobs; default: 1)")
    p.add_argument("--repeat", type=int, default=1, help="sweeps to run; the fastest counts (default: 1)")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.n_jobs < 1:
        p.error("--repeat and --n-jobs must be at least 1")
    if not args.sim_hours > 0:
        p.error("--sim-hours must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    """Times the sweep; the last line is ``sweep_wall_s X``."""
    args = parse_args(argv)
    print(
        f"sweep: +experiment={args.experiment} scenario={args.scenario} sim_hours={args.sim_hours:g}, "
        f"{args.n_jobs} job(s) at a time, fastest of {args.repeat}; carbonsim {carbonsim.__version__}, "
        f"Python {platform.python_version()}"
    )
    best = float("inf")
    for k in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="carbonsim-sweep-") as tmp:
            sweep_dir = Path(tmp) / "sweep"
            cmd = sweep_command(args.experiment, args.scenario, args.sim_hours, args.n_jobs, sweep_dir)
            if k == 0:
                print("command: " + " ".join(["python", *cmd[1:]]))
            wall_s, jobs = time_sweep(cmd, sweep_dir)
        print(f"  sweep {k + 1}: {wall_s:8.1f} s for {jobs} jobs ({wall_s / max(jobs, 1):.2f} s per job)")
        best = min(best, wall_s)
    print(f"sweep_wall_s {best:.1f}")


if __name__ == "__main__":
    main()
