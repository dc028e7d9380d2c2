"""Hydra launchers: the default joblib one, Ray (a local instance started for the test) and
submitit (its local executor: the same launcher code as on SLURM, with processes instead of SLURM jobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

RAY_DAEMONS = ("raylet", "gcs_server", "dashboard", "ray::")


def _ray_processes() -> list[str]:
    """Command lines of Ray's daemons and workers on this machine."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(name in cmd for name in RAY_DAEMONS) and "pytest" not in cmd:
            found.append(cmd)
    return found


def _alpha_sweep(tmp_path: Path, *launcher: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonsim",
            "--multirun",
            *launcher,
            "policy=hybrid",
            "policy.alpha=0.2,0.7",
            "scenario=illustrative",
            "sim_hours=0.05",
            "write_requests=false",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = pd.read_csv(sweep / "results.csv")
    assert sorted(results["label"]) == ["hybrid(alpha=0.2)", "hybrid(alpha=0.7)"]
    assert (results["status"] == "done").all()
    assert (sweep / "report.html").is_file()
    return proc, sweep


def test_a_sweep_on_the_default_joblib_launcher(tmp_path):
    _, sweep = _alpha_sweep(tmp_path)
    # One folder per job, named by its overrides; the sweep's tables beside them.
    labels = {json.loads(p.read_text())["label"] for p in sweep.glob("*/summary.json")}
    assert labels == {"hybrid(alpha=0.2)", "hybrid(alpha=0.7)"}
    # Each job ran its own latency-first baseline: the reductions are there.
    assert pd.read_csv(sweep / "results.csv")["carbon_reduction_pct"].notna().all()


def test_a_sweep_on_a_local_ray_instance_is_aggregated_and_ray_is_gone_afterwards(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the Ray launcher is the 'ray' extra")
    assert not _ray_processes(), "a Ray instance was already running"
    # A local instance bounded to two CPUs, without the dashboard.
    proc, _ = _alpha_sweep(
        tmp_path,
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
    )
    assert "Started a local Ray instance" in proc.stdout + proc.stderr
    # The instance ends with the command: no daemon, worker or dashboard is left behind (its processes
    # may take a moment to exit after the command has).
    deadline = time.monotonic() + 60.0
    while _ray_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes()


def test_a_sweep_through_submitit(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the submitit launcher is the 'slurm' extra")
    _, sweep = _alpha_sweep(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    # submitit kept each job's logs beside the sweep, as it does on SLURM.
    assert list((sweep / ".submitit").glob("*/*_log.out"))
