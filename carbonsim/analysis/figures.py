"""Figures of a sweep (matplotlib and seaborn; the only plotting code in carbonsim).

Figures are made with matplotlib's object API (no pyplot: no GUI backend, nothing global but the style).
Every function takes a :class:`SweepData` and returns a figure, or None when the sweep has nothing to show
for it (e.g. no inference requests in a batch-only sweep). One style for all: seaborn's ``paper`` context,
the colour-blind palette, and a distinct line style, marker or hatch per series, so that the figures read
in greyscale too. :func:`write_figures` saves each as PNG and PDF.
"""

from __future__ import annotations

import itertools
import json
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

LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
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


def _styles(n: int) -> list[dict[str, object]]:
    colors = sns.color_palette("colorblind", n)
    lines = zip(itertools.cycle(LINESTYLES), itertools.cycle(MARKERS), strict=False)
    return [{"color": c, "linestyle": ls, "marker": m} for c, (ls, m) in zip(colors, lines, strict=False)]


@dataclass
class SweepData:
    """The tables of a finished sweep: the tidy results and each done job's own tables.

    Attributes:
        results: ``results.parquet`` (one row per job).
        job_tables: Per table name (``per_region``, ``per_workload``, ``hourly``, ``latency_quantiles``,
            ``signals``, ``routing``, ``timeline``), the rows of every done job with its ``label``, ``seed``
            and ``variant``.
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
                for col in ("scenario", "variant", "seed", "label"):
                    df.insert(0, col, row[col] if col in row and pd.notna(row[col]) else "")
                tables.setdefault(path.stem, []).append(df)
        return SweepData(results, {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}, sweep_dir)

    @property
    def done(self) -> pd.DataFrame:
        """Rows of finished jobs."""
        r = self.results
        return r[r["status"] == "done"] if "status" in r.columns else r

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


def _mean_by_label(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df.groupby("label", sort=False)[columns].agg(["mean", "std", "count"])


def fig_regions(data: SweepData) -> Figure | None:
    """Per region: mean carbon intensity over the run and mean round trip from the origins."""
    pr = data.job_tables.get("per_region")
    if pr is None or pr.empty:
        return None
    one = data.one_seed(data.first_variant(pr))
    one = one[one["label"] == one["label"].iloc[0]]
    fig, axes = _subplots(1, 2, figsize=(10, 3.6))
    sns.barplot(data=one, x="region", y="mean_intensity_gco2_per_kwh", ax=axes[0], color="0.55", edgecolor="k")
    axes[0].set(xlabel="", ylabel="mean intensity (gCO2/kWh)", title="Carbon intensity per region")
    if "mean_rtt_ms" in one.columns:
        sns.barplot(data=one, x="region", y="mean_rtt_ms", ax=axes[1], color="0.8", edgecolor="k", hatch="//")
    axes[1].set(xlabel="", ylabel="mean round trip from origins (ms)", title="Network latency per region")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    return fig


def fig_pareto(data: SweepData) -> Figure | None:
    """Carbon against mean latency per policy (mean and 95 % CI over seeds), the Pareto front and the bound."""
    if not data.has_requests():
        return None
    d = data.first_variant(data.done)
    stats = _mean_by_label(d, ["mean_latency_ms", "carbon_kg"])
    fig, ax = _subplots(figsize=(7, 4.8))
    styles = _styles(len(stats))
    for (label, row), st in zip(stats.iterrows(), styles, strict=True):
        n = max(int(row[("carbon_kg", "count")]), 1)
        half = 1.96 * np.nan_to_num(row[("carbon_kg", "std")]) / np.sqrt(n)
        half_x = 1.96 * np.nan_to_num(row[("mean_latency_ms", "std")]) / np.sqrt(n)
        ax.errorbar(
            row[("mean_latency_ms", "mean")],
            row[("carbon_kg", "mean")],
            xerr=half_x,
            yerr=half,
            marker=st["marker"],
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
    ax.legend(fontsize=7, ncol=2, loc="best")
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
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return fig


def fig_slo_per_workload(data: SweepData) -> Figure | None:
    """SLO violations per workload and policy."""
    pw = data.job_tables.get("per_workload")
    if pw is None or pw.empty or not data.has_requests():
        return None
    d = data.first_variant(pw)
    fig, ax = _subplots(figsize=(9, 4))
    sns.barplot(data=d, x="label", y="slo_violation_pct", hue="workload", ax=ax, edgecolor="k", errorbar=("ci", 95))
    ax.set(xlabel="", ylabel="SLO violations (%)", title="SLO violations per workload")
    _finish_bars(ax)
    return fig


def _signals(data: SweepData) -> pd.DataFrame | None:
    sig = data.job_tables.get("signals")
    if sig is None or sig.empty:
        return None
    one = data.one_seed(data.first_variant(sig))
    return cast(pd.DataFrame, one[one["label"] == one["label"].iloc[0]])


def fig_intensity_traces(data: SweepData) -> Figure | None:
    """The hourly carbon intensity of every region over the run."""
    sig = _signals(data)
    if sig is None:
        return None
    fig, ax = _subplots(figsize=(10, 3.8))
    regions = list(dict.fromkeys(sig["region"]))
    for region, st in zip(regions, _styles(len(regions)), strict=True):
        g = sig[sig["region"] == region]
        ax.plot(g["hour"], g["intensity_gco2_per_kwh"], label=region, color=st["color"], linestyle=st["linestyle"])
    ax.set(xlabel="simulated hour", ylabel="intensity (gCO2/kWh)", title="Carbon intensity over the run")
    ax.legend(fontsize=7, ncol=3)
    return fig


def fig_heatmap(data: SweepData) -> Figure | None:
    """Mean carbon intensity by region and hour of day (UTC when the signals are calendar-based)."""
    sig = _signals(data)
    if sig is None:
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
    if lq is None or lq.empty:
        return None
    d = data.one_seed(data.first_variant(lq))
    workloads = list(dict.fromkeys(d["workload"]))
    fig, axes = _subplots(1, len(workloads), figsize=(4.2 * len(workloads), 3.8), squeeze=False)
    labels = data.labels()
    styles = dict(zip(labels, _styles(len(labels)), strict=True))
    for ax, wl in zip(axes[0], workloads, strict=True):
        g = d[d["workload"] == wl]
        for label, h in g.groupby("label", sort=False):
            st = styles.get(str(label), {"color": "k", "linestyle": "-"})
            ax.plot(h["latency_ms"], h["quantile_pct"] / 100, label=str(label), color=st["color"], ls=st["linestyle"])
        ax.axvline(g["slo_ms"].iloc[0], color="k", linestyle=":", linewidth=1.2)
        ax.set(xlabel="latency (ms)", ylabel="fraction of requests", title=f"{wl} (SLO dotted)")
    axes[0][0].legend(fontsize=6, ncol=1)
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
    fig = Figure(figsize=(6.5, 6.5))
    ax = fig.add_subplot(projection="polar")
    for (label, row), st in zip(norm.iterrows(), _styles(len(norm)), strict=True):
        values = row.fillna(0).tolist()
        ax.plot([*angles, angles[0]], [*values, values[0]], label=str(label), color=st["color"], ls=st["linestyle"])
    ax.set_xticks(angles, [name for c, name in RADAR_METRICS if c in cols])
    ax.set_ylim(0, 1.05)
    ax.set_title("Normalised metrics (1 = worst policy)")
    ax.legend(fontsize=6, loc="upper right", bbox_to_anchor=(1.35, 1.1))
    return fig


def fig_saved_vs_slo(data: SweepData) -> Figure | None:
    """Carbon saved against the baseline beside the SLO violations, per policy."""
    if not data.has_requests() or "carbon_reduction_pct" not in data.done.columns:
        return None
    d = data.first_variant(data.done)
    long = d.melt(
        id_vars=["label"],
        value_vars=["carbon_reduction_pct", "slo_violation_pct"],
        var_name="metric",
        value_name="percent",
    )
    long["metric"] = long["metric"].map({"carbon_reduction_pct": "carbon saved", "slo_violation_pct": "SLO violations"})
    fig, ax = _subplots(figsize=(9, 4))
    sns.barplot(data=long, x="label", y="percent", hue="metric", ax=ax, edgecolor="k", palette=["0.35", "0.8"])
    ax.set(xlabel="", ylabel="%", title="Carbon saved vs SLO violations")
    _finish_bars(ax)
    return fig


def fig_hourly(data: SweepData) -> Figure | None:
    """Hourly emissions and mean latency of each policy over the run."""
    hr = data.job_tables.get("hourly")
    if hr is None or hr.empty or not data.has_requests():
        return None
    d = data.one_seed(data.first_variant(hr))
    fig, axes = _subplots(2, 1, figsize=(10, 6), sharex=True)
    labels = data.labels()
    for label, st in zip(labels, _styles(len(labels)), strict=True):
        g = d[d["label"] == label]
        axes[0].plot(g["hour"], g["carbon_kg"], label=label, color=st["color"], linestyle=st["linestyle"])
        axes[1].plot(g["hour"], g["mean_latency_ms"], label=label, color=st["color"], linestyle=st["linestyle"])
    axes[0].set(ylabel="kg CO2eq per hour", title="Hourly emissions and latency")
    axes[1].set(xlabel="simulated hour", ylabel="mean latency (ms)")
    axes[0].legend(fontsize=6, ncol=3)
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
    fig, axes = _subplots(3, 1, figsize=(10, 7.5), sharex=True)
    labels = data.labels()
    for label, st in zip(labels, _styles(len(labels)), strict=True):
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
    axes[0].legend(fontsize=6, ncol=3)
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
    sns.barplot(data=d, x="label", y="job_carbon_reduction_pct", hue=hue, ax=ax, edgecolor="k", palette="Greys")
    ax.set(xlabel="", ylabel="job carbon reduction (%)", title="Batch jobs: carbon vs deadline slack")
    _finish_bars(ax)
    return fig


#: Every figure: file name, function, caption.
FIGURES: tuple[tuple[str, Callable[[SweepData], Figure | None], str], ...] = (
    ("regions", fig_regions, "Mean carbon intensity of each region over the run, and its mean round trip."),
    ("pareto", fig_pareto, "Emissions against mean latency per policy (95 % CI over seeds), Pareto front, bound."),
    ("routing", fig_routing, "Share of requests each region served, per policy."),
    ("slo_per_workload", fig_slo_per_workload, "SLO violations per workload and policy (95 % CI over seeds)."),
    ("intensity_traces", fig_intensity_traces, "Hourly carbon intensity of every region over the run."),
    ("intensity_heatmap", fig_heatmap, "Mean carbon intensity by region and hour of day."),
    ("latency_cdf", fig_latency_cdf, "Latency distribution per workload and policy; dotted: the SLO."),
    ("radar", fig_radar, "Each policy's metrics over the worst policy's (smaller is better)."),
    ("saved_vs_slo", fig_saved_vs_slo, "Carbon saved against the baseline beside the SLO violations."),
    ("hourly", fig_hourly, "Hourly emissions and mean latency of each policy."),
    ("carbon_vs_slack", fig_carbon_vs_slack, "Batch jobs: carbon reduction per policy and deadline rule."),
    ("timeline", fig_timeline, "Through the faults: SLO violations, failures and retries per 5 minutes."),
)


def write_figures(data: SweepData, out_dir: Path) -> list[tuple[str, Path, str]]:
    """Draws every figure the sweep has data for into ``out_dir`` (PNG and PDF).

    Returns:
        (name, PNG path, caption) of each figure written, in order.
    """
    apply_style()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make, caption in FIGURES:
        fig = make(data)
        if fig is None:
            continue
        fig.savefig(out_dir / f"{name}.png")
        fig.savefig(out_dir / f"{name}.pdf", metadata={"CreationDate": None})
        written.append((name, out_dir / f"{name}.png", caption))
    (out_dir / "figures.json").write_text(json.dumps([n for n, _, _ in written]) + "\n", encoding="utf-8")
    return written
