"""What a run shows while it runs: a bar on a terminal, lines on standard error otherwise, an estimate first."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

import carbonsim
from carbonsim.cli import DOCUMENTED_REQUESTS_PER_S, LONG_RUN_S, estimate_line, sim_progress
from carbonsim.core.simulation import Progress
from carbonsim.runner import run


@pytest.fixture(scope="module")
def cfg():
    return carbonsim.load_config(["scenario=illustrative", "sim_hours=0.2"])


def test_without_a_terminal_progress_is_lines_on_stderr(cfg):
    stream = io.StringIO()
    # line_s=0: a line at every report (a real run prints one every 30 wall-clock seconds).
    with sim_progress(Console(file=io.StringIO()), runs=2, stream=stream, line_s=0.0) as progress:
        out = run(cfg, progress)
    lines = stream.getvalue().splitlines()
    label = out.summary["label"]
    window = [line for line in lines if line.startswith(f"carbonsim: {label}: ") and "simulated h (" in line]
    assert window, lines
    # Simulated time, requests done, rate and time left, in that order.
    assert re.fullmatch(
        rf"carbonsim: {re.escape(label)}: [\d.]+ / 0\.2 simulated h \(\d+%\), [\d,]+ / [\d,]+ requests done, "
        r"[\d,]+ requests/s(, about \d+ s left)?",
        window[-1],
    ), window[-1]
    assert any("drain after the arrival window" in line for line in lines), lines
    requests = out.summary["requests"]
    assert f"carbonsim: {label}: done in" in stream.getvalue()
    assert "carbonsim: latency_first: done in" in stream.getvalue()
    assert f"({requests:,} requests)" in lines[-1]
    # A short run says nothing about how long it will take.
    assert not any("documented" in line for line in lines)


def test_a_long_run_says_how_long_it_will_take_before_it_starts():
    # The default scenario's week: 36 million requests, the policy and the baseline.
    week = Progress(now_s=0.0, horizon_s=168 * 3600.0, stop_s=192 * 3600.0, requests=36_000_000, finished=0)
    line = estimate_line(week, runs=2)
    assert line is not None
    assert "36,000,000 requests over 168 simulated hours in 2 run(s)" in line
    assert f"about {2 * 36_000_000 / DOCUMENTED_REQUESTS_PER_S / 60:.0f} min" in line
    short = Progress(now_s=0.0, horizon_s=3600.0, stop_s=3600.0, requests=1000, finished=0)
    assert estimate_line(short, runs=2) is None
    assert 1000 * 2 / DOCUMENTED_REQUESTS_PER_S < LONG_RUN_S


def test_the_estimate_comes_before_the_first_progress_line(cfg, monkeypatch):
    monkeypatch.setattr("carbonsim.cli.LONG_RUN_S", 0.0)  # this short run counts as long
    stream = io.StringIO()
    with sim_progress(Console(file=io.StringIO()), runs=2, stream=stream, line_s=0.0) as progress:
        run(cfg, progress)
    lines = stream.getvalue().splitlines()
    assert "at the documented" in lines[0] and "in 2 run(s)" in lines[0]
    assert sum("documented" in line for line in lines) == 1


def test_on_a_terminal_a_bar_covers_the_arrival_window_and_the_drain_its_own(cfg, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    stream = io.StringIO()
    with sim_progress(console, runs=2, stream=stream) as progress:
        run(cfg, progress)
    text = screen.getvalue()
    assert "0.2 / 0.2 simulated h" in text
    assert "latency_first: drain" in text and "every request finished" in text
    assert stream.getvalue() == ""  # nothing on standard error
