"""The drift experiment: a transformer trained on 2021-2022, deployed through 2023-2024, learning vs frozen.

Usage (extra ``llm``)::

    python experiments/drift.py checkpoint=results/transformer/transformer.safetensors
    python experiments/drift.py checkpoint=... every_days=14 online.update_every_h=0.5

Writes ``drift_by_window.csv``, ``drift_summary.csv`` / ``.md`` (means per half-year) and
``figures/drift.png`` / ``.pdf`` into the Hydra run folder (or ``out_dir``); see conf/drift.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from carbonsim._hydra import config_dir, register_configs
from carbonsim._schema import ConfigError, build
from carbonsim.learn.config import DriftConfig


def task(cfg: DictConfig) -> None:
    """Validates the configuration and runs the experiment."""
    try:
        drift_cfg = build(DriftConfig, OmegaConf.to_container(cfg, resolve=True), "")
    except ConfigError as exc:
        print(f"drift: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from carbonsim.analysis import tables, timeline
    from carbonsim.learn.drift import run_drift, summarise_drift
    from carbonsim.runner import write_text

    out = Path(drift_cfg.out_dir) if drift_cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = run_drift(drift_cfg)
    table.to_csv(out / "drift_by_window.csv", index=False)
    summary = summarise_drift(table)
    summary.to_csv(out / "drift_summary.csv", index=False)
    write_text(out / "drift_summary.md", tables.to_markdown(summary, digits=4))
    region_added = drift_cfg.region_added_utc if drift_cfg.added_scenario else ""
    figure = timeline.save(timeline.fig_drift(table, region_added), out / "figures", "drift")
    print(summary.to_string(index=False))
    print(f"drift: tables and {figure} in {out}")


def main() -> None:
    """Hydra entry point."""
    register_configs()
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="drift")(task)()


if __name__ == "__main__":
    main()
