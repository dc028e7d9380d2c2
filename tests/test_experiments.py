"""Experiments and sweeps: configs, jobs that survive faults, resumption, aggregation, Hydra multiruns."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

import carbonsim
import carbonsim.report
from carbonsim import experiment as experiment_module
from carbonsim._hydra import config_dir
from carbonsim.analysis.tables import mean_ci
from carbonsim.experiment import run_experiment

EXPERIMENTS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def _range_size(spec: str) -> int:
    match = re.fullmatch(r"range\((\d+),\s*(\d+)\)", str(spec).strip())
    assert match, spec
    return int(match.group(2)) - int(match.group(1))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_sweeps_each_of_its_runs_and_variants(name):
    raw = OmegaConf.load(config_dir() / "experiment" / f"{name}.yaml")
    cfg = carbonsim.load_config([f"+experiment={name}"])
    assert cfg.experiment is not None and cfg.experiment.name == name
    params = raw.hydra.sweeper.params
    assert raw.hydra.mode == "MULTIRUN"
    assert _range_size(params["experiment.run"]) == len(cfg.experiment.runs)
    if cfg.experiment.variants:
        assert _range_size(params["experiment.variant"]) == len(cfg.experiment.variants)
    else:
        assert "experiment.variant" not in params
    if "scenario" in params:  # a sweep over scenario presets: each one composes
        for preset in str(params["scenario"]).split(","):
            assert carbonsim.load_config([f"+experiment={name}", f"scenario={preset}"]).scenario.name == preset
    if cfg.experiment.seeds:  # the seeds of an in-process run and of the sweep agree
        assert [int(x) for x in str(params["seed"]).split(",")] == list(cfg.experiment.seeds)


def test_mean_and_confidence_interval_over_seeds_by_hand():
    df = pd.DataFrame({"label": ["a", "a", "a", "b"], "carbon_kg": [1.0, 2.0, 3.0, 5.0]})
    out = mean_ci(df, ["label"], ["carbon_kg", "absent"])
    a, b = out.iloc[0], out.iloc[1]
    # t(0.975, 2) = 4.3027; s = 1; n = 3.
    assert (a["seeds"], a["carbon_kg_mean"]) == (3, 2.0)
    assert a["carbon_kg_ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert b["carbon_kg_mean"] == 5.0 and math.isnan(b["carbon_kg_ci95"])
    assert "absent_mean" not in out.columns


def _tiny(name: str, *extra: str):
    return carbonsim.load_config([f"+experiment={name}", "scenario=illustrative", "sim_hours=0.05", *extra])


def test_a_failed_job_is_recorded_the_others_finish_and_a_rerun_does_only_what_is_left(tmp_path, monkeypatch):
    cfg = _tiny("pareto_sweep")
    n = len(cfg.experiment.runs)
    real = experiment_module.simulate_policy
    calls: list[str] = []

    def flaky(vcfg, policy, *args, **kwargs):
        label = args[3] if len(args) > 3 else kwargs.get("label")
        calls.append(str(label))
        if label == "casper":
            raise RuntimeError("simulated crash")
        return real(vcfg, policy, *args, **kwargs)

    monkeypatch.setattr(experiment_module, "simulate_policy", flaky)
    tables = run_experiment(cfg, tmp_path)
    results = tables["results"]
    assert len(results) == n
    failed = results[results["status"] == "failed"]
    assert failed["run_index"].tolist() == [9] and "simulated crash" in failed["error"].iloc[0]
    assert (results["status"] == "done").sum() == n - 1
    assert "casper" not in set(tables["comparison"]["label"])
    saved = pd.read_csv(tmp_path / "results.csv")
    assert saved["status"].value_counts().to_dict() == {"done": n - 1, "failed": 1}
    assert (tmp_path / "results.parquet").is_file() and (tmp_path / "results_by_policy.md").is_file()

    # An interrupted job: started (job.json) but never finished.
    victim = next((tmp_path / "runs").glob("hybrid_alpha=0.4*"))
    (victim / "summary.json").unlink()
    assert (sweep_status := carbonsim.sweep.collect(tmp_path).set_index("job")["status"])[
        str(victim.relative_to(tmp_path))
    ] == "missing", sweep_status

    # Run again without the crash: only the failed and the interrupted jobs run.
    monkeypatch.setattr(experiment_module, "simulate_policy", real)
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/summary.json")}
    tables = run_experiment(cfg, tmp_path)
    assert (tables["results"]["status"] == "done").all() and len(tables["results"]) == n
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert {"casper", "hybrid(alpha=0.4)"} <= set(tables["comparison"]["label"])
    # Reductions against the baseline job of the same seed, and the bound's share.
    comparison = tables["comparison"].set_index("label")
    assert comparison.loc["latency_first", "carbon_reduction_pct"] == 0.0
    assert comparison.loc["carbon_first", "carbon_reduction_pct"] > 0.0
    assert math.isfinite(comparison.loc["carbon_first", "share_of_bound_pct"])


def test_redo_runs_finished_jobs_again(tmp_path):
    cfg = _tiny("pareto_sweep")
    run_experiment(cfg, tmp_path)
    first = json.loads(next((tmp_path / "runs").glob("carbon_first*/summary.json")).read_text())
    stamp = next((tmp_path / "runs").glob("carbon_first*/summary.json")).stat().st_mtime_ns
    tables = run_experiment(_tiny("pareto_sweep", "redo=true"), tmp_path)
    path = next((tmp_path / "runs").glob("carbon_first*/summary.json"))
    assert path.stat().st_mtime_ns != stamp
    # Same seed, same results.
    assert json.loads(path.read_text()) == first
    assert len(tables["results"]) == len(cfg.experiment.runs)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "carbonsim", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )


@dataclasses.dataclass
class _ResumedSweep:
    sweep: Path
    finished: dict[Path, int]  # summary.json of each job done when the first run was killed, its mtime
    again: subprocess.CompletedProcess[str]  # the second run, on two workers
    stamps: dict[Path, int]  # every summary.json after the second run, its mtime
    third: subprocess.CompletedProcess[str]  # the third run, of a finished sweep


@pytest.fixture(scope="module")
def resumed_sweep(tmp_path_factory) -> _ResumedSweep:
    """The pareto_sweep multirun (13 jobs) killed after its first jobs, run again to the end, then once more.

    One sweep for the two tests below: the first run is interrupted on one worker, the second resumes it
    on two workers (the parallel launcher of every experiment), the third finds it finished.
    """
    tmp_path = tmp_path_factory.mktemp("resumed")
    sweep = tmp_path / "sweep"
    args = (
        "+experiment=pareto_sweep",
        "scenario=illustrative",
        "sim_hours=0.05",
        "hydra.sweeper.params.seed=0",
        f"hydra.sweep.dir={sweep}",
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonsim", *args, "hydra.launcher.n_jobs=1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300.0
        while len(list(sweep.glob("*/summary.json"))) < 3:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            assert time.monotonic() < deadline, "no job finished in time"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a crash: no clean-up, no aggregation
        proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}
    assert 3 <= len(finished) < 13 and not (sweep / "results.csv").exists()
    again = _cli(tmp_path, *args, "hydra.launcher.n_jobs=2")
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}
    third = _cli(tmp_path, *args, "hydra.launcher.n_jobs=2")
    return _ResumedSweep(sweep, finished, again, stamps, third)


def test_an_experiment_is_a_hydra_multirun_that_resumes(resumed_sweep):
    sweep, again, third = resumed_sweep.sweep, resumed_sweep.again, resumed_sweep.third
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count(": done") + again.stdout.count(": skipped") == 13
    assert "jobs finished: 13 / 13" in again.stdout
    for name in ("results.parquet", "results.csv", "results_by_policy.md", "comparison.md"):
        assert (sweep / name).is_file(), name
    results = pd.read_parquet(sweep / "results.parquet")
    assert len(results) == 13 and (results["status"] == "done").all()
    # Run again once finished: every job is skipped, none runs again.
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count(": skipped") == 13 and ": done" not in third.stdout
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")} == resumed_sweep.stamps


class _ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.ids: list[str] = []
        self.tables = 0
        self._figure: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "figure":
            self._figure = a["id"]
        if tag == "img" and self._figure:
            self.figures[self._figure] = a["src"]
        if tag == "table":
            self.tables += 1


def _parse_report(path: Path) -> _ReportParser:
    parser = _ReportParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_the_report_is_one_html_file_with_every_figure_the_sweep_has_data_for(inference_sweep, tmp_path):
    from carbonsim.analysis.figures import FIGURES
    from carbonsim.report import main

    assert main([str(inference_sweep)]) == 0
    report = _parse_report(inference_sweep / "report.html")
    # Every figure but the batch jobs', the faults' and the hour-of-day heatmap (the runs are shorter than a day).
    inference = [name for name, _, _ in FIGURES if name not in ("carbon_vs_slack", "timeline", "intensity_heatmap")]
    assert sorted(report.figures) == sorted(f"fig-{n}" for n in inference)
    for name, src in report.figures.items():
        assert src.startswith("data:image/png;base64,"), name
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (inference_sweep / "figures" / f"{name[4:]}.pdf").read_bytes()[:4] == b"%PDF"
    assert report.tables >= 2 and {"config", "status", "summary", "headline"} <= set(report.ids)
    text = (inference_sweep / "report.html").read_text(encoding="utf-8")
    assert "pareto_sweep" in text and "hybrid(alpha=0.4)" in text and "± " in text
    assert "name='viewport'" in text and "<details>" in text
    # The configuration is carbonsim's composed one, without Hydra's own settings.
    config = text[text.index("<pre id='config'>") :]
    assert "experiment:" in config and "hydra" not in config.split("</pre>")[0]
    assert main([str(tmp_path / "nowhere")]) == 2


def test_the_outage_experiment_shows_every_policy_through_the_faults(tmp_path):
    # The outage experiment on the default scenario, its faults moved into a 5-minute run.
    cfg = carbonsim.load_config(
        [
            "+experiment=outage",
            "sim_hours=0.08",
            "experiment.seeds=[0]",
            "scenario.faults.outages=[{region: ca-central, start_h: 0.02, duration_h: 0.04}]",
            "scenario.faults.cuts=[{origin: eu-west, region: uk-south, start_h: 0.03, duration_h: 0.03}]",
            "scenario.faults.servers.mtbf_h=0.2",
            "scenario.faults.servers.mttr_h=0.01",
        ]
    )
    run_experiment(cfg, tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    faulty = results[results["variant"] != "no faults"]
    assert (faulty["server_failures"] > 0).all() and (
        results.loc[results["variant"] == "no faults", "outages"] == 0
    ).all()
    assert (results["routed_to_unavailable"] == 0).all()
    assert (faulty.loc[faulty["variant"] == "fail", "retries"] == 0).all()
    report = _parse_report(carbonsim.report.write_report(tmp_path))
    assert "fig-timeline" in report.figures


def test_the_batch_report_shows_carbon_against_slack_and_nothing_about_requests(batch_sweep):
    report = _parse_report(batch_sweep / "report.html")
    assert "fig-carbon_vs_slack" in report.figures and "fig-pareto" not in report.figures
    text = (batch_sweep / "report.html").read_text(encoding="utf-8")
    # One seed: no confidence intervals; no requests: no latency, SLO or request-carbon columns.
    assert "confidence interval over" not in text and "one seed" in text
    for header in ("mean latency ms", "SLO violations %", ">carbon reduction %<", "% of bound reduction"):
        assert header not in text, header
    assert "job carbon reduction %" in text and "deadlines met %" in text


def test_progress_reports_simulated_time_and_changes_nothing():
    from carbonsim.runner import run

    cfg = carbonsim.load_config(["scenario=illustrative", "sim_hours=0.5"])
    seen: dict[str, list] = {}

    def factory(label):
        return lambda p: seen.setdefault(label, []).append(p)

    with_bar = run(cfg, factory)
    without = run(cfg)
    assert json.dumps(with_bar.summary, sort_keys=True) == json.dumps(without.summary, sort_keys=True)
    # The policy's run and the baseline's, each from 0 in steps of at least a simulated minute up to the end of
    # the arrival window, one report exactly there, then the drain, and a last report once the run has ended.
    assert set(seen) == {with_bar.summary["label"], "latency_first"}
    horizon_s = 0.5 * 3600.0
    for ticks in seen.values():
        times = [p.now_s for p in ticks]
        window = [t for t in times if t < horizon_s]
        assert times[0] == 0.0 and all(b - a >= 60.0 for a, b in itertools.pairwise(window))
        assert horizon_s in times and times == sorted(times)
        assert {(p.horizon_s, p.stop_s) for p in ticks} == {(horizon_s, (0.5 + cfg.max_drain_hours) * 3600.0)}
        assert [p.ended for p in ticks] == [False] * (len(ticks) - 1) + [True]
        assert ticks[-1].finished == ticks[-1].requests == with_bar.summary["requests"]
        assert all(a.finished <= b.finished for a, b in itertools.pairwise(ticks))


def test_a_sweep_killed_in_the_middle_completes_on_the_next_run_without_redoing_finished_jobs(resumed_sweep):
    sweep, finished, again = resumed_sweep.sweep, resumed_sweep.finished, resumed_sweep.again
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count(": skipped") == len(finished)
    assert again.stdout.count(": done") == 13 - len(finished)
    assert all(resumed_sweep.stamps[p] == t for p, t in finished.items())
    results = pd.read_csv(sweep / "results.csv")
    assert len(results) == 13 and (results["status"] == "done").all()


def test_jobs_share_the_bounds_of_their_instance_only(tmp_path):
    # Two scenario presets in one sweep folder: each job's clairvoyant bound is its own instance's.
    from carbonsim.bounds import inference_bound
    from carbonsim.experiment import experiment_job, instance_key
    from carbonsim.runner import prepare

    bounds = {}
    for preset in ("us", "europe", "us"):
        cfg = carbonsim.load_config(["+experiment=pareto_sweep", f"scenario={preset}", "sim_hours=0.05"])
        folder = tmp_path / f"{preset}_{len(bounds)}"
        experiment_job(cfg, -1, 1, 0, folder, tmp_path / ".cache")
        summary = json.loads((folder / "summary.json").read_text())
        world, requests, _ = prepare(cfg, 0)
        expected = inference_bound(world, requests, cfg.sim_hours * 3600.0).carbon_g / 1e3
        assert summary["bound_carbon_kg"] == pytest.approx(expected, rel=1e-9), preset
        bounds[preset] = summary["bound_carbon_kg"]
    assert bounds["us"] != bounds["europe"]
    a = carbonsim.load_config(["+experiment=pareto_sweep", "scenario=us"])
    b = carbonsim.load_config(["+experiment=pareto_sweep", "scenario=us", "policy=carbon_first"])
    assert instance_key(a, 0) == instance_key(b, 0) != instance_key(a, 1)
    # The second "us" job reused the cached bound: one file per instance.
    assert len(list((tmp_path / ".cache").glob("bounds_*.json"))) == 2


def test_a_sweep_job_with_a_bad_value_is_recorded_and_the_sweep_still_aggregates(tmp_path):
    sweep = tmp_path / "bad"
    out = _cli(
        tmp_path,
        "--multirun",
        "policy=hybrid",
        "policy.alpha=0.2,1.5",
        "scenario=illustrative",
        "sim_hours=0.02",
        "write_requests=false",
        f"hydra.sweep.dir={sweep}",
    )
    assert out.returncode == 1, out.stderr[-3000:]
    results = pd.read_csv(sweep / "results.csv").set_index("status")
    assert results.loc["done", "label"] == "hybrid(alpha=0.2)"
    assert "policy.alpha: expected a weight in [0, 1], got 1.5" in results.loc["failed", "error"]
    assert "jobs did not finish" in out.stdout
