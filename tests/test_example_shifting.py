"""The temporal-shifting study of docs/own_data.md, end to end at a small scale: the example's own script writes
the inputs (a job trace and the zones' carbon files), the example's own configs run the experiment, and the
saving per zone and window is read from ``results_by_policy.csv``.

With perfect forecasts, unlimited capacity and one-hour jobs on the hour, Let's Wait Awhile starts each job
at the cleanest hour of its window: it never emits more than running at once, and it reaches the clairvoyant
bound of each instance.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
from test_hardening import carbonsim_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "temporal_shifting"


def test_temporal_shifting_by_zone(tmp_path, monkeypatch):
    subprocess.run(
        [sys.executable, str(EXAMPLE / "make_inputs.py"), "--hours", "24"], cwd=tmp_path, check=True, timeout=120
    )
    assert (tmp_path / "data" / "jobs.csv").read_text().count("\n") == 25
    result = carbonsim_cli(
        tmp_path,
        "--config-dir",
        str(EXAMPLE / "conf"),
        "+experiment=shifting_by_zone",
        "hydra/launcher=basic",
        "sim_hours=24",
        "experiment.variant=0,8",  # DE-LU 2 h, US-CAL-CISO 24 h
        monkeypatch=monkeypatch,
    )
    assert result.code == 0, result.errors
    table = pd.read_csv(result.out / "results_by_policy.csv")
    assert set(table["variant"]) == {"DE-LU, 2 h", "US-CAL-CISO, 24 h"}
    lwa = table[table["label"] == "lets_wait_awhile"].set_index("variant")
    assert (lwa["job_carbon_reduction_pct_mean"] >= 0).all()
    assert (lwa["job_share_of_any_bound_pct_mean"] > 99.9).all()
    # A longer window saves more where the grid swings daily (California's solar noon).
    assert (
        lwa.loc["US-CAL-CISO, 24 h", "job_carbon_reduction_pct_mean"]
        > lwa.loc["DE-LU, 2 h", "job_carbon_reduction_pct_mean"]
    )
