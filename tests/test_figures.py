"""The figures of a sweep: only the arrival window, a style per policy, panels by what the sweep holds."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from carbonsim.analysis.figures import N_COLOURS, SweepData, draw_figures, policy_styles

#: Figures with simulated time on the x axis, and how many seconds one unit of it is.
TIME_AXES = {"hourly": 3600.0, "intensity_traces": 3600.0, "timeline": 60.0}


@pytest.fixture(scope="module")
def drawn(inference_sweep):
    data = SweepData.load(inference_sweep)
    return data, {name: fig for name, fig, _ in draw_figures(data)}


def _lines(fig) -> list[Line2D]:
    return [line for ax in fig.axes for line in ax.get_lines() if not str(line.get_label()).startswith("_")]


def test_the_jobs_tables_have_a_row_after_the_arrival_window(inference_sweep):
    # What the figures must leave out is there: the hour after the 1-hour window, for its few ms of drain.
    hourly = pd.read_csv(next(inference_sweep.glob("runs/*/hourly.csv")))
    assert hourly["hour"].tolist() == [0, 1] and hourly["arrivals"].iloc[1] == 0


def test_no_figure_shows_a_row_outside_the_arrival_window(drawn):
    data, figures = drawn
    window_h = float(data.done["sim_hours"].iloc[0])
    assert window_h == 1.0
    shown = [name for name in TIME_AXES if name in figures]
    assert "hourly" in shown and "intensity_traces" in shown
    for name in shown:
        unit_s = TIME_AXES[name]
        for line in _lines(figures[name]):
            x = [float(v) * unit_s / 3600.0 for v in line.get_xdata()]
            assert x and min(x) >= 0.0, (name, line.get_label())
            if line.get_drawstyle() == "steps-post":
                # A step trace holds its last hour's value up to the end of the window, never past it.
                assert max(x[:-1]) < window_h and x[-1] == window_h, (name, line.get_label(), x)
            else:
                assert max(x) < window_h, (name, line.get_label(), x)
    # A run shorter than a day has each hour of day once: no hour-of-day heatmap.
    assert "intensity_heatmap" not in figures


def test_no_two_policies_share_colour_and_line_style(drawn):
    data, figures = drawn
    styles = data.styles()
    assert len(styles) == 13
    pairs = {(to_hex(s["color"]), str(s["linestyle"])) for s in styles.values()}
    assert len(pairs) == len(styles)
    # One colour per family: every hybrid alpha shares one, and no other policy has it.
    hybrid = {to_hex(s["color"]) for label, s in styles.items() if label.startswith("hybrid(")}
    others = {to_hex(s["color"]) for label, s in styles.items() if not label.startswith("hybrid(")}
    assert len(hybrid) == 1 and not hybrid & others
    # And so in what is drawn: each policy's line in a figure has a colour and line style of its own.
    for name in ("hourly", "latency_cdf", "radar"):
        drawn_pairs = {}
        for line in _lines(figures[name]):
            if str(line.get_label()) in styles:
                # The dash pattern as drawn (offset, on/off lengths): get_linestyle() calls every custom one "--".
                key = (to_hex(line.get_color()), str(line._unscaled_dash_pattern))
                drawn_pairs.setdefault(str(line.get_label()), key)
        assert set(drawn_pairs) == set(styles), name
        assert len(set(drawn_pairs.values())) == len(styles), name


@given(st.lists(st.sampled_from("abcdefghijklmnop"), min_size=1, max_size=40))
def test_styles_never_repeat_and_keep_one_colour_per_family(families):
    labels = [f"{f}{i}" for i, f in enumerate(families)]
    styles = policy_styles(labels, families)
    pairs = [(to_hex(s["color"]), str(s["linestyle"])) for s in styles.values()]
    assert len(set(pairs)) == len(labels)
    by_family: dict[str, set[str]] = {}
    for label, family in zip(labels, families, strict=True):
        by_family.setdefault(family, set()).add(to_hex(styles[label]["color"]))
    assert all(len(colours) == 1 for colours in by_family.values())
    if len(by_family) <= N_COLOURS:
        assert len({next(iter(c)) for c in by_family.values()}) == len(by_family)


def test_captions_name_confidence_intervals_only_with_seeds(inference_sweep, batch_sweep):
    with_seeds = {name: caption for name, _, caption in draw_figures(SweepData.load(inference_sweep))}
    assert "95 % CI over 2 seeds" in with_seeds["pareto"]
    one_seed = {name: caption for name, _, caption in draw_figures(SweepData.load(batch_sweep))}
    assert not any("CI" in caption for caption in one_seed.values())
    assert "(one seed)" in one_seed["carbon_vs_slack"]


def test_a_batch_only_sweep_draws_no_inference_panel(batch_sweep):
    data = SweepData.load(batch_sweep)
    assert not data.has_requests()
    figures = {name: fig for name, fig, _ in draw_figures(data)}
    assert set(figures) == {"regions", "intensity_traces", "carbon_vs_slack"}
    # The regions figure keeps its intensity panel only (no round trips to users who send nothing).
    assert len(figures["regions"].axes) == 1
    assert not math.isnan(float(data.done["job_carbon_kg"].iloc[0]))
