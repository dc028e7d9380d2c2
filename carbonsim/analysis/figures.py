"""Figures of a sweep (matplotlib and seaborn; the only plotting code in carbonsim).

Figures are made with matplotlib's object API (no pyplot: no GUI backend, nothing global but the style).
Every function takes a :class:`SweepData` and returns a figure, or None when the sweep has nothing to show
for it (e.g. no inference requests in a batch-only sweep, no hour-of-day heatmap for a run shorter than a
day). One style for all: seaborn's ``paper`` context and the colour-blind palette, one colour per policy
family (``hybrid`` at every alpha shares one) and, within a family, a line style of its own, plus a marker
per policy and a hatch per bar group, so that 13 and more policies stay apart and the figures read in
greyscale too (:func:`policy_styles`). Time series show the run's arrival window only: the rows a run's
tables have for the drain after it (the last requests finishing) are left out, and a partial last hour is
drawn as a rate and marked. :func:`write_figures` saves each figure as PNG and PDF.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.artist import setp
from matplotlib.figure import Figure
from matplotlib.projections.polar import PolarAxes

#: Line styles, in the order the members of one policy family take them.
LINESTYLES: tuple[str | tuple[float, tuple[float, ...]], ...] = (
    "-",
    "--",
    "-.",
    ":",
    (0, (5, 1)),
    (0, (3, 1, 1, 1, 1, 1)),
    (0, (1, 1)),
    (0, (8, 2, 1, 2)),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p", "H", "d", "8")
#: Colours of the policy families (seaborn's colour-blind palette).
N_COLOURS = 10
HATCHES = ("", "//", "..", "xx", "\\\\", "--", "++", "oo", "**", "||")


def apply_style() -> None:
    """The one style of carbonsim's figures."""
    sns.set_theme(context="paper", style="whitegrid", palette="colorblind", font_scale=1.1)
    mpl.rcParams.update({"figure.dpi": 120, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def _subplots(*grid: int, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """A figure and its axes, without pyplot (no GUI backend, no global figure registry)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def _finish_bars(ax: Any) -> None:
    """Bar charts by policy: a hatch per hue group (for greyscale) and slanted policy labels."""
    for i, bars in enumerate(ax.containers):
        for bar in bars:
            bar.set_hatch(HATCHES[i % len(HATCHES)])
    ax.tick_params(axis="x", rotation=45)
    setp(ax.get_xticklabels(), ha="right")


def _linestyle(k: int) -> str | tuple[float, tuple[float, ...]]:
    """The ``k``-th line style: the named ones, then dashes of growing length (each one distinct)."""
    return LINESTYLES[k] if k < len(LINESTYLES) else (0, (float(k - len(LINESTYLES) + 2), 1.5, 1.0, 1.5))


def policy_styles(labels: list[str], families: list[str]) -> dict[str, dict[str, Any]]:
    """A style per policy label: the colour of its family, a line style of its own within that colour.

    Args:
        labels: Run labels in sweep order.
        families: The family of each label (e.g. its registered policy name; ``hybrid`` for every alpha).

    Returns:
        Per label ``color``, ``linestyle`` and ``marker``. Families take the palette's colours in order of
        first appearance (they repeat only beyond :data:`N_COLOURS` families); within one colour each label
        takes the first line style not yet used, starting at its family's own offset so that families that
        share nothing else also differ in line style where they can. No two labels share both colour and
        line style; markers go through :data:`MARKERS` by label.
    """
    palette = sns.color_palette("colorblind", N_COLOURS)
    order = list(dict.fromkeys(families))
    used: dict[int, set[Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for i, (label, family) in enumerate(zip(labels, families, strict=True)):
        fi = order.index(family)
        colour = fi % N_COLOURS
        taken = used.setdefault(colour, set())
        named = (LINESTYLES[(fi + j) % len(LINESTYLES)] for j in range(len(LINESTYLES)))
        style = next((ls for ls in named if ls not in taken), None)
        if style is None:
            style = next(_linestyle(j) for j in itertools.count(len(LINESTYLES)) if _linestyle(j) not in taken)
        taken.add(style)
        out[label] = {"color": palette[colour], "linestyle": style, "marker": MARKERS[i % len(MARKERS)]}
    return out


def _styles(n: int) -> list[dict[str, Any]]:
    """Styles of ``n`` unrelated series (each its own family)."""
    names = [str(i) for i in range(n)]
    return list(policy_styles(names, names).values())


def _legend(ax: Any, n: int, **kwargs: Any) -> None:
    """A legend beside the axes (right), in columns of at most 16 entries, readable at print size."""
    ax.legend(
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
        ncol=max(1, math.ceil(n / 16)),
        **kwargs,
    )


@dataclass
class SweepData:
    """The tables of a finished sweep: the tidy results and each done job's own tables.

    Attributes:
        results: ``results.parquet`` (one row per job).
        job_tables: Per table name (``per_region``, ``per_workload``, ``hourly``, ``latency_quantiles``,
            ``signals``, ``routing``, ``timeline``), the rows of every done job with its ``label``, ``seed``,
            ``variant``, ``scenario``, ``sim_hours`` (its arrival window) and ``sim_end_s`` (when it ended).
        sweep_dir: The sweep's folder (for the jobs' ``job.json``), if it was read from one.
    """

    results: pd.DataFrame
    job_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    sweep_dir: Path | None = None

    @staticmethod
    def load(sweep_dir: Path) -> SweepData:
        """Reads ``results.parquet`` and the tables of its done jobs."""
        results = pd.read_parquet(sweep_dir / "results.parquet")
        tables: dict[str, list[pd.DataFrame]] = {}
        done = results[results["status"] == "done"] if "status" in results.columns else results
        for _, row in done.iterrows():
            folder = sweep_dir / str(row["job"])
            for path in sorted(folder.glob("*.csv")):
                df = pd.read_csv(path)
                for col in ("sim_end_s", "sim_hours"):
                    df.insert(0, col, float(row[col]) if col in row and pd.notna(row[col]) else math.inf)
                for col in ("scenario", "variant", "seed", "label"):
                    df.insert(0, col, row[col] if col in row and pd.notna(row[col]) else "")
                tables.setdefault(path.stem, []).append(df)
        return SweepData(results, {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, sweep_dir)

    @property
    def done(self) -> pd.DataFrame:
        """Rows of finished jobs."""
        r = self.results
        return r[r["status"] == "done"] if "status" in r.columns else r

    @property
    def seeds(self) -> int:
        """Seeds among the finished jobs (1 means no confidence intervals)."""
        d = self.done
        return int(d["seed"].nunique()) if "seed" in d.columns and len(d) else 1

    def has_requests(self) -> bool:
        """Whether the sweep served inference requests."""
        d = self.done
        return "requests" in d.columns and bool(d["requests"].fillna(0).sum() > 0)

    def first_variant(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of the first variant and scenario (figures that show one of them)."""
        for col in ("variant", "scenario"):
            if col in df.columns and len(df) and df[col].nunique(dropna=False) > 1:
                df = cast(pd.DataFrame, df[df[col] == df[col].iloc[0]])
        return df

    def one_seed(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of the lowest seed (figures of one realisation)."""
        if "seed" in df.columns and len(df):
            return cast(pd.DataFrame, df[df["seed"] == df["seed"].min()])
        return df

    def labels(self) -> list[str]:
        """Run labels in sweep order."""
        return list(dict.fromkeys(self.first_variant(self.done)["label"].astype(str)))

    def styles(self) -> dict[str, dict[str, Any]]:
        """A style per label (:func:`policy_styles`), the family being the policy that varies in the sweep.

        The routing policy's registered name where the sweep serves requests, the batch policy's in a
        batch-only sweep, both where both vary.
        """
        d = self.first_variant(self.done)
        first = d.drop_duplicates("label")
        keys = [c for c in ("policy", "batch_policy") if c in first.columns and first[c].nunique() > 1]
        if not self.has_requests():
            keys = [k for k in keys if k == "batch_policy"] or keys
        labels = [str(x) for x in first["label"]]
        families = ["/".join(str(r[k]) for k in keys) for _, r in first.iterrows()] if keys else labels
        return policy_styles(labels, families)

    @staticmethod
    def in_window(df: pd.DataFrame, hours: pd.Series) -> pd.DataFrame:
        """The rows whose time (``hours``, simulated hours from the start) lies in their run's arrival window.

        Rows after the window (the drain, while the last requests or jobs finish) are not part of the
        period the run observes and are left out.
        """
        return df[(hours >= 0) & (hours < df["sim_hours"])]


def _mean_by_label(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df.groupby("label", sort=False)[columns].agg(["mean", "std", "count"])


def fig_regions(data: SweepData) -> Figure | None:
    """Per region: mean carbon intensity over the run and (with requests) mean round trip from the origins."""
    pr = data.job_tables.get("per_region")
    if pr is None or pr.empty:
        return None
    one = data.one_seed(data.first_variant(pr))
    one = one[one["label"] == one["label"].iloc[0]]
    network = data.has_requests() and "mean_rtt_ms" in one.columns
    fig, axes = _subplots(1, 2 if network else 1, figsize=(10 if network else 5.5, 3.6), squeeze=False)
    sns.barplot(data=one, x="region", y="mean_intensity_gco2_per_kwh", ax=axes[0][0], color="0.55", edgecolor="k")
    axes[0][0].set(xlabel="", ylabel="mean intensity (gCO2/kWh)", title="Carbon intensity per region")
    if network:
        sns.barplot(data=one, x="region", y="mean_rtt_ms", ax=axes[0][1], color="0.8", edgecolor="k", hatch="//")
        axes[0][1].set(xlabel="", ylabel="mean round trip from origins (ms)", title="Network latency per region")
    for ax in axes[0]:
        ax.tick_params(axis="x", rotation=30)
        setp(ax.get_xticklabels(), ha="right")
    return fig


def fig_pareto(data: SweepData) -> Figure | None:
    """Carbon against mean latency per policy (mean and, with seeds, 95 % CI), the Pareto front and the bound."""
    if not data.has_requests():
        return None
    d = data.first_variant(data.done)
    stats = _mean_by_label(d, ["mean_latency_ms", "carbon_kg"])
    fig, ax = _subplots(figsize=(8.5, 5))
    styles = data.styles()
    for label, row in stats.iterrows():
        st = styles[str(label)]
        n = max(int(row[("carbon_kg", "count")]), 1)
        half = 1.96 * np.nan_to_num(row[("carbon_kg", "std")]) / np.sqrt(n)
        half_x = 1.96 * np.nan_to_num(row[("mean_latency_ms", "std")]) / np.sqrt(n)
        ax.errorbar(
            row[("mean_latency_ms", "mean")],
            row[("carbon_kg", "mean")],
            xerr=half_x if n > 1 else None,
            yerr=half if n > 1 else None,
            marker=st["marker"],
            markersize=7,
            markeredgecolor="k",
            markeredgewidth=0.5,
            color=st["color"],
            linestyle="none",
            capsize=3,
            label=str(label),
        )
    pts = sorted(zip(stats[("mean_latency_ms", "mean")], stats[("carbon_kg", "mean")], strict=True))
    front, best = [], np.inf
    for x, y in pts:
        if y < best:
            front.append((x, y))
            best = y
    if front:
        ax.plot(*zip(*front, strict=True), color="k", linestyle="--", linewidth=1, label="Pareto front")
    if "bound_carbon_kg" in d.columns and d["bound_carbon_kg"].notna().any():
        ax.axhline(d["bound_carbon_kg"].mean(), color="k", linestyle=":", label="clairvoyant bound")
    ax.set(xlabel="mean latency (ms)", ylabel="emissions (kg CO2eq)", title="Carbon-latency trade-off")
    _legend(ax, len(stats) + 2)
    return fig


def fig_routing(data: SweepData) -> Figure | None:
    """Share of requests served by each region, per policy (stacked)."""
    pr = data.job_tables.get("per_region")
    if pr is None or pr.empty or not data.has_requests():
        return None
    d = data.first_variant(pr)
    share = d.groupby(["label", "region"], sort=False)["routing_share_pct"].mean().unstack("region").fillna(0.0)
    share = share.reindex([lab for lab in data.labels() if lab in share.index])
    fig, ax = _subplots(figsize=(8, 0.35 * len(share) + 1.5))
    left = np.zeros(len(share))
    colors = sns.color_palette("colorblind", share.shape[1])
    for i, region in enumerate(share.columns):
        ax.barh(
            share.index,
            share[region],
            left=left,
            label=str(region),
            color=colors[i],
            hatch=HATCHES[i % len(HATCHES)],
            edgecolor="k",
        )
        left += share[region].to_numpy()
    ax.invert_yaxis()
    ax.set(xlabel="share of requests (%)", title="Routing distribution per policy")
    _legend(ax, share.shape[1], title="region")
    return fig


def fig_slo_per_workload(data: SweepData) -> Figure | None:
    """SLO violations per workload and policy (with seeds, the 95 % CI over them)."""
    pw = data.job_tables.get("per_workload")
    if pw is None or pw.empty or not data.has_requests():
        return None
    d = data.first_variant(pw)
    fig, ax = _subplots(figsize=(9, 4))
    errorbar = ("ci", 95) if data.seeds > 1 else None
    sns.barplot(data=d, x="label", y="slo_violation_pct", hue="workload", ax=ax, edgecolor="k", errorbar=errorbar)
    ax.set(xlabel="", ylabel="SLO violations (%)", title="SLO violations per workload")
    _finish_bars(ax)
    _legend(ax, d["workload"].nunique(), title="workload")
    return fig


def _signals(data: SweepData) -> pd.DataFrame | None:
    sig = data.job_tables.get("signals")
    if sig is None or sig.empty:
        return None
    one = data.one_seed(data.first_variant(sig))
    one = one[one["label"] == one["label"].iloc[0]]
    one = data.in_window(one, one["hour"])
    return one if len(one) else None


def fig_intensity_traces(data: SweepData) -> Figure | None:
    """The hourly carbon intensity of every region over the arrival window (a step per hour)."""
    sig = _signals(data)
    if sig is None:
        return None
    end_h = float(sig["sim_hours"].iloc[0])
    fig, ax = _subplots(figsize=(10, 3.8))
    regions = list(dict.fromkeys(sig["region"]))
    for region, st in zip(regions, policy_styles(regions, regions).values(), strict=True):
        g = sig[sig["region"] == region]
        # The last hour's value holds to the end of the window (steps-post), never beyond it.
        x = [*g["hour"].tolist(), end_h]
        y = [*g["intensity_gco2_per_kwh"].tolist(), float(g["intensity_gco2_per_kwh"].iloc[-1])]
        ax.plot(x, y, drawstyle="steps-post", label=region, color=st["color"], linestyle=st["linestyle"])
    ax.set_xlim(0, end_h)
    ax.set(xlabel="simulated hour", ylabel="intensity (gCO2/kWh)", title="Carbon intensity over the run")
    _legend(ax, len(regions), title="region")
    return fig


#: Shortest arrival window (in simulated hours) for which the hour-of-day heatmap is drawn.
HEATMAP_MIN_HOURS = 24.0


def fig_heatmap(data: SweepData) -> Figure | None:
    """Mean carbon intensity by region and hour of day (UTC when the signals are calendar-based).

    Drawn for runs of a day or longer only: a shorter one has each hour of day once, which
    :func:`fig_intensity_traces` already shows.
    """
    sig = _signals(data)
    if sig is None or float(sig["sim_hours"].iloc[0]) < HEATMAP_MIN_HOURS:
        return None
    sig = sig.copy()
    utc = sig["utc"].astype(str)
    calendar = bool((utc.str.len() > 0).all() and utc.iloc[0] != "nan")
    sig["hour_of_day"] = pd.to_datetime(utc).dt.hour if calendar else sig["hour"] % 24
    table = sig.pivot_table(index="region", columns="hour_of_day", values="intensity_gco2_per_kwh", sort=False)
    fig, ax = _subplots(figsize=(10, 0.45 * len(table) + 1.5))
    sns.heatmap(table, cmap="Greys", ax=ax, cbar_kws={"label": "gCO2/kWh"})
    ax.set(xlabel="hour of day (UTC)" if calendar else "hour of day", ylabel="", title="Intensity by hour of day")
    return fig


def fig_latency_cdf(data: SweepData) -> Figure | None:
    """Latency CDF per workload and policy, with each workload's SLO."""
    lq = data.job_tables.get("latency_quantiles")
    if lq is None or lq.empty or not data.has_requests():
        return None
    d = data.one_seed(data.first_variant(lq))
    workloads = list(dict.fromkeys(d["workload"]))
    fig, axes = _subplots(1, len(workloads), figsize=(3.8 * len(workloads) + 2.5, 3.8), squeeze=False)
    styles = data.styles()
    for ax, wl in zip(axes[0], workloads, strict=True):
        g = d[d["workload"] == wl]
        for label, h in g.groupby("label", sort=False):
            st = styles.get(str(label), {"color": "k", "linestyle": "-", "marker": "o"})
            ax.plot(
                h["latency_ms"],
                h["quantile_pct"] / 100,
                label=str(label),
                color=st["color"],
                ls=st["linestyle"],
                marker=st["marker"],
                markevery=max(1, len(h) // 6),
                markersize=4,
            )
        ax.axvline(g["slo_ms"].iloc[0], color="k", linestyle=":", linewidth=1.2)
        ax.set(xlabel="latency (ms)", ylabel="fraction of requests", title=f"{wl} (SLO dotted)")
    _legend(axes[0][-1], len(styles))
    return fig


RADAR_METRICS = (
    ("mean_latency_ms", "mean latency"),
    ("p95_latency_ms", "p95 latency"),
    ("slo_violation_pct", "SLO violations"),
    ("carbon_kg", "carbon"),
    ("energy_kwh", "energy"),
    ("cost_usd", "cost"),
)


def fig_radar(data: SweepData) -> Figure | None:
    """Each policy's metrics divided by the largest of any policy (smaller is better)."""
    if not data.has_requests():
        return None
    d = data.first_variant(data.done)
    cols = [c for c, _ in RADAR_METRICS if c in d.columns]
    means = d.groupby("label", sort=False)[cols].mean()
    norm = means / means.max().replace(0, np.nan)
    angles = np.linspace(0, 2 * np.pi, len(cols), endpoint=False).tolist()
    fig = Figure(figsize=(9.5, 6.5))
    ax = cast(PolarAxes, fig.add_subplot(projection="polar"))
    styles = data.styles()
    for label, row in norm.iterrows():
        st = styles[str(label)]
        values = row.fillna(0).tolist()
        ax.plot(
            [*angles, angles[0]],
            [*values, values[0]],
            label=str(label),
            color=st["color"],
            ls=st["linestyle"],
            marker=st["marker"],
            markersize=4,
        )
    ax.set_xticks(angles, [name for c, name in RADAR_METRICS if c in cols], fontsize=10)
    ax.tick_params(axis="x", pad=14)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_rlabel_position(180.0 / len(cols))  # the radial scale between the first two spokes, not on one
    ax.set_ylim(0, 1.05)
    ax.set_title("Normalised metrics (1 = worst policy)", pad=24)
    ax.legend(
        fontsize=8, loc="upper left", bbox_to_anchor=(1.15, 1.05), frameon=False, ncol=max(1, len(norm) // 17 + 1)
    )
    return fig


def fig_saved_vs_slo(data: SweepData) -> Figure | None:
    """Carbon reduction against the baseline beside the SLO violations, per policy."""
    if not data.has_requests() or "carbon_reduction_pct" not in data.done.columns:
        return None
    d = data.first_variant(data.done)
    long = d.melt(
        id_vars=["label"],
        value_vars=["carbon_reduction_pct", "slo_violation_pct"],
        var_name="metric",
        value_name="percent",
    )
    long["metric"] = long["metric"].map(
        {"carbon_reduction_pct": "carbon reduction", "slo_violation_pct": "SLO violations"}
    )
    fig, ax = _subplots(figsize=(9, 4))
    errorbar = ("ci", 95) if data.seeds > 1 else None
    sns.barplot(
        data=long,
        x="label",
        y="percent",
        hue="metric",
        ax=ax,
        edgecolor="k",
        palette=["0.35", "0.8"],
        errorbar=errorbar,
    )
    ax.set(xlabel="", ylabel="%", title="Carbon reduction vs SLO violations")
    _finish_bars(ax)
    _legend(ax, 2)
    return fig


def fig_hourly(data: SweepData) -> Figure | None:
    """Emissions (kg per hour) and mean latency of each policy, per simulated hour of the arrival window.

    Hours after the window (the drain) are left out. A partial hour (a window that does not end on the
    hour) shows its emissions as a rate over the part of the hour the run covered, with a hollow marker.
    """
    hr = data.job_tables.get("hourly")
    if hr is None or hr.empty or not data.has_requests():
        return None
    d = data.one_seed(data.first_variant(hr))
    d = data.in_window(d, d["hour"])
    if d.empty:
        return None
    fig, axes = _subplots(2, 1, figsize=(11, 6.5), sharex=True)
    styles = data.styles()
    partial_any = False
    for label in data.labels():
        st = styles[label]
        g = d[d["label"] == label]
        if g.empty:
            continue
        covered_h = np.clip(g["sim_end_s"].to_numpy() / 3600.0 - g["hour"].to_numpy(), 1e-9, 1.0)
        partial = (g["hour"].to_numpy() + 1.0) > g["sim_hours"].to_numpy()
        partial_any |= bool(partial.any())
        rate = g["carbon_kg"].to_numpy() / covered_h
        common = {"color": st["color"], "linestyle": st["linestyle"], "marker": st["marker"], "markersize": 5}
        every = max(1, len(g) // 12)
        axes[0].plot(g["hour"], rate, label=label, markevery=every, **common)
        axes[1].plot(g["hour"], g["mean_latency_ms"], label=label, markevery=every, **common)
        if partial.any():
            for ax, y in ((axes[0], rate), (axes[1], g["mean_latency_ms"].to_numpy())):
                ax.plot(
                    g["hour"].to_numpy()[partial],
                    y[partial],
                    linestyle="none",
                    marker=st["marker"],
                    markersize=7,
                    markerfacecolor="white",
                    markeredgecolor=st["color"],
                )
    title = "Hourly emissions and latency over the arrival window"
    axes[0].set(ylabel="kg CO2eq per hour", title=title + (" (hollow: partial hour)" if partial_any else ""))
    axes[1].set(xlabel="simulated hour (start)", ylabel="mean latency (ms)")
    _legend(axes[0], len(styles))
    return fig


def fig_timeline(data: SweepData) -> Figure | None:
    """Through faults: SLO violations, failed requests and retries per 5 minutes of arrivals, per policy.

    Drawn for sweeps whose runs had faults (outages, cuts or server failures), with the scheduled outages
    and cuts shaded.
    """
    tl = data.job_tables.get("timeline")
    d = data.done
    fault_cols = [c for c in ("outages", "cuts", "server_failures") if c in d.columns]
    if tl is None or tl.empty or not fault_cols or not (d[fault_cols].fillna(0).to_numpy() > 0).any():
        return None
    t = data.one_seed(data.first_variant(tl))
    t = data.in_window(t, t["start_s"] / 3600.0)
    fig, axes = _subplots(3, 1, figsize=(11, 7.5), sharex=True)
    styles = data.styles()
    for label in data.labels():
        st = styles[label]
        g = t[t["label"] == label]
        minutes = g["start_s"] / 60.0
        style = {"color": st["color"], "linestyle": st["linestyle"], "marker": st["marker"], "markersize": 3}
        axes[0].plot(minutes, g["slo_violation_pct"], label=label, **style)
        axes[1].plot(minutes, g["failed"] / g["arrivals"].clip(lower=1) * 100.0, label=label, **style)
        axes[2].plot(minutes, g["retried"] / g["arrivals"].clip(lower=1) * 100.0, label=label, **style)
    for start_h, end_h in _fault_windows(data):
        for ax in axes:
            ax.axvspan(start_h * 60.0, end_h * 60.0, color="0.85", zorder=0)
    axes[0].set(ylabel="SLO violations (%)", title="Through the faults (shaded: outages and cuts)")
    axes[1].set(ylabel="failed (%)")
    axes[2].set(xlabel="arrival time (simulated minutes)", ylabel="routed again (%)")
    _legend(axes[0], len(styles))
    return fig


def _fault_windows(data: SweepData) -> list[tuple[float, float]]:
    """Scheduled outages and cuts of the sweep's first job, in simulated hours (from its Hydra config)."""
    d = data.done
    if "job" not in d.columns or not len(d) or data.sweep_dir is None:
        return []
    path = data.sweep_dir / str(d["job"].iloc[0]) / ".hydra" / "config.yaml"
    if not path.is_file():
        return []
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(path))
    faults = config.get("scenario", {}).get("faults", {}) if isinstance(config, dict) else {}
    return [
        (float(f["start_h"]), float(f["start_h"]) + float(f["duration_h"]))
        for f in [*faults.get("outages", []), *faults.get("cuts", [])]
    ]


def fig_carbon_vs_slack(data: SweepData) -> Figure | None:
    """Batch jobs: each batch policy's carbon reduction for each deadline rule (variant)."""
    d = data.done
    if "job_carbon_reduction_pct" not in d.columns or not d["job_carbon_reduction_pct"].notna().any():
        return None
    fig, ax = _subplots(figsize=(9, 4.2))
    hue = "variant" if "variant" in d.columns and d["variant"].nunique() > 1 else None
    errorbar = ("ci", 95) if data.seeds > 1 else None
    sns.barplot(
        data=d,
        x="label",
        y="job_carbon_reduction_pct",
        hue=hue,
        ax=ax,
        edgecolor="k",
        palette="Greys" if hue else None,
        color=None if hue else "0.6",
        errorbar=errorbar,
    )
    ax.set(xlabel="", ylabel="job carbon reduction (%)", title="Batch jobs: carbon reduction vs deadline slack")
    _finish_bars(ax)
    if hue:
        _legend(ax, d["variant"].nunique(), title="deadlines")
    return fig


#: Every figure: file name, function, caption (``{ci}`` becomes what the error bars show, if any, and ``{rtt}``
#: names the round-trip panel where there is one).
FIGURES: tuple[tuple[str, Callable[[SweepData], Figure | None], str], ...] = (
    ("regions", fig_regions, "Mean carbon intensity of each region over the run{rtt}."),
    ("pareto", fig_pareto, "Emissions against mean latency per policy{ci}, the Pareto front and the bound."),
    ("routing", fig_routing, "Share of requests each region served, per policy."),
    ("slo_per_workload", fig_slo_per_workload, "SLO violations per workload and policy{ci}."),
    ("intensity_traces", fig_intensity_traces, "Hourly carbon intensity of every region over the run."),
    ("intensity_heatmap", fig_heatmap, "Mean carbon intensity by region and hour of day."),
    ("latency_cdf", fig_latency_cdf, "Latency distribution per workload and policy (lowest seed); dotted: the SLO."),
    ("radar", fig_radar, "Each policy's metrics over the worst policy's (smaller is better)."),
    ("saved_vs_slo", fig_saved_vs_slo, "Carbon reduction against the baseline beside the SLO violations{ci}."),
    ("hourly", fig_hourly, "Emissions and mean latency per hour of the arrival window (lowest seed)."),
    ("carbon_vs_slack", fig_carbon_vs_slack, "Batch jobs: carbon reduction per policy and deadline rule{ci}."),
    ("timeline", fig_timeline, "Through the faults: SLO violations, failures and retries per 5 minutes."),
)


def caption(data: SweepData, template: str) -> str:
    """A figure's caption for this sweep: error bars named only where there are seeds to have them."""
    ci = f" (95 % CI over {data.seeds} seeds)" if data.seeds > 1 else " (one seed)"
    rtt = ", and its mean round trip from the origins" if data.has_requests() else ""
    return template.format(ci=ci, rtt=rtt)


def draw_figures(data: SweepData) -> list[tuple[str, Figure, str]]:
    """Every figure the sweep has data for, with its name and caption (nothing is written)."""
    apply_style()
    out = []
    for name, make, template in FIGURES:
        fig = make(data)
        if fig is not None:
            out.append((name, fig, caption(data, template)))
    return out


def write_figures(data: SweepData, out_dir: Path) -> list[tuple[str, Path, str]]:
    """Draws every figure the sweep has data for into ``out_dir`` (PNG and PDF).

    Returns:
        (name, PNG path, caption) of each figure written, in order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig, text in draw_figures(data):
        fig.savefig(out_dir / f"{name}.png")
        fig.savefig(out_dir / f"{name}.pdf", metadata={"CreationDate": None})
        written.append((name, out_dir / f"{name}.png", text))
    (out_dir / "figures.json").write_text(json.dumps([n for n, _, _ in written]) + "\n", encoding="utf-8")
    return written
