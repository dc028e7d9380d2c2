"""TPC-H DAGs (loader and task-duration rule), generated job streams, the GPU catalog, and the DAG/GPU presets."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import carbonsim
from carbonsim import ConfigError
from carbonsim.config import BatchConfig
from carbonsim.data.catalog import load_gpu_catalog
from carbonsim.data.errors import DataError
from carbonsim.data.tpch import load_tpch_stages
from carbonsim.data.workloads import load_gaia_jobs
from carbonsim.job_streams import arrival_times, gpu_training_stream, tpch_stream
from carbonsim.jobs_build import build_jobs
from carbonsim.jobs_config import JobGeneratorConfig

EDGES = "size_gb,query,parent_stage,child_stage\n"
DURATIONS = "size_gb,query,stage,executors,wave,task,duration_ms\n"


def write(tmp_path: Path, edges: str, durations: str) -> tuple[Path, Path]:
    e, d = tmp_path / "edges.csv.gz", tmp_path / "durations.csv.gz"
    with gzip.open(e, "wt") as fh:
        fh.write(EDGES + edges)
    with gzip.open(d, "wt") as fh:
        fh.write(DURATIONS + durations)
    return e, d


# Query 1 at 2 GB: stage 0 measured at 2 executors (first wave 10 and 20 ms, of which 10 ms is the fresh
# executor's, later waves 30 and 40 ms) and at 5 executors (first wave 10 ms = the fresh one, no later wave);
# stage 1 (after stage 0) one 5 ms task.
FIXTURE = """2,1,0,2,first_wave,0,10
2,1,0,2,first_wave,1,20
2,1,0,2,fresh_durations,0,10
2,1,0,2,rest_wave,0,30
2,1,0,2,rest_wave,1,40
2,1,0,5,first_wave,0,10
2,1,0,5,fresh_durations,0,10
2,1,1,2,first_wave,0,5
"""


def test_task_duration_rule_by_hand(tmp_path):
    e, d = write(tmp_path, "2,1,0,1\n", FIXTURE)
    stages = load_tpch_stages(e, d)
    # Tasks at the smallest executor count: 2 first + 2 later waves. Decima's rough duration: the first wave
    # without the fresh 10 ms ([20] at 2 executors; [] at 5, which borrows [20]), the later waves and the fresh
    # ones: (20 + 20 + 30 + 40 + 10 + 10) / 6.
    row = stages.iloc[0]
    assert (row["tasks"], row["parents"]) == (4, "")
    assert row["task_duration_s"] == pytest.approx(130.0 / 6 / 1000.0)
    assert (stages.iloc[1]["tasks"], stages.iloc[1]["parents"]) == (1, "0")
    # At the measured count closest to 4 executors (5): the borrowed first wave only.
    assert load_tpch_stages(e, d, duration_executors=4).iloc[0]["task_duration_s"] == pytest.approx(0.020)
    # Closest to 3 (2 and 5 tie at... 1 and 2 away: 2): first wave 20 and later waves 30, 40.
    assert load_tpch_stages(e, d, duration_executors=3).iloc[0]["task_duration_s"] == pytest.approx(0.030)


@pytest.mark.parametrize(
    ("edges", "durations", "message"),
    [
        ("2,1,0,7\n", FIXTURE, r"edges\.csv\.gz: row 1 \(line 2\): size 2 GB query 1: stage 7 has no task durations"),
        ("", FIXTURE.replace("rest_wave,1,40", "last_wave,1,40"), r"row 5 \(line 6\): wave 'last_wave'"),
        ("", FIXTURE.replace("rest_wave,1,40", "rest_wave,1,0"), r"row 5 \(line 6\): duration_ms '0'"),
        ("3,1,0,1\n", FIXTURE, r"row 1 \(line 2\): size_gb 3; expected one of"),
        ("", FIXTURE.replace("2,1,1,2,first_wave,0,5", "2,1,2,2,first_wave,0,5"), r"stages \[0, 2\]; expected 0..k-1"),
    ],
)
def test_bad_tpch_files_are_named(tmp_path, edges, durations, message):
    e, d = write(tmp_path, edges, durations)
    with pytest.raises(DataError, match=message):
        load_tpch_stages(e, d)


def test_a_cycle_in_the_dag_files_is_rejected_when_the_jobs_are_built(tmp_path):
    e, d = write(tmp_path, "2,1,0,1\n2,1,1,0\n", FIXTURE)
    cfg = JobGeneratorConfig(kind="tpch", jobs=1, queries=(1,), sizes_gb=(2,))
    with pytest.raises(DataError, match=r"job 0:q1-2g: the dependencies of stages \['0', '1'\] form a cycle"):
        tpch_stream(cfg, 3600.0, np.random.default_rng(0), templates=load_tpch_stages(e, d))


def test_the_shipped_dags():
    stages = load_tpch_stages()
    per_query = stages.groupby(["size_gb", "query"]).size()
    assert len(per_query) == 22 * 7 and per_query.min() == 2 and per_query.max() == 18
    q1 = stages[(stages["size_gb"] == 2) & (stages["query"] == 1)]
    assert q1["tasks"].tolist() == [12, 200, 200, 5] and q1["parents"].tolist() == ["", "0", "1", "2"]
    assert (stages["task_duration_s"] > 0).all()


def test_arrivals_poisson_fixed_and_until_the_window_ends():
    rng = np.random.default_rng(1)
    fixed = arrival_times(JobGeneratorConfig(kind="tpch", jobs=5, initial_jobs=2, arrival="fixed"), 1e9, rng)
    assert fixed.tolist() == [0.0, 0.0, 60.0, 120.0, 180.0]
    window = arrival_times(JobGeneratorConfig(kind="tpch", mean_interarrival_s=10.0), 100_000.0, rng)
    assert window[-1] < 100_000.0 and 9_000 < window.size < 11_000 and np.all(np.diff(window) >= 0)


def test_tpch_stream_is_deterministic_and_uses_the_templates():
    cfg = JobGeneratorConfig(kind="tpch", jobs=30, queries=(1, 9), sizes_gb=(2, 100), duration_scale=2.0)
    a = tpch_stream(cfg, 3600.0, np.random.default_rng(7))
    b = tpch_stream(cfg, 3600.0, np.random.default_rng(7))
    pd.testing.assert_frame_equal(a.stages, b.stages)
    templates = load_tpch_stages()
    first = a.stages[a.stages["job"] == a.stages["job"].iat[0]]
    query, size = (int(x) for x in first["job"].iat[0].split(":q")[1].rstrip("g").split("-"))
    t = templates[(templates["query"] == query) & (templates["size_gb"] == size)]
    assert first["tasks"].tolist() == t["tasks"].tolist()
    np.testing.assert_allclose(np.sort(first["task_duration_s"]), np.sort(t["task_duration_s"] * 2.0))
    assert a.n_jobs == 30


def test_gpu_training_stream_resamples_pai_durations_and_draws_gpus():
    cfg = JobGeneratorConfig(
        kind="gpu_training", jobs=400, gpu_types={"A100": 0.5, "": 0.5}, cpus_per_gpu=8.0, max_duration_h=10.0
    )
    trace = gpu_training_stream(cfg, 1e9, np.random.default_rng(3))
    st = trace.stages
    pai = set(load_gaia_jobs("pai_100k")["duration_s"].round(6))
    capped = st["task_duration_s"] == 36_000.0
    assert set(st["task_duration_s"][~capped].round(6)) <= pai and capped.any()
    assert set(st["gpus_per_task"]) <= {1.0, 2.0, 4.0, 8.0}
    assert (st["cpus_per_task"] == 8.0 * st["gpus_per_task"]).all()
    assert 0.35 < (st["gpu_type"] == "A100").mean() < 0.65 and set(st["gpu_type"]) == {"A100", ""}


def test_homes_are_drawn_where_the_job_fits():
    # A job needing an H100 is homed in the one region with H100s even though it has a tiny share.
    scenario = carbonsim.load_config(["scenario=gpu_training"]).scenario
    cfg = JobGeneratorConfig(kind="gpu_training", jobs=200, gpu_types={"H100": 1.0})
    trace = gpu_training_stream(cfg, 1e9, np.random.default_rng(0))
    batch = BatchConfig(home_shares={"us-east": 0.98, "us-west": 0.01, "us-south": 0.01}, generator=cfg)
    js = build_jobs(trace, batch, scenario.region_names, 1e9, np.random.default_rng(0), scenario.regions)
    assert set(js.home.tolist()) <= {1, 2}


def test_generator_config_is_validated():
    with pytest.raises(ConfigError, match=r"kind: expected one of tpch, gpu_training"):
        JobGeneratorConfig(kind="alibaba")
    with pytest.raises(ConfigError, match=r"queries: expected TPC-H query numbers 1..22"):
        JobGeneratorConfig(kind="tpch", queries=(23,))
    with pytest.raises(ConfigError, match=r"gpus_per_job_shares: expected shares summing to 1"):
        JobGeneratorConfig(kind="gpu_training", gpus_per_job_shares=(0.5, 0.1, 0.1, 0.1))
    with pytest.raises(ConfigError, match=r"generator\.kind: expected at most one of trace, generator, source"):
        BatchConfig(trace="pai_1k", home_shares={"a": 1.0}, generator=JobGeneratorConfig(kind="tpch"))


def test_gpu_catalog(tmp_path):
    catalog = load_gpu_catalog()
    assert catalog.loc["H100", "busy_w"] == 700.0 and catalog.loc["A100", "memory_gb"] == 40.0
    bad = tmp_path / "gpus.csv"
    text = (Path(carbonsim.__file__).parent.parent / "traces" / "catalog" / "gpus.csv").read_text()
    bad.write_text(text.replace(",700,", ",-7,"))
    with pytest.raises(DataError, match=r"row 4 \(line 5\): busy_w '-7'"):
        load_gpu_catalog(bad)


def test_cluster_gpus_take_the_catalog_power_and_an_unknown_type_is_named():
    import dataclasses

    from carbonsim.hardware import batch_gpu_power

    scenario = carbonsim.load_config(["scenario=gpu_training"]).scenario
    assert batch_gpu_power(scenario).batch.gpu_busy_w == {"A100": 400.0, "H100": 700.0}
    regions = (dataclasses.replace(scenario.regions[0], batch_gpus={"B200": 8}), *scenario.regions[1:])
    with pytest.raises(DataError, match=r"regions\[0\]\.batch_gpus: GPU type 'B200' is not in the catalog"):
        batch_gpu_power(dataclasses.replace(scenario, regions=regions))


@pytest.mark.parametrize(("scenario", "hours"), [("dag_tpch", 0.5), ("gpu_training", 3.0)])
def test_presets_run_and_account_for_every_task(scenario, hours, tmp_path):
    from carbonsim.runner import write_outputs

    out = carbonsim.run(carbonsim.load_config([f"scenario={scenario}", f"sim_hours={hours}"]))
    write_outputs(out, tmp_path, write_requests=False)
    s = out.summary
    # One row per stage for DAG jobs (a Gantt chart's bars); none for one-task GPU jobs.
    assert (tmp_path / "stages.csv").is_file() == (scenario == "dag_tpch")
    if out.stages is not None:
        assert len(out.stages) == s["stages"] and out.stages["tasks_completed"].sum() == s["tasks_completed"]
    assert s["jobs"] > 5 and s["tasks"] == s["tasks_completed"] + s["tasks_failed"] + s["tasks_in_flight"]
    assert s["jobs_failed"] == 0
    if scenario == "gpu_training":
        assert 0 < s["job_gpu_energy_kwh"] < s["job_energy_kwh"]
    else:
        assert s["stages"] > s["jobs"]
