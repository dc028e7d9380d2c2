"""The seed study's tables and figures (``conf/experiment/seed_study.yaml``), from a finished sweep's folder.

:func:`write_study` reads the sweep's rows (``results.parquet``'s, after the reductions and bound shares) and
each done job's ``timing.json``, ``job_load.csv``, ``stages.csv`` and ``signals.csv``, and writes:

* ``study_table.csv`` / ``.md``: one row per (scenario, variant, policy) and one per bound: tonnes CO2eq,
  saved against carbon-agnostic (tonnes and %), deadlines met, mean and p95 job completion time,
  PUE-adjusted energy per task, the share of each bound's saving, and the scheduler's CPU time per
  decision and the job's peak memory (:func:`study_table`);
* ``study_saved.csv`` / ``.md``: per (scenario, variant), what each policy (and each bound) saves against
  each baseline policy, in tonnes and % (:func:`saved_matrix`);
* figures (PNG and PDF, in ``figures/``): carbon saved against deadline misses per policy
  (:func:`fig_carbon_vs_misses`), busy share of each region's cluster per hour under two policies
  (:func:`fig_region_load`), and one DAG's stages under two policies over the hourly intensity
  (:func:`fig_gantt`);
* ``study.json``: the figures' names and captions and the tables' headings, which the report embeds.

The overhead columns (``decision_cpu_ms``, ``peak_memory_mb``) are measurements on the machine that ran
the sweep: they come from ``timing.json``, never from ``summary.json``, and are not reproducible.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from carbonsim.analysis import tables
from carbonsim.analysis.figures import MARKERS, apply_style

#: File naming the study's figures and tables for the report.
STUDY_FILE = "study.json"
#: The baseline batch policy's label in the study.
AGNOSTIC = "carbon_agnostic"
#: Bound rows of the study table: (label, summary key of the bound's emissions in kg).
BOUNDS = (("bound (home)", "bound_home_job_carbon_kg"), ("bound (any)", "bound_any_job_carbon_kg"))

STUDY_COLUMNS = (
    "scenario",
    "variant",
    "label",
    "jobs",
    "tasks",
    "job_carbon_t",
    "job_carbon_kg",
    "saved_vs_agnostic_t",
    "saved_vs_agnostic_pct",
    "deadline_met_pct",
    "job_mean_completion_h",
    "job_p95_completion_h",
    "energy_per_task_kwh",
    "job_share_of_home_bound_pct",
    "job_share_of_any_bound_pct",
    "decision_cpu_ms",
    "batch_epochs",
    "peak_memory_mb",
)


def _timing(sweep_dir: Path, job: str) -> dict[str, float]:
    path = sweep_dir / job / "timing.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)} if isinstance(data, dict) else {}


def _num(row: pd.Series, key: str) -> float:
    value = row.get(key, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def study_table(results: pd.DataFrame, sweep_dir: Path | None = None) -> pd.DataFrame:
    """One row per (scenario, variant, policy) of the done jobs, then the bounds of each (scenario, variant).

    ``energy_per_task_kwh`` is the jobs' energy with PUE (``job_energy_kwh``: IT power x PUE, plus the
    network energy of migrations) over the tasks completed; ``saved_vs_agnostic_*`` compare with the
    carbon-agnostic run of the same scenario and variant (``baseline_job_carbon_kg``). A bound row has the
    bound's emissions and savings and no policy metrics. ``decision_cpu_ms``, ``batch_epochs`` and
    ``peak_memory_mb`` come from the job's ``timing.json`` (when ``sweep_dir`` is given).
    """
    done = results[results["status"] == "done"] if "status" in results.columns else results
    rows: list[dict[str, Any]] = []
    for _, r in done.iterrows():
        base_kg = _num(r, "baseline_job_carbon_kg")
        kg = _num(r, "job_carbon_kg")
        tasks = _num(r, "tasks_completed")
        timing = _timing(sweep_dir, str(r["job"])) if sweep_dir is not None and "job" in r else {}
        rows.append(
            {
                "scenario": r.get("scenario", ""),
                "variant": r.get("variant", ""),
                "label": r["label"],
                "jobs": _num(r, "jobs"),
                "tasks": tasks,
                "job_carbon_t": kg / 1e3,
                "job_carbon_kg": kg,
                "saved_vs_agnostic_t": (base_kg - kg) / 1e3,
                "saved_vs_agnostic_pct": (1.0 - kg / base_kg) * 100.0 if base_kg else math.nan,
                "deadline_met_pct": _num(r, "deadline_met_pct"),
                "job_mean_completion_h": _num(r, "job_mean_completion_h"),
                "job_p95_completion_h": _num(r, "job_p95_completion_h"),
                "energy_per_task_kwh": _num(r, "job_energy_kwh") / tasks if tasks else math.nan,
                "job_share_of_home_bound_pct": _num(r, "job_share_of_home_bound_pct"),
                "job_share_of_any_bound_pct": _num(r, "job_share_of_any_bound_pct"),
                "decision_cpu_ms": timing.get("batch_decision_cpu_ms", math.nan),
                "batch_epochs": timing.get("batch_epochs", math.nan),
                "peak_memory_mb": timing.get("peak_memory_mb", math.nan),
            }
        )
    table = pd.DataFrame(rows, columns=list(STUDY_COLUMNS))
    bound_rows: list[dict[str, Any]] = []
    for (scenario, variant), g in done.groupby(["scenario", "variant"], sort=False, dropna=False):
        first = g.iloc[0]
        base_kg = _num(first, "baseline_job_carbon_kg")
        for label, key in BOUNDS:
            kg = _num(first, key)
            if math.isnan(kg):
                continue
            bound_rows.append(
                {
                    "scenario": scenario,
                    "variant": variant,
                    "label": label,
                    "jobs": _num(first, "jobs"),
                    "job_carbon_t": kg / 1e3,
                    "job_carbon_kg": kg,
                    "saved_vs_agnostic_t": (base_kg - kg) / 1e3,
                    "saved_vs_agnostic_pct": (1.0 - kg / base_kg) * 100.0 if base_kg else math.nan,
                }
            )
    if bound_rows:
        table = pd.concat([table, pd.DataFrame(bound_rows)], ignore_index=True)
    order = {k: i for i, k in enumerate(dict.fromkeys(zip(table["scenario"], table["variant"], strict=True)))}
    table["_order"] = [order[k] for k in zip(table["scenario"], table["variant"], strict=True)]
    table = table.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    for col in ("jobs", "tasks", "batch_epochs"):
        table[col] = pd.to_numeric(table[col]).astype("Int64")
    return table[list(STUDY_COLUMNS)]


def saved_matrix(study: pd.DataFrame) -> pd.DataFrame:
    """What each policy (and bound) saves against each baseline policy, per (scenario, variant), long format.

    Columns: ``scenario``, ``variant``, ``label`` (the policy or bound), ``against`` (a policy of the same
    scenario and variant), ``saved_t`` = (against's tonnes - label's tonnes) and ``saved_pct`` = that over
    against's tonnes x 100 (negative: the label emits more). Bounds are rows, never baselines.
    """
    rows: list[dict[str, Any]] = []
    for (scenario, variant), g in study.groupby(["scenario", "variant"], sort=False, dropna=False):
        tonnes = dict(zip(g["label"].astype(str), g["job_carbon_t"].astype(float), strict=True))
        policies = [label for label in tonnes if label not in {b for b, _ in BOUNDS}]
        for label, t in tonnes.items():
            for against in policies:
                base = tonnes[against]
                rows.append(
                    {
                        "scenario": scenario,
                        "variant": variant,
                        "label": label,
                        "against": against,
                        "saved_t": base - t,
                        "saved_pct": (base - t) / base * 100.0 if base else math.nan,
                    }
                )
    return pd.DataFrame(rows, columns=["scenario", "variant", "label", "against", "saved_t", "saved_pct"])


def saved_markdown(saved: pd.DataFrame) -> str:
    """The saved-against-each-baseline table as Markdown: one matrix of % per (scenario, variant)."""
    parts = []
    for (scenario, variant), g in saved.groupby(["scenario", "variant"], sort=False, dropna=False):
        wide = g.pivot(index="label", columns="against", values="saved_pct")
        wide = wide.reindex(index=list(dict.fromkeys(g["label"])), columns=list(dict.fromkeys(g["against"])))
        wide = wide.reset_index().rename(columns={"label": "saved % by \\ against"})
        parts.append(f"### {scenario}, {variant}\n\n" + tables.markdown(tables.format_table(wide)))
    return "\n".join(parts)


def study_markdown(study: pd.DataFrame) -> str:
    """The study table as Markdown, one section per scenario (each column to its own precision there)."""
    parts = []
    for scenario, g in study.groupby("scenario", sort=False, dropna=False):
        parts.append(f"### {scenario}\n\n" + tables.markdown(human(g.drop(columns="scenario"))))
    return "\n".join(parts)


def human(df: pd.DataFrame) -> pd.DataFrame:
    """A study table as text under human column names."""
    return tables.human_table(df)


def _load_pct(variant: str) -> str:
    return variant.split(",")[0].strip() if variant else ""


def fig_carbon_vs_misses(study: pd.DataFrame) -> Figure | None:
    """Carbon saved against carbon-agnostic (%) over deadlines missed (%), per policy; a panel per mix and load.

    Filled markers: the slack deadline rule; hollow: the window rule.
    """
    pol = study[~study["label"].isin([b for b, _ in BOUNDS])].copy()
    pol = pol[pol["deadline_met_pct"].notna()]
    if pol.empty:
        return None
    pol["load"] = pol["variant"].astype(str).map(_load_pct)  # e.g. "50% load"
    pol["rule"] = pol["variant"].astype(str).map(lambda v: v.split(",")[-1].strip() if "," in v else v)
    scenarios = list(dict.fromkeys(pol["scenario"].astype(str)))
    loads = list(dict.fromkeys(pol["load"]))
    labels = list(dict.fromkeys(pol["label"].astype(str)))
    rules = list(dict.fromkeys(pol["rule"]))
    fig = Figure(figsize=(3.6 * len(loads), 3.0 * len(scenarios) + 0.8))
    axes = np.atleast_2d(fig.subplots(len(scenarios), len(loads), squeeze=False))
    colours = [f"C{i % 10}" for i in range(len(labels))]
    for i, scenario in enumerate(scenarios):
        for k, load in enumerate(loads):
            ax = axes[i, k]
            panel = pol[(pol["scenario"] == scenario) & (pol["load"] == load)]
            for j, label in enumerate(labels):
                for q, rule in enumerate(rules):
                    pts = panel[(panel["label"] == label) & (panel["rule"] == rule)]
                    if pts.empty:
                        continue
                    ax.scatter(
                        100.0 - pts["deadline_met_pct"],
                        pts["saved_vs_agnostic_pct"],
                        marker=MARKERS[j % len(MARKERS)],
                        s=42,
                        facecolors=colours[j] if q == 0 else "none",
                        edgecolors=colours[j],
                        label=f"{label}" if i == 0 and k == 0 and q == 0 else None,
                    )
            ax.axhline(0.0, color="0.5", lw=0.8)
            ax.set_title(f"{scenario}, {load}", fontsize=9)
            ax.set_xlim(-4.0, 104.0)
            ax.set_xlabel("deadlines missed %")
            ax.set_ylabel("carbon saved % vs carbon-agnostic")
    fig.legend(loc="lower center", ncol=min(len(labels), 5), fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.22 if len(scenarios) == 1 else 0.14, hspace=0.45, wspace=0.35)
    return fig


def fig_region_load(loads: dict[str, pd.DataFrame], resource: str, title: str) -> Figure | None:
    """Busy share of each region's batch cluster per hour, one line per policy, one panel per region.

    Args:
        loads: Per policy label, its run's ``job_load.csv`` (:func:`carbonsim.analysis.jobs.hourly_load`).
        resource: ``cpu`` or ``gpu`` (which share to draw).
        title: The figure's title (the instance).
    """
    col = f"{resource}_share"
    if not loads or any(col not in df.columns for df in loads.values()):
        return None
    regions = list(dict.fromkeys(next(iter(loads.values()))["region"].astype(str)))
    fig = Figure(figsize=(8.0, 1.5 * len(regions) + 0.8))
    axes = fig.subplots(len(regions), 1, sharex=True, squeeze=False)[:, 0]
    for ax, region in zip(axes, regions, strict=True):
        for j, (label, df) in enumerate(loads.items()):
            d = df[df["region"] == region]
            ax.step(d["hour"], 100.0 * d[col], where="post", color=f"C{j}", lw=1.0, label=label)
        ax.set_ylabel(f"{region}\n% busy", fontsize=8)
        ax.set_ylim(0, 105)
    axes[0].legend(fontsize=7, ncol=len(loads), loc="upper right")
    axes[-1].set_xlabel("simulated hour")
    fig.suptitle(title, fontsize=10)
    return fig


def fig_gantt(stages: dict[str, pd.DataFrame], signals: pd.DataFrame, job: int, title: str) -> Figure | None:
    """One DAG job's stages (first task start to last task end) under each policy, over the hourly intensity.

    Args:
        stages: Per policy label, its run's ``stages.csv``.
        signals: A run's ``signals.csv`` (hourly intensity per region).
        job: The job's index (the same arrivals in every run).
        title: The figure's title.
    """
    picked = {label: df[df["job"] == job] for label, df in stages.items()}
    if not picked or any(df.empty for df in picked.values()):
        return None
    t0 = min(float(df["start_s"].min()) for df in picked.values()) / 3600.0
    t1 = max(float(df["end_s"].max()) for df in picked.values()) / 3600.0
    regions = list(dict.fromkeys(signals["region"].astype(str)))
    fig = Figure(figsize=(8.0, 2.2 * len(picked) + 0.6))
    axes = fig.subplots(len(picked), 1, sharex=True, squeeze=False)[:, 0]
    vmax = float(signals["intensity_gco2_per_kwh"].max())
    for ax, (label, df) in zip(axes, picked.items(), strict=True):
        used = str(df["regions"].dropna().astype(str).iloc[0]).split(" ")[0] if df["regions"].notna().any() else ""
        sig = signals[signals["region"] == (used or regions[0])]
        sig = sig[(sig["hour"] >= math.floor(t0)) & (sig["hour"] <= math.ceil(t1))]
        for _, h in sig.iterrows():
            shade = float(h["intensity_gco2_per_kwh"]) / vmax if vmax > 0 else 0.0
            ax.axvspan(
                float(h["hour"]), float(h["hour"]) + 1.0, color=(0.55, 0.35, 0.2), alpha=0.08 + 0.5 * shade, lw=0
            )
        for _, s in df.iterrows():
            region = str(s["regions"]).split(" ")[0] if isinstance(s["regions"], str) else ""
            colour = f"C{regions.index(region) % 10}" if region in regions else "0.4"
            start, end = float(s["start_s"]) / 3600.0, float(s["end_s"]) / 3600.0
            if math.isfinite(start) and math.isfinite(end):
                ax.barh(int(s["stage"]), end - start, left=start, color=colour, height=0.7)
        ax.set_ylabel(f"{label}\nstage", fontsize=8)
        ax.invert_yaxis()
        ax.text(
            0.995, 0.04, f"runs in {used}; shading: its hourly intensity", transform=ax.transAxes,
            ha="right", fontsize=7,
        )  # fmt: skip
    used_regions = sorted(
        {str(r).split(" ")[0] for df in picked.values() for r in df["regions"].dropna()} & set(regions),
        key=regions.index,
    )
    handles = [Patch(color=f"C{regions.index(r) % 10}", label=r) for r in used_regions]
    axes[0].legend(handles=handles, fontsize=7, loc="upper right", title="region", title_fontsize=7)
    axes[-1].set_xlabel("simulated hour")
    axes[-1].set_xlim(math.floor(t0), math.ceil(t1))
    fig.suptitle(title, fontsize=10)
    return fig


def _job_folder(results: pd.DataFrame, scenario: str, variant: str, label: str) -> str | None:
    done = results[results["status"] == "done"] if "status" in results.columns else results
    rows = done[(done["scenario"] == scenario) & (done["variant"] == variant) & (done["label"] == label)]
    return str(rows["job"].iloc[0]) if len(rows) else None


def _read(sweep_dir: Path, job: str | None, name: str) -> pd.DataFrame | None:
    if job is None or not (sweep_dir / job / f"{name}.csv").is_file():
        return None
    return pd.read_csv(sweep_dir / job / f"{name}.csv")


def _tables(sweep_dir: Path, jobs: dict[str, str | None], name: str) -> dict[str, pd.DataFrame]:
    """Per label, its job's ``name``.csv (labels whose job has none are left out)."""
    out = {}
    for label, job in jobs.items():
        df = _read(sweep_dir, job, name)
        if df is not None:
            out[label] = df
    return out


def _showcase(study: pd.DataFrame, scenario: str) -> tuple[str, str] | None:
    """(variant, policy) of a scenario's figures: the middle variant with a window, its lowest-carbon policy."""
    pol = study[(study["scenario"] == scenario) & ~study["label"].isin([b for b, _ in BOUNDS])]
    if pol.empty:
        return None
    variants = list(dict.fromkeys(pol["variant"].astype(str)))
    windows = [v for v in variants if "window" in v] or variants
    variant = windows[len(windows) // 2]
    rows = pol[(pol["variant"] == variant) & (pol["label"] != AGNOSTIC)].dropna(subset=["job_carbon_t"])
    if rows.empty:
        return None
    best = rows.sort_values("job_carbon_t", kind="stable")["label"].iloc[0]
    return variant, str(best)


def _gantt_job(a: pd.DataFrame, b: pd.DataFrame) -> int | None:
    """A job of at least four stages, completed under both policies, that ran longest under the first one."""
    spans = []
    for df in (a, b):
        spans.append(df.groupby("job").agg(start=("start_s", "min"), end=("end_s", "max"), stages=("stage", "count")))
    both = spans[0].merge(spans[1], left_index=True, right_index=True, suffixes=("", "_b"))
    both = both[(both["stages"] >= 4) & np.isfinite(both["end"]) & np.isfinite(both["end_b"])]
    if both.empty:
        return None
    return int((both["end"] - both["start"]).idxmax())


def write_study(sweep_dir: Path, results: pd.DataFrame) -> list[Path]:
    """Writes the study's tables, figures and :data:`STUDY_FILE` into ``sweep_dir``; returns the files."""
    written: list[Path] = []
    study = study_table(results, sweep_dir)
    saved = saved_matrix(study)
    for name, df, md in (
        ("study_table", study, study_markdown(study)),
        ("study_saved", saved, saved_markdown(saved)),
    ):
        (sweep_dir / f"{name}.csv").write_text(df.to_csv(index=False, float_format="%.6g"), encoding="utf-8")
        (sweep_dir / f"{name}.md").write_text(md, encoding="utf-8")
        written += [sweep_dir / f"{name}.csv", sweep_dir / f"{name}.md"]
    apply_style()
    figures: list[tuple[str, Figure | None, str]] = [
        (
            "study_carbon_vs_misses",
            fig_carbon_vs_misses(study),
            "Carbon saved against carbon-agnostic FIFO over the share of deadlines missed, one marker per policy "
            "(filled: slack rule; hollow: window rule), a panel per job mix and offered load (one seed).",
        )
    ]
    for scenario in dict.fromkeys(study["scenario"].astype(str)):
        pick = _showcase(study, scenario)
        if pick is None:
            continue
        variant, best = pick
        jobs = {label: _job_folder(results, scenario, variant, label) for label in (AGNOSTIC, best)}
        loads = {
            k: v
            for k, v in ((label, _read(sweep_dir, job, "job_load")) for label, job in jobs.items())
            if v is not None
        }
        gpu = bool(any(df["busy_gpus"].sum() > 0 for df in loads.values()))
        figures.append(
            (
                f"study_load_{scenario}",
                fig_region_load(loads, "gpu" if gpu else "cpu", f"{scenario}, {variant}: busy share per region"),
                f"Busy share of each region's batch {'GPUs' if gpu else 'CPUs'} per simulated hour ({scenario}, "
                f"{variant}) under carbon-agnostic FIFO and {best}, the lowest-carbon policy there.",
            )
        )
        st = {
            k: v for k, v in ((label, _read(sweep_dir, job, "stages")) for label, job in jobs.items()) if v is not None
        }
        # The signals of the run that lasted longest cover the other's hours too.
        sigs = [df for df in _tables(sweep_dir, jobs, "signals").values()]
        sig = max(sigs, key=lambda df: int(df["hour"].max())) if sigs else None
        if len(st) == 2 and sig is not None:
            a, b = st.values()
            job = _gantt_job(a, b)
            if job is not None:
                figures.append(
                    (
                        f"study_gantt_{scenario}",
                        fig_gantt(st, sig, job, f"{scenario}, {variant}: job {job} under two policies"),
                        f"Stages of DAG job {job} ({scenario}, {variant}), first task start to last task end, "
                        f"coloured by region, under carbon-agnostic FIFO and {best}; the shading is the hourly "
                        "intensity of the region the job ran in (darker: dirtier).",
                    )
                )
    out_dir = sweep_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    listed = []
    for name, fig, caption in figures:
        if fig is None:
            continue
        fig.savefig(out_dir / f"{name}.png")
        fig.savefig(out_dir / f"{name}.pdf", metadata={"CreationDate": None})
        written += [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
        listed.append([name, caption])
    manifest = {
        "figures": listed,
        "tables": [
            ["study_table", "Seed study: per policy and bound (tonnes, savings, deadlines, JCT, energy, overhead)"],
            ["study_saved", "Seed study: saved against each baseline policy (t and %)"],
        ],
    }
    (sweep_dir / STUDY_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    written.append(sweep_dir / STUDY_FILE)
    return written
