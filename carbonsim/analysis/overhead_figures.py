"""Figure of the scheduler-overhead benchmark (``benchmarks/overhead.py``): cost per decision and per plan.

Same style as :mod:`carbonsim.analysis.figures` (matplotlib's object API, colour-blind palette, a line
style and marker per policy). Both axes are logarithmic: fleet sizes span three orders of magnitude and
decision costs from well under a microsecond (round robin) to milliseconds (a transformer forward pass).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from carbonsim.analysis.figures import _styles, _subplots, apply_style

#: The two sweeps: the ``sweep`` value in the table, its x column and the x-axis label.
SWEEPS = (
    ("servers", "servers", "servers in the fleet (fixed number of regions)"),
    ("regions", "regions", "regions (fixed servers per region)"),
)


def _log_axis(axis: Any) -> None:
    """Log scale labelled in plain numbers at 1, 2 and 5 times the powers of ten (ranges may be narrow)."""
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 100 else f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def fig_overhead(table: pd.DataFrame) -> Figure:
    """Microseconds per routing decision and, for planning policies, milliseconds per plan.

    Rows: the decision cost measured inside the simulation; if the table has it, the cost of ``decide``
    called alone (``isolated_us``); if any policy plans, the cost per plan.

    Args:
        table: One row per policy and cluster size with columns ``policy``, ``sweep`` (``servers`` or
            ``regions``), ``servers``, ``regions``, ``decision_us`` (microseconds per decision inside the
            simulation), optionally ``isolated_us`` (microseconds per ``decide`` call outside it) and
            ``plan_ms`` (milliseconds per plan, NaN for policies that do not plan).

    Returns:
        The figure: one column per sweep, one line per policy, a legend on the right.
    """
    apply_style()
    plans = table[table["plan_ms"].notna()]
    panels = [("decision_us", "us per routing decision", "Decision", table)]
    if "isolated_us" in table.columns and table["isolated_us"].notna().any():
        panels.append(("isolated_us", "us per decide() call, alone", "Isolated decision", table))
    if not plans.empty:
        panels.append(("plan_ms", "ms per plan", "Planning", plans))
    fig, axes = _subplots(len(panels), 2, figsize=(11.0, 3.8 * len(panels)), squeeze=False)
    fig.set_layout_engine("constrained")
    policies = list(dict.fromkeys(table["policy"]))
    styles = dict(zip(policies, _styles(len(policies)), strict=True))
    handles: dict[str, Any] = {}
    for row, (column, ylabel, what, data) in enumerate(panels):
        for col, (sweep, x, xlabel) in enumerate(SWEEPS):
            ax = axes[row][col]
            rows = data[data["sweep"] == sweep]
            for policy in dict.fromkeys(rows["policy"]):
                g = rows[rows["policy"] == policy].sort_values(x)
                (line,) = ax.plot(g[x], g[column], label=str(policy), markersize=4, linewidth=1.2, **styles[policy])
                handles.setdefault(str(policy), line)
            ax.set_xscale("log")
            ax.set_yscale("log")
            values = rows[column][rows[column] > 0]
            if not values.empty:
                # At least a factor of 4 in view, so that a nearly flat line looks flat.
                ax.set_ylim(float(values.min()) / 2.0, float(values.max()) * 2.0)
            _log_axis(ax.yaxis)
            ticks = sorted(int(v) for v in rows[x].unique())
            if ticks:
                # The sizes measured, labelled in full; log-scale minor ticks stay unlabelled.
                ax.set_xticks(ticks, labels=[f"{v:,}" for v in ticks])
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{what} cost as the {sweep} grow")
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize="small")
    return fig


def write_overhead_figure(table: pd.DataFrame, out_dir: Path, name: str = "overhead") -> tuple[Path, Path]:
    """Draws :func:`fig_overhead` into ``out_dir`` as ``name``.png and ``name``.pdf; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = fig_overhead(table)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    fig.savefig(png)
    fig.savefig(pdf, metadata={"CreationDate": None})
    return png, pdf


__all__ = ["fig_overhead", "write_overhead_figure"]
