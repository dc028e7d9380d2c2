"""The human tables: each column to its own precision, one compact table per sweep, one name per metric."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from carbonsim.analysis import tables
from carbonsim.cli import print_tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([36.0, 114.8, 84.6, 121.0], ["36.0", "114.8", "84.6", "121.0"]),
        ([0.166, 0.116, 0.121], ["0.166", "0.116", "0.121"]),
        # The smallest value's three figures, but at most one decimal beyond what the median needs.
        ([0.0, 45.06, 29.08, 0.09, 1.54, 52.5], ["0.00", "45.06", "29.08", "0.09", "1.54", "52.50"]),
        # Costs of a few cents: never a column of identical 0.03s or 0.00s.
        ([0.0346, 0.0249, 0.0345], ["0.0346", "0.0249", "0.0345"]),
        ([0.0301, 0.0302], ["0.0301", "0.0302"]),
        ([1.00004, 1.00001], ["1.00004", "1.00001"]),
        ([5.0, 72.0, 0.0], ["5", "72", "0"]),
        ([-0.0001, 0.0], ["-0.000100", "0.000000"]),
    ],
)
def test_each_column_gets_its_own_decimals(values, expected):
    d = tables.column_decimals(values)
    assert [tables.format_number(v, d) for v in values] == expected


def test_cells_of_mean_and_confidence_share_the_column_precision():
    cells = tables.ci_cells(pd.Series([36.01, 114.8, float("nan")]), pd.Series([0.01, float("nan"), 1.0]))
    assert cells == ["36.0 ± 0.0", "114.8", ""]


def test_results_by_policy_md_is_the_compact_table_and_the_csv_keeps_every_metric(inference_sweep):
    csv = pd.read_csv(inference_sweep / "results_by_policy.csv")
    md = (inference_sweep / "results_by_policy.md").read_text(encoding="utf-8")
    assert md == tables.markdown(tables.headline_table(csv))
    header = md.splitlines()[0]
    assert header == (
        "| policy | mean latency ms | SLO violations % | kg CO2 | carbon reduction % | % of bound reduction |"
    )
    assert md.count("\n") == 2 + 13 and md.count(" ± ") == 13 * 5
    # Full precision in the machine table: every summarised metric, unrounded.
    assert {f"{m}_mean" for m in ("energy_kwh", "cost_usd", "p95_latency_ms")} <= set(csv.columns)
    assert (csv["carbon_kg_mean"].round(3) != csv["carbon_kg_mean"]).any()  # the .md shows three decimals


def test_the_readme_shows_results_by_policy_md_as_written():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| (?:policy|latency_first|carbon_first|hybrid|constrained|casper|least|round|random).*$", readme, re.M
    )
    assert rows[0] == (
        "| policy | mean latency ms | SLO violations % | kg CO2 | carbon reduction % | % of bound reduction |"
    )
    assert len(rows) == 14 and all(row.count(" ± ") == 5 for row in rows[1:])


def test_the_two_reductions_have_two_names(reference_sweep, inference_sweep):
    reference = pd.read_csv(reference_sweep / "reference_table.csv")
    assert "intensity_reduction_pct" in reference.columns and "carbon_reduction_pct" not in reference.columns
    assert "| intensity reduction % |" in (reference_sweep / "reference_table.md").read_text(encoding="utf-8")
    comparison = pd.read_csv(inference_sweep / "comparison.csv")
    assert {"carbon_reduction_pct", "intensity_reduction_pct"} <= set(comparison.columns)
    assert len({tables.column_name("carbon_reduction_pct"), tables.column_name("intensity_reduction_pct")}) == 2


def test_the_terminal_table_uses_the_same_names_and_precision(inference_sweep):
    screen = io.StringIO()
    comparison = pd.read_csv(inference_sweep / "comparison.csv")
    print_tables(Console(file=screen, width=250), {"comparison": comparison}, "pareto_sweep")
    text = screen.getvalue()
    for key in ("mean_latency_ms", "carbon_reduction_pct", "share_of_bound_pct", "cost_usd"):
        assert tables.column_name(key) in text, key
    # Cost per policy is a few cents: shown to three significant figures, not as 0.03 for everyone.
    costs = comparison.groupby("label", sort=False)["cost_usd"].mean()
    d = tables.column_decimals(costs)
    assert d >= 3 and tables.format_number(float(costs.iloc[0]), d) in text
