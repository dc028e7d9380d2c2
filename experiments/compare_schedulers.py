"""Learned and heuristic schedulers on held-out windows and an unseen region set (docs/learning.md).

Usage::

    python experiments/compare_schedulers.py \
        'policies.0.checkpoint=results/transformer/transformer.safetensors' ...   # see conf/compare_schedulers.yaml

Writes ``comparison_by_window.csv`` and ``comparison.csv`` / ``.md`` (means over windows per scenario and
policy: carbon, SLO violations, latency, penalty, microseconds per decision, ms per plan, peak memory)
into the Hydra run folder (or ``out_dir``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from carbonsim._hydra import config_dir, register_configs
from carbonsim._schema import ConfigError, build
from carbonsim.learn.config import CompareConfig


def task(cfg: DictConfig) -> None:
    """Validates the configuration and runs the comparison."""
    try:
        compare_cfg = build(CompareConfig, OmegaConf.to_container(cfg, resolve=True), "")
    except ConfigError as exc:
        print(f"compare_schedulers: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from carbonsim.analysis import tables
    from carbonsim.learn.comparison import compare, summarise
    from carbonsim.runner import write_text

    out = Path(compare_cfg.out_dir) if compare_cfg.out_dir else Path(HydraConfig.get().runtime.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = compare(compare_cfg)
    table.to_csv(out / "comparison_by_window.csv", index=False)
    means = summarise(table)
    means.to_csv(out / "comparison.csv", index=False)
    write_text(out / "comparison.md", tables.to_markdown(means, digits=4))
    print(means.to_string(index=False))


def main() -> None:
    """Hydra entry point."""
    register_configs()
    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="compare_schedulers")(task)()


if __name__ == "__main__":
    main()
