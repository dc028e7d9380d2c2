"""NVIDIA inference latency profiles on the real file and on corrupted copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_data_paths import TRACES, assert_message, corrupt, set_cell

from carbonsim.data import DataError, load_inference_profiles, service_profile
from carbonsim.data.profiles import PROFILES_HEADER

SRC = TRACES / "inference_profiles" / "nvidia_dle_inference_latency_bert_resnet50.csv"
COL = {name: i for i, name in enumerate(PROFILES_HEADER)}


@pytest.fixture(scope="module")
def profiles() -> pd.DataFrame:
    return load_inference_profiles()


def test_rows_columns_and_types(profiles):
    assert len(profiles) == 407
    assert list(profiles.columns) == list(PROFILES_HEADER)
    assert profiles["batch_size"].dtype == np.int64
    assert profiles["gpu_memory_gb"].dtype == np.int64
    assert profiles["xla"].dtype == bool
    assert str(profiles["seq_len"].dtype) == "Int64"
    assert profiles["latency_p99_ms"].dtype == np.float64
    assert pd.api.types.is_string_dtype(profiles["model"])
    assert sorted(profiles["model"].unique()) == ["bert-base", "bert-large", "resnet50-v1.5"]
    assert sorted(profiles["gpu"].unique()) == ["A100", "A30", "A40", "T4", "V100"]
    assert profiles["seq_len"].isna().sum() == 185  # the ResNet rows
    # p50 is published only by the Triton BERT-large tables (46 rows) and the TF1 BERT tables for T4 (32).
    assert profiles["latency_p50_ms"].notna().sum() == 78


def test_known_row(profiles):
    first = profiles.iloc[0]
    assert (first["model"], first["gpu"], first["gpu_memory_gb"], first["precision"]) == (
        "bert-base",
        "V100",
        16,
        "fp16",
    )
    assert (first["seq_len"], first["batch_size"], first["throughput"]) == (128, 1, 206.82)
    assert np.isnan(first["latency_p50_ms"]) and first["latency_p90_ms"] == 4.98 and first["latency_p99_ms"] == 5.23


def test_service_profile_of_one_configuration(profiles):
    prof = service_profile(
        "bert-large", "A100", serving_stack="triton_offline", backend="ONNX Runtime with FP16", profiles=profiles
    )
    assert list(prof.index) == [1, 8, 16]
    assert prof.index.name == "batch_size"
    assert list(prof.columns) == ["latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms"]
    assert prof.loc[1].tolist() == [6.8, 6.8, 6.8, 6.9]
    assert prof.loc[16, "latency_p50_ms"] == 56.4


def test_service_profile_keeps_missing_percentiles_missing(profiles):
    v100 = service_profile("bert-base", "V100", precision="fp16", seq_len=384, gpu_memory_gb=16, profiles=profiles)
    assert list(v100.index) == [1, 2, 4, 8]
    assert v100["latency_p50_ms"].isna().all()
    assert v100["latency_p99_ms"].is_monotonic_increasing
    t4 = service_profile("bert-base", "T4", precision="fp16", seq_len=384, profiles=profiles)
    assert t4.loc[1, "latency_p50_ms"] == 16.6


def test_service_profile_errors_list_valid_values(profiles):
    with pytest.raises(DataError, match=r"unknown model 'gpt-4'; valid models: \['bert-base', 'bert-large', 'resnet"):
        service_profile("gpt-4", "A100", profiles=profiles)
    with pytest.raises(DataError, match=r"GPUs profiled for 'bert-base': \['A100', 'T4', 'V100'\]"):
        service_profile("bert-base", "H100", profiles=profiles)
    with pytest.raises(DataError, match=r"with precision='int8'.*valid precision values: \['fp16', 'fp32', 'tf32'\]"):
        service_profile("bert-base", "A100", precision="int8", profiles=profiles)
    with pytest.raises(DataError) as exc:
        service_profile("bert-base", "V100", precision="fp16", seq_len=128, profiles=profiles)
    assert_message(exc, "3 measured configurations", "gpu_memory_gb in ['16', '32']", "system in [")


def test_service_profile_reads_the_shipped_file_by_default():
    prof = service_profile("resnet50-v1.5", "A40")
    assert list(prof.index) == [1, 2, 4, 8, 16, 32, 64, 128]


def copy(tmp_path, edit):
    return corrupt(SRC, tmp_path, edit, rows=None)


def test_negative_latency(tmp_path):
    path = copy(tmp_path, lambda lines: set_cell(lines, 5, COL["latency_p99_ms"], "-6.1"))
    with pytest.raises(DataError) as exc:
        load_inference_profiles(path)
    assert_message(exc, str(path), "row 5 (line 6)", "negative value -6.1 in column 'latency_p99_ms'")


def test_percentiles_out_of_order(tmp_path):
    path = copy(tmp_path, lambda lines: set_cell(lines, 386, COL["latency_p50_ms"], "60.0"))
    with pytest.raises(DataError) as exc:
        load_inference_profiles(path)
    assert_message(exc, "row 386 (line 387)", "latency_p50_ms 60 ms above latency_p90_ms 29.2 ms")


def test_non_integer_batch_and_missing_seq_len(tmp_path):
    path = copy(tmp_path, lambda lines: set_cell(lines, 7, COL["batch_size"], "2.5"))
    with pytest.raises(DataError, match=r"row 7 \(line 8\): value 2.5 in column 'batch_size'; expected an integer"):
        load_inference_profiles(path)
    path = copy(tmp_path, lambda lines: set_cell(lines, 9, COL["seq_len"], ""))
    with pytest.raises(DataError, match=r"row 9 \(line 10\): BERT row without seq_len"):
        load_inference_profiles(path)


def test_unknown_precision_and_empty_text(tmp_path):
    path = copy(tmp_path, lambda lines: set_cell(lines, 12, COL["precision"], "bf16"))
    with pytest.raises(DataError, match=r"row 12 \(line 13\): unknown precision 'bf16'; expected one of"):
        load_inference_profiles(path)
    path = copy(tmp_path, lambda lines: set_cell(lines, 13, COL["gpu"], ""))
    with pytest.raises(DataError, match=r"row 13 \(line 14\): empty cell in column 'gpu'"):
        load_inference_profiles(path)


def test_duplicated_measurement(tmp_path):
    path = copy(tmp_path, lambda lines: lines.insert(3, lines[2]))
    with pytest.raises(DataError, match=r"same configuration and batch size at rows 2, 3 \(lines 3, 4\)"):
        load_inference_profiles(path)


def test_wrong_header(tmp_path):
    path = copy(tmp_path, lambda lines: lines.__setitem__(0, lines[0].replace("latency_p50_ms", "p50")))
    with pytest.raises(
        DataError, match=r"line 1: unexpected header .*missing \['latency_p50_ms'\], unexpected \['p50'\]"
    ):
        load_inference_profiles(path)
