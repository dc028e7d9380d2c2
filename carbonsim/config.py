"""The configuration schema: frozen dataclasses, validated on construction.

Hydra fills these from YAML and the command line (see :mod:`carbonsim._hydra`); the simulator receives
them, never a DictConfig. Every check raises :class:`~carbonsim._schema.ConfigError` naming the field and
the value; :func:`carbonsim._schema.build` prefixes the field's full path.

Units are in the field names: ``_ms`` milliseconds, ``_s`` seconds, ``_w`` watts, ``_gco2_per_kwh`` grams
CO2-equivalent per kilowatt-hour, ``_usd_per_kwh`` US dollars per kilowatt-hour.
"""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass, field
from typing import Any

from carbonsim import limits
from carbonsim._checks import check as _check
from carbonsim._checks import finite as _finite
from carbonsim._checks import shares_sum_to_one as _shares_sum_to_one
from carbonsim._schema import ConfigError
from carbonsim.batch_config import BatchConfig as BatchConfig
from carbonsim.fault_config import FaultConfig
from carbonsim.signal_config import (
    ArrivalTraceConfig,
    SignalSourceConfig,
    check_region_sources,
    check_scenario_sources,
)

SERVICE_DISTRIBUTIONS = (
    "deterministic",
    "exponential",
    "normal",
    "truncated_normal",
    "lognormal",
    "empirical",
    "measured",
)
ARRIVAL_KINDS = ("poisson", "fixed_per_hour", "replay")
REPLAY_TRACES = ("azure_llm_code", "azure_llm_conv")
LOAD_SHAPES = ("alibaba_1", "alibaba_2", "google_1")
CARBON_KINDS = ("synthetic_diurnal", "electricitymaps", "watttime_marginal")
#: Grid zones (Electricity Maps ids) the WattTime marginal sample covers, and its WattTime region.
WATTTIME_ZONES = {"US-CAL-CISO": "CAISO_NORTH"}
CARBON_METRICS = ("direct", "lca")
PRICE_KINDS = ("flat", "market")
FORECAST_KINDS = ("perfect", "persistence", "seasonal_naive", "noisy_oracle", "learned")
#: What a single run with batch jobs computes as their clairvoyant bound (``RunConfig.job_bound``).
JOB_BOUNDS = ("precedence", "relaxed", "off")


@dataclass(frozen=True)
class MeasuredProfileConfig:
    """One configuration of NVIDIA's measured inference latencies (``traces/inference_profiles``).

    The defaults are carbonsim's default serving stack: TensorFlow 1.x (NGC 20.06) framework benchmark in
    fp16 with 128-token sequences, the one configuration NVIDIA measured for all three models on V100, A100
    and T4 (docs/data/nvidia_profiles.md explains the choice).

    Attributes:
        model: ``bert-base``, ``bert-large`` or ``resnet50-v1.5``.
        gpu: ``V100``, ``A100``, ``T4``, ``A30`` or ``A40``.
        precision: ``fp16``, ``tf32`` or ``fp32``.
        serving_stack: ``framework_benchmark`` or ``triton_offline``.
        backend: Framework or Triton backend as published.
        seq_len: Sequence length in tokens for the BERT models (128 or 384); image models have none and
            ignore it.
        gpu_memory_gb: GPU memory in GB where the GPU was measured in two sizes (V100: 16 or 32).
        xla: Whether TensorFlow's XLA compiler was on (ResNet-50 was measured both ways).
    """

    model: str
    gpu: str
    precision: str = "fp16"
    serving_stack: str = "framework_benchmark"
    backend: str = "TensorFlow 1.x (NGC 20.06)"
    seq_len: int = 128
    gpu_memory_gb: int | None = None
    xla: bool = False

    def __post_init__(self) -> None:
        _check(bool(self.model), "model", self.model, "a measured model name")
        _check(bool(self.gpu), "gpu", self.gpu, "a measured GPU name")
        _check(self.seq_len >= 1, "seq_len", self.seq_len, "a sequence length >= 1 token")


@dataclass(frozen=True)
class ServiceTimeConfig:
    """Service-time distribution of one workload on one hardware type, for a single request.

    Attributes:
        distribution: One of ``deterministic`` (always ``mean_ms``), ``exponential`` (mean ``mean_ms``),
            ``normal`` (N(mean_ms, std_ms) floored at ``min_ms``, the rule of the published reference setup),
            ``truncated_normal`` (N(mean_ms, std_ms) conditioned on [min_ms, max_ms]), ``lognormal`` (with the
            given arithmetic mean and standard deviation) or ``empirical`` (resampled from ``samples_ms``).
        mean_ms: Mean (location for the normal family) in ms.
        std_ms: Standard deviation in ms (normal, truncated normal, lognormal).
        min_ms: Floor (normal) or lower truncation bound (truncated normal) in ms.
        max_ms: Upper truncation bound in ms (truncated normal only); null for none.
        samples_ms: Measured service times in ms for ``empirical``.
        batch_time_factor: Service time of a batch of size b relative to a single request, for
            b = 1, 2, ...; the first entry must be 1. Required when a server pool batches this workload.
        measured: The measured configuration for ``measured``.
    """

    distribution: str = "deterministic"
    mean_ms: float = 0.0
    std_ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float | None = None
    samples_ms: tuple[float, ...] = ()
    batch_time_factor: tuple[float, ...] = ()
    measured: MeasuredProfileConfig | None = None

    def __post_init__(self) -> None:
        _check(
            self.distribution in SERVICE_DISTRIBUTIONS,
            "distribution",
            self.distribution,
            f"one of {', '.join(SERVICE_DISTRIBUTIONS)}",
        )
        if self.distribution == "measured":
            _check(self.measured is not None, "measured", self.measured, "a measured configuration (model, gpu)")
            _check(
                not self.batch_time_factor,
                "batch_time_factor",
                self.batch_time_factor,
                "empty for measured (the factors come from the measurements)",
            )
            return
        _check(
            self.measured is None,
            "measured",
            self.measured,
            "null unless distribution is measured",
        )
        if self.distribution == "empirical":
            _check(len(self.samples_ms) > 0, "samples_ms", self.samples_ms, "at least one sample for empirical")
            _check(
                all(_finite(s) and s > 0 for s in self.samples_ms),
                "samples_ms",
                self.samples_ms,
                "positive finite values",
            )
        else:
            _check(_finite(self.mean_ms) and self.mean_ms > 0, "mean_ms", self.mean_ms, "a positive number")
        _check(_finite(self.std_ms) and self.std_ms >= 0, "std_ms", self.std_ms, "a number >= 0")
        if self.distribution in ("normal", "truncated_normal", "lognormal"):
            _check(self.std_ms > 0, "std_ms", self.std_ms, f"a positive number for {self.distribution}")
        _check(_finite(self.min_ms) and self.min_ms >= 0, "min_ms", self.min_ms, "a number >= 0")
        if self.max_ms is not None:
            _check(
                self.distribution == "truncated_normal",
                "max_ms",
                self.max_ms,
                "null unless distribution is truncated_normal",
            )
            _check(self.max_ms > self.min_ms, "max_ms", self.max_ms, f"a bound above min_ms={self.min_ms}")
        if self.batch_time_factor:
            f = self.batch_time_factor
            _check(f[0] == 1.0, "batch_time_factor", f, "a list starting with 1.0 (batch of one)")
            _check(all(_finite(x) and x > 0 for x in f), "batch_time_factor", f, "positive finite factors")
            _check(
                all(b >= a for a, b in itertools.pairwise(f)),
                "batch_time_factor",
                f,
                "non-decreasing factors (a larger batch never finishes sooner)",
            )


@dataclass(frozen=True)
class WorkloadConfig:
    """An inference workload (model) with its SLO, traffic share and service times.

    Attributes:
        name: Workload name, e.g. ``bert-base``.
        slo_ms: End-to-end latency objective in ms.
        share: Fraction of all requests that are of this workload; shares sum to 1.
        service: Service-time model per hardware type (keys are pool ``hardware`` names).
    """

    name: str
    slo_ms: float
    share: float
    service: dict[str, ServiceTimeConfig]

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", self.name, "a non-empty name")
        _check(_finite(self.slo_ms) and self.slo_ms > 0, "slo_ms", self.slo_ms, "a positive number of ms")
        _check(_finite(self.share) and 0 <= self.share <= 1, "share", self.share, "a fraction in [0, 1]")
        _check(len(self.service) > 0, "service", self.service, "a service-time model for at least one hardware")


@dataclass(frozen=True)
class ServerPoolConfig:
    """Identical servers of one hardware type in a region.

    Attributes:
        hardware: Hardware type, matching the keys of the workloads' ``service`` maps.
        count: Number of servers; null means unlimited (no queueing, no idle power).
        idle_w: Power drawn by an idle server in W (before PUE).
        busy_w: Power drawn by a serving server in W (before PUE).
        max_batch_size: Largest dynamic batch a server forms (1 disables batching).
        max_queue_delay_ms: Longest time the oldest queued request waits for a batch to fill, in ms.
    """

    hardware: str
    count: int | None
    idle_w: float
    busy_w: float
    max_batch_size: int = 1
    max_queue_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        _check(bool(self.hardware), "hardware", self.hardware, "a non-empty hardware name")
        if self.count is not None:
            _check(
                1 <= self.count <= limits.MAX_SERVERS_PER_POOL,
                "count",
                self.count,
                f"1 to {limits.MAX_SERVERS_PER_POOL:,} servers (or null for unlimited)",
            )
        _check(_finite(self.idle_w) and self.idle_w >= 0, "idle_w", self.idle_w, "a power >= 0 W")
        _check(
            _finite(self.busy_w) and self.busy_w >= self.idle_w,
            "busy_w",
            self.busy_w,
            f"a power >= idle_w={self.idle_w} W",
        )
        _check(self.max_batch_size >= 1, "max_batch_size", self.max_batch_size, "an integer >= 1")
        _check(
            _finite(self.max_queue_delay_ms) and self.max_queue_delay_ms >= 0,
            "max_queue_delay_ms",
            self.max_queue_delay_ms,
            "a delay >= 0 ms",
        )
        if self.max_batch_size > 1:
            _check(
                self.count is not None,
                "max_batch_size",
                self.max_batch_size,
                "1 for an unlimited pool (batching needs a finite server count)",
            )


@dataclass(frozen=True)
class RegionConfig:
    """A cloud region: its grid zone, facility overhead, price and server pools.

    Attributes:
        name: Region name, e.g. ``us-east``.
        grid_zone: Grid zone whose carbon intensity applies (an Electricity Maps zone id for real data).
        pue: Power usage effectiveness (facility power / IT power), >= 1.
        price_usd_per_kwh: Flat electricity price in USD/kWh (used with ``prices.kind: flat``).
        pools: Server pools; a request is served by the first free server, fastest hardware first.
        max_queue_length: Waiting requests beyond which new arrivals are rejected (admission control); null
            for unbounded.
        price_market: Price series of the region (a market in traces/electricity_prices) for
            ``prices.kind: market``.
        batch_cpus: CPUs of the region's batch-job cluster (0: the region runs no batch jobs).
        carbon_source: The region's carbon intensity from the user's file or the carbon-API cache instead of
            ``carbon.kind`` (any kind but ``watttime_marginal``; docs/own_data.md).
        price_source: The region's electricity price from the user's file instead of ``prices.kind``.
        marginal_source: The region's marginal emissions rate for ``carbon.kind: watttime_marginal``.
        batch_gpus: GPUs of the region's batch-job cluster per GPU type (a catalog name such as ``A100``).
    """

    name: str
    grid_zone: str
    pue: float
    pools: tuple[ServerPoolConfig, ...]
    price_usd_per_kwh: float = 0.0
    max_queue_length: int | None = None
    price_market: str = ""
    batch_cpus: int = 0
    carbon_source: SignalSourceConfig | None = None
    price_source: SignalSourceConfig | None = None
    marginal_source: SignalSourceConfig | None = None
    batch_gpus: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", self.name, "a non-empty name")
        check_region_sources(self)
        _check(0 <= self.batch_cpus <= limits.MAX_BATCH_CPUS, "batch_cpus", self.batch_cpus, "0 to 1e8 CPUs")
        _check(limits.is_plain_name(self.grid_zone), "grid_zone", self.grid_zone, "a zone id without '/' or '..'")
        _check(
            not self.price_market or limits.is_plain_name(self.price_market),
            "price_market",
            self.price_market,
            "a market id without '/' or '..' (or empty)",
        )
        for gpu, count in self.batch_gpus.items():
            _check(bool(gpu) and count >= 0, f"batch_gpus.{gpu}", count, "a GPU type name and a count >= 0")
        _check(_finite(self.pue) and self.pue >= 1.0, "pue", self.pue, "a PUE >= 1")
        _check(
            _finite(self.price_usd_per_kwh) and self.price_usd_per_kwh >= 0,
            "price_usd_per_kwh",
            self.price_usd_per_kwh,
            "a price >= 0",
        )
        _check(len(self.pools) > 0, "pools", self.pools, "at least one server pool")
        if self.max_queue_length is not None:
            _check(self.max_queue_length >= 0, "max_queue_length", self.max_queue_length, "an integer >= 0")


@dataclass(frozen=True)
class OriginConfig:
    """A place users send requests from.

    Attributes:
        name: Origin name.
        share: Fraction of all requests that come from here; shares sum to 1.
        rtt_ms: Round-trip time in ms to every region, keyed by region name.
    """

    name: str
    share: float
    rtt_ms: dict[str, float]

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", self.name, "a non-empty name")
        _check(_finite(self.share) and 0 <= self.share <= 1, "share", self.share, "a fraction in [0, 1]")
        for region, rtt in self.rtt_ms.items():
            _check(_finite(rtt) and rtt >= 0, f"rtt_ms.{region}", rtt, "a round trip >= 0 ms")


@dataclass(frozen=True)
class ArrivalConfig:
    """The request arrival process.

    Attributes:
        kind: ``poisson``: a Poisson process whose rate is constant within each hour; ``fixed_per_hour``:
            exactly round(rate x 3600 x profile) requests in each hour at independent uniform times (a
            Poisson process conditioned on its hourly counts, as in setups that state a fixed hourly load);
            ``replay``: the recorded arrival times of ``trace``, time-scaled and tiled to the peak rate and
            thinned to the hourly rate, which keeps the trace's burstiness (docs/model.md).
        rate_per_s: Base arrival rate in requests per second.
        hourly_profile: 24 multipliers of the base rate, one per hour of day (UTC); empty means flat.
        load_shape: Instead of ``hourly_profile``, a measured hourly load shape (``alibaba_1``,
            ``alibaba_2``, ``google_1``): the multiplier of simulated hour h is the shape's load at hour
            ``load_shape_offset_h + h`` divided by its mean over the run's hours.
        load_shape_offset_h: First hour of the load shape used.
        trace: The recorded arrivals for ``replay``: ``azure_llm_code`` or ``azure_llm_conv`` (Azure LLM
            inference traces 2023).
        trace_file: Instead of ``trace``, the user's own request log for ``replay`` (docs/own_data.md).
    """

    kind: str = "poisson"
    rate_per_s: float = 1.0
    hourly_profile: tuple[float, ...] = ()
    load_shape: str = ""
    load_shape_offset_h: int = 0
    trace: str = ""
    trace_file: ArrivalTraceConfig | None = None

    def __post_init__(self) -> None:
        _check(self.kind in ARRIVAL_KINDS, "kind", self.kind, f"one of {', '.join(ARRIVAL_KINDS)}")
        _check(
            _finite(self.rate_per_s) and self.rate_per_s >= 0, "rate_per_s", self.rate_per_s, "a rate >= 0 requests/s"
        )
        if self.hourly_profile:
            _check(len(self.hourly_profile) == 24, "hourly_profile", self.hourly_profile, "24 multipliers")
            for h, m in enumerate(self.hourly_profile):
                _check(_finite(m) and m >= 0, f"hourly_profile[{h}]", m, "a multiplier >= 0")
        if self.load_shape:
            _check(self.load_shape in LOAD_SHAPES, "load_shape", self.load_shape, f"one of {', '.join(LOAD_SHAPES)}")
            _check(
                not self.hourly_profile,
                "hourly_profile",
                self.hourly_profile,
                "empty when load_shape is set (one profile at a time)",
            )
        _check(self.load_shape_offset_h >= 0, "load_shape_offset_h", self.load_shape_offset_h, "an hour >= 0")
        if self.kind == "replay" and self.trace_file is None:
            _check(self.trace in REPLAY_TRACES, "trace", self.trace, f"one of {', '.join(REPLAY_TRACES)} for replay")
        else:
            _check(not self.trace, "trace", self.trace, "empty unless kind is replay (and no trace_file is set)")
            replay_or_none = self.kind == "replay" or self.trace_file is None
            _check(replay_or_none, "trace_file", self.trace_file, "null unless kind is replay")


@dataclass(frozen=True)
class CarbonConfig:
    """The grid carbon-intensity signal.

    Attributes:
        kind: ``synthetic_diurnal``: hourly intensity = max(floor, base x (1 + amplitude x
            sin(2 pi (h - phase_h) / 24)) x U(1 - noise, 1 + noise)) with h the hour of day (UTC);
            ``electricitymaps``: the measured hourly average intensity of each region's grid zone
            (traces/carbon_intensity/electricitymaps_hourly), from the scenario's ``start_utc``;
            ``watttime_marginal``: the WattTime marginal operating emissions rate of CAISO_NORTH
            (2023-06-08 to 2023-07-08, 5-minute values averaged per hour; unit read as gCO2/kWh, see
            docs/data/watttime.md), for regions in grid zone US-CAL-CISO only.
        metric: For ``electricitymaps``: ``direct`` (operational emissions) or ``lca`` (life-cycle).
        wrap: For measured signals: continue from the first hour of the data when the run extends past its
            last hour (otherwise such a run fails, naming the data's end).
        base_gco2_per_kwh: Base intensity per grid zone in gCO2eq/kWh (``synthetic_diurnal``).
        amplitude: Relative amplitude of the daily sine.
        phase_h: Hour of day at which the sine crosses zero going up.
        noise: Half-width of the multiplicative uniform noise.
        floor_gco2_per_kwh: Lowest intensity the generator returns.
    """

    kind: str = "synthetic_diurnal"
    metric: str = "direct"
    wrap: bool = False
    base_gco2_per_kwh: dict[str, float] = field(default_factory=dict)
    amplitude: float = 0.2
    phase_h: float = 6.0
    noise: float = 0.1
    floor_gco2_per_kwh: float = 5.0

    def __post_init__(self) -> None:
        _check(self.kind in CARBON_KINDS, "kind", self.kind, f"one of {', '.join(CARBON_KINDS)}")
        _check(self.metric in CARBON_METRICS, "metric", self.metric, f"one of {', '.join(CARBON_METRICS)}")
        for zone, base in self.base_gco2_per_kwh.items():
            _check(
                limits.CARBON_INTENSITY.contains(base),
                f"base_gco2_per_kwh.{zone}",
                base,
                f"an intensity in {limits.CARBON_INTENSITY.describe()}",
            )
        _check(_finite(self.amplitude) and 0 <= self.amplitude <= 1, "amplitude", self.amplitude, "a value in [0, 1]")
        _check(_finite(self.noise) and 0 <= self.noise < 1, "noise", self.noise, "a value in [0, 1)")
        _check(
            _finite(self.floor_gco2_per_kwh) and self.floor_gco2_per_kwh >= 0,
            "floor_gco2_per_kwh",
            self.floor_gco2_per_kwh,
            "an intensity >= 0",
        )


@dataclass(frozen=True)
class PriceConfig:
    """The electricity price signal.

    Attributes:
        kind: ``flat``: each region's ``price_usd_per_kwh`` at every hour; ``market``: the measured hourly
            price of each region's ``price_market`` (traces/electricity_prices), from the scenario's
            ``start_utc``.
        wrap: For ``market``: continue from the first hour of the data when the run extends past its end.
    """

    kind: str = "flat"
    wrap: bool = False

    def __post_init__(self) -> None:
        _check(self.kind in PRICE_KINDS, "kind", self.kind, f"one of {', '.join(PRICE_KINDS)}")


@dataclass(frozen=True)
class ForecastConfig:
    """How policies forecast intensity and price (``carbonsim/core/forecast.py``, docs/model.md).

    Attributes:
        kind: ``perfect`` (the oracle), ``persistence`` (the current hour repeated), ``seasonal_naive``
            (the same hour ``period_h`` earlier), ``noisy_oracle`` (the truth with an error growing with the
            lead time) or ``learned`` (daily profile + AR(1) deviation fitted on the past ``window_days``).
        period_h: Season of ``seasonal_naive``: 24 (yesterday) or 168 (last week).
        carbon_mape_24h: ``noisy_oracle``: mean absolute percentage error of the intensity forecast at 24 h
            lead, as a fraction. The default, 0.10, is the level of published carbon-intensity forecasts
            (9.6 % average MAPE over 13 grids, Maji et al., CarbonX, arXiv 2510.01521, 2025; about 11 %
            four days ahead and 7 % on average for Great Britain's official forecast; docs/model.md).
        price_mape_24h: ``noisy_oracle``: the same for the electricity price (default 0.10, not calibrated
            to one market; docs/model.md).
        window_days: ``learned``: days of past data each fit uses.
    """

    kind: str = "noisy_oracle"
    period_h: int = 24
    carbon_mape_24h: float = 0.1
    price_mape_24h: float = 0.1
    window_days: int = 28

    def __post_init__(self) -> None:
        _check(self.kind in FORECAST_KINDS, "kind", self.kind, f"one of {', '.join(FORECAST_KINDS)}")
        _check(self.period_h in (24, 168), "period_h", self.period_h, "24 (same hour yesterday) or 168 (last week)")
        for name in ("carbon_mape_24h", "price_mape_24h"):
            value = getattr(self, name)
            _check(_finite(value) and 0 <= value <= 1, name, value, "a fraction in [0, 1]")
        _check(2 <= self.window_days <= 365, "window_days", self.window_days, "a number of days in [2, 365]")

    @property
    def history_h(self) -> int:
        """Hours of data before the run the forecaster needs."""
        if self.kind == "seasonal_naive":
            return self.period_h
        if self.kind == "learned":
            return self.window_days * 24 - 1
        return 0


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything about the world being simulated, independent of the policy.

    Attributes:
        name: Scenario name (the ``conf/scenario`` file name).
        description: One-line description, with the source of its numbers.
        regions: The cloud regions.
        workloads: The inference workloads.
        origins: The user origins.
        arrivals: The arrival process.
        carbon: The carbon-intensity signal.
        prices: The electricity price signal.
        forecast: The forecaster policies see (for intensity and price).
        batch: Deferrable batch jobs (none unless ``batch.trace`` is set).
        start_utc: Calendar time of simulated t = 0 for measured signals, ISO 8601 in UTC on a whole hour
            (e.g. ``2023-06-05T00:00:00Z``); required when a measured signal is used.
        jitter_std_ms: Standard deviation of the network jitter max(0, N(0, sigma)) added to the outbound
            trip after the routing decision, in ms; 0 disables it.
        carbon_price_usd_per_tonne: Price of emissions in USD per tonne CO2eq (e.g. an emissions-trading
            price); the carbon cost is reported beside the electricity cost and added to the total.
        faults: Region outages, network cuts and server failures (none by default).
    """

    name: str
    regions: tuple[RegionConfig, ...]
    workloads: tuple[WorkloadConfig, ...]
    origins: tuple[OriginConfig, ...]
    arrivals: ArrivalConfig = field(default_factory=ArrivalConfig)
    carbon: CarbonConfig = field(default_factory=CarbonConfig)
    prices: PriceConfig = field(default_factory=PriceConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    start_utc: str = ""
    jitter_std_ms: float = 0.0
    carbon_price_usd_per_tonne: float = 0.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    description: str = ""

    def __post_init__(self) -> None:
        _check(len(self.regions) > 0, "regions", self.regions, "at least one region")
        _check(len(self.workloads) > 0, "workloads", self.workloads, "at least one workload")
        _check(len(self.origins) > 0, "origins", self.origins, "at least one origin")
        _unique("regions", [r.name for r in self.regions])
        _unique("workloads", [w.name for w in self.workloads])
        _unique("origins", [o.name for o in self.origins])
        _check(
            _finite(self.carbon_price_usd_per_tonne) and self.carbon_price_usd_per_tonne >= 0,
            "carbon_price_usd_per_tonne",
            self.carbon_price_usd_per_tonne,
            "a price >= 0 USD per tonne",
        )
        _check(
            _finite(self.jitter_std_ms) and self.jitter_std_ms >= 0,
            "jitter_std_ms",
            self.jitter_std_ms,
            "a standard deviation >= 0 ms",
        )
        self.faults.check_names(tuple(r.name for r in self.regions), tuple(o.name for o in self.origins))
        check_scenario_sources(self)
        _shares_sum_to_one("workloads", {w.name: w.share for w in self.workloads})
        _shares_sum_to_one("origins", {o.name: o.share for o in self.origins})
        region_names = [r.name for r in self.regions]
        for i, origin in enumerate(self.origins):
            unknown = sorted(set(origin.rtt_ms) - set(region_names))
            if unknown:
                raise ConfigError(
                    f"origins[{i}].rtt_ms: unknown region(s) {', '.join(unknown)}; "
                    f"valid regions: {', '.join(region_names)}"
                )
            missing = [r for r in region_names if r not in origin.rtt_ms]
            if missing:
                raise ConfigError(
                    f"origins[{i}].rtt_ms: origin {origin.name!r} has no round-trip time to "
                    f"region(s) {', '.join(missing)}"
                )
        if self.batch.has_jobs:
            unknown_homes = sorted(set(self.batch.home_shares) - set(region_names))
            if unknown_homes:
                raise ConfigError(
                    f"batch.home_shares: unknown region(s) {', '.join(unknown_homes)}; valid regions: "
                    f"{', '.join(region_names)}"
                )
            for name in self.batch.home_shares:
                ri = region_names.index(name)
                _check(
                    self.regions[ri].batch_cpus > 0 or any(c > 0 for c in self.regions[ri].batch_gpus.values()),
                    f"regions[{ri}].batch_cpus",
                    self.regions[ri].batch_cpus,
                    f"CPUs > 0 (region {name!r} is a home region of batch jobs)",
                )
        hardware = sorted({p.hardware for r in self.regions for p in r.pools})
        for i, wl in enumerate(self.workloads):
            unknown = sorted(set(wl.service) - set(hardware))
            if unknown:
                raise ConfigError(
                    f"workloads[{i}].service: unknown hardware {', '.join(unknown)}; "
                    f"hardware in this scenario: {', '.join(hardware)}"
                )
            missing = [h for h in hardware if h not in wl.service]
            if missing:
                raise ConfigError(
                    f"workloads[{i}].service: workload {wl.name!r} has no service-time model for "
                    f"hardware {', '.join(missing)}"
                )
        for ri, region in enumerate(self.regions):
            for pi, pool in enumerate(region.pools):
                for wl in self.workloads:
                    spec = wl.service[pool.hardware]
                    factors = spec.batch_time_factor
                    # Measured profiles get their factors when resolved, and are checked then.
                    if (
                        spec.distribution != "measured"
                        and pool.max_batch_size > 1
                        and len(factors) < pool.max_batch_size
                    ):
                        raise ConfigError(
                            f"regions[{ri}].pools[{pi}].max_batch_size: {pool.max_batch_size} needs workload "
                            f"{wl.name!r} on {pool.hardware} to give batch_time_factor for batch sizes 1.."
                            f"{pool.max_batch_size}, it gives {len(factors)}"
                        )
        measured = self.carbon.kind != "synthetic_diurnal" or self.prices.kind != "flat"
        if measured or self.start_utc:
            _check_start(self.start_utc)
        if self.prices.kind == "market":
            for ri, region in enumerate(self.regions):
                _check(
                    bool(region.price_market),
                    f"regions[{ri}].price_market",
                    region.price_market,
                    "a price market (prices.kind is market)",
                )
        if self.carbon.kind == "watttime_marginal":
            for ri, region in enumerate(self.regions):
                _check(
                    region.grid_zone in WATTTIME_ZONES or region.marginal_source is not None,
                    f"regions[{ri}].grid_zone",
                    region.grid_zone,
                    f"a zone the WattTime marginal sample covers ({', '.join(WATTTIME_ZONES)}) for carbon.kind "
                    "watttime_marginal (or a marginal_source)",
                )
        zones = sorted({r.grid_zone for r in self.regions if r.carbon_source is None})
        missing_zones = [z for z in zones if z not in self.carbon.base_gco2_per_kwh]
        if self.carbon.kind == "synthetic_diurnal" and missing_zones:
            raise ConfigError(
                f"carbon.base_gco2_per_kwh: no base intensity for grid zone(s) "
                f"{', '.join(missing_zones)}; zones in this scenario: {', '.join(zones)}"
            )

    @property
    def region_names(self) -> tuple[str, ...]:
        """Region names in configuration order (the index order used by the simulator)."""
        return tuple(r.name for r in self.regions)

    @property
    def workload_names(self) -> tuple[str, ...]:
        """Workload names in configuration order."""
        return tuple(w.name for w in self.workloads)

    @property
    def origin_names(self) -> tuple[str, ...]:
        """Origin names in configuration order."""
        return tuple(o.name for o in self.origins)


def _check_start(start_utc: str) -> None:
    """Validates ``start_utc``: ISO 8601, explicitly UTC, on a whole hour."""
    try:
        t = datetime.datetime.fromisoformat(start_utc.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"start_utc: expected an ISO 8601 UTC time such as 2023-06-05T00:00:00Z, got {start_utc!r}"
        ) from None
    if t.utcoffset() != datetime.timedelta(0):
        raise ConfigError(f"start_utc: expected a time in UTC (suffix Z or +00:00), got {start_utc!r}")
    if (t.minute, t.second, t.microsecond) != (0, 0, 0):
        raise ConfigError(f"start_utc: expected a whole hour (signals are hourly), got {start_utc!r}")


def _unique(name: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"{name}: duplicate name {n!r}")
        seen.add(n)


@dataclass(frozen=True)
class PolicyConfig:
    """Base of every policy's parameters; each registered policy has a subclass (possibly this one).

    Attributes:
        name: Registered policy name (equal to its ``conf/policy`` file name).
    """

    name: str


@dataclass(frozen=True)
class BatchPolicyConfig(PolicyConfig):
    """Base of every batch-job policy's parameters; each registered batch policy has a subclass (or this).

    Attributes:
        name: Registered batch policy name (equal to its ``conf/batch_policy`` file name).
    """


@dataclass(frozen=True)
class PublishedRow:
    """One policy's row of a published results table, for side-by-side comparison.

    Attributes:
        policy: Label of the run it corresponds to.
        mean_latency_ms: Published mean end-to-end latency in ms.
        p95_latency_ms: Published 95th-percentile latency in ms.
        slo_violation_pct: Published share of requests over their SLO in %.
        mean_intensity_gco2_per_kwh: Published mean intensity of the serving region.
        intensity_reduction_pct: Published reduction of the mean serving intensity against the baseline in %.
    """

    policy: str
    mean_latency_ms: float
    p95_latency_ms: float
    slo_violation_pct: float
    mean_intensity_gco2_per_kwh: float
    intensity_reduction_pct: float


#: Label of an experiment's learned shifting run (:attr:`ExperimentConfig.shifting_checkpoint`).
LEARNED_SHIFTING = "learned_shifting"


@dataclass(frozen=True)
class ExperimentConfig:
    """A comparison of several policies on the same arrivals.

    Attributes:
        name: Experiment name (its ``conf/experiment`` file name).
        runs: Policies to run, each a mapping with the routing policy ``name`` and its parameters and/or a
            ``batch_policy`` mapping (its ``name`` and parameters), plus an optional ``label`` (default:
            names and parameters). What a run leaves out is the top-level ``policy`` / ``batch_policy``.
        seeds: Seeds to run every policy with; empty means the top-level ``seed``.
        variants: Scenario variants to run every policy on, each a mapping of dotted configuration paths
            to values (e.g. ``{"scenario.batch.window_h": 6}``); empty means the configuration as it is.
        published: Published results to print beside carbonsim's (matched by label).
        published_source: Citation of the published results.
        run: In a sweep job, the index of the one run to perform (set by the experiment's Hydra sweep);
            -1 runs every run in one process.
        variant: In a sweep job, the index of its variant (-1 when the experiment has none).
        bound_precedence: Whether the batch bound of DAG jobs keeps its precedence rows
            (:mod:`carbonsim.job_bound`); without them it is a looser bound that solves far faster.
        shifting_checkpoint: A trained shifting network (``shifting.npz`` of ``experiments/train_shifting.py``)
            to compare too: one more run, ``batch_policy=learned_shifting`` labelled
            :data:`LEARNED_SHIFTING`, after ``runs`` (:attr:`all_runs`); empty: none.
        shifting_weights: That run's [alpha, beta, gamma] (per kg CO2eq, per job-hour late, per USD); empty:
            the checkpoint's ``selected_weights`` (else 1, 1, 1).
    """

    name: str
    runs: tuple[dict[str, Any], ...]
    seeds: tuple[int, ...] = ()
    variants: tuple[dict[str, Any], ...] = ()
    published: tuple[PublishedRow, ...] = ()
    published_source: str = ""
    run: int = -1
    variant: int = -1
    bound_precedence: bool = True
    shifting_checkpoint: str = ""
    shifting_weights: tuple[float, ...] = ()

    @property
    def all_runs(self) -> tuple[dict[str, Any], ...]:
        """``runs``, then the learned shifting run if there is a ``shifting_checkpoint``."""
        if not self.shifting_checkpoint:
            return self.runs
        policy = {"name": "learned_shifting", "checkpoint": self.shifting_checkpoint, "weights": self.shifting_weights}
        return (*self.runs, {"batch_policy": policy, "label": LEARNED_SHIFTING})

    def __post_init__(self) -> None:
        _check(len(self.runs) > 0, "runs", self.runs, "at least one policy run")
        n = len(self.all_runs)
        _check(-1 <= self.run < n, "run", self.run, f"a run index in [0, {n}) or -1")
        weights = list(self.shifting_weights)
        _check(
            len(weights) in (0, 3) and all(_finite(w) and w >= 0 for w in weights),
            "shifting_weights",
            weights,
            "[alpha, beta, gamma], three finite weights >= 0 (or [] for the checkpoint's selected_weights)",
        )
        _check(
            not weights or bool(self.shifting_checkpoint),
            "shifting_weights",
            weights,
            "[] without a shifting_checkpoint (they weight the learned shifting run)",
        )
        if self.shifting_checkpoint:
            labels = [run.get("label") for run in self.runs if isinstance(run, dict)]
            _check(
                LEARNED_SHIFTING not in labels,
                "shifting_checkpoint",
                self.shifting_checkpoint,
                f"no run of 'runs' labelled {LEARNED_SHIFTING!r} (the checkpoint's run has that label)",
            )
        if self.variants:
            _check(
                -1 <= self.variant < len(self.variants),
                "variant",
                self.variant,
                f"a variant index in [0, {len(self.variants)}) or -1",
            )
        else:
            _check(self.variant == -1, "variant", self.variant, "-1 (the experiment has no variants)")
        # Imported here: the registry imports this module.
        from carbonsim.policies.registry import batch_policy_config, policy_config

        for i, run in enumerate(self.runs):
            _check(
                isinstance(run, dict) and ("name" in run or "batch_policy" in run),
                f"runs[{i}]",
                run,
                "a mapping with a policy 'name' and/or a 'batch_policy'",
            )
            if "batch_policy" in run:
                batch_policy_config(run["batch_policy"], f"runs[{i}].batch_policy")
            if "label" in run:
                _check(
                    isinstance(run["label"], str) and bool(run["label"]),
                    f"runs[{i}].label",
                    run["label"],
                    "a non-empty string",
                )
            if "name" in run:
                policy_config({k: v for k, v in run.items() if k not in ("label", "batch_policy")}, f"runs[{i}]")
        for i, variant in enumerate(self.variants):
            _check(
                isinstance(variant, dict) and bool(variant) and all(isinstance(k, str) for k in variant),
                f"variants[{i}]",
                variant,
                "a non-empty mapping of dotted configuration paths to values",
            )


@dataclass(frozen=True)
class RunConfig:
    """One invocation of ``python -m carbonsim``.

    Attributes:
        seed: Root seed; every random stream is derived from it.
        sim_hours: Length of the arrival window in simulated hours.
        drain: Keep simulating after the last arrival until every admitted request has finished (bounded
            by ``max_drain_hours``); if false, requests still queued or in service at the end are reported
            as in flight.
        max_drain_hours: Upper bound on the drain phase in hours.
        planning_interval_min: How often (simulated minutes) the policy's ``plan`` hook is called.
        baseline: Policy name whose run on the same arrivals is the reference for reduction percentages;
            empty to skip the baseline run.
        batch_baseline: Batch policy of the baseline run when the scenario has jobs.
        job_bound: The clairvoyant bound a single run with batch jobs reports (:mod:`carbonsim.job_bound`):
            ``precedence``, the bound with the precedence rows of DAG jobs; ``relaxed``, without them (a
            looser lower bound that solves far faster; the same bound for jobs of one stage); ``off``, none
            (no ``bound_*`` values in the summary). An experiment sets its own, ``experiment.bound_precedence``.
        scenario: The simulated world.
        policy: The routing policy and its parameters.
        batch_policy: The batch-job policy and its parameters (used when the scenario has jobs).
        experiment: A multi-policy comparison to run instead of a single simulation.
        write_requests: Write the per-request table (``requests.parquet``).
        redo: In a sweep, run again the jobs that already finished (by default they are skipped).
    """

    scenario: ScenarioConfig
    policy: PolicyConfig
    batch_policy: BatchPolicyConfig = field(default_factory=lambda: BatchPolicyConfig(name="carbon_agnostic"))
    seed: int = 0
    sim_hours: float = 168.0
    drain: bool = True
    max_drain_hours: float = 24.0
    planning_interval_min: float = 15.0
    baseline: str = "latency_first"
    batch_baseline: str = "carbon_agnostic"
    job_bound: str = "precedence"
    experiment: ExperimentConfig | None = None
    write_requests: bool = True
    redo: bool = False

    def __post_init__(self) -> None:
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(
            _finite(self.sim_hours) and 0 < self.sim_hours <= limits.MAX_SIM_HOURS,
            "sim_hours",
            self.sim_hours,
            f"a positive number of hours up to {limits.MAX_SIM_HOURS:,.0f} (10 years)",
        )
        _check(
            _finite(self.max_drain_hours) and 0 <= self.max_drain_hours <= limits.MAX_DRAIN_HOURS,
            "max_drain_hours",
            self.max_drain_hours,
            f"a number of hours in [0, {limits.MAX_DRAIN_HOURS:,.0f}]",
        )
        arrivals = self.scenario.arrivals
        expected = arrivals.rate_per_s * self.sim_hours * 3600.0 * max(arrivals.hourly_profile or (1.0,))
        _check(
            expected <= limits.MAX_EXPECTED_REQUESTS,
            "scenario.arrivals.rate_per_s",
            arrivals.rate_per_s,
            f"at most {limits.MAX_EXPECTED_REQUESTS:.0e} requests per run (here {expected:.3g})",
        )
        if self.baseline:
            # Imported here: the registry imports this module.
            from carbonsim.policies.registry import policy_names

            _check(
                self.baseline in policy_names(),
                "baseline",
                self.baseline,
                f"a policy name (or empty); valid policies: {', '.join(policy_names())}",
            )
        from carbonsim.policies.registry import batch_policy_names

        _check(
            self.batch_baseline in batch_policy_names(),
            "batch_baseline",
            self.batch_baseline,
            f"a batch policy name; valid batch policies: {', '.join(batch_policy_names())}",
        )
        _check(self.job_bound in JOB_BOUNDS, "job_bound", self.job_bound, f"one of {', '.join(JOB_BOUNDS)}")
        _check(
            self.experiment is None or self.job_bound == "precedence",
            "job_bound",
            self.job_bound,
            "precedence (the default) with an experiment, whose bounds follow experiment.bound_precedence",
        )
        _check(
            _finite(self.planning_interval_min) and self.planning_interval_min >= limits.MIN_PLANNING_INTERVAL_MIN,
            "planning_interval_min",
            self.planning_interval_min,
            "a number of minutes >= 1/60000 (one millisecond)",
        )
        if self.experiment is not None and self.experiment.shifting_checkpoint:
            _check(
                self.scenario.batch.has_jobs,
                "experiment.shifting_checkpoint",
                self.experiment.shifting_checkpoint,
                f"a scenario with batch jobs for the learned shifting run to place (scenario {self.scenario.name!r}"
                " has none)",
            )
