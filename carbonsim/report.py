"""The report of a sweep: one self-contained HTML file with its summary, tables, figures and configuration.

``python -m carbonsim.report RESULTS_DIR`` reads ``RESULTS_DIR/results.parquet`` and the job folders
below it (what an experiment or a ``--multirun`` leaves), draws the figures into ``RESULTS_DIR/figures/``
(PNG and PDF) and writes ``RESULTS_DIR/report.html``. The figures are embedded and nothing is loaded from
elsewhere, so the file can be shared alone and read offline. It opens with a summary (the headline
trade-off and each policy against the clairvoyant bound), then the figures, the tables (each in its own
horizontally scrolling box with a sticky header, so the page fits a phone as well as a monitor) and the
composed carbonsim configuration, collapsed. Experiments and multiruns write it at the end too.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from carbonsim.analysis import tables
from carbonsim.analysis.figures import SweepData, write_figures
from carbonsim.runner import write_text

#: Largest SLO violation rate (in %) that the summary counts as keeping to the SLO.
SLO_KEPT_PCT = 1.0

STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1em; max-width: 1200px; color: #222;
       line-height: 1.45; overflow-wrap: anywhere; }
h1 { font-size: 1.6em; }
.scroll { overflow: auto; max-height: 80vh; margin: 0.5em 0 1.5em; border: 1px solid #ccc; }
table { border-collapse: separate; border-spacing: 0; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; border-right: 1px solid #eee; padding: 3px 7px; text-align: right;
         white-space: nowrap; overflow-wrap: normal; }
th { background: #eee; position: sticky; top: 0; z-index: 1; }
td:first-child, th:first-child { text-align: left; position: sticky; left: 0; background: #fff; }
th:first-child { background: #eee; z-index: 2; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9em; color: #444; }
details { margin: 1em 0; }
summary { cursor: pointer; font-weight: bold; }
pre { background: #f6f6f6; padding: 1em; overflow: auto; max-height: 80vh; font-size: 0.8em; }
.bad { color: #a00; }
"""


def _table(df: pd.DataFrame, element_id: str | None = None) -> str:
    """A table of text in a box that scrolls on its own (the page never grows wider than the screen)."""
    attr = f" id='{html.escape(element_id)}'" if element_id else ""
    return f"<div class='scroll'{attr}>" + df.to_html(index=False, na_rep="", border=0, escape=True) + "</div>"


def _config_text(results_dir: Path) -> str:
    """The composed carbonsim configuration of the sweep, as YAML (without Hydra's own settings)."""
    from omegaconf import OmegaConf

    # A multirun's sweep config (with a hydra section), an in-process experiment's config, or a run folder's.
    for name in ("multirun.yaml", "config.yaml", ".hydra/config.yaml"):
        candidate = results_dir / name
        if candidate.is_file():
            data = OmegaConf.to_container(OmegaConf.load(candidate), resolve=False)
            if isinstance(data, dict):
                data.pop("hydra", None)
            return OmegaConf.to_yaml(OmegaConf.create(data))
    return "(no configuration recorded in this folder)"


def _fmt(value: Any, decimals: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{decimals}f}"


def _kg(value: float) -> str:
    return tables.format_number(value, tables.column_decimals([value]))


def _first_variant(by_policy: pd.DataFrame) -> pd.DataFrame:
    for col in ("variant", "scenario"):
        if col in by_policy.columns and by_policy[col].nunique(dropna=False) > 1:
            by_policy = by_policy[by_policy[col] == by_policy[col].iloc[0]]
    return by_policy


def summary_lines(data: SweepData, by_policy: pd.DataFrame | None) -> list[str]:
    """The summary's sentences (plain text): what ran, the headline trade-off, the batch jobs' result."""
    done = data.done
    lines: list[str] = []
    labels = list(dict.fromkeys(done["label"].astype(str))) if "label" in done.columns else []
    seeds = done["seed"].nunique() if "seed" in done.columns else 1
    hours: list[float] = sorted(set(done["sim_hours"].dropna().tolist())) if "sim_hours" in done.columns else []
    what = f"{len(done)} finished jobs: {len(labels)} policies"
    if "variant" in done.columns and done["variant"].astype(str).replace("nan", "").nunique() > 1:
        what += f" x {done['variant'].nunique()} variants"
    what += f" x {seeds} seeds" if seeds > 1 else ", one seed (no confidence intervals)"
    if len(hours):
        what += ", " + " and ".join(f"{h:g}" for h in hours) + " simulated hours each"
    baseline = _baseline_label(done)
    if baseline:
        what += f"; reductions are against {baseline} on the same arrivals"
    lines.append(what + ".")
    if by_policy is None or not len(by_policy):
        return lines
    bp = _first_variant(by_policy)
    ci = " (mean over seeds)" if seeds > 1 else ""
    if tables.has_inference(bp):
        lines += _inference_lines(bp, baseline, ci)
    if tables.has_jobs(bp):
        lines += _job_lines(bp, ci)
    return lines


def _baseline_label(done: pd.DataFrame) -> str:
    if "is_baseline" in done.columns:
        rows = done[done["is_baseline"].fillna(False).astype(bool)]
        if len(rows):
            return str(rows["label"].iloc[0])
    if "baseline_policy" in done.columns and done["baseline_policy"].notna().any():
        return str(done["baseline_policy"].dropna().iloc[0])
    return ""


Means = dict[str, dict[str, float]]


def _means(by_policy: pd.DataFrame) -> Means:
    """Per metric, per label, the mean over seeds (finite values only)."""
    out: Means = {}
    labels = [str(x) for x in by_policy["label"]]
    for col in by_policy.columns:
        if str(col).endswith("_mean"):
            values = pd.to_numeric(by_policy[col], errors="coerce").tolist()
            out[str(col)[: -len("_mean")]] = {
                label: float(v) for label, v in zip(labels, values, strict=True) if not math.isnan(v)
            }
    return out


def _get(means: Means, metric: str, label: str) -> float:
    return means.get(metric, {}).get(label, math.nan)


def _inference_lines(bp: pd.DataFrame, baseline: str, ci: str) -> list[str]:
    means = _means(bp)
    carbon = means.get("carbon_kg", {})
    if not carbon:
        return []
    best = min(carbon, key=lambda label: carbon[label])
    text = f"Lowest emissions{ci}: {best}, {_kg(carbon[best])} kg CO2"
    if baseline:
        text += f" ({_fmt(_get(means, 'carbon_reduction_pct', best))} % less than {baseline})"
    text += (
        f", at {_fmt(_get(means, 'mean_latency_ms', best))} ms mean latency and "
        f"{_fmt(_get(means, 'slo_violation_pct', best), 2)} % SLO violations."
    )
    out = [text]
    reduction = means.get("carbon_reduction_pct", {})
    if reduction:
        kept = {k: v for k, v in reduction.items() if _get(means, "slo_violation_pct", k) <= SLO_KEPT_PCT}
        if kept:
            good = max(kept, key=lambda label: kept[label])
            text = (
                f"Largest reduction with at most {SLO_KEPT_PCT:g} % SLO violations: {good}, "
                f"{_fmt(kept[good])} % ({_fmt(_get(means, 'slo_violation_pct', good), 2)} % violations, "
                f"{_fmt(_get(means, 'mean_latency_ms', good))} ms mean latency)"
            )
            share = _get(means, "share_of_bound_pct", good)
            if not math.isnan(share):
                text += f", {_fmt(share)} % of what the clairvoyant bound could save"
            out.append(text + ".")
        else:
            out.append(f"No policy kept SLO violations at or below {SLO_KEPT_PCT:g} %.")
    if means.get("share_of_bound_pct"):
        out.append(
            "Each policy against the clairvoyant bound: '% of bound reduction' below is its share of what the "
            "bound (SLO-feasible routes under a utilisation cap) saves against the baseline; 100 % = reached it, "
            "more than 100 % = emitted less than the bound by breaking the SLO."
        )
    return out


def _job_lines(bp: pd.DataFrame, ci: str) -> list[str]:
    means = _means(bp)
    carbon = means.get("job_carbon_kg", {})
    if not carbon:
        return []
    best = min(carbon, key=lambda label: carbon[label])
    text = f"Batch jobs, lowest emissions{ci}: {best}, {_kg(carbon[best])} kg CO2"
    reduction = _get(means, "job_carbon_reduction_pct", best)
    if not math.isnan(reduction):
        text += f" ({_fmt(reduction)} % less than the baseline batch policy)"
    met = _get(means, "deadline_met_pct", best)
    if not math.isnan(met):
        text += f", {_fmt(met)} % of deadlines met"
    out = [text + "."]
    if means.get("job_share_of_any_bound_pct"):
        out.append(
            "Each batch policy against the clairvoyant bound: '% of any-region bound' below is its share of what "
            "the bound (a clairvoyant schedule of every job within its deadline and the clusters' capacities, in "
            "any region) saves against the baseline; "
            "100 % = reached it."
        )
    return out


def _inference_columns(data: SweepData, df: pd.DataFrame) -> pd.DataFrame:
    """Without inference requests, a table keeps only the columns that are not about them."""
    if data.has_requests():
        return df
    return df[[c for c in df.columns if c not in tables.INFERENCE_COLUMNS]]


def _seeds_phrase(data: SweepData) -> str:
    seeds = data.done["seed"].nunique() if "seed" in data.done.columns else 1
    return f"mean ± 95 % confidence interval over {seeds} seeds" if seeds > 1 else "one seed"


def _study(results_dir: Path) -> dict[str, list[list[str]]]:
    """What an experiment's own analysis wrote (``study.json``: figures with captions, tables with headings)."""
    path = results_dir / "study.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        key: [list(map(str, item)) for item in data.get(key, []) if isinstance(item, list) and len(item) == 2]
        for key in ("figures", "tables")
    }


def write_report(results_dir: Path) -> Path:
    """Draws the figures and writes ``report.html`` into ``results_dir``; returns its path."""
    if not (results_dir / "results.parquet").is_file():
        raise FileNotFoundError(f"{results_dir}: no results.parquet (run an experiment or a --multirun first)")
    data = SweepData.load(results_dir)
    figures = write_figures(data, results_dir / "figures")
    study = _study(results_dir)
    figures += [(name, results_dir / "figures" / f"{name}.png", caption) for name, caption in study.get("figures", [])]
    results = data.results
    done = data.done
    title = "carbonsim report"
    if "experiment" in done.columns and done["experiment"].notna().any():
        title += f": {done['experiment'].dropna().iloc[0]}"
    if "scenario" in done.columns and done["scenario"].notna().any():
        title += " on " + ", ".join(dict.fromkeys(done["scenario"].dropna().astype(str)))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    counts = results["status"].value_counts().to_dict() if "status" in results.columns else {"done": len(results)}
    parts.append(
        "<p id='status'>Jobs: "
        + ", ".join(f"{html.escape(str(k))} {v}" for k, v in counts.items())
        + f" (of {len(results)}).</p>"
    )
    bad = results[results["status"] != "done"] if "status" in results.columns else results.iloc[:0]
    if len(bad):
        cols = [c for c in ("job", "status", "label", "seed", "error") if c in bad.columns]
        parts.append("<h2 class='bad'>Jobs that did not finish</h2>" + _table(tables.human_table(bad[cols])))
    by_policy_path = results_dir / "results_by_policy.csv"
    by_policy = pd.read_csv(by_policy_path, keep_default_na=False, na_values=[""]) if by_policy_path.is_file() else None
    parts.append("<h2 id='summary'>Summary</h2><ul>")
    parts += [f"<li>{html.escape(line)}</li>" for line in summary_lines(data, by_policy)]
    parts.append("</ul>")
    if by_policy is not None:
        parts.append(f"<p>Per policy ({_seeds_phrase(data)}):</p>")
        parts.append(_table(tables.headline_table(by_policy), "headline"))
    parts.append("<h2>Figures</h2>")
    for name, png, caption in figures:
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f"<figure id='fig-{name}'><img alt='{html.escape(name)}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{html.escape(caption)} (PDF: figures/{name}.pdf)</figcaption></figure>"
        )
    parts.append("<h2>Tables</h2>")
    if by_policy is not None:
        metrics = [m for m in tables.CI_METRICS if data.has_requests() or m.startswith(("job_", "deadline"))]
        parts.append(f"<h3>Every metric per policy ({_seeds_phrase(data)})</h3>")
        parts.append(_table(tables.headline_table(by_policy, metrics)))
    for name, heading, collapsed in (
        *((str(n), str(h), False) for n, h in study.get("tables", [])),
        ("reference_table", "Beside the published results", False),
        ("jobs_comparison", "Batch jobs, per job of the sweep", False),
        ("comparison", "Every job", True),
    ):
        path = results_dir / f"{name}.csv"
        if path.is_file():
            table = _table(tables.human_table(_inference_columns(data, pd.read_csv(path))), f"table-{name}")
            if collapsed:
                parts.append(f"<details><summary>{heading}</summary>{table}</details>")
            else:
                parts.append(f"<h3>{heading}</h3>{table}")
    parts.append(
        "<h2>Configuration</h2><details><summary>The composed carbonsim configuration (YAML)</summary>"
        f"<pre id='config'>{html.escape(_config_text(results_dir))}</pre></details>"
    )
    parts.append("</body></html>\n")
    path = results_dir / "report.html"
    write_text(path, "\n".join(parts))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m carbonsim.report RESULTS_DIR``."""
    parser = argparse.ArgumentParser(prog="python -m carbonsim.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path, help="folder of a finished experiment or multirun")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.results_dir)
    except FileNotFoundError as exc:
        print(f"carbonsim.report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
