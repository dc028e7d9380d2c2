"""Workload loaders (Azure LLM arrivals, SustainDC load shapes, GAIA jobs) on real files and corrupted copies."""

from __future__ import annotations

import numpy as np
import pytest
from test_data_paths import TRACES, assert_message, corrupt, set_cell, swap

from carbonsim.data import (
    DataError,
    available_gaia_traces,
    available_load_shapes,
    load_gaia_jobs,
    load_llm_arrivals,
    load_llm_requests,
    load_load_shape,
)

WORKLOADS = TRACES / "workloads"
CODE = WORKLOADS / "azure_llm_inference_2023_code.csv.gz"
ALIBABA_1 = WORKLOADS / "sustaindc_Alibaba_CPU_Data_Hourly_1.csv.gz"
PAI_1K = WORKLOADS / "gaia_batch_jobs_pai_1k.csv.gz"
AZURE_100K = WORKLOADS / "gaia_batch_jobs_azure_100k.csv.gz"


def test_llm_arrivals_real():
    code = load_llm_arrivals("code")
    conv = load_llm_arrivals("conv")
    assert (len(code), len(conv)) == (8_819, 19_366)
    assert code.dtype == np.float64
    assert code[0] == 0.0 and conv[0] == 0.0
    assert code[1] == pytest.approx(0.052, abs=1e-9)  # 18:17:04.0319600 - 18:17:03.9799600
    assert conv[1] == pytest.approx(4.314579, abs=1e-9)
    assert code[-1] == pytest.approx(3435.948056, abs=1e-9)  # ~57 min of requests
    assert (np.diff(code) >= 0).all() and (np.diff(conv) >= 0).all()


def test_llm_requests_tokens():
    req = load_llm_requests("code")
    assert list(req.columns) == ["arrival_s", "context_tokens", "generated_tokens"]
    assert req.iloc[0].tolist() == [0.0, 4808, 10]
    assert req["context_tokens"].dtype == np.int64
    assert req["generated_tokens"].min() == 6 and req["context_tokens"].max() == 7437


def test_llm_unknown_kind():
    with pytest.raises(DataError, match=r"unknown Azure LLM trace kind 'chat'; expected one of \['code', 'conv'\]"):
        load_llm_arrivals("chat")


def test_llm_unsorted_and_bad_timestamp(tmp_path):
    path = corrupt(CODE, tmp_path, lambda lines: swap(lines, 40, 41))
    with pytest.raises(DataError) as exc:
        load_llm_arrivals("code", path)
    assert_message(exc, str(path), "not in arrival order: row 41 (line 42)", "before row 40 (line 41)")
    path = corrupt(CODE, tmp_path, lambda lines: set_cell(lines, 3, 0, "16/11/2023 18:17:04"))
    with pytest.raises(DataError) as exc:
        load_llm_arrivals("code", path)
    assert_message(exc, "row 3 (line 4)", "cannot parse timestamp '16/11/2023 18:17:04'")


def test_llm_bad_tokens_and_header(tmp_path):
    path = corrupt(CODE, tmp_path, lambda lines: set_cell(lines, 6, 2, "-10"))
    with pytest.raises(DataError, match=r"row 6 \(line 7\): negative value -10 in column 'GeneratedTokens'"):
        load_llm_requests("code", path)
    path = corrupt(CODE, tmp_path, lambda lines: set_cell(lines, 8, 1, "12.5"))
    with pytest.raises(DataError, match=r"row 8 \(line 9\): 12.5 in column 'ContextTokens'; expected whole tokens"):
        load_llm_requests("code", path)
    path = corrupt(CODE, tmp_path, lambda lines: lines.__setitem__(0, "TIMESTAMP,ContextTokens"))
    with pytest.raises(DataError, match=r"unexpected header \['TIMESTAMP', 'ContextTokens'\]"):
        load_llm_requests("code", path)


def test_load_shapes_real():
    assert available_load_shapes() == ["alibaba_1", "alibaba_2", "google_1"]
    lengths = {name: len(load_load_shape(name)) for name in available_load_shapes()}
    assert lengths == {"alibaba_1": 8_904, "alibaba_2": 8_904, "google_1": 8_760}
    alibaba = load_load_shape("alibaba_1")
    assert alibaba[0] == 0.3809444444444444
    assert alibaba.min() >= 0.0 and alibaba.max() <= 1.0
    google = load_load_shape("google_1")
    assert google[-1] == 0.6961344494307483


def test_load_shape_errors(tmp_path):
    with pytest.raises(DataError, match=r"unknown load shape 'azure'"):
        load_load_shape("azure")
    path = corrupt(ALIBABA_1, tmp_path, lambda lines: set_cell(lines, 4, 1, "1.2"))
    with pytest.raises(DataError, match=r"row 4 \(line 5\): value 1.2 in column 'cpu_load' outside .*\[0, 1\]"):
        load_load_shape("alibaba_1", path)
    path = corrupt(ALIBABA_1, tmp_path, lambda lines: lines.pop(10))
    with pytest.raises(DataError, match=r"row 10 \(line 11\): hour counter 11 follows 9 \(1 hour\(s\) missing\)"):
        load_load_shape("alibaba_1", path)
    path = corrupt(ALIBABA_1, tmp_path, lambda lines: set_cell(lines, 2, 1, ""))
    with pytest.raises(DataError, match=r"row 2 \(line 3\): empty cell \(NaN\) in column 'cpu_load'"):
        load_load_shape("alibaba_1", path)
    path = corrupt(ALIBABA_1, tmp_path, lambda lines: lines.__setitem__(0, "hour,cpu_load"))
    with pytest.raises(DataError, match=r"unexpected header \['hour', 'cpu_load'\]; expected \['', 'cpu_load'\]"):
        load_load_shape("alibaba_1", path)


@pytest.mark.parametrize(
    ("name", "jobs", "last_arrival_s"),
    [
        ("azure_100k", 99_988, 8759.916666666666 * 3600),
        ("pai_100k", 99_998, 8759.450277777776 * 3600),
        ("mustang_trace_2015_100k", 100_000, 8755.318888888889 * 3600),
        ("pai_1k", 1_000, 604_756.0),
    ],
)
def test_gaia_jobs_real(name, jobs, last_arrival_s):
    df = load_gaia_jobs(name)
    assert list(df.columns) == ["arrival_s", "duration_s", "cpus"]
    assert len(df) == jobs
    assert df["arrival_s"].iloc[0] == 0.0
    assert df["arrival_s"].iloc[-1] == pytest.approx(last_arrival_s)
    assert df["arrival_s"].is_monotonic_increasing
    assert (df["duration_s"] > 0).all() and (df["cpus"] >= 1).all()
    assert df["cpus"].dtype == np.int64


def test_gaia_units_are_converted_per_file():
    assert available_gaia_traces() == ["azure_100k", "mustang_trace_2015_100k", "pai_100k", "pai_1k"]
    azure = load_gaia_jobs("azure_100k")
    assert azure.iloc[0].tolist() == [0.0, 0.75 * 3600, 4]  # hours in the file
    pai = load_gaia_jobs("pai_1k")
    assert pai.iloc[0].tolist() == [0.0, 6302.0, 1]  # seconds in the file
    assert pai.iloc[1].tolist() == [68.0, 1000.0, 1]


def test_gaia_errors(tmp_path):
    with pytest.raises(DataError, match=r"unknown GAIA trace 'google'"):
        load_gaia_jobs("google")
    path = corrupt(PAI_1K, tmp_path, lambda lines: swap(lines, 5, 6))
    with pytest.raises(DataError, match=r"row 6 \(line 7\): arrival_time .* s before row 5 .*non-decreasing"):
        load_gaia_jobs("pai_1k", path)
    path = corrupt(PAI_1K, tmp_path, lambda lines: set_cell(lines, 3, 1, "0"))
    with pytest.raises(DataError, match=r"row 3 \(line 4\): length 0 s; expected a positive job duration"):
        load_gaia_jobs("pai_1k", path)
    path = corrupt(AZURE_100K, tmp_path, lambda lines: set_cell(lines, 2, 2, "1.5"))
    with pytest.raises(DataError, match=r"row 2 \(line 3\): cpus 1.5; expected a whole number of CPUs"):
        load_gaia_jobs("azure_100k", path)
    path = corrupt(AZURE_100K, tmp_path, lambda lines: set_cell(lines, 1, 0, "-1"))
    with pytest.raises(DataError, match=r"row 1 \(line 2\): negative value -1 in column 'arrival_time'"):
        load_gaia_jobs("azure_100k", path)
    path = corrupt(AZURE_100K, tmp_path, lambda lines: set_cell(lines, 9, 1, ""))
    with pytest.raises(DataError, match=r"row 9 \(line 10\): empty cell \(NaN\) in column 'length'"):
        load_gaia_jobs("azure_100k", path)
