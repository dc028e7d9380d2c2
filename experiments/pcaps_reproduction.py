"""The PCAPS paper's simulator experiment in carbonsim, beside the published numbers (docs/reference.md).

Usage::

    python experiments/pcaps_reproduction.py OUT_DIR [OVERRIDE ...]   # run in this process, then compare
    python -m carbonsim +experiment=pcaps_reproduction                 # or run it as a Hydra multirun,
    python experiments/pcaps_reproduction.py --sweep SWEEP_DIR        # then compare its sweep folder

The first form runs every job of ``conf/experiment/pcaps_reproduction.yaml`` (policies x start hours x job
streams) in this process into ``OUT_DIR`` (jobs already done there are skipped), with Hydra-style overrides
(e.g. ``experiment.seeds=[0]``). Both forms write ``pcaps_reproduction.md`` / ``.csv`` (carbon relative to
FIFO and end-to-end time per policy, mean and 95 % CI over trials, beside the authors' single trial) and
``pcaps_reproduction_trials.csv`` (one row per policy and trial) into the folder, and print the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    from carbonsim._errors import exit_on_user_error
    from carbonsim.data.errors import DataError

    parser = argparse.ArgumentParser(prog="pcaps_reproduction", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, help="folder to run the experiment into")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the experiment's configuration")
    parser.add_argument("--sweep", type=Path, help="compare a finished sweep folder instead of running")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if (args.sweep is None) == (args.out_dir is None):
        parser.error("expected OUT_DIR (to run the experiment) or --sweep SWEEP_DIR (to compare a finished one)")
    with exit_on_user_error("pcaps_reproduction"):
        folder = args.sweep if args.sweep is not None else args.out_dir
        started = time.perf_counter()
        if args.sweep is None:
            import carbonsim
            from carbonsim.experiment import run_experiment

            cfg = carbonsim.load_config(["+experiment=pcaps_reproduction", *args.overrides])
            run_experiment(cfg, folder)
        elif not folder.is_dir():
            raise DataError(f"--sweep {folder}: no such folder; expected the folder of a finished sweep")
        from carbonsim.analysis import reproduction, tables

        table = reproduction.write_comparison(folder)
        print(tables.markdown(table))
        problems = reproduction.checks(reproduction.trial_rows(folder))
        for problem in problems:
            print(f"pcaps_reproduction: check failed: {problem}", file=sys.stderr)
        print(f"wall time {time.perf_counter() - started:.0f} s; tables in {folder}")
        if problems:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
