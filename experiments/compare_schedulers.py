"""Learned and heuristic schedulers on held-out windows and an unseen region set (docs/learning.md).

Usage::

    python experiments/compare_schedulers.py \
        'policies.0.checkpoint=results/transformer/transformer.safetensors' ...   # see conf/compare_schedulers.yaml

Writes ``comparison_by_window.csv`` and ``comparison.csv`` / ``.md`` (means over windows per scenario and
policy: carbon, SLO violations, latency, penalty, microseconds per decision, ms per plan, peak memory)
into the Hydra run folder (or ``out_dir``).
"""

from __future__ import annotations

from pathlib import Path

from carbonsim._hydra import script_main
from carbonsim.learn.config import CompareConfig


def work(cfg: CompareConfig, out: Path) -> None:
    """Runs the comparison and writes its tables."""
    from carbonsim.analysis import tables
    from carbonsim.learn.comparison import compare, summarise
    from carbonsim.runner import write_text

    out.mkdir(parents=True, exist_ok=True)
    table = compare(cfg)
    table.to_csv(out / "comparison_by_window.csv", index=False)
    means = summarise(table)
    means.to_csv(out / "comparison.csv", index=False)
    write_text(out / "comparison.md", tables.to_markdown(means, digits=4))
    print(means.to_string(index=False))


def main() -> None:
    """Hydra entry point (``conf/compare_schedulers.yaml``)."""
    script_main("compare_schedulers", "compare_schedulers", CompareConfig, work)


if __name__ == "__main__":
    main()
