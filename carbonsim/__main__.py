"""Entry point: ``python -m carbonsim [overrides]`` (Hydra command line), or ``carbonsim fetch-carbon ...``."""

from __future__ import annotations

import sys

import hydra

from carbonsim._errors import run_hydra_app
from carbonsim._hydra import config_dir, register_configs
from carbonsim.cli import hydra_task


def main() -> None:
    """Composes the configuration with Hydra and runs it; bad input ends as one line and exit status 2.

    ``fetch-carbon`` fills the carbon-API cache instead.
    """
    if len(sys.argv) > 1 and sys.argv[1] == "fetch-carbon":
        from carbonsim.fetch_carbon import main as fetch_main

        raise SystemExit(fetch_main(sys.argv[2:]))
    register_configs()
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(hydra_task)
    run_hydra_app("carbonsim", app)


if __name__ == "__main__":
    main()
