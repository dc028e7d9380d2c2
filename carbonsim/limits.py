"""Bounds of every input carbonsim reads: one place for what counts as physically plausible.

A value beyond these bounds is not a bold scenario but a wrong unit, a shifted column or a corrupt file, so
the data loaders and the configuration reject it with the file and row, or the field, that holds it. The
table with the reasoning behind each bound is in ``docs/errors.md``; a test checks that every bound here is
listed there.

This module imports only the standard library, so that both the configuration schema and the data layer
can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 366 * SECONDS_PER_DAY


@dataclass(frozen=True)
class ValueRange:
    """Plausible range of a quantity, used to catch wrong units and corrupt values.

    Attributes:
        low: Smallest plausible value, inclusive.
        high: Largest plausible value, inclusive.
        unit: Unit of the values, for messages.
    """

    low: float
    high: float
    unit: str

    def describe(self) -> str:
        """The range as text, e.g. ``[0, 2000] gCO2eq/kWh``."""
        return f"[{self.low:g}, {self.high:g}] {self.unit}"

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number inside the range."""
        return self.low <= value <= self.high and value - value == 0.0


# --- signals ------------------------------------------------------------------------------------------------

CARBON_INTENSITY = ValueRange(0.0, 2000.0, "gCO2eq/kWh")
"""Grid carbon intensity: no grid averages above ~1,200 gCO2eq/kWh (pure lignite); 2,000 leaves headroom."""

MARGINAL_EMISSIONS = ValueRange(0.0, 2500.0, "MOER (unit unverified, probably gCO2/kWh)")
"""Marginal operating emissions rate: wide enough for either candidate unit of the WattTime file, gCO2/kWh
or lbs CO2/MWh (coal is about 2,200 lbs/MWh)."""

PRICE = ValueRange(-1000.0, 20000.0, "USD/MWh")
"""Wholesale electricity price. Negative prices are real (EU harmonised floor -500 EUR/MWh, Australian NEM
floor -1,000 AUD/MWh). The top is above the NEM market price cap (AUD 15,500-17,500/MWh in 2022-2025), the
highest cap among the markets shipped here; the shipped AU-NSW series reaches 15,637."""

# --- network and serving ------------------------------------------------------------------------------------

RTT = ValueRange(0.0, 1000.0, "ms")
"""Round-trip time: the longest published Azure pair is 344 ms; a second would mean a wrong unit."""

LATENCY_MS = ValueRange(1e-9, 60_000.0, "ms")
"""One measured inference latency: the published worst case (p100) is a few seconds."""

TOKENS = ValueRange(0.0, 1_000_000.0, "tokens")
"""Input or output tokens of one LLM request: the longest context windows of 2024 models are ~1 million."""

CPU_LOAD = ValueRange(0.0, 1.0, "fraction of capacity")
"""Normalised CPU load of a cluster: a fraction of its capacity."""

# --- batch jobs ---------------------------------------------------------------------------------------------

JOB_CPUS = ValueRange(1.0, 65_536.0, "CPUs")
"""CPUs one batch job requests. The largest job of the shipped traces asks for 1,570 (LANL Mustang, a
38,400-core cluster); a job of 100,000 CPUs would be bigger than any cluster the traces come from."""

JOB_DURATION_S = ValueRange(0.0, SECONDS_PER_YEAR, "s")
"""Run time of one job or task (positive): the traces' longest job runs 72 h; a year is the limit."""

TRACE_SPAN_S = ValueRange(0.0, 10 * SECONDS_PER_YEAR, "s")
"""Submission times of a job trace, from its start: the shipped traces span a week to a year."""

MAX_TASKS = 1_000_000
"""Parallel tasks of one stage of a job."""

MAX_CPUS_PER_TASK = 4096.0
"""CPU cores one task holds (one machine: the largest cloud VMs have under 1,000 vCPUs)."""

MAX_GPUS_PER_TASK = 64.0
"""GPUs one task holds (one machine has at most 8-16 GPUs; 64 leaves room for pods)."""

# --- a run --------------------------------------------------------------------------------------------------

MAX_SIM_HOURS = 10 * 366 * 24.0
"""Arrival window of one run (10 years); the measured signals span at most 5 years. Longer runs exhaust
memory (hourly signals and draws are held per run) before they tell anything."""

MAX_DRAIN_HOURS = MAX_SIM_HOURS
"""Upper bound of the drain phase after the arrival window."""

MIN_PLANNING_INTERVAL_MIN = 1.0e-3 / 60.0
"""Shortest planning interval (one millisecond): a policy's ``plan`` runs once per interval, so a nanosecond
interval never finishes. The overhead benchmark plans every few tens of milliseconds to time many plans in a
short run; a study plans every few minutes."""

MAX_EXPECTED_REQUESTS = 2.0e9
"""Mean number of requests of one run (rate x arrival window x the largest hourly multiplier). The fleet
preset's largest documented run has 10.4 million; two billion requests hold over 300 GB of tables."""

MAX_SERVERS_PER_POOL = 10_000_000
"""Servers of one pool (pools are counts; the largest preset has 10,000 GPUs in total)."""

MAX_BATCH_CPUS = 100_000_000
"""CPUs of one region's batch cluster."""


def is_plain_name(name: str) -> bool:
    """Whether ``name`` can be part of a file name without leaving its folder.

    A name that forms a path (a slash or backslash, a NUL byte, or exactly ``.`` or ``..``) is not plain: zone,
    market and trace names become file names below the trace folder, and they must stay there.
    """
    return bool(name) and not any(c in name for c in "/\\\0") and name not in (".", "..")


__all__ = [
    "CARBON_INTENSITY",
    "CPU_LOAD",
    "JOB_CPUS",
    "JOB_DURATION_S",
    "LATENCY_MS",
    "MARGINAL_EMISSIONS",
    "MAX_BATCH_CPUS",
    "MAX_CPUS_PER_TASK",
    "MAX_DRAIN_HOURS",
    "MAX_EXPECTED_REQUESTS",
    "MAX_GPUS_PER_TASK",
    "MAX_SERVERS_PER_POOL",
    "MAX_SIM_HOURS",
    "MAX_TASKS",
    "MIN_PLANNING_INTERVAL_MIN",
    "PRICE",
    "RTT",
    "TOKENS",
    "TRACE_SPAN_S",
    "ValueRange",
    "is_plain_name",
]
