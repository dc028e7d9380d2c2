"""The files a run writes, and the README's Python examples."""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from carbonsim import load_config
from carbonsim.cli import execute
from carbonsim.runner import run

ROOT = Path(__file__).resolve().parents[1]

#: summary.json keys the README promises.
SUMMARY_KEYS = (
    "requests",
    "completed",
    "rejected",
    "in_flight",
    "mean_latency_ms",
    "p95_latency_ms",
    "slo_violation_pct",
    "mean_intensity_gco2_per_kwh",
    "energy_kwh",
    "carbon_kg",
    "cost_usd",
    "carbon_reduction_pct",
)
#: requests.parquet columns the README promises.
REQUEST_COLUMNS = (
    "origin",
    "region",
    "arrival_s",
    "start_s",
    "end_s",
    "network_ms",
    "queue_ms",
    "service_ms",
    "total_ms",
    "slo_met",
    "energy_j",
    "carbon_g",
    "intensity_gco2_per_kwh",
)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = load_config(["scenario=reference", "sim_hours=2", "policy=carbon_first"])
    execute(cfg, out, Console(file=io.StringIO()))
    return out


def test_run_writes_every_file(single_run):
    names = {p.name for p in single_run.iterdir()}
    expected = {
        "summary.json",
        "timing.json",
        "per_workload.csv",
        "per_region.csv",
        "hourly.csv",
        "routing.csv",
        "requests.parquet",
    }
    assert expected <= names
    assert not [n for n in names if n.startswith(".")], names  # no temporary files left behind


def test_summary_json_has_the_documented_keys(single_run):
    summary = json.loads((single_run / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in summary, key
    assert summary["policy"] == "carbon_first"
    assert summary["requests"] == summary["completed"] + summary["rejected"] + summary["failed"] + summary["in_flight"]
    # The reference scenario's fixed load: 200 requests per hour.
    assert summary["requests"] == 400


def test_requests_parquet_matches_the_summary(single_run):
    df = pd.read_parquet(single_run / "requests.parquet")
    summary = json.loads((single_run / "summary.json").read_text())
    for col in REQUEST_COLUMNS:
        assert col in df.columns, col
    assert len(df) == summary["requests"]
    assert df["total_ms"].mean() == pytest.approx(summary["mean_latency_ms"])
    assert df["carbon_g"].sum() / 1e3 == pytest.approx(summary["busy_carbon_kg"])


def test_summary_json_equals_the_in_process_summary(single_run):
    out = run(load_config(["scenario=reference", "sim_hours=2", "policy=carbon_first"]))
    written = json.loads((single_run / "summary.json").read_text())
    assert written.keys() == out.summary.keys()
    for key, value in out.summary.items():
        if isinstance(value, float) and not math.isfinite(value):
            assert written[key] is None, key
        else:
            assert written[key] == value, key


def test_readme_python_examples_run(tmp_path):
    # The README's Python blocks, in order, in a fresh interpreter (the example registers a policy).
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
