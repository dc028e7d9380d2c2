"""The report of a sweep: one self-contained HTML file with its tables, figures and configuration.

``python -m carbonsim.report RESULTS_DIR`` reads ``RESULTS_DIR/results.parquet`` and the job folders
below it (what an experiment or a ``--multirun`` leaves), draws the figures into ``RESULTS_DIR/figures/``
(PNG and PDF) and writes ``RESULTS_DIR/report.html``, with the figures embedded, so the file can be shared
alone. Experiments and multiruns write it at the end too.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from pathlib import Path

import pandas as pd

from carbonsim.analysis.figures import SweepData, write_figures
from carbonsim.runner import write_text

#: Metrics of the headline table, with their headers.
HEADLINE = (
    ("mean_latency_ms", "mean latency (ms)"),
    ("p95_latency_ms", "p95 latency (ms)"),
    ("slo_violation_pct", "SLO violations (%)"),
    ("energy_kwh", "energy (kWh)"),
    ("carbon_kg", "carbon (kg CO2eq)"),
    ("cost_usd", "cost (USD)"),
    ("carbon_reduction_pct", "carbon reduction (%)"),
    ("share_of_bound_pct", "share of bound reduction (%)"),
    ("deadline_met_pct", "deadlines met (%)"),
    ("job_carbon_kg", "job carbon (kg CO2eq)"),
    ("job_cost_usd", "job cost (USD)"),
    ("job_carbon_reduction_pct", "job carbon reduction (%)"),
    ("job_share_of_any_bound_pct", "share of any-region bound (%)"),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: right; }
th { background: #eee; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
.bad { color: #a00; }
"""


def _cell(mean: float, half: float) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return ""
    if isinstance(half, float) and not math.isnan(half):
        return f"{mean:.2f} ± {half:.2f}"
    return f"{mean:.2f}"


def headline_table(by_policy: pd.DataFrame) -> pd.DataFrame:
    """Mean ± 95 % CI of the headline metrics per policy (and variant)."""
    keys = [c for c in ("label", "variant", "scenario", "seeds") if c in by_policy.columns]
    out = by_policy[keys].copy()
    for metric, header in HEADLINE:
        if f"{metric}_mean" in by_policy.columns:
            out[header] = [
                _cell(m, h) for m, h in zip(by_policy[f"{metric}_mean"], by_policy[f"{metric}_ci95"], strict=True)
            ]
    if "variant" in out.columns and (out["variant"].astype(str) == "").all():
        out = out.drop(columns="variant")
    return out


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0, escape=True)


def _config_text(results_dir: Path) -> str:
    # A multirun's sweep config, an in-process experiment's config, or a Hydra run folder's.
    for name in ("multirun.yaml", "config.yaml", ".hydra/config.yaml"):
        candidate = results_dir / name
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return "(no configuration recorded in this folder)"


def write_report(results_dir: Path) -> Path:
    """Draws the figures and writes ``report.html`` into ``results_dir``; returns its path."""
    if not (results_dir / "results.parquet").is_file():
        raise FileNotFoundError(f"{results_dir}: no results.parquet (run an experiment or a --multirun first)")
    data = SweepData.load(results_dir)
    figures = write_figures(data, results_dir / "figures")
    results = data.results
    done = data.done
    title = "carbonsim report"
    if "experiment" in done.columns and done["experiment"].notna().any():
        title += f": {done['experiment'].dropna().iloc[0]}"
    if "scenario" in done.columns and done["scenario"].notna().any():
        title += " on " + ", ".join(dict.fromkeys(done["scenario"].dropna().astype(str)))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    parts.append(f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    counts = results["status"].value_counts().to_dict() if "status" in results.columns else {"done": len(results)}
    parts.append(
        "<p id='status'>Jobs: "
        + ", ".join(f"{html.escape(str(k))} {v}" for k, v in counts.items())
        + f" (of {len(results)}).</p>"
    )
    bad = results[results["status"] != "done"] if "status" in results.columns else results.iloc[:0]
    if len(bad):
        cols = [c for c in ("job", "status", "label", "seed", "error") if c in bad.columns]
        parts.append("<h2 class='bad'>Jobs that did not finish</h2>" + _table(bad[cols]))
    by_policy_path = results_dir / "results_by_policy.csv"
    if by_policy_path.is_file():
        parts.append("<h2>Per policy: mean ± 95 % confidence interval over seeds</h2>")
        parts.append(_table(headline_table(pd.read_csv(by_policy_path, keep_default_na=False, na_values=[""]))))
    for name, heading in (
        ("reference_table", "Beside the published results"),
        ("jobs_comparison", "Batch jobs, per job of the sweep"),
        ("comparison", "Every job"),
    ):
        path = results_dir / f"{name}.csv"
        if path.is_file():
            parts.append(f"<h2>{heading}</h2>" + _table(pd.read_csv(path)))
    parts.append("<h2>Figures</h2>")
    for name, png, caption in figures:
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f"<figure id='fig-{name}'><img alt='{html.escape(name)}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{html.escape(caption)} (PDF: figures/{name}.pdf)</figcaption></figure>"
        )
    parts.append("<h2>Configuration</h2><pre id='config'>" + html.escape(_config_text(results_dir)) + "</pre>")
    parts.append("</body></html>\n")
    path = results_dir / "report.html"
    write_text(path, "\n".join(parts))
    return path


def main(argv: list[str] | None = None) -> int:
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
