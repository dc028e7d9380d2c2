"""The PCAPS paper's simulator experiment: its scenario, its trials, the relative carbon, a tiny run."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

import carbonsim
from carbonsim._hydra import config_dir
from carbonsim.analysis.reproduction import PUBLISHED, checks, comparison, relative_carbon
from carbonsim.core.rng import stream
from carbonsim.data.errors import DataError
from carbonsim.data.tpch import load_tpch_stages
from carbonsim.job_streams import tpch_stream

ROOT = Path(__file__).resolve().parents[1]


def test_the_scenario_is_the_papers_cluster_and_stream_stretched_sixty_times():
    cfg = carbonsim.load_config(["+experiment=pcaps_reproduction"])
    sc = cfg.scenario
    assert [(r.grid_zone, r.batch_cpus) for r in sc.regions] == [("DE-LU", 100)]
    assert (sc.carbon.metric, sc.forecast.kind) == ("lca", "perfect")
    gen = sc.batch.generator
    assert (gen.jobs, gen.initial_jobs, gen.sizes_gb, gen.queries) == (51, 1, (2, 10, 50), ())
    assert (gen.mean_interarrival_s, gen.duration_scale, gen.executor_cpus) == (60 * 30.0, 60.0, 1.0)
    # One draw of the stream: 51 jobs, one at t = 0, the paper's sizes, every task 60 x its measured mean.
    rng = stream(0, "jobs")
    stages = tpch_stream(gen, cfg.sim_hours * 3600.0, rng).stages
    per_job = stages.groupby("job", sort=False)["submit_s"].first()
    assert len(per_job) == 51 and (per_job == 0).sum() == 1
    parts = stages["job"].str.extract(r":q(\d+)-(\d+)g$").astype(int)
    assert set(parts[1]) <= {2, 10, 50}
    templates = load_tpch_stages().set_index(["size_gb", "query", "stage"])["task_duration_s"]
    keys = pd.MultiIndex.from_arrays([parts[1], parts[0], stages["stage"].astype(int)])
    np.testing.assert_allclose(stages["task_duration_s"], 60.0 * templates.reindex(keys).to_numpy())


def test_the_start_hours_are_the_documented_draw_over_the_papers_trace():
    # Their simulator draws a start row in [0, 4343 - 100) of its 2021 trace (hourly from 2021-01-01 00:00 UTC).
    raw = OmegaConf.load(config_dir() / "experiment" / "pcaps_reproduction.yaml")
    hours = np.random.default_rng(2502).integers(0, 4343 - 100, 10)
    expected = [
        (pd.Timestamp("2021-01-01", tz="UTC") + pd.Timedelta(hours=int(h))).strftime("%Y-%m-%dT%H:%M:%SZ")
        for h in hours
    ]
    assert [v["scenario.start_utc"] for v in raw.experiment.variants] == expected


def _trials(carbon: dict[tuple[str, str, int], float]) -> pd.DataFrame:
    rows = [
        {"label": label, "variant": variant, "seed": seed, "jobs": 51, "jobs_completed": 51, "job_carbon_kg": kg,
         "end_to_end_h": 25.0 + seed, "job_mean_wait_h": 0.1, "guard_margin_h": 100.0}
        for (label, variant, seed), kg in carbon.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_relative_carbon_divides_by_fifo_in_the_same_trial():
    trials = _trials(
        {
            ("PCAPS", "a", 0): 3.0,
            ("FIFO", "a", 0): 4.0,
            ("FIFO", "a", 1): 2.0,
            ("PCAPS", "a", 1): 1.0,
            ("FIFO", "b", 0): 8.0,
            ("PCAPS", "b", 0): 2.0,
        }
    )
    assert relative_carbon(trials).tolist() == [0.75, 1.0, 1.0, 0.5, 1.0, 0.25]
    table = comparison(trials).set_index("policy")
    # PCAPS: mean of 0.75, 0.5, 0.25 = 0.5, s = 0.25, t(0.975, 2) = 4.3027 -> half-width 0.621.
    half = 4.302653 * 0.25 / math.sqrt(3)
    assert table.loc["PCAPS", "carbon / FIFO (carbonsim)"] == f"0.500 ± {half:.3f}"
    assert table.loc["FIFO", "carbon / FIFO (carbonsim)"] == "1.000 ± 0.000"
    assert table.loc["PCAPS", "carbon / FIFO (published)"] == f"{PUBLISHED['PCAPS'][2]:.2f}"
    assert table.loc["PCAPS", "trials"] == 3
    with pytest.raises(DataError, match=r"trial \(variant b, seed 1\): no 'FIFO' run"):
        relative_carbon(pd.concat([trials, _trials({("PCAPS", "b", 1): 1.0})], ignore_index=True))


def test_checks_name_unfinished_jobs_and_deadlines_that_could_bind():
    trials = _trials({("FIFO", "a", 0): 1.0, ("PCAPS", "a", 0): 1.0})
    assert checks(trials) == []
    trials.loc[1, ["jobs_completed", "guard_margin_h"]] = [50, 0.5]
    assert checks(trials) == [
        "PCAPS a seed 0: 50 of 51 jobs completed",
        "PCAPS a seed 0: a job's deadline could bind (it ended 0.50 h before its latest start, under the 1 h within"
        " which the deadline guard may force a stage)",
    ]


def _script():
    spec = importlib.util.spec_from_file_location("pcaps_reproduction", ROOT / "experiments" / "pcaps_reproduction.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_tiny_reproduction_runs_in_process_and_writes_the_comparison(tmp_path, capsys):
    out = tmp_path / "out"
    _script().main(
        [
            str(out),
            'experiment.variants=[{label: a, scenario.start_utc: "2021-05-03T11:00:00Z"}]',
            "experiment.runs=[{batch_policy: {name: carbon_agnostic}, label: FIFO},"
            " {batch_policy: {name: pcaps}, label: PCAPS}]",
            "experiment.seeds=[0]",
            "scenario.batch.generator.jobs=3",
            "sim_hours=6",
        ]
    )
    printed = capsys.readouterr().out
    trials = pd.read_csv(out / "pcaps_reproduction_trials.csv")
    assert trials["label"].tolist() == ["FIFO", "PCAPS"] and (trials["jobs_completed"] == 3).all()
    assert trials["carbon_vs_fifo"].iloc[0] == 1.0 and 0 < trials["carbon_vs_fifo"].iloc[1] <= 1.5
    assert (trials["guard_margin_h"] > 1).all()
    table = pd.read_csv(out / "pcaps_reproduction.csv")
    assert table["policy"].tolist() == ["FIFO", "PCAPS", "clairvoyant bound"]
    assert table["carbon / FIFO (published)"].tolist()[:2] == [1.0, 0.54]
    bound = trials["bound_job_carbon_kg"] / trials["job_carbon_kg"].iloc[0]
    assert float(table["carbon / FIFO (carbonsim)"].iloc[2]) == round(bound.iloc[0], 3)  # one trial: no interval
    assert (trials["bound_job_carbon_kg"] <= trials["job_carbon_kg"] * (1 + 1e-9)).all()
    md = (out / "pcaps_reproduction.md").read_text()
    assert "every job completed and no deadline could bind" in md and "| PCAPS | PCAPS (over Decima) | 1 |" in md
    assert "| PCAPS |" in printed
    # The finished folder compares again from disk alone, to the same table.
    _script().main(["--sweep", str(out)])
    assert pd.read_csv(out / "pcaps_reproduction.csv").equals(table)
    # A stage wider than the cluster runs in waves: no warning that the job cannot run.
    summary = pd.read_json(out / "runs" / "a_FIFO_seed0" / "summary.json", typ="series")
    assert (pd.read_csv(out / "runs" / "a_FIFO_seed0" / "jobs.csv")["cpus"] > 100).any()  # widest stage
    assert summary["jobs_failed"] == 0 and not summary.get("warnings")


@pytest.mark.parametrize(("name", "message"), [("absent", "no such folder"), ("", "no finished job of the experiment")])
def test_the_script_reports_a_folder_that_is_not_a_sweep_in_one_line(name, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _script().main(["--sweep", str(tmp_path / name)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []  # nothing written
