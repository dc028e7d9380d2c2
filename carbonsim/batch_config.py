"""The scenario's batch section: where jobs come from, their deadlines, power and migration costs.

Split from :mod:`carbonsim.config` (re-exported there); job streams are configured in
:mod:`carbonsim.jobs_config` and users' job traces in :mod:`carbonsim.job_source_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carbonsim._checks import check as _check
from carbonsim._checks import finite as _finite
from carbonsim._checks import shares_sum_to_one as _shares_sum_to_one
from carbonsim.job_source_config import JobSourceConfig
from carbonsim.jobs_config import JobGeneratorConfig

BATCH_TRACES = ("azure_100k", "pai_100k", "mustang_trace_2015_100k", "pai_1k")
DEADLINE_RULES = ("slack", "window")


@dataclass(frozen=True)
class BatchConfig:
    """Deferrable batch jobs: where they come from, their deadlines and the power they draw.

    Jobs come from a GAIA cluster trace (Hanafy et al., ASPLOS 2024; traces/workloads, docs/data/gaia_jobs.md):
    the jobs arriving in ``[trace_offset_h, trace_offset_h + sim_hours)`` of the trace, shifted to start at
    simulated t = 0, each with its measured duration and CPU count. Regions run them on their batch
    clusters (``RegionConfig.batch_cpus``).

    Attributes:
        trace: ``azure_100k``, ``pai_100k``, ``mustang_trace_2015_100k`` or ``pai_1k``; empty for no jobs.
        trace_offset_h: First hour of the trace used.
        deadline: ``slack``: deadline = arrival + ``slack_factor`` x duration (the slack-factor rule of
            CarbonScaler and PCAPS; 1 = no slack); ``window``: deadline = arrival + duration +
            ``window_h`` (the fixed waiting windows of GAIA and Let's Wait Awhile, e.g. 6, 12, 24 h).
        slack_factor: For ``slack``: completion time allowed, as a multiple of the duration (>= 1).
        window_h: For ``window``: hours a job may be delayed in total.
        interruptible_share: Fraction of jobs that may be suspended and resumed (drawn per job from the
            ``jobs`` random stream); the others run without interruption once started.
        home_shares: Share of jobs submitted to each region (region name -> share, summing to 1): the
            region a carbon-agnostic scheduler runs them in and temporal-only policies keep them in.
        cpu_busy_w: Power of one busy CPU in W (before PUE). The default, 3.54 W, is Cloud Carbon Footprint's
            average for Azure at 100 % utilisation per vCPU (AzureFootprintEstimationConstants.ts,
            ``MAX_WATTS_AVG``), from SPECpower data.
        max_jobs: Upper bound on the jobs taken from the trace window (0 for all), for quick runs; the
            first ``max_jobs`` arrivals are kept and the cut is reported in the summary.
        max_scale: Largest number of copies of its CPU allocation an interruptible job may run on at once
            (elastic scaling, for CarbonScaler); 1 disables scaling.
        parallel_fraction: Share of a job's work that parallelises (Amdahl's law): on ``k`` allocations a
            job progresses ``1 / ((1 - p) + p / k)`` times as fast as on one, so every extra allocation
            adds less (the concave "marginal capacity curve" CarbonScaler assumes).
        migration_gb_per_cpu: State a job carries when it starts away from where it is (its home before
            its first start, else the region it last ran in), in GB per CPU. The default, 4 GB, is the
            memory per vCPU of Azure's general-purpose Dv5/Dsv5 sizes: a full memory image, an upper
            estimate of a checkpoint.
        network_kwh_per_gb: Energy of moving one GB between regions, in kWh. The default extrapolates
            Aslan et al.'s 0.06 kWh/GB for 2015 ("Electricity Intensity of Internet Data Transmission",
            J. Industrial Ecology 22(4), 2018) by their observed halving every two years to 2023:
            0.06 / 2^4 = 0.00375 kWh/GB.
        migration_gbps: Transfer rate of a migration in Gbit/s. The transfer time is added to the job's
            remaining work in the destination (the restore holds its CPUs and draws their power).
        source: A job trace from the user's files in a published schema (Google, Alibaba, PAI, SWF,
            Slurm, plain CSV; :mod:`carbonsim.job_source_config`), instead of ``trace``.
        migration_gb_per_gpu: State a job carries per GPU when it moves, in GB. The default, 40 GB, is the
            memory of an A100-40GB (``traces/catalog/gpus.csv``): a full image of the board's memory, an
            upper estimate of a training checkpoint's share per GPU.
        gpu_busy_w: Power of one busy GPU of each type in W (before PUE); types not listed take the
            catalog's busy power (``traces/catalog/gpus.csv``).
        generator: A generated job stream (TPC-H DAGs, GPU training mix) instead of ``trace``
            (:mod:`carbonsim.jobs_config`).
    """

    trace: str = ""
    trace_offset_h: float = 0.0
    deadline: str = "window"
    slack_factor: float = 2.0
    window_h: float = 24.0
    interruptible_share: float = 1.0
    home_shares: dict[str, float] = field(default_factory=dict)
    cpu_busy_w: float = 3.54
    max_jobs: int = 0
    max_scale: int = 1
    parallel_fraction: float = 0.9
    migration_gb_per_cpu: float = 4.0
    network_kwh_per_gb: float = 0.00375
    migration_gbps: float = 1.0
    migration_gb_per_gpu: float = 40.0
    gpu_busy_w: dict[str, float] = field(default_factory=dict)
    generator: JobGeneratorConfig = field(default_factory=JobGeneratorConfig)
    source: JobSourceConfig = field(default_factory=JobSourceConfig)

    @property
    def has_jobs(self) -> bool:
        """Whether the scenario has batch jobs (a trace, a generated stream or the user's job trace)."""
        return bool(self.trace or self.generator.kind or self.source.format)

    def __post_init__(self) -> None:
        chosen = [
            k
            for k, v in (
                ("trace", self.trace),
                ("generator.kind", self.generator.kind),
                ("source.format", self.source.format),
            )
            if v
        ]
        _check(len(chosen) <= 1, chosen[-1] if chosen else "trace", chosen, "at most one of trace, generator, source")
        for gpu, watts in self.gpu_busy_w.items():
            _check(_finite(watts) and watts >= 0, f"gpu_busy_w.{gpu}", watts, "a power >= 0 W")
        for name in ("migration_gb_per_cpu", "network_kwh_per_gb", "migration_gb_per_gpu"):
            value = getattr(self, name)
            _check(_finite(value) and value >= 0, name, value, "a number >= 0")
        _check(
            _finite(self.migration_gbps) and self.migration_gbps > 0,
            "migration_gbps",
            self.migration_gbps,
            "a transfer rate > 0 Gbit/s",
        )
        _check(1 <= self.max_scale <= 64, "max_scale", self.max_scale, "an integer in [1, 64]")
        _check(
            _finite(self.parallel_fraction) and 0 <= self.parallel_fraction <= 1,
            "parallel_fraction",
            self.parallel_fraction,
            "a fraction in [0, 1]",
        )
        if self.trace:
            _check(self.trace in BATCH_TRACES, "trace", self.trace, f"one of {', '.join(BATCH_TRACES)} (or empty)")
        # A user's trace may name each job's home; jobs that name none take home_shares (jobs_build).
        if self.trace or self.generator.kind:
            _check(bool(self.home_shares), "home_shares", self.home_shares, "a share per home region")
        if self.home_shares:
            _shares_sum_to_one("home_shares", self.home_shares)
        _check(
            _finite(self.trace_offset_h) and self.trace_offset_h >= 0,
            "trace_offset_h",
            self.trace_offset_h,
            "an hour >= 0",
        )
        _check(self.deadline in DEADLINE_RULES, "deadline", self.deadline, f"one of {', '.join(DEADLINE_RULES)}")
        _check(
            _finite(self.slack_factor) and self.slack_factor >= 1, "slack_factor", self.slack_factor, "a factor >= 1"
        )
        _check(_finite(self.window_h) and self.window_h >= 0, "window_h", self.window_h, "a number of hours >= 0")
        _check(
            _finite(self.interruptible_share) and 0 <= self.interruptible_share <= 1,
            "interruptible_share",
            self.interruptible_share,
            "a fraction in [0, 1]",
        )
        for region, share in self.home_shares.items():
            _check(_finite(share) and 0 <= share <= 1, f"home_shares.{region}", share, "a fraction in [0, 1]")
        _check(_finite(self.cpu_busy_w) and self.cpu_busy_w >= 0, "cpu_busy_w", self.cpu_busy_w, "a power >= 0 W")
        _check(self.max_jobs >= 0, "max_jobs", self.max_jobs, "a number of jobs >= 0 (0 for all)")
