"""One run: configuration -> simulation -> tables -> results folder.

This is the layer between the CLI and the simulation core: it draws the requests, compiles the world,
runs the policy (and the baseline on the same arrivals), computes the tables and writes files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carbonsim._schema import ConfigError
from carbonsim.analysis import invariants, metrics
from carbonsim.analysis import jobs as job_metrics
from carbonsim.analysis.stream import StreamedTables
from carbonsim.config import BatchPolicyConfig, PolicyConfig, RunConfig
from carbonsim.core.arrivals import Requests, draw_requests
from carbonsim.core.jobs import BatchPolicy, Jobs
from carbonsim.core.policy import Policy
from carbonsim.core.simulation import Progress, Simulation
from carbonsim.core.world import World, compile_world, signal_hours
from carbonsim.hardware import resolve_profiles
from carbonsim.inputs import batch_jobs, request_inputs, signals
from carbonsim.job_bound import job_bounds
from carbonsim.policies import batch_policy_config, make_batch_policy, make_policy, policy_config

#: Given a run's label, the callback its simulation reports its :class:`~carbonsim.core.simulation.Progress` to.
ProgressFactory = Callable[[str], Callable[[Progress], None]]


@dataclass
class RunOutput:
    """Tables and numbers of one policy run.

    The per-request table is built when first asked for (:attr:`requests`): the other tables are computed
    from it chunk by chunk (:class:`carbonsim.analysis.stream.StreamedTables`), so a run of tens of millions
    of requests never holds it whole unless a caller wants it.

    Attributes:
        label: Name of the run (policy and parameters).
        summary: Flat headline numbers (what ``summary.json`` holds).
        tables: Where the per-request table comes from (and how it is written to Parquet in chunks).
        per_workload: Breakdown per workload.
        per_region: Breakdown per region.
        hourly: Breakdown per simulated hour.
        routing: Share of each origin's requests per region.
        timing: Wall-clock figures (not deterministic, so kept out of ``summary``).
        jobs: One row per batch job (None without jobs).
        stages: One row per stage of the batch jobs (:func:`carbonsim.analysis.jobs.stage_table`) when a job
            has several stages or tasks (None otherwise).
        latency: Latency quantiles per workload (:func:`carbonsim.analysis.metrics.latency_quantiles`).
        signals: Hourly intensity and price per region (:func:`carbonsim.analysis.metrics.signals`).
        timeline: Outcomes per 5 minutes of arrivals (:func:`carbonsim.analysis.metrics.timeline`).
        job_load: Busy batch CPUs and GPUs per region and hour (:func:`carbonsim.analysis.jobs.hourly_load`;
            None without jobs).
    """

    label: str
    summary: dict[str, Any]
    tables: StreamedTables
    per_workload: pd.DataFrame
    per_region: pd.DataFrame
    hourly: pd.DataFrame
    routing: pd.DataFrame
    timing: dict[str, float]
    jobs: pd.DataFrame | None = None
    stages: pd.DataFrame | None = None
    latency: pd.DataFrame | None = None
    timeline: pd.DataFrame | None = None
    job_load: pd.DataFrame | None = None
    _requests: pd.DataFrame | None = None

    @property
    def requests(self) -> pd.DataFrame:
        """One row per request (:func:`carbonsim.analysis.metrics.request_table`), built on first use."""
        if self._requests is None:
            self._requests = metrics.request_table(self.tables.result, self.tables.energy)
        return self._requests

    signals: pd.DataFrame | None = None


#: Parameters a label always shows, default or not: a sweep over them labels every run alike.
LABELLED_PARAMETERS = ("alpha",)


def policy_label(cfg: PolicyConfig) -> str:
    """A readable label: the name plus the parameters that differ from the defaults (and ``alpha``)."""
    default = type(cfg)(name=cfg.name)
    changed = [
        f"{f.name}={getattr(cfg, f.name)}"
        for f in dataclasses.fields(cfg)
        if f.name != "name" and (f.name in LABELLED_PARAMETERS or getattr(cfg, f.name) != getattr(default, f.name))
    ]
    return f"{cfg.name}({', '.join(changed)})" if changed else cfg.name


def run_label(policy: PolicyConfig, batch_policy: PolicyConfig | None) -> str:
    """Label of a run: the routing policy's, plus the batch policy's when the run has jobs."""
    label = policy_label(policy)
    return f"{label} + {policy_label(batch_policy)}" if batch_policy is not None else label


def prepare(cfg: RunConfig, seed: int | None = None) -> tuple[World, Requests, Jobs]:
    """Compiles the world and draws the requests and jobs of a run (shared by every policy on the same seed)."""
    seed = cfg.seed if seed is None else seed
    hours = signal_hours(cfg.sim_hours, cfg.drain, cfg.max_drain_hours)
    scenario = resolve_profiles(cfg.scenario)
    carbon, price = signals(scenario, seed, hours)
    world = compile_world(scenario, seed, hours, carbon=carbon, price=price)
    inputs = request_inputs(scenario)
    requests = draw_requests(scenario, seed, cfg.sim_hours, inputs.load_shape, inputs.replay_s, inputs.replay_workload)
    return world, requests, batch_jobs(scenario, seed, cfg.sim_hours)


def make_simulation(
    cfg: RunConfig,
    world: World,
    requests: Requests,
    policy: Policy,
    seed: int,
    jobs: Jobs | None = None,
    batch_policy: BatchPolicy | None = None,
) -> Simulation:
    """The simulation of a run configuration's horizon, drain and planning interval, not started."""
    return Simulation(
        world,
        requests,
        policy,
        seed=seed,
        horizon_s=cfg.sim_hours * 3600.0,
        drain=cfg.drain,
        max_drain_s=cfg.max_drain_hours * 3600.0,
        planning_interval_s=cfg.planning_interval_min * 60.0,
        jobs=jobs,
        batch_policy=batch_policy,
    )


def simulate_policy(
    cfg: RunConfig,
    policy: PolicyConfig,
    world: World,
    requests: Requests,
    seed: int | None = None,
    label: str | None = None,
    jobs: Jobs | None = None,
    batch_policy: BatchPolicyConfig | None = None,
    progress: ProgressFactory | None = None,
    instance: Policy | None = None,
) -> RunOutput:
    """Runs one routing policy (and batch policy, with jobs) on prepared arrivals and computes its tables.

    ``progress``, if given, is called with the run's label and returns the callback that the simulation
    reports its simulated time to (:meth:`carbonsim.core.simulation.Simulation.run`). ``instance``, if
    given, is the routing policy object to run (``policy`` then only names it): a policy that carries
    state from one run to the next, such as a learning one.
    """
    seed = cfg.seed if seed is None else seed
    jobs = jobs if jobs is not None else Jobs.empty()
    batch_cfg = batch_policy if batch_policy is not None else cfg.batch_policy
    reset_peak_memory()
    t0 = time.perf_counter()
    sim = make_simulation(
        cfg,
        world,
        requests,
        make_policy(policy) if instance is None else instance,
        seed,
        jobs=jobs,
        batch_policy=make_batch_policy(batch_cfg) if len(jobs) else None,
    )
    run_label_ = label or run_label(policy, batch_cfg if len(jobs) else None)
    result = sim.run(progress(run_label_) if progress is not None else None)
    t_sim = time.perf_counter() - t0
    energy = metrics.energy_account(result)
    streamed = StreamedTables(result, energy)
    # A scenario with a job trace whose window holds no job still gets its job table and numbers (all empty).
    with_trace = cfg.scenario.batch.has_jobs
    job_df = job_metrics.job_table(result) if len(jobs) else job_metrics.empty_job_table() if with_trace else None
    summary = {
        "policy": policy.name,
        "label": run_label_,
        "seed": seed,
        "scenario": cfg.scenario.name,
        **streamed.summary(),
        **{f"policy_{key}": value for key, value in result.policy_stats.items()},
    }
    invariants.check_run(result, energy, summary)
    if job_df is not None:
        summary["batch_policy"] = batch_cfg.name
        summary["batch_trace"] = (
            cfg.scenario.batch.trace or cfg.scenario.batch.generator.kind or cfg.scenario.batch.source.format
        )
        summary.update(job_metrics.job_summary(job_df, result))
        invariants.check_jobs(result, job_df, summary)
    notes = run_warnings(cfg, jobs, summary)
    summary["warning_count"] = len(notes)
    summary["warnings"] = notes
    n = max(len(requests), 1)
    timing = {
        "simulation_wall_s": t_sim,
        "requests_per_wall_s": len(requests) / t_sim if t_sim > 0 else math.nan,
        "decision_overhead_us": result.decision_ns / n / 1e3,
        "plan_calls": float(result.plans),
        "plan_overhead_ms": result.plan_ns / max(result.plans, 1) / 1e6,
        "batch_epochs": float(result.batch_epochs),
        "batch_decision_cpu_ms": result.batch_decision_cpu_ns / max(result.batch_epochs, 1) / 1e6,
        "peak_memory_mb": peak_memory_mb(),
    }
    return RunOutput(
        label=summary["label"],
        summary=summary,
        tables=streamed,
        per_workload=streamed.per_workload(),
        per_region=streamed.per_region(),
        hourly=streamed.hourly(),
        routing=streamed.routing_table(),
        timing=timing,
        jobs=job_df,
        stages=job_metrics.stage_table(result) if len(jobs) and not jobs.one_task_each else None,
        latency=streamed.latency_quantiles(),
        timeline=streamed.timeline(),
        job_load=job_metrics.hourly_load(result) if len(jobs) else None,
        signals=metrics.signals(result),
    )


def reset_peak_memory() -> None:
    """Resets the process's peak resident memory (Linux: ``/proc/self/clear_refs``), if the system allows it.

    Then :func:`peak_memory_mb` measures the peak of what follows, not of an earlier job of the same
    worker process. Elsewhere (or when refused) nothing happens and the peak is the process's so far.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MB (a measurement: it varies from run to run).

    ``VmHWM`` on Linux (the peak since :func:`reset_peak_memory`), else ``ru_maxrss`` (since the process started).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    # ru_maxrss is in kB on Linux, in bytes on macOS.
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / scale


def run_warnings(cfg: RunConfig, jobs: Jobs, summary: dict[str, Any]) -> list[str]:
    """What in a finished run is legal but surely not what was meant, one sentence each.

    * batch jobs that need more CPUs than the largest batch cluster or a GPU type no region has (they fail:
      nowhere can run them), records of a user's trace its importer left out, or a job source whose window
      holds no job; batch jobs still in flight at the end (their emissions cover unequal work);
    * no requests and no jobs at all;
    * an outage or network cut that starts after the run ended (it never happened);
    * a learned policy whose network overflowed (non-finite logits) on some decisions.

    Args:
        cfg: The run's configuration.
        jobs: Its batch jobs.
        summary: Its summary so far (``requests``, ``sim_end_s``, ``policy_nonfinite_decisions``).

    Returns:
        The warnings, in this order; empty for a run without surprises.
    """
    sc = cfg.scenario
    notes: list[str] = []
    if sc.batch.has_jobs and len(jobs):
        largest = max(r.batch_cpus for r in sc.regions)
        # A task that fits runs (a wide stage runs in waves): a job fails only if one of its tasks is larger.
        task_cpus = np.zeros(len(jobs))
        np.maximum.at(task_cpus, jobs.stages.job, jobs.stages.cpus_per_task)
        too_big = int((task_cpus > largest).sum())
        if too_big:
            which = f"all {len(jobs)}" if too_big == len(jobs) else f"{too_big} of {len(jobs)}"
            notes.append(
                f"scenario.regions[*].batch_cpus: {which} batch jobs need more CPUs than the largest batch cluster"
                f" ({largest} CPUs) and fail"
            )
        no_gpu = int(summary.get("jobs_failed_gpu_type_in_no_region", 0))
        if no_gpu:
            notes.append(
                f"scenario.regions[*].batch_gpus: {no_gpu} of {len(jobs)} batch jobs need a GPU type no region has"
                " and fail"
            )
        skipped = int(summary.get("jobs_skipped_by_importer", 0))
        if skipped:
            notes.append(
                f"scenario.batch.source: the importer left {skipped} records of the trace out"
                f" ({summary.get('jobs_trace_notes', '')})"
            )
        in_flight = int(summary.get("jobs_in_flight", 0))
        if in_flight:
            notes.append(
                f"max_drain_hours: {in_flight} of {len(jobs)} batch jobs are still in flight when the run ends, so"
                " job emissions (and reductions against another policy) cover unequal work; raise max_drain_hours"
            )
    elif sc.batch.has_jobs:
        source = sc.batch.trace or sc.batch.generator.kind or sc.batch.source.format
        field = "trace" if sc.batch.trace else "generator" if sc.batch.generator.kind else "source"
        notes.append(
            f"scenario.batch.{field}: no job of {source} arrives in its window"
            f" [{sc.batch.trace_offset_h:g}, {sc.batch.trace_offset_h + cfg.sim_hours:g}) h; the run has no jobs"
        )
    if not summary.get("requests") and not len(jobs):
        notes.append("scenario.arrivals.rate_per_s: the run has no requests and no batch jobs")
    end_h = float(summary.get("sim_end_s", math.inf)) / 3600.0
    windows = [(f"outages[{i}]", o.start_h) for i, o in enumerate(sc.faults.outages)]
    windows += [(f"cuts[{i}]", c.start_h) for i, c in enumerate(sc.faults.cuts)]
    for name, start_h in windows:
        if start_h >= end_h:
            notes.append(
                f"scenario.faults.{name}.start_h: {start_h:g} h is after the run ended ({end_h:g} h); it never happened"
            )
    overflow = int(summary.get("policy_nonfinite_decisions", 0))
    if overflow:
        notes.append(
            f"policy: {overflow} of {summary.get('requests', 0)} decisions had non-finite scores (the network's"
            " weights are so large that it overflows); they went to the first available region"
        )
    return notes


def report_warnings(summary: dict[str, Any], prefix: str = "carbonsim") -> None:
    """Prints a run's warnings (:func:`run_warnings`) to stderr, one line each."""
    for note in summary.get("warnings") or ():
        print(f"{prefix}: warning: {note}", file=sys.stderr)


BaselinePair = tuple[PolicyConfig, BatchPolicyConfig]


def baseline_policies(cfg: RunConfig) -> BaselinePair | None:
    """The baseline run's routing and batch policies (``baseline``, ``batch_baseline``); None without one."""
    if not cfg.baseline:
        return None
    return (
        policy_config({"name": cfg.baseline}, "baseline"),
        batch_policy_config({"name": cfg.batch_baseline}, "batch_baseline"),
    )


def is_baseline(
    pair: BaselinePair | None, policy: PolicyConfig, batch_policy: PolicyConfig, jobs: Jobs, requests: Requests
) -> bool:
    """Whether a run of these policies is the baseline run.

    The routing policy counts only with requests, the batch policy only with jobs: in a batch-only
    scenario, the carbon-agnostic run is the baseline whatever routing policy it names.
    """
    if pair is None:
        return False
    return (not len(requests) or policy == pair[0]) and (not len(jobs) or batch_policy == pair[1])


def add_reductions(summary: dict[str, Any], baseline: dict[str, Any], cfg: RunConfig) -> None:
    """Adds the reductions against the baseline run: emissions, serving intensity and, with jobs, job emissions."""
    metrics.add_reduction(summary, baseline, cfg.baseline)
    job_metrics.add_job_reduction(summary, baseline)


def run(cfg: RunConfig, progress: ProgressFactory | None = None) -> RunOutput:
    """Runs the configured policies and, if a baseline is set, the baseline on the same arrivals.

    With batch jobs, the baseline run pairs the baseline routing policy with the baseline batch policy
    (``batch_baseline``), and the summary carries the clairvoyant job bounds (``bound_<rule>_job_carbon_kg``)
    and the policy's share of their reduction (:func:`carbonsim.job_bound.job_bounds`), as ``cfg.job_bound``
    says (with or without precedence rows, or none). ``progress`` as in :func:`simulate_policy`.
    """
    world, requests, jobs = prepare(cfg)
    out = simulate_policy(cfg, cfg.policy, world, requests, jobs=jobs, progress=progress)
    pair = baseline_policies(cfg)
    if pair is not None:
        same = is_baseline(pair, cfg.policy, cfg.batch_policy, jobs, requests)
        try:
            base = (
                out
                if same
                else simulate_policy(cfg, pair[0], world, requests, jobs=jobs, batch_policy=pair[1], progress=progress)
            )
        except ConfigError as exc:  # the baseline's policy refused to run: say it is the baseline's
            raise ConfigError(f"baseline={cfg.baseline}: {exc}") from None
        add_reductions(out.summary, base.summary, cfg)
    if len(jobs) and cfg.job_bound != "off":
        job_metrics.add_bound(out.summary, job_bounds(world, jobs, precedence=cfg.job_bound == "precedence"))
    if len(jobs):
        out.summary["job_bound"] = cfg.job_bound
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes JSON atomically (temporary file, then rename); NaN and infinity become null."""
    text = json.dumps({k: _clean(v) for k, v in data.items()}, indent=2) + "\n"
    write_text(path, text)


def write_text(path: Path, text: str) -> None:
    """Writes a text file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes the file private; results are meant to be shared
    os.replace(tmp, path)


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def write_outputs(out: RunOutput, folder: Path, write_requests: bool = True) -> None:
    """Writes a run's files into ``folder``, each atomically, ``summary.json`` last.

    Files: ``timing.json``, ``per_workload.csv``, ``per_region.csv``, ``hourly.csv``, ``routing.csv``,
    ``latency_quantiles.csv``, ``signals.csv``, ``timeline.csv``, ``jobs.csv`` and ``job_load.csv`` (with batch
    jobs), ``stages.csv`` (with jobs of several stages or tasks), (if ``write_requests``) ``requests.parquet``,
    then ``summary.json``: a folder with ``summary.json`` holds a complete run (sweeps skip it when run again).
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "timing.json", out.timing)
    for name, table in (
        ("per_workload", out.per_workload),
        ("per_region", out.per_region),
        ("hourly", out.hourly),
        ("routing", out.routing),
    ):
        write_text(folder / f"{name}.csv", table.to_csv(index=False, float_format="%.6g"))
    optional = (
        ("latency_quantiles", out.latency),
        ("signals", out.signals),
        ("timeline", out.timeline),
        ("jobs", out.jobs),
        ("stages", out.stages),
        ("job_load", out.job_load),
    )
    for name, maybe in optional:
        if maybe is not None:
            write_text(folder / f"{name}.csv", maybe.to_csv(index=False, float_format="%.6g"))
    if write_requests:
        tmp = folder / ".requests.parquet.tmp"
        out.tables.write_requests(tmp)
        os.replace(tmp, folder / "requests.parquet")
    write_json(folder / "summary.json", out.summary)
