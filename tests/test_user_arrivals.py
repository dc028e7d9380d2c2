"""Arrival traces from the user's files: loading, validation, replay that keeps each request's model, runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import make_scenario, scenario_data, workload
from own_data import run_config

from carbonsim import ConfigError, build
from carbonsim.config import ScenarioConfig
from carbonsim.core.arrivals import arrival_times, draw_requests
from carbonsim.data.errors import DataError
from carbonsim.data.user_arrivals import load_arrival_trace
from carbonsim.inputs import request_inputs
from carbonsim.runner import prepare, run


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def burstgpt(path, n: int = 400, seed: int = 1):
    """A log in BurstGPT's columns: seconds from the trace start, model, request and response tokens."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(0.5, n))
    models = np.where(rng.uniform(size=n) < 0.25, "GPT-4", "ChatGPT")
    frame = pd.DataFrame(
        {
            "Timestamp": np.round(t, 3),
            "Model": models,
            "Request tokens": rng.integers(1, 2000, n),
            "Response tokens": rng.integers(1, 800, n),
            "Total tokens": 0,
            "Log Type": "Conversation log",
        }
    )
    frame.to_csv(path, index=False)
    return frame


TRACE = {
    "path": "log.csv",
    "timestamp_column": "Timestamp",
    "time_unit": "s",
    "model_column": "Model",
    "models": {"ChatGPT": "small", "GPT-4": "large"},
    "context_tokens_column": "Request tokens",
    "generated_tokens_column": "Response tokens",
}
WORKLOADS = [workload("small", share=0.5), workload("large", share=0.5)]


def test_loads_a_burstgpt_style_log(tmp_path):
    frame = burstgpt(tmp_path / "log.csv")
    out = load_arrival_trace(
        "log.csv",
        timestamp_column="Timestamp",
        time_unit="s",
        model_column="Model",
        models=TRACE["models"],
        workloads=["small", "large"],
        context_tokens_column="Request tokens",
        generated_tokens_column="Response tokens",
    )
    assert out["arrival_s"].iloc[0] == 0.0
    np.testing.assert_allclose(out["arrival_s"], frame["Timestamp"] - frame["Timestamp"].iloc[0], atol=1e-6)
    np.testing.assert_array_equal(out["workload"], np.where(frame["Model"] == "GPT-4", 1, 0))
    np.testing.assert_array_equal(out["context_tokens"], frame["Request tokens"])


def test_iso_timestamps_in_a_local_zone(tmp_path):
    # Across the Berlin spring switch: 01:59:59 local is followed by 03:00:00 local, one second later.
    (tmp_path / "a.csv").write_text("time\n2024-03-31 01:59:58\n2024-03-31 01:59:59\n2024-03-31 03:00:00\n")
    out = load_arrival_trace("a.csv", timestamp_column="time", timezone="Europe/Berlin")
    np.testing.assert_array_equal(out["arrival_s"], [0.0, 1.0, 2.0])


def test_replay_keeps_each_requests_model(tmp_path):
    burstgpt(tmp_path / "log.csv")
    scenario = make_scenario(workloads=WORKLOADS, arrivals={"kind": "replay", "rate_per_s": 4.0, "trace_file": TRACE})
    inputs = request_inputs(scenario)
    assert inputs.replay_workload is not None
    requests = draw_requests(scenario, 0, 2.0, inputs.load_shape, inputs.replay_s, inputs.replay_workload)
    # The same times as the replay machinery gives without models (scaling, tiling, thinning unchanged).
    times = arrival_times(scenario.arrivals, 2.0, np.random.default_rng(0), None, inputs.replay_s)
    assert len(requests) == pytest.approx(4.0 * 7200, rel=0.03) and times.size == pytest.approx(len(requests), rel=0.03)
    # Each replayed request is a copy of a trace row, so the model mix is the trace's (25 % GPT-4), not 50/50.
    share_large = float(np.mean(requests.workload == 1))
    assert share_large == pytest.approx(float(np.mean(inputs.replay_workload == 1)), abs=0.02)
    again = draw_requests(scenario, 0, 2.0, inputs.load_shape, inputs.replay_s, inputs.replay_workload)
    np.testing.assert_array_equal(requests.workload, again.workload)
    np.testing.assert_array_equal(requests.arrival_s, again.arrival_s)


def test_scenario_runs_end_to_end_from_a_user_arrival_trace(tmp_path):
    pd.DataFrame(
        {"timestamp": pd.date_range("2024-05-01T10:00Z", periods=300, freq="7s").strftime("%Y-%m-%dT%H:%M:%SZ")}
    ).to_csv(tmp_path / "requests.csv", index=False)
    data = scenario_data(arrivals={"kind": "replay", "rate_per_s": 0.2, "trace_file": {"path": "requests.csv"}})
    cfg = run_config(data)
    out = run(cfg)
    _world, requests, _jobs = prepare(cfg)
    # A regular trace (7 s gaps) scaled to 0.2 requests/s: every request 5 s after the last, over two hours.
    np.testing.assert_allclose(np.diff(requests.arrival_s), 5.0)
    assert requests.arrival_s[0] == 0.0 and requests.arrival_s[-1] >= 7195.0 - 1e-6
    assert out.summary["requests"] == len(requests) == out.summary["completed"]


BAD = [
    (
        "t,m\n1.0,a\n0.5,a\n",
        {},
        r"a\.csv: row 2 \(line 3\): .* is before the previous request's .*; expected requests in time order",
    ),
    ("t,m\n1.0,a\n2.0,a,x\n", {}, r"a\.csv: row 2 \(line 3\): 3 field\(s\); expected 2"),
    ("t,m\n1.0,a\n2.0\n", {}, r"a\.csv: row 2 \(line 3\): 1 field\(s\); expected 2"),
    (
        "t,m\n1.0,a\n2.0,z\n",
        {"model_column": "m"},
        r"row 2 \(line 3\): model 'z' in column 'm' is not mapped to a workload; expected one of \['a'\]",
    ),
    ("t,m\n1.0,a\n1.0,a\n", {}, r"all 2 requests at"),
    (
        "t,m\n1.0,a\n2.0,a\n",
        {"timestamp_column": "time"},
        r"no timestamp column 'time'; the file has columns \['t', 'm'\]",
    ),
    ("t,m\n1.0,a\nsoon,a\n", {}, r"row 2 \(line 3\).*'soon' in column 't' is not a number"),
    ("t,k\n1.0,3\n2.0,-1\n", {"context_tokens_column": "k"}, r"row 2 \(line 3\).*negative value -1 in column 'k'"),
    (
        "t,k\n1.0,3\n2.0,1.5\n",
        {"context_tokens_column": "k"},
        r"row 2 \(line 3\): 1.5 in column 'k'; expected whole tokens",
    ),
]


@pytest.mark.parametrize(("text", "options", "message"), BAD)
def test_bad_arrival_traces_are_rejected_naming_file_row_and_column(tmp_path, text, options, message):
    (tmp_path / "a.csv").write_text(text)
    kw = {"timestamp_column": "t", "time_unit": "s", "workloads": ["a"], **options}
    with pytest.raises(DataError, match=message):
        load_arrival_trace(tmp_path / "a.csv", **kw)


@pytest.mark.parametrize(
    ("arrivals", "message"),
    [
        (
            {"kind": "poisson", "trace_file": {"path": "x.csv"}},
            "arrivals.trace_file: expected null unless kind is replay",
        ),
        (
            {"kind": "replay", "trace": "azure_llm_code", "trace_file": {"path": "x.csv"}},
            "arrivals.trace: expected empty",
        ),
        (
            {"kind": "replay", "trace_file": {"path": "x.csv", "models": {"a": "w0"}}},
            "trace_file.models: expected empty unless",
        ),
        (
            {"kind": "replay", "trace_file": {"path": "x.csv", "model_column": "m", "models": {"a": "nope"}}},
            "arrivals.trace_file.models: unknown workload(s) nope; workloads in this scenario: w0",
        ),
        (
            {"kind": "replay", "trace_file": {"path": "x.csv", "time_unit": "h"}},
            "trace_file.time_unit: expected one of iso, s, ms, us",
        ),
    ],
)
def test_bad_arrival_trace_settings_are_config_errors(arrivals, message):
    with pytest.raises(ConfigError) as info:
        build(ScenarioConfig, scenario_data(arrivals=arrivals), "scenario")
    assert message in str(info.value)
