"""A scenario runs end to end from each job-trace format: the importers' fixture files, in each published
schema, read through ``scenario.batch.source`` and run by the batch engine in-process.

Every job of the trace is accounted for at the end (completed, failed with a named reason, or in flight) and
what the importer did not replay is in the summary.
"""

from __future__ import annotations

import json

import pytest
from test_importers import (
    BATCH_TASK,
    CSV,
    JOB_EVENTS_2011,
    PAI_JOBS,
    PAI_TASKS,
    SACCT,
    SWF,
    TASK_EVENTS_2011,
    google_2019_files,
    write,
)

from carbonsim import load_config
from carbonsim.data.importers import load_job_trace
from carbonsim.runner import run


def _files(fmt: str, tmp_path):
    """(paths, job_paths, extra options) of the importers' fixtures for ``fmt``."""
    if fmt == "google_2019":
        inst, coll = google_2019_files(tmp_path)
        return [inst.name], [coll.name], ["scenario.batch.source.options.cpus_per_normalised_unit=64"]
    if fmt == "google_2011":
        write(tmp_path / "part-00000-of-00500.csv.gz", TASK_EVENTS_2011)
        write(tmp_path / "job_events.csv", JOB_EVENTS_2011)
        return ["part-00000-of-00500.csv.gz"], ["job_events.csv"], []
    if fmt == "alibaba_2018":
        write(tmp_path / "batch_task.csv", BATCH_TASK)
        return ["batch_task.csv"], [], ["scenario.batch.source.options.missing_parents=skip"]
    if fmt == "pai_2020":
        write(tmp_path / "pai_task_table.csv", PAI_TASKS)
        write(tmp_path / "pai_job_table.csv", PAI_JOBS)
        return ["pai_task_table.csv"], ["pai_job_table.csv"], []
    if fmt == "swf":
        write(tmp_path / "log.swf", SWF)
        return ["log.swf"], [], []
    if fmt == "slurm_sacct":
        write(tmp_path / "sacct.txt", SACCT)
        return ["sacct.txt"], [], []
    write(tmp_path / "jobs.csv", CSV)
    return ["jobs.csv"], [], []


@pytest.mark.parametrize("fmt", ["google_2019", "google_2011", "alibaba_2018", "pai_2020", "swf", "slurm_sacct", "csv"])
def test_a_scenario_runs_from_each_job_trace_format(fmt, tmp_path, monkeypatch):
    paths, job_paths, extra = _files(fmt, tmp_path)
    monkeypatch.chdir(tmp_path)  # relative paths in a config are the user's working directory
    cfg = load_config(
        [
            "scenario=gpu_training",  # CPU and A100/H100 clusters in three US regions
            "scenario.batch.generator.kind=",
            f"scenario.batch.source.format={fmt}",
            f"scenario.batch.source.paths={json.dumps(paths)}",
            f"scenario.batch.source.job_paths={json.dumps(job_paths)}",
            "sim_hours=24",
            "write_requests=false",
            *extra,
        ]
    )
    trace = load_job_trace(cfg.scenario.batch.source)
    out = run(cfg)
    s = out.summary
    assert s["jobs"] == trace.n_jobs > 0
    assert s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"] == s["jobs"]
    assert s["tasks_completed"] + s["tasks_failed"] + s["tasks_in_flight"] == int(trace.stages["tasks"].sum())
    failed_by_reason = sum(v for k, v in s.items() if k.startswith("jobs_failed_"))
    assert failed_by_reason == s["jobs_failed"]  # every failure has a named reason
    assert s["jobs_skipped_by_importer"] == sum(trace.skipped.values())
    assert s["jobs_adjusted_by_importer"] == sum(trace.adjusted.values())
    for reason in trace.skipped:
        assert f"skipped: {reason}" in s["jobs_trace_notes"]
    left_out = [w for w in s["warnings"] if w.startswith("scenario.batch.source: the importer left")]
    assert len(left_out) == (1 if trace.skipped else 0)
    assert out.jobs is not None and set(out.jobs["trace_job"]) == set(trace.stages["job"])
    if fmt == "pai_2020":
        # V100 and T4 jobs: no region of the scenario has those GPUs; reported, never dropped.
        assert s["jobs_failed_gpu_type_in_no_region"] >= 1
    else:
        assert s["jobs_completed"] >= 1


def test_user_trace_homes_must_be_regions(tmp_path, monkeypatch):
    from carbonsim.data.errors import DataError

    write(tmp_path / "jobs.csv", CSV.replace("us-west", "mars"))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        [
            "scenario=gpu_training",
            "scenario.batch.generator.kind=",
            "scenario.batch.source.format=csv",
            "scenario.batch.source.paths=[jobs.csv]",
            "sim_hours=1",
        ]
    )
    with pytest.raises(DataError, match=r"job a: home 'mars' is not a region"):
        run(cfg)
