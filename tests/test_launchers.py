"""Hydra launchers other than the default joblib one: a sweep on a local Ray instance started for the test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="the Ray launcher is the 'ray' extra")
pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the Ray launcher is the 'ray' extra")

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


def test_a_sweep_on_a_local_ray_instance_is_aggregated_and_ray_is_gone_afterwards(tmp_path):
    assert not _ray_processes(), "a Ray instance was already running"
    sweep = tmp_path / "ray"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "carbonsim",
            "--multirun",
            "hydra/launcher=ray",
            # A local instance bounded to two CPUs, without the dashboard.
            "+hydra.launcher.ray.init.num_cpus=2",
            "+hydra.launcher.ray.init.include_dashboard=false",
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
    assert "Started a local Ray instance" in proc.stdout + proc.stderr
    results = pd.read_csv(sweep / "results.csv")
    assert sorted(results["label"]) == ["hybrid(alpha=0.2)", "hybrid(alpha=0.7)"]
    assert (results["status"] == "done").all()
    assert (sweep / "report.html").is_file()
    # The instance ends with the command: no daemon, worker or dashboard is left behind (its processes
    # may take a moment to exit after the command has).
    deadline = time.monotonic() + 60.0
    while _ray_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes()
