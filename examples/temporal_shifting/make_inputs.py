"""Writes the inputs of the temporal-shifting example into ``data/``: a job trace and the zones' carbon series.

The job trace is carbonsim's plain CSV: one job submitted at the start of every hour, each running
``--duration-h`` hours on one CPU, not interruptible, at home in the one region ``dc``. The carbon series
stand in for files you downloaded: they are copies of the Electricity Maps hourly exports that carbonsim
ships (2021-2024), in the format the data portal gives, read back through ``carbon_source``.

Usage: ``python make_inputs.py [--hours 8760] [--duration-h 1] [--out data]``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from carbonsim.data.paths import trace_path

ZONES = ("DE-LU", "GB", "US-CAL-CISO", "US-TEX-ERCO")


def main() -> None:
    """Writes the job trace and copies the zones' carbon series (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=8760, help="jobs: one per hour for this many hours")
    parser.add_argument("--duration-h", type=float, default=1.0, help="run time of each job in hours")
    parser.add_argument("--out", type=Path, default=Path("data"), help="folder to write into")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    duration_s = args.duration_h * 3600.0
    lines = ["job,submit_s,duration_s,cpus,home,interruptible"]
    lines += [f"hour-{h},{h * 3600},{duration_s:g},1,dc,0" for h in range(args.hours)]
    (args.out / "jobs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for zone in ZONES:
        src = trace_path("carbon_intensity", "electricitymaps_hourly", f"{zone}_2021-2024_hourly.csv.gz")
        shutil.copyfile(src, args.out / f"{zone}.csv.gz")
    print(f"wrote {args.hours} jobs and {len(ZONES)} carbon series into {args.out}")


if __name__ == "__main__":
    main()
