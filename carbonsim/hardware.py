"""Hardware profiles from measurements: service times from NVIDIA's latency tables, GPU power from the catalog.

A workload's service time on a GPU can be given as ``distribution: measured`` with a
:class:`~carbonsim.config.MeasuredProfileConfig`; :func:`resolve_profiles` turns it into a concrete model
before the run (this is I/O, so it lives outside the core):

* **Median latency per batch size.** NVIDIA publishes p50 for some tables only; elsewhere the median is
  estimated from p90 and p99 by fitting a lognormal through both percentiles:
  sigma = ln(p99 / p90) / (z99 - z90), median = p90 exp(-z90 sigma), with z the standard normal quantiles.
  On the 70 rows where NVIDIA publishes p50 too, the estimate is off by 1.3 % in the median row and 7 % at
  worst (``tests/test_hardware.py``).
* **Single-request service time:** a lognormal with the batch-1 median and the fitted sigma (its
  arithmetic mean and standard deviation are what :class:`~carbonsim.config.ServiceTimeConfig` stores);
  deterministic at the median when the published percentiles are equal (sigma = 0).
* **Batch factors:** median(b) / median(1) at every measured batch size b, linearly interpolated for the
  batch sizes in between, up to the largest measured batch (no extrapolation: a pool that batches more
  is a configuration error), and never falling with the batch size (:func:`batch_factors`).

Latency here is NVIDIA's measured inference latency on the GPU host (no network, no queueing): exactly the
service time of the simulator's servers.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from carbonsim.config import ScenarioConfig, ServiceTimeConfig, WorkloadConfig
from carbonsim.data.catalog import load_gpu_catalog
from carbonsim.data.errors import DataError
from carbonsim.data.profiles import load_inference_profiles, service_profile

Z90 = NormalDist().inv_cdf(0.90)
Z99 = NormalDist().inv_cdf(0.99)
BERT_MODELS = ("bert-base", "bert-large")


def median_latency_ms(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Median latency and lognormal sigma per batch size of one measured configuration.

    Args:
        table: A frame from :func:`carbonsim.data.profiles.service_profile` (indexed by batch size).

    Returns:
        (median_ms, sigma) per row: the published p50 where there is one, else the lognormal estimate from
        p90 and p99; sigma from p90 and p99.

    Raises:
        DataError: if a batch size has no p90 or p99 (the fit needs both).
    """
    p90 = table["latency_p90_ms"].to_numpy(dtype=np.float64)
    p99 = table["latency_p99_ms"].to_numpy(dtype=np.float64)
    missing = np.isnan(p90) | np.isnan(p99)
    if missing.any():
        b = int(table.index[int(np.argmax(missing))])
        raise DataError(f"batch size {b}: the profile publishes no p90 or no p99 latency; both are needed")
    sigma = np.log(p99 / p90) / (Z99 - Z90)
    estimate = p90 * np.exp(-Z90 * sigma)
    p50 = table["latency_p50_ms"].to_numpy(dtype=np.float64)
    return np.where(np.isnan(p50), estimate, p50), sigma


def batch_factors(batch: np.ndarray, median_ms: np.ndarray) -> np.ndarray:
    """Service time of a batch of b = 1..max(batch) relative to one request, from medians at measured sizes.

    Linear interpolation between measured batch sizes, then a running maximum: a larger batch never
    finishes sooner. Where the estimated medians of neighbouring sizes are within measurement noise the
    estimate can dip (ResNet-50 on A100, TF1 fp16: batch 4 has a wider p90-p99 spread than batch 2, so its
    estimated median is lower); the factor is then held at the level of the smaller batch.
    """
    sizes = np.arange(1, int(batch[-1]) + 1)
    return np.maximum.accumulate(np.interp(sizes, batch, median_ms / median_ms[0]))


def measured_service(spec: ServiceTimeConfig, profiles: pd.DataFrame | None = None) -> ServiceTimeConfig:
    """Resolves a ``measured`` service-time spec into a lognormal (or deterministic) one with batch factors.

    Args:
        spec: A spec with ``distribution: measured``.
        profiles: The measurements (default: the shipped file).

    Returns:
        The concrete spec.
    """
    ref = spec.measured
    if spec.distribution != "measured" or ref is None:
        raise ValueError(f"expected a measured service-time spec, got distribution {spec.distribution!r}")
    table = service_profile(
        ref.model,
        ref.gpu,
        serving_stack=ref.serving_stack,
        precision=ref.precision,
        backend=ref.backend,
        seq_len=ref.seq_len if ref.model in BERT_MODELS else None,
        gpu_memory_gb=ref.gpu_memory_gb,
        xla=ref.xla,
        profiles=profiles,
    )
    batch = table.index.to_numpy(dtype=np.int64)
    if batch[0] != 1:
        raise DataError(f"{ref.model} on {ref.gpu}: the profile starts at batch size {batch[0]}, not 1")
    median, sigma = median_latency_ms(table)
    factors = batch_factors(batch, median)
    s = float(sigma[0])
    m = float(median[0])
    if s == 0.0:
        return ServiceTimeConfig(distribution="deterministic", mean_ms=m, batch_time_factor=tuple(factors.tolist()))
    mean = m * math.exp(s * s / 2.0)
    std = mean * math.sqrt(math.expm1(s * s))
    return ServiceTimeConfig(
        distribution="lognormal", mean_ms=mean, std_ms=std, batch_time_factor=tuple(factors.tolist())
    )


def batch_gpu_power(scenario: ScenarioConfig) -> ScenarioConfig:
    """The scenario with ``batch.gpu_busy_w`` holding the busy power of every GPU type of a batch cluster.

    Types the scenario does not set take the catalog's ``busy_w`` (``traces/catalog/gpus.csv``).

    Raises:
        DataError: a batch cluster's GPU type is neither in ``batch.gpu_busy_w`` nor in the catalog, naming
            the region and the catalog's types.
    """
    missing = [
        (i, gpu)
        for i, r in enumerate(scenario.regions)
        for gpu, count in r.batch_gpus.items()
        if count > 0 and gpu not in scenario.batch.gpu_busy_w
    ]
    if not missing:
        return scenario
    catalog = load_gpu_catalog()
    watts = dict(scenario.batch.gpu_busy_w)
    for i, gpu in missing:
        if gpu not in catalog.index:
            raise DataError(
                f"regions[{i}].batch_gpus: GPU type {gpu!r} is not in the catalog ({', '.join(catalog.index)}); "
                "add it there or set its power in batch.gpu_busy_w"
            )
        watts[gpu] = float(catalog["busy_w"].to_dict()[gpu])
    return dataclasses.replace(scenario, batch=dataclasses.replace(scenario.batch, gpu_busy_w=watts))


def resolve_profiles(scenario: ScenarioConfig) -> ScenarioConfig:
    """The scenario with every ``measured`` service-time spec replaced by its concrete model.

    The result is validated again (e.g. a pool that batches beyond the largest measured batch size fails,
    naming the pool). Scenarios without measured specs are returned unchanged. The busy power of the
    batch clusters' GPUs is taken from the catalog where the scenario does not set it (:func:`batch_gpu_power`).
    """
    scenario = batch_gpu_power(scenario)
    if not any(s.distribution == "measured" for w in scenario.workloads for s in w.service.values()):
        return scenario
    profiles = load_inference_profiles()
    workloads: list[WorkloadConfig] = []
    for i, wl in enumerate(scenario.workloads):
        service = {}
        for hw, spec in wl.service.items():
            if spec.distribution != "measured":
                service[hw] = spec
                continue
            try:
                service[hw] = measured_service(spec, profiles)
            except DataError as exc:
                raise DataError(f"scenario.workloads[{i}].service.{hw}: {exc}") from None
        workloads.append(dataclasses.replace(wl, service=service))
    return dataclasses.replace(scenario, workloads=tuple(workloads))


__all__ = ["batch_gpu_power", "measured_service", "median_latency_ms", "resolve_profiles"]
