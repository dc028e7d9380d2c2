"""The drift experiment: a transformer trained on 2021-2022, deployed through 2023-2024, learning vs frozen.

Usage (extra ``llm``)::

    python experiments/drift.py checkpoint=results/transformer/transformer.safetensors
    python experiments/drift.py checkpoint=... every_days=14 online.update_every_h=0.5

Writes ``drift_by_window.csv``, ``drift_summary.csv`` / ``.md`` (means per half-year) and
``figures/drift.png`` / ``.pdf`` into the Hydra run folder (or ``out_dir``); see conf/drift.yaml.
"""

from __future__ import annotations

from pathlib import Path

from carbonsim._hydra import script_main
from carbonsim.learn.config import DriftConfig


def work(cfg: DriftConfig, out: Path) -> None:
    """Runs the experiment and writes its tables and figure."""
    from carbonsim.analysis import tables, timeline
    from carbonsim.learn.drift import run_drift, summarise_drift
    from carbonsim.runner import write_text

    out.mkdir(parents=True, exist_ok=True)
    table = run_drift(cfg)
    table.to_csv(out / "drift_by_window.csv", index=False)
    summary = summarise_drift(table)
    summary.to_csv(out / "drift_summary.csv", index=False)
    write_text(out / "drift_summary.md", tables.to_markdown(summary, digits=4))
    region_added = cfg.region_added_utc if cfg.added_scenario else ""
    figure = timeline.save(timeline.fig_drift(table, region_added), out / "figures", "drift")
    print(summary.to_string(index=False))
    print(f"drift: tables and {figure} in {out}")


def main() -> None:
    """Hydra entry point (``conf/drift.yaml``)."""
    script_main("drift", "drift", DriftConfig, work)


if __name__ == "__main__":
    main()
