"""Job-trace importers: fixture files written here in each published schema, read into stage tables.

Every number asserted is worked out by hand from the rows written. Bad input must raise DataError naming the
file and line; a Hypothesis test feeds malformed rows to each importer (it loads or raises DataError).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonsim import build
from carbonsim._schema import ConfigError
from carbonsim.config import BatchConfig
from carbonsim.data.errors import DataError
from carbonsim.data.importers import (
    critical_path_s,
    job_shapes,
    load_alibaba_2018,
    load_csv_jobs,
    load_google_2011,
    load_google_2019,
    load_job_trace,
    load_pai_2020,
    load_sacct,
    load_swf,
    parse_task_name,
    summarize,
    with_deadlines,
)
from carbonsim.data.importers.dag_stats import alibaba_name_shapes
from carbonsim.data.paths import trace_path
from carbonsim.job_source_config import JobImportOptions, JobSourceConfig

SAMPLE = trace_path("workloads", "alibaba2018_batch_task_distinct_names.csv.gz")


def write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def rows_of(trace, job):
    return trace.stages[trace.stages["job"] == job].set_index("stage")


# ---------------------------------------------------------------- Alibaba 2018 batch_task

BATCH_TASK = """\
M1,2,j_1,1,Terminated,100,160,100,0.3
R2_1,4,j_1,1,Terminated,170,200,50,0.2
J3_1_2,1,j_1,1,Terminated,205,265,200,0.5
task_Nzg3ODAwNDgzMTAwNTc2NTQ2Mw==,10,j_2,12,Terminated,50,80,100,0.1
MergeTask,1,j_2,12,Terminated,60,60,100,0.1
M1,1,j_3,1,Failed,10,20,100,0.1
M1,1,j_4,1,Running,30,0,100,0.1
R2_1,1,j_5,1,Terminated,30,40,100,0.1
"""


def test_alibaba_maps_dag_names_to_stages(tmp_path):
    trace = load_alibaba_2018(write(tmp_path / "batch_task.csv", BATCH_TASK), JobImportOptions(missing_parents="skip"))
    j1 = rows_of(trace, "j_1")
    assert list(j1.index) == ["1", "2", "3"]
    assert j1.loc["3", "parents"] == "1 2" and j1.loc["2", "parents"] == "1" and j1.loc["1", "parents"] == ""
    assert (j1["submit_s"] == 100.0).all()  # the earliest task start
    assert list(j1["tasks"]) == [2, 4, 1]
    assert list(j1["task_duration_s"]) == [60.0, 30.0, 60.0]
    assert list(j1["cpus_per_task"]) == [1.0, 0.5, 2.0]
    j2 = rows_of(trace, "j_2")  # names without DAG information: independent stages
    assert set(j2.index) == {"task_Nzg3ODAwNDgzMTAwNTc2NTQ2Mw==", "MergeTask"}
    assert (j2["parents"] == "").all() and (j2["submit_s"] == 50.0).all()
    assert j2.loc["MergeTask", "task_duration_s"] == 0.5  # ended in the second it started
    assert trace.adjusted == {"tasks with a 0 s run time replayed as 0.5 s (half the 1 s resolution)": 1}
    assert trace.skipped == {
        "a task did not finish in the trace: status Running": 1,
        "a task failed or cancelled (replay_failed is off): status Failed": 1,
        "depends on a task that is not in the trace": 1,
    }
    assert list(trace.stages["job"].unique()) == ["j_2", "j_1"]  # by submission
    failed = load_alibaba_2018(
        tmp_path / "batch_task.csv", JobImportOptions(missing_parents="skip", replay_failed=True)
    )
    assert rows_of(failed, "j_3")["task_duration_s"].tolist() == [10.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "R2_1,1,j_5,1,Terminated,30,40,100,0.1\n",
            r"batch_task.csv: line 1: job j_5: task 2 depends on task\(s\) \['1'\]",
        ),
        ("M1_2,1,j,1,Terminated,1,2,100,0\nR2_1,1,j,1,Terminated,1,2,100,0\n", r"line 1: job j: .*form a cycle"),
        (
            "M1,1,j,1,Terminated,1,2,100,0\nM1_Stg2,1,j,1,Terminated,1,2,100,0\n",
            r"line 2: job j: task id 1 appears twice",
        ),
        ("M1,1,j,1,Terminated,50,40,100,0\n", r"line 1: end_time 40 before start_time 50"),
        ("M1,1,j,1,Terminated,50,60,100,0,7\n", r"line 1: 10 fields; expected 9"),
        ("M1,1,j,1,Terminated,50,60,100\n", r"line 1: 8 fields; expected 9"),
        ("M1,one,j,1,Terminated,50,60,100,0\n", r"line 1: field instance_num 'one'; expected a whole number"),
        ("task_name,inst,job\n", r"line 1: unexpected header"),
    ],
)
def test_alibaba_rejects_bad_rows_naming_file_and_line(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_alibaba_2018(write(tmp_path / "batch_task.csv", text))


def test_task_name_parser():
    assert parse_task_name("M1") == parse_task_name("M1")
    n = parse_task_name("J3_1_2")
    assert (n.task, n.parents, n.dag, n.truncated) == ("3", ("1", "2"), True, False)
    n = parse_task_name("R2_1_Stg8")
    assert (n.task, n.parents) == ("2", ("1",))
    cut = "M5_14_17_28_30_40_42_52_54_64_66_76_78_88_90_100_1"
    assert len(cut) == 50 and parse_task_name(cut).truncated
    assert parse_task_name("M3_2_4_5_6_7_8_9_10_11_12_13_14_15_16_17_18_19_20_").truncated
    n = parse_task_name("task_Nzg3ODAwNDgzMTAwNTc2NTQ2Mw==")
    assert (n.task, n.parents, n.dag) == ("task_Nzg3ODAwNDgzMTAwNTc2NTQ2Mw==", (), False)


def test_alibaba_real_sample_parses_and_reports_shapes():
    """The shipped distinct-names sample: every name parses; complete jobs load; the rest are counted."""
    trace = load_alibaba_2018(SAMPLE, JobImportOptions(missing_parents="skip"))
    raw = pd.read_csv(SAMPLE)
    assert len(raw) == 17_996 and raw["job_id"].nunique() == 6_420
    accounted = trace.n_jobs + sum(trace.skipped.values())
    assert accounted == 6_420  # every job replayed or counted with a reason
    assert trace.n_jobs == 8
    assert trace.skipped["a task name was cut at 50 characters (dependency list incomplete)"] == 154
    assert trace.skipped["depends on a task that is not in the trace"] == 6_089
    tasks, jobs = alibaba_name_shapes(SAMPLE)
    assert len(tasks) == 17_996 and len(jobs) == 6_420
    assert tasks["dag"].all()  # every name in the sample follows the DAG convention
    assert int(tasks["truncated"].sum()) == 183
    assert int(jobs["complete"].sum()) == 9
    names = raw["task_name"]
    fan_in = names.str.replace(r"_Stg\d+$", "", regex=True).str.rstrip("_").str.count("_")
    assert (tasks["fan_in"].to_numpy() == fan_in.to_numpy()).all()
    table = summarize(tasks, ["fan_in", "instances", "duration_s", "cpus"])
    assert table.loc["fan_in", "max"] == 19 and table.loc["fan_in", "count"] == 17_996
    assert table.loc["duration_s", "count"] == 17_502  # Terminated rows with both times


# ---------------------------------------------------------------- Google 2019 (v3), JSON lines

T0 = 600_000_000  # µs: the trace's start


def _ce(t, typ, cid, ctype=0, after=()):
    rec = {"time": str(T0 + t), "type": typ, "collection_id": str(cid), "collection_type": ctype, "priority": 100}
    if typ == 0:
        rec["start_after_collection_ids"] = [str(a) for a in after]
    return rec


def _ie(t, typ, cid, idx, cpus=None):
    rec = {"time": T0 + t, "type": typ, "collection_id": cid, "instance_index": idx, "constraint": []}
    if cpus is not None:
        rec["resource_request"] = {"cpus": cpus, "memory": 0.01}
    return rec


def _jsonl(path, recs):
    return write(path, "".join(json.dumps(r) + "\n" for r in recs))


def google_2019_files(tmp_path):
    s = 1_000_000
    coll = [
        _ce(1 * s, 0, 100),
        _ce(50 * s, 6, 100),
        _ce(int(1.5 * s), 0, 200, after=(100, 999)),  # 999 is not in the trace: dependency already met
        _ce(90 * s, 6, 200),
        _ce(5 * s, 0, 300, ctype=1),  # an alloc set
        {"time": 0, "type": 0, "collection_id": 400, "collection_type": 0},  # before the trace
        _ce(70 * s, 6, 400),
        _ce(2 * s, 0, 500),
        _ce(9 * s, 7, 500),  # killed
    ]
    inst = []
    for idx, (a, b, cpus) in enumerate([(2, 12, 0.01), (2, 22, 0.01), (3, 13, 0.02)]):
        inst += [_ie(1 * s, 0, 100, idx, cpus), _ie(a * s, 3, 100, idx), _ie(b * s, 6, 100, idx)]
    inst += [_ie(2 * s, 0, 200, 0, 0.5), _ie(40 * s, 3, 200, 0), _ie(45 * s, 4, 200, 0)]  # evicted ...
    inst += [_ie(45 * s, 0, 200, 0), _ie(60 * s, 3, 200, 0), _ie(80 * s, 6, 200, 0)]  # ... then its last run
    inst += [_ie(2 * s, 0, 500, 0, 0.1), _ie(3 * s, 3, 500, 0), _ie(9 * s, 7, 500, 0)]
    return _jsonl(tmp_path / "instance_events-000.json", inst), _jsonl(tmp_path / "collection_events-000.json", coll)


def test_google_2019_maps_collections_instances_and_start_after(tmp_path):
    inst, coll = google_2019_files(tmp_path)
    trace = load_google_2019(inst, coll, JobImportOptions(cpus_per_normalised_unit=100))
    assert trace.origin_utc == pd.Timestamp("2019-05-01T07:00:00Z")
    job = rows_of(trace, "100")  # 200 runs after 100: one job of three stages
    assert list(job.index) == ["100/0", "100/1", "200"]
    assert list(job["tasks"]) == [2, 1, 1]
    assert list(job["task_duration_s"]) == [15.0, 10.0, 20.0]  # mean of 10 and 20 s; 10 s; the last run
    assert list(job["cpus_per_task"]) == [1.0, 2.0, 50.0]
    assert job.loc["200", "parents"] == "100/0 100/1"
    assert (job["submit_s"] == 1.0).all()
    assert trace.n_jobs == 1
    assert trace.skipped == {
        "alloc set (a reservation, not work)": 1,
        "ended without finishing (replay_failed is off)": 1,
        "start-after dependencies on collections not in the trace (already met; dropped)": 1,
        "submitted before the trace began": 1,
    }
    longest = load_google_2019(inst, coll, JobImportOptions(cpus_per_normalised_unit=100, duration_stat="max"))
    assert rows_of(longest, "100").loc["100/0", "task_duration_s"] == 20.0
    killed = load_google_2019(inst, coll, JobImportOptions(replay_failed=True))
    assert rows_of(killed, "500").loc["500", "task_duration_s"] == 6.0
    assert rows_of(killed, "500").loc["500", "cpus_per_task"] == pytest.approx(9.6)  # default 96 cores per unit


def test_google_2019_window_and_gzip_shards(tmp_path):
    _inst, coll = google_2019_files(tmp_path)
    gz = write(tmp_path / "collection_events-001.json.gz", coll.read_text())
    coll.unlink()
    trace = load_google_2019(tmp_path / "instance_events-*.json", [gz], JobImportOptions(start_s=1.2))
    assert trace.n_jobs == 0  # 100 is before the window, so 200 (which waits for it) is not replayed either
    assert trace.skipped["submitted before the time window"] == 1
    assert trace.skipped["depends on a collection that is not replayed"] == 1


@pytest.mark.parametrize(
    ("coll_line", "message"),
    [
        ('{"time": 1, "type": 0, "collection_id": 1, "colour": 3}', r"line 1: unknown field\(s\) \['colour'\]"),
        ('{"time": 1, "type": 0, "collection_id": 1', r"line 1: not valid JSON"),
        ('{"time": 1, "type": 12, "collection_id": 1}', r"line 1: field type 12; expected an event type"),
        ('{"time": -5, "type": 0, "collection_id": 1}', r"line 1: field time -5"),
        ('{"time": "x", "type": 0, "collection_id": 1}', r"line 1: field time 'x'; expected an integer"),
        ("[1, 2]", r"line 1: expected a JSON object per line"),
    ],
)
def test_google_2019_rejects_bad_lines(tmp_path, coll_line, message):
    coll = write(tmp_path / "collection_events.json", coll_line + "\n")
    inst = write(tmp_path / "instance_events.json", "")
    with pytest.raises(DataError, match=message):
        load_google_2019(inst, coll)


def test_google_2019_start_after_cycle_is_an_error(tmp_path):
    s = 1_000_000
    coll = [_ce(s, 0, 1, after=(2,)), _ce(9 * s, 6, 1), _ce(s, 0, 2, after=(1,)), _ce(9 * s, 6, 2)]
    inst = [_ie(s, 0, c, 0, 0.1) for c in (1, 2)] + [_ie(2 * s, 3, c, 0) for c in (1, 2)]
    inst += [_ie(3 * s, 6, c, 0) for c in (1, 2)]
    with pytest.raises(DataError, match=r"collection_events.json: line \d: job 1: .*form a cycle"):
        load_google_2019(_jsonl(tmp_path / "i.json", inst), _jsonl(tmp_path / "collection_events.json", coll))


# ---------------------------------------------------------------- Google 2011

TASK_EVENTS_2011 = """\
601000000,,10,0,,0,u,1,2,0.0625,0.01,0,0
602000000,,10,0,5,1,u,1,2,0.0625,0.01,0,0
612000000,,10,0,5,4,u,1,2,0.0625,0.01,0,0
601000000,,10,1,,0,u,1,2,0.0625,0.01,0,0
603000000,,10,1,7,1,u,1,2,,,,
633000000,,10,1,7,4,u,1,2,,,,
0,,20,0,,0,u,1,2,0.125,0.01,0,0
0,,20,0,4,1,u,1,2,0.125,0.01,0,0
650000000,,20,0,4,4,u,1,2,0.125,0.01,0,0
605000000,,30,0,,0,u,1,2,0.25,0.01,0,0
606000000,,30,0,9,1,u,1,2,0.25,0.01,0,0
607000000,,30,0,9,5,u,1,2,0.25,0.01,0,0
"""
JOB_EVENTS_2011 = """\
601000000,,10,0,u,1,name,logical
640000000,,10,4,u,1,name,logical
0,,20,0,u,1,name,logical
650000000,,20,4,u,1,name,logical
605000000,,30,0,u,1,name,logical
607000000,,30,5,u,1,name,logical
"""


def test_google_2011_maps_task_runs(tmp_path):
    tasks = write(tmp_path / "part-00000-of-00500.csv.gz", TASK_EVENTS_2011)
    jobs = write(tmp_path / "job_events.csv", JOB_EVENTS_2011)
    trace = load_google_2011(tasks, jobs, JobImportOptions(cpus_per_normalised_unit=64))
    assert trace.origin_utc == pd.Timestamp("2011-05-01T23:00:00Z")
    job = rows_of(trace, "10")
    assert job.loc["10", "tasks"] == 2 and job.loc["10", "task_duration_s"] == 20.0  # (10 + 30) / 2
    assert job.loc["10", "cpus_per_task"] == 4.0 and job.loc["10", "submit_s"] == 1.0
    assert trace.n_jobs == 1
    assert trace.skipped == {
        "ended without finishing (replay_failed is off)": 1,
        "submitted before the trace began": 1,
    }
    no_jobs = load_google_2011(tasks, None, JobImportOptions(cpus_per_normalised_unit=64))
    assert set(no_jobs.stages["job"]) == {"10"}
    assert no_jobs.skipped == {  # 20's only run started before the trace; 30's task was killed
        "no task finished with a CPU request": 1,
        "no task run within the trace": 1,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("601000000,,10,0,,9,u,1,2,0.1,0.01,0,0\n", r"line 1: field event_type 9; expected 0 to 8"),
        ("601000000,,10,0,,0,u,1,2,0.1,0.01,0\n", r"line 1: 12 fields; expected 13"),
        ("601000000,,10,x,,0,u,1,2,0.1,0.01,0,0\n", r"line 1: field task_index 'x'"),
        ("601000000,,10,0,,0,u,1,2,-0.1,0.01,0,0\n", r"line 1: field cpu_request '-0.1'; expected a number >= 0"),
    ],
)
def test_google_2011_rejects_bad_rows(tmp_path, line, message):
    with pytest.raises(DataError, match=message):
        load_google_2011(write(tmp_path / "task_events.csv", line))


# ---------------------------------------------------------------- Alibaba PAI 2020 (GPU)

PAI_TASKS = """\
j1,ps,1.0,Terminated,100.0,400.0,600.0,29.3,,
j1,worker,2.0,Terminated,110.0,400.0,400.0,10.0,50.0,V100M32
j2,tensorflow,1.0,Terminated,200.0,260.0,800.0,10.0,100.0,T4
j3,tensorflow,1.0,Terminated,300.0,360.0,800.0,10.0,100.0,MISC
j4,worker,1.0,Failed,300.0,360.0,800.0,10.0,200.0,T4
"""
PAI_JOBS = """\
job_name,inst_id,user,status,start_time,end_time
j1,i1,u1,Terminated,90.0,400.0
j2,i2,u1,Terminated,150.0,260.0
j3,i3,u2,Terminated,300.0,360.0
j4,i4,u2,Failed,300.0,360.0
j5,i5,u2,Running,500.0,
"""


def test_pai_maps_gpu_demand_and_type(tmp_path):
    tasks = write(tmp_path / "pai_task_table.csv", PAI_TASKS)
    jobs = write(tmp_path / "pai_job_table.csv", PAI_JOBS)  # written with its .header line
    trace = load_pai_2020(tasks, jobs)
    j1 = rows_of(trace, "j1")
    assert j1.loc["ps", "gpus_per_task"] == 0.0 and j1.loc["ps", "cpus_per_task"] == 6.0
    assert j1.loc["worker", "gpus_per_task"] == 0.5 and j1.loc["worker", "gpu_type"] == "V100"
    assert j1.loc["worker", "tasks"] == 2 and j1.loc["worker", "task_duration_s"] == 290.0
    assert (j1["submit_s"] == 90.0).all() and (j1["parents"] == "").all()
    assert rows_of(trace, "j2").loc["tensorflow", "gpu_type"] == "T4"
    assert trace.skipped == {
        "GPU type 'MISC' not in the hardware catalog (map it with options.gpu_types)": 1,
        "failed (replay_failed is off)": 1,
        "job with no rows in pai_task_table": 1,
    }
    mapped = load_pai_2020(tasks, jobs, JobImportOptions(gpu_types={"MISC": ""}, replay_failed=True))
    assert rows_of(mapped, "j3").loc["tensorflow", "gpu_type"] == ""
    assert rows_of(mapped, "j4").loc["worker", "gpus_per_task"] == 2.0
    with pytest.raises(DataError, match=r"pai_task_table.csv: line 4: GPU type 'MISC' is not in the hardware catalog"):
        load_pai_2020(tasks, jobs, JobImportOptions(unknown_gpu="error"))
    with pytest.raises(DataError, match=r"options.gpu_types: 'MISC' maps to 'K80'"):
        load_pai_2020(tasks, jobs, JobImportOptions(gpu_types={"MISC": "K80"}))
    alone = load_pai_2020(tasks)  # without the job table: submitted at the first task start
    assert (rows_of(alone, "j1")["submit_s"] == 100.0).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("j,w,1.0,Terminated,100.0,90.0,100.0,1.0,0.0,\n", r"line 1: end_time 90 before start_time 100"),
        ("j,w,1.0,Terminated,100.0,190.0,100.0,1.0,0.0\n", r"line 1: 9 fields; expected 10"),
        ("j,w,1.5,Terminated,100.0,190.0,100.0,1.0,0.0,\n", r"line 1: field inst_num '1.5'"),
        ("j,w,1,Terminated,1,2,1,1,0,\nj,w,1,Terminated,1,2,1,1,0,\n", r"line 2: job j: task_name 'w' twice"),
    ],
)
def test_pai_rejects_bad_rows(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_pai_2020(write(tmp_path / "pai_task_table.csv", text))


# ---------------------------------------------------------------- Standard Workload Format

SWF = """\
; Version: 2.2
; UnixStartTime: 1104537600
; TimeZoneString: Europe/Stockholm
; MaxProcs: 240
1 0 10 100 4 -1 -1 4 200 -1 1 1 1 1 1 1 -1 -1
2 5 0 50 2 -1 -1 -1 -1 -1 0 2 1 1 1 2 -1 -1
3 10 3 30 -1 -1 -1 8 -1 -1 1 3 1 1 1 1 1 20
4 20 0 0 1 -1 -1 1 -1 -1 1 3 1 1 1 1 3 5
5 30 0 40 1 -1 -1 1 -1 -1 1 3 1 1 1 2 2 5
6 40 0 25 16 -1 -1 16 -1 -1 2 4 1 1 1 2 -1 -1
6 60 0 35 16 -1 -1 16 -1 -1 3 4 1 1 1 2 -1 -1
"""


def test_swf_maps_jobs_and_preceding_job_chains(tmp_path):
    path = write(tmp_path / "log.swf.gz", SWF)
    trace = load_swf(path, JobImportOptions(homes={"1": "us-west", "2": "eu-central"}))
    assert trace.origin_utc == pd.Timestamp("2005-01-01T00:00:00Z")
    chain = rows_of(trace, "1")  # jobs 3 and 4 follow job 1 (field 17): one job of three stages
    assert list(chain.index) == ["1", "3", "4"]
    assert list(chain["parents"]) == ["", "1", "3"]
    assert list(chain["task_duration_s"]) == [100.0, 30.0, 0.5]
    assert list(chain["cpus_per_task"]) == [4.0, 8.0, 1.0]  # field 5, else field 8
    assert (chain["submit_s"] == 0.0).all() and (chain["home"] == "us-west").all()
    ckpt = rows_of(trace, "6")  # two partial executions: one run of 25 + 35 s
    assert ckpt.loc["6", "task_duration_s"] == 60.0 and ckpt.loc["6", "home"] == "eu-central"
    assert trace.skipped == {"failed or cancelled, status 0 (replay_failed is off)": 1, "preceding job not replayed": 1}
    assert trace.adjusted == {
        "checkpointed jobs replayed as one run (the sum of their partial executions)": 1,
        "jobs with a 0 s run time replayed as 0.5 s (half the 1 s resolution)": 1,
    }
    window = load_swf(path, JobImportOptions(start_s=3, end_s=50))
    assert set(window.stages["job"]) == {"6"} and window.stages["submit_s"].tolist() == [37.0]
    assert window.origin_utc == pd.Timestamp("2005-01-01T00:00:03Z")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ("1 5 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n2 4 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n", r"line 2: field 2"),
        ("1 0 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 7 -1\n", r"line 1: field 17 preceding_job_number 7: not an earlier"),
        ("1 0 0 -9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n", r"line 1: field 4 run_time '-9'"),
        ("1 0 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1\n", r"line 1: 17 fields; expected 18"),
        ("1 0 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1 4\n", r"line 1: 19 fields; expected 18"),
        (
            "1 0 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n1 0 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n",
            r"line 2: job number 1",
        ),
        ("1 0 0 9 x -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n", r"line 1: field 5 allocated_processors 'x'"),
    ],
)
def test_swf_rejects_bad_lines(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        load_swf(write(tmp_path / "log.swf", lines))


def test_swf_missing_preceding_job_can_be_skipped(tmp_path):
    path = write(
        tmp_path / "log.swf", "1 0 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 7 -1\n2 1 0 9 1 -1 -1 1 -1 -1 1 1 1 1 1 1 -1 -1\n"
    )
    trace = load_swf(path, JobImportOptions(missing_parents="skip"))
    assert set(trace.stages["job"]) == {"2"} and trace.skipped == {"preceding job not in the log": 1}


# ---------------------------------------------------------------- Slurm sacct --parsable2

SACCT = """\
State|JobID|Partition|Submit|Start|End|AllocCPUS|AllocTRES|Elapsed|JobName
COMPLETED|101|gpu|2024-03-01T10:00:00|2024-03-01T10:05:00|2024-03-01T11:05:00|8|billing=8,cpu=8,gres/gpu:a100=2,gres/gpu=2,mem=64G,node=1|01:00:00|train
COMPLETED|101.batch||2024-03-01T10:05:00|2024-03-01T10:05:00|2024-03-01T11:05:00|8|cpu=8,gres/gpu:a100=2,gres/gpu=2,mem=64G,node=1|01:00:00|batch
COMPLETED|101.extern||2024-03-01T10:05:00|2024-03-01T10:05:00|2024-03-01T11:05:00|8|cpu=8,mem=64G,node=1|01:00:00|extern
FAILED|102|cpu|2024-03-01T09:00:00|2024-03-01T09:00:10|2024-03-01T09:30:10|4|billing=4,cpu=4,mem=8G,node=1|00:30:00|prep
PENDING|103_[1-4]|cpu|2024-03-01T12:00:00|Unknown|Unknown|0||00:00:00|sweep
CANCELLED by 1000|105+0|cpu|2024-03-01T12:00:00|2024-03-01T12:00:00|2024-03-01T12:10:00|2|cpu=2|00:10:00|het
CANCELLED by 1000|105+1|gpu|2024-03-01T12:00:00|2024-03-01T12:00:00|2024-03-01T12:10:00|1|cpu=1,gres/gpu:t4=1,gres/gpu=1|00:10:00|het
COMPLETED|106_3|cpu|2024-03-01T13:00:00|2024-03-01T13:00:00|2024-03-01T13:00:00|1|cpu=1|00:00:00|short
"""  # noqa: E501


def test_sacct_maps_allocations_gpus_and_steps(tmp_path):
    path = write(tmp_path / "sacct.txt", SACCT)
    trace = load_sacct(path, JobImportOptions(homes={"gpu": "us-west", "cpu": "us-south"}))
    assert trace.origin_utc == pd.Timestamp("2024-03-01T09:00:00Z")  # the earliest submission
    j = rows_of(trace, "101").loc["0"]
    assert (j["submit_s"], j["task_duration_s"], j["cpus_per_task"]) == (3600.0, 3600.0, 8.0)
    assert (j["gpus_per_task"], j["gpu_type"], j["home"]) == (2.0, "A100", "us-west")
    assert rows_of(trace, "106_3").loc["0", "task_duration_s"] == 0.5
    assert trace.skipped == {
        "did not end: state PENDING": 1,
        "ended without success: state CANCELLED (replay_failed is off)": 1,
        "ended without success: state FAILED (replay_failed is off)": 1,
        "job step rows (run inside their job's allocation, which is replayed)": 2,
    }
    failed = load_sacct(path, JobImportOptions(replay_failed=True))
    het = rows_of(failed, "105")  # heterogeneous components: parallel stages of one job
    assert list(het.index) == ["0", "1"] and het.loc["1", "gpu_type"] == "T4" and het.loc["1", "gpus_per_task"] == 1
    assert rows_of(failed, "102").loc["0", "task_duration_s"] == 1800.0


def test_sacct_local_time_zone_and_minimal_fields(tmp_path):
    text = "JobID|Submit|ElapsedRaw|State|NCPUS\n7|2024-07-01T12:00:00|90|COMPLETED|3\n8|1719835200|60|COMPLETED|1\n"
    trace = load_sacct(write(tmp_path / "s.txt", text), JobImportOptions(timezone="Europe/Berlin"))
    assert trace.origin_utc == pd.Timestamp("2024-07-01T10:00:00Z")  # 12:00 CEST
    assert rows_of(trace, "7").loc["0", "task_duration_s"] == 90.0
    assert rows_of(trace, "8").loc["0", "submit_s"] == 2 * 3600.0  # Unix seconds (SLURM_TIME_FORMAT=%s)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("JobID|Submit|State|NCPUS|Colour\n", r"line 1: field 'Colour' is not a sacct field"),
        ("JobID|Submit|State|NCPUS\n", r"line 1: no field for a run time"),
        ("JobID|Submit|ElapsedRaw|NCPUS\n", r"line 1: no field for State"),
        (
            "JobID|Submit|Start|End|State|NCPUS\n1|2024-01-01T00:00:00|2024-01-01T02:00:00|2024-01-01T01:00:00|COMPLETED|1\n",
            r"line 2: End before Start",
        ),
        (
            "JobID|Submit|ElapsedRaw|State|NCPUS\n1|2024-01-01T00:00:00|5|COMPLETED|1|9\n",
            r"line 2: 6 fields; expected 5",
        ),
        ("JobID|Submit|ElapsedRaw|State|NCPUS\n1|yesterday|5|COMPLETED|1\n", r"line 2: field Submit 'yesterday'"),
        ("JobID|Submit|ElapsedRaw|State|NCPUS\n1|1|5|DONE|1\n", r"line 2: field State 'DONE'"),
        (
            "JobID|Submit|ElapsedRaw|State|NCPUS\n1|1|5|COMPLETED|1\n1|2|5|COMPLETED|1\n",
            r"line 3: JobID 1 also on .*line 2",
        ),
        ("JobID|Submit|Elapsed|State|NCPUS\n1|1|5 min|COMPLETED|1\n", r"line 2: field Elapsed '5 min'"),
        ("JobID|Submit|ElapsedRaw|State|AllocTRES\n1|1|5|COMPLETED|cpu\n", r"line 2: field AllocTRES item 'cpu'"),
    ],
)
def test_sacct_rejects_bad_input(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_sacct(write(tmp_path / "sacct.txt", text))


# ---------------------------------------------------------------- plain CSV

CSV = """\
job,stage,submit_s,tasks,duration_s,cpus,gpus,gpu_type,parents,home,deadline_s,interruptible
a,map,10,4,60,2,0,,,us-west,1000,1
a,reduce,10,1,30,1,0,,map,us-west,1000,1
b,train,5,1,3600,8,4,a100,,,,
"""


def test_csv_maps_stages_dependencies_and_gpus(tmp_path):
    trace = load_csv_jobs(write(tmp_path / "jobs.csv", CSV))
    a = rows_of(trace, "a")
    assert a.loc["reduce", "parents"] == "map" and a.loc["map", "tasks"] == 4
    assert (a["deadline_s"] == 1000.0).all() and (a["interruptible"] == 1.0).all()
    b = rows_of(trace, "b").loc["train"]
    assert (b["gpus_per_task"], b["gpu_type"], b["home"]) == (4.0, "A100", "")
    assert math.isnan(b["deadline_s"]) and math.isnan(b["interruptible"])
    assert list(trace.stages["job"].unique()) == ["b", "a"]
    shapes = job_shapes(trace).set_index("job")
    assert shapes.loc["a", "critical_path_s"] == 90.0 and shapes.loc["a", "depth"] == 2
    assert shapes.loc["a", "task_seconds"] == 270.0 and shapes.loc["a", "max_fan_in"] == 1


def test_csv_time_window_rebases_submissions(tmp_path):
    trace = load_csv_jobs(write(tmp_path / "jobs.csv", CSV), JobImportOptions(start_s=6, end_s=20))
    assert set(trace.stages["job"]) == {"a"} and (trace.stages["submit_s"] == 4.0).all()
    assert (trace.stages["deadline_s"] == 994.0).all()
    assert trace.skipped == {"submitted before the time window": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("job,submit_s,duration_s,cpus,colour\n", r"jobs.csv: line 1: unknown column\(s\) \['colour'\]"),
        ("job,submit_s,cpus\n", r"line 1: missing column\(s\) \['duration_s'\]"),
        ("job,submit_s,duration_s\n", r"line 1: missing column\(s\) \['cpus or gpus'\]"),
        ("job,submit_s,duration_s,cpus\nj,0,-5,1\n", r"line 2: field duration_s -5; expected a run time > 0"),
        ("job,submit_s,duration_s,cpus\nj,0,5,1,2\n", r"line 2: 5 fields; expected 4"),
        ("job,submit_s,duration_s,cpus\nj,0,5\n", r"line 2: 3 fields; expected 4"),
        ("job,stage,submit_s,duration_s,cpus,parents\nj,a,0,5,1,b\nj,b,0,5,1,a\n", r"line 2: job j: .*form a cycle"),
        (
            "job,stage,submit_s,duration_s,cpus,parents\nj,a,0,5,1,zz\n",
            r"line 2: job j: stage a has parent\(s\) \['zz'\]",
        ),
        ("job,stage,submit_s,duration_s,cpus\nj,a,0,5,1\nj,a,0,5,1\n", r"line 3: job j: stage a appears twice"),
        (
            "job,stage,submit_s,duration_s,cpus\nj,a,0,5,1\nj,b,3,5,1\n",
            r"job j: its stages disagree on submit_s .*line 2",
        ),
        ("job,submit_s,duration_s,cpus,interruptible\nj,0,5,1,2\n", r"line 2: field interruptible 2"),
        ("job,submit_s,duration_s,cpus\nj,0,5,0\n", r"job j stage 0: no CPUs or GPUs.*line 2"),
    ],
)
def test_csv_rejects_bad_input(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        load_csv_jobs(write(tmp_path / "jobs.csv", text))


# ---------------------------------------------------------------- configuration and deadlines


def test_load_job_trace_from_config(tmp_path):
    write(tmp_path / "jobs.csv", CSV)
    batch = build(BatchConfig, {"source": {"format": "csv", "paths": ["jobs.csv"], "options": {"home": "eu-central"}}})
    trace = load_job_trace(batch.source, base_dir=tmp_path)
    assert rows_of(trace, "b").loc["train", "home"] == "eu-central" and trace.n_jobs == 2
    with pytest.raises(DataError, match="file not found"):
        load_job_trace(JobSourceConfig(format="swf", paths=("missing.swf",)), base_dir=tmp_path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"format": "parquet", "paths": ["x"]}, "source.format: expected one of"),
        ({"format": "csv"}, "source.paths: expected at least one file"),
        ({"format": "google_2019", "paths": ["i"]}, "source.job_paths: expected the collection_events"),
        ({"format": "swf", "paths": ["a"], "options": {"end_s": 0}}, "source.options.end_s"),
        ({"format": "csv", "paths": ["a"], "options": {"missing_parents": "ignore"}}, "missing_parents"),
        ({"format": "csv", "paths": ["a"], "options": {"colour": 1}}, r"unknown field\(s\) colour"),
    ],
)
def test_job_source_config_is_validated(source, message):
    with pytest.raises(ConfigError, match=message):
        build(BatchConfig, {"source": source})


def test_deadline_rules_use_the_critical_path(tmp_path):
    trace = load_csv_jobs(write(tmp_path / "jobs.csv", CSV))
    assert critical_path_s(trace.stages).to_dict() == {"b": 3600.0, "a": 90.0}
    slack = with_deadlines(trace, "slack", slack_factor=3.0)
    assert rows_of(slack, "b").loc["train", "deadline_s"] == 5 + 3 * 3600.0
    assert (rows_of(slack, "a")["deadline_s"] == 1000.0).all()  # the trace's own deadline is kept
    window = with_deadlines(trace, "window", window_h=2.0)
    assert rows_of(window, "b").loc["train", "deadline_s"] == 5 + 3600.0 + 7200.0
    with pytest.raises(DataError, match="slack_factor"):
        with_deadlines(trace, "slack", slack_factor=0.5)


# ---------------------------------------------------------------- malformed rows never escape as other errors

_token = st.one_of(
    st.sampled_from(["", "-1", "0", "1", "2.5", "1e400", "nan", "x", "Terminated", "Failed", "M1", "R2_1", "J3_1_2"]),
    st.integers(-(10**12), 10**12).map(str),
    st.text(alphabet="abc_|,;: 0123456789.-+=/", max_size=8),
)


def _lines(sep: str, min_fields: int, max_fields: int):
    row = st.lists(_token, min_size=min_fields, max_size=max_fields).map(sep.join)
    return st.lists(row, min_size=1, max_size=6).map(lambda rs: "\n".join(rs) + "\n")


def _try(load, name: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        try:
            trace = load(path)
        except DataError:
            return
        assert set(trace.stages.columns) >= {"job", "stage", "submit_s"}
        assert np.isfinite(trace.stages["task_duration_s"]).all()


FUZZ = {
    "alibaba_2018": (lambda p: load_alibaba_2018(p), "batch_task.csv", ",", 8, 10),
    "pai_2020": (lambda p: load_pai_2020(p), "pai_task_table.csv", ",", 9, 11),
    "google_2011": (lambda p: load_google_2011(p), "task_events.csv", ",", 12, 14),
    "swf": (lambda p: load_swf(p), "log.swf", " ", 17, 19),
    "slurm_sacct": (lambda p: load_sacct(p), "sacct.txt", "|", 4, 6),
    "csv": (lambda p: load_csv_jobs(p), "jobs.csv", ",", 3, 5),
}
HEADERS = {"slurm_sacct": "JobID|Submit|ElapsedRaw|State|NCPUS\n", "csv": "job,stage,submit_s,duration_s,cpus\n"}


@pytest.mark.parametrize("fmt", sorted(FUZZ))
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_malformed_rows_load_or_raise_data_error(fmt, data):
    load, name, sep, lo, hi = FUZZ[fmt]
    text = HEADERS.get(fmt, "") + data.draw(_lines(sep, lo, hi))
    _try(load, name, text)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    recs=st.lists(
        st.fixed_dictionaries(
            {
                "time": st.one_of(st.integers(-5, 10**9), st.just("7"), st.just(None), st.just("x")),
                "type": st.one_of(st.integers(-1, 12), st.just("3")),
                "collection_id": st.one_of(st.integers(1, 3), st.just("2"), st.just([1])),
                "instance_index": st.integers(0, 2),
                "collection_type": st.one_of(st.integers(0, 1), st.none()),
                "resource_request": st.one_of(
                    st.none(), st.fixed_dictionaries({"cpus": st.one_of(st.floats(-1, 1), st.just("a"))})
                ),
                "start_after_collection_ids": st.one_of(st.lists(st.integers(1, 4), max_size=2), st.just(5)),
            }
        ),
        min_size=1,
        max_size=8,
    )
)
def test_google_2019_malformed_records_load_or_raise_data_error(recs):
    coll_keys = {"time", "type", "collection_id", "collection_type", "start_after_collection_ids"}
    inst_keys = {"time", "type", "collection_id", "instance_index", "collection_type", "resource_request"}
    with tempfile.TemporaryDirectory() as tmp:
        c = _jsonl(Path(tmp) / "c.json", [{k: v for k, v in r.items() if k in coll_keys} for r in recs])
        i = _jsonl(Path(tmp) / "i.json", [{k: v for k, v in r.items() if k in inst_keys} for r in recs])
        with contextlib.suppress(DataError):
            load_google_2019(i, c)


def test_batch_source_composes_from_the_command_line(tmp_path):
    from carbonsim import load_config

    write(tmp_path / "jobs.csv", CSV)
    cfg = load_config(
        overrides=[
            "scenario.batch.source.format=csv",
            "scenario.batch.source.paths=[jobs.csv]",
            "scenario.batch.source.options.end_s=8",
            "+scenario.batch.source.options.homes={us-west: eu-central}",
        ]
    )
    trace = load_job_trace(cfg.scenario.batch.source, base_dir=tmp_path)
    assert set(trace.stages["job"]) == {"b"} and trace.skipped == {"submitted after the time window": 1}
