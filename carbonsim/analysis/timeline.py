"""Figures of the learning experiments over calendar time (the drift experiment).

Same style as :mod:`carbonsim.analysis.figures` (matplotlib's object API, colour-blind palette, a line
style and marker per series).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from carbonsim.analysis.figures import _styles, _subplots, apply_style

DRIFT_PANELS = (
    ("carbon_kg", "kg CO2eq per window"),
    ("slo_violation_pct", "SLO violations (%)"),
    ("new_region_share", "share routed to the new region"),
)


def fig_drift(table: pd.DataFrame, region_added_utc: str = "") -> Figure:
    """Per window: carbon, SLO violations and use of the added region, one line per policy.

    Args:
        table: One row per window and policy (:func:`carbonsim.learn.drift.run_drift`).
        region_added_utc: When the new region appeared (a vertical line), empty for none.
    """
    apply_style()
    fig, axes = _subplots(len(DRIFT_PANELS), 1, figsize=(8.0, 7.5), sharex=True)
    t = table.assign(when=pd.to_datetime(table["start_utc"], utc=True))
    policies = list(dict.fromkeys(t["policy"]))
    for ax, (column, title) in zip(axes, DRIFT_PANELS, strict=True):
        for policy, style in zip(policies, _styles(len(policies)), strict=True):
            rows = t[t["policy"] == policy]
            ax.plot(rows["when"], rows[column], label=policy, markersize=3, linewidth=1.0, **style)
        if region_added_utc:
            ax.axvline(pd.Timestamp(region_added_utc), color="0.3", linestyle=":", linewidth=1.0)
        ax.set_ylabel(title)
    axes[0].legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("window start (UTC)")
    axes[-1].tick_params(axis="x", rotation=30)
    fig.suptitle("A trained transformer deployed through later years: learning vs frozen")
    return fig


def save(fig: Figure, out_dir: Path, name: str) -> Path:
    """Writes ``name``.png and .pdf into ``out_dir``; returns the PNG's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / f"{name}.png")
    fig.savefig(out_dir / f"{name}.pdf", metadata={"CreationDate": None})
    return out_dir / f"{name}.png"


__all__ = ["fig_drift", "save"]
