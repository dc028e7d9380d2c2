"""The ``python -m carbonsim`` command: Hydra composes the config, this module runs it."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from carbonsim._errors import (
    EXIT_BAD_INPUT,
    EXIT_JOBS_NOT_DONE,
    debugging,
    exit_on_user_error,
    mark_started,
    one_line,
    report,
)
from carbonsim._hydra import config_from_hydra, register_configs
from carbonsim._schema import ConfigError
from carbonsim.analysis import tables
from carbonsim.config import RunConfig
from carbonsim.core import simulation
from carbonsim.experiment import analyse, check_shifting_checkpoint, experiment_job, run_experiment
from carbonsim.report import write_report
from carbonsim.runner import ProgressFactory, report_warnings, run, write_outputs, write_text
from carbonsim.sweep import EXPECTED_FILE, RESULT_FILES, guarded, recorded_failure

# Hydra's joblib and Ray launchers compose each job's config in a worker process, which imports this module
# to find the task function: the schemas must be in that process's ConfigStore too.
register_configs()

SUMMARY_ROWS = (
    ("requests", "requests", "{:,.0f}"),
    ("completed", "completed", "{:,.0f}"),
    ("rejected", "rejected (admission control)", "{:,.0f}"),
    ("failed", "failed (faults)", "{:,.0f}"),
    ("in_flight", "in flight at end", "{:,.0f}"),
    ("mean_latency_ms", "mean latency (ms)", "{:.1f}"),
    ("p95_latency_ms", "p95 latency (ms)", "{:.1f}"),
    ("p99_latency_ms", "p99 latency (ms)", "{:.1f}"),
    ("slo_violation_pct", "SLO violations (%)", "{:.2f}"),
    ("mean_intensity_gco2_per_kwh", "mean intensity (gCO2/kWh)", "{:.1f}"),
    ("energy_kwh", "energy (kWh, with PUE)", "{:.3f}"),
    ("carbon_kg", "carbon (kg CO2eq)", "{:.3f}"),
    ("cost_usd", "cost (USD, electricity + carbon price)", "{:.2f}"),
    ("carbon_reduction_pct", "carbon reduction vs baseline (%)", "{:.1f}"),
    ("jobs", "batch jobs", "{:,.0f}"),
    ("jobs_completed", "jobs completed", "{:,.0f}"),
    ("jobs_failed", "jobs failed", "{:,.0f}"),
    ("jobs_in_flight", "jobs in flight at end", "{:,.0f}"),
    ("deadline_met_pct", "deadlines met (% of decided)", "{:.2f}"),
    ("job_mean_wait_h", "mean job wait (h)", "{:.2f}"),
    ("job_carbon_kg", "job carbon (kg CO2eq)", "{:.3f}"),
    ("job_cost_usd", "job electricity cost (USD)", "{:.2f}"),
    ("job_carbon_reduction_pct", "job carbon reduction vs baseline (%)", "{:.1f}"),
    ("bound_any_job_carbon_kg", "job carbon, clairvoyant bound (kg CO2eq)", "{:.3f}"),
    ("job_share_of_home_bound_pct", "share of the home-region bound's reduction (%)", "{:.1f}"),
    ("job_share_of_any_bound_pct", "share of the any-region bound's reduction (%)", "{:.1f}"),
)

JOB_COMPARISON_COLUMNS = (
    ("label", "batch policy", "{}"),
    ("variant", "deadlines", "{}"),
    ("jobs_completed", "done", "{:,.0f}"),
    ("jobs_in_flight", "running", "{:,.0f}"),
    ("deadline_met_pct", "met %", "{:.1f}"),
    ("job_mean_wait_h", "wait h", "{:.2f}"),
    ("job_p95_wait_h", "p95 wait h", "{:.2f}"),
    ("job_carbon_kg", "kg CO2", "{:.2f}"),
    ("job_cost_usd", "USD", "{:.2f}"),
    ("job_migrations", "moves", "{:,.0f}"),
    ("job_carbon_reduction_pct", "red. %", "{:.1f}"),
    ("job_share_of_home_bound_pct", "% of bound (home)", "{:.1f}"),
    ("job_share_of_any_bound_pct", "% of bound (any)", "{:.1f}"),
)

COMPARISON_COLUMNS = (
    ("label", "policy", "{}"),
    ("mean_latency_ms", "mean ms", "{:.1f}"),
    ("p95_latency_ms", "p95 ms", "{:.1f}"),
    ("slo_violation_pct", "SLO viol %", "{:.2f}"),
    ("mean_intensity_gco2_per_kwh", "gCO2/kWh", "{:.1f}"),
    ("carbon_kg", "kg CO2", "{:.3f}"),
    ("energy_kwh", "kWh", "{:.3f}"),
    ("cost_usd", "USD", "{:.2f}"),
    ("carbon_reduction_pct", "carbon red. %", "{:.1f}"),
    ("share_of_bound_pct", "% of bound red.", "{:.1f}"),
)


def _fmt(fmt: str, value: Any, decimals: int | None = None) -> str:
    """A cell: ``-`` if missing, a float to ``decimals`` (default: its own three significant figures)."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float) and (decimals is not None or not value.is_integer()):
        return tables.format_number(value, tables.column_decimals([value]) if decimals is None else decimals)
    return fmt.format(value)


def print_summary(console: Console, summary: dict[str, Any], timing: dict[str, float]) -> None:
    """Prints one run's headline numbers."""
    table = Table(title=f"carbonsim: {summary['label']} on {summary['scenario']} (seed {summary['seed']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, name, fmt in SUMMARY_ROWS:
        if key in summary:
            table.add_row(name, _fmt(fmt, summary[key]))
    table.add_row("scheduler overhead (us/decision)", f"{timing['decision_overhead_us']:.2f}")
    console.print(table)


def make_console() -> Console:
    """A console that is wide enough for the tables even when the output is not a terminal."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_comparison(
    console: Console,
    df: pd.DataFrame,
    title: str,
    columns: tuple[tuple[str, str, str], ...] = COMPARISON_COLUMNS,
) -> None:
    """Prints the comparison table of an experiment (the mean over seeds if there are several)."""
    n_seeds = df["seed"].nunique() if "seed" in df.columns else 1
    # Rows differ by label, and by variant and scenario where the sweep varies them.
    varying = [c for c in ("variant", "scenario") if c in df.columns and df[c].nunique(dropna=False) > 1]
    if n_seeds > 1:
        keys = ["label", *varying]
        numeric = [c for c in df.columns if c not in (*keys, "policy", "seed") and df[c].dtype.kind in "fiu"]
        df = df.groupby(keys, sort=False)[numeric].mean().reset_index()
        title += f", mean over {n_seeds} seeds"
    table = Table(title=title)
    extra = [(c, c, "{}") for c in varying if not any(key == c for key, _, _ in columns)]
    cols = [c for c in (columns[0], *extra, *columns[1:]) if c[0] in df.columns]
    # One name per metric (the tables' and the report's); each column to its own precision.
    decimals = {key: tables.column_decimals(df[key]) for key, _, _ in cols if df[key].dtype.kind == "f"}
    for key, _name, _spec in cols:
        label = key == "label"  # policy names whole; the numbers' headers wrap instead
        table.add_column(tables.column_name(key), justify="left" if label else "right", no_wrap=label)
    for _, row in df.iterrows():
        table.add_row(*[_fmt(fmt, row[key], decimals.get(key)) for key, _name, fmt in cols])
    console.print(table)


def print_reference(console: Console, df: pd.DataFrame) -> None:
    """Prints carbonsim's reference table beside the published one."""
    table = Table(title="Reference scenario: carbonsim vs published")
    human = tables.human_table(df)
    for col in human.columns:
        table.add_column(col, justify="left" if col in ("policy", "source") else "right")
    for _, row in human.iterrows():
        table.add_row(*[str(v) for v in row])
    console.print(table)


def print_tables(console: Console, tables_: dict[str, pd.DataFrame], title: str) -> None:
    """Prints an experiment's or sweep's comparison tables."""
    if "jobs" in tables_:
        print_comparison(console, tables_["jobs"], f"batch jobs: {title}", JOB_COMPARISON_COLUMNS)
    comparison = tables_["comparison"]
    if "requests" in comparison.columns and int(comparison["requests"].fillna(0).sum()) > 0:
        print_comparison(console, comparison, title)
    if "reference" in tables_:
        print_reference(console, tables_["reference"])
    results = tables_.get("results")
    if results is not None and "status" in results.columns:
        bad = results[results["status"] != "done"]
        if len(bad):
            console.print(f"[bold red]{len(bad)} of {len(results)} jobs did not finish:[/] " + ", ".join(bad["job"]))


def execute(cfg: RunConfig, out_dir: Path, console: Console | None = None) -> None:
    """Runs a validated config (a single simulation or an experiment) and writes into ``out_dir``.

    Raises:
        SystemExit: with status 1 after an experiment in which a job did not finish (its tables are
            written first).
    """
    console = console or make_console()
    if cfg.experiment is not None:
        tables_ = run_experiment(cfg, out_dir)
        print_tables(console, tables_, f"{cfg.experiment.name} on {cfg.scenario.name} ({cfg.sim_hours:g} h)")
        console.print(f"report: {write_report(out_dir)}")
        console.print(f"results in {out_dir}")
        results = tables_["results"]
        if len(results) and (results["status"] != "done").any():
            raise SystemExit(EXIT_JOBS_NOT_DONE)
        return
    runs = 1 if cfg.baseline in ("", cfg.policy.name) else 2  # the policy, and the baseline on the same arrivals
    with sim_progress(console, runs) as progress:
        out = run(cfg, progress)
    write_outputs(out, out_dir, cfg.write_requests)
    print_summary(console, out.summary, out.timing)
    report_warnings(out.summary)
    console.print(f"results in {out_dir}")


#: Requests simulated per CPU-second on the default scenario, policy and baseline together (the README's sizes:
#: one ``python -m carbonsim`` run, 2 x 36 million requests, takes about 40 CPU-minutes).
DOCUMENTED_REQUESTS_PER_S = 30_000.0
#: Runs expected to take longer than this (in s) say so, with the estimate, before they start.
LONG_RUN_S = 120.0
#: Wall-clock seconds between two progress lines when the output is not a terminal.
PROGRESS_LINE_S = 30.0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _sim_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} simulated s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} simulated min"
    return f"{seconds / 3600:.2f} simulated h"


class _RunProgress:
    """The progress of one simulation: what it prints and when (shared by the bar and the lines)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.t0 = time.monotonic()

    def rate(self, p: simulation.Progress) -> float:
        """Requests finished per wall-clock second so far."""
        elapsed = time.monotonic() - self.t0
        return p.finished / elapsed if elapsed > 0 else 0.0

    def eta_s(self, p: simulation.Progress) -> float:
        """Wall-clock seconds left in the arrival window: by requests if it has any, else by simulated time."""
        elapsed = time.monotonic() - self.t0
        if p.requests and p.finished:
            return (p.requests - p.finished) / max(self.rate(p), 1e-9)
        if p.now_s > 0:
            return elapsed * max(p.horizon_s - p.now_s, 0.0) / p.now_s
        return math.nan

    def line(self, p: simulation.Progress) -> str:
        """One line: simulated time, requests done, rate and ETA (or the drain's state)."""
        head = f"carbonsim: {self.label}: "
        if p.ended:
            return head + f"done in {_duration(time.monotonic() - self.t0)} ({p.finished:,} requests)"
        if p.now_s >= p.horizon_s:
            left = p.requests - p.finished
            return head + (
                f"drain after the arrival window, +{_sim_duration(p.now_s - p.horizon_s)}, "
                f"{left:,} requests still in flight"
            )
        text = (
            f"{p.now_s / 3600:,.1f} / {p.horizon_s / 3600:,.1f} simulated h ({p.now_s / p.horizon_s:.0%}), "
            f"{p.finished:,} / {p.requests:,} requests done, {self.rate(p):,.0f} requests/s"
        )
        eta = self.eta_s(p)
        return head + text + (f", about {_duration(eta)} left" if math.isfinite(eta) and p.now_s > 0 else "")


def estimate_line(p: simulation.Progress, runs: int) -> str | None:
    """Before a long run starts: how long it will take at the documented throughput (None if short)."""
    seconds = p.requests * runs / DOCUMENTED_REQUESTS_PER_S
    if seconds < LONG_RUN_S:
        return None
    return (
        f"carbonsim: {p.requests:,} requests over {p.horizon_s / 3600:g} simulated hours in {runs} run(s): "
        f"about {_duration(seconds)} at the documented {DOCUMENTED_REQUESTS_PER_S:,.0f} requests per "
        "CPU-second (sim_hours=2 for a quick look)"
    )


@contextlib.contextmanager
def sim_progress(
    console: Console, runs: int = 1, stream: TextIO | None = None, line_s: float = PROGRESS_LINE_S
) -> Iterator[ProgressFactory]:
    """Progress of the simulations of one command.

    On a terminal (and not in CI), a bar per run over its arrival window and, once the window has passed, a
    second one for the drain (requests still in flight). Otherwise one line to ``stream`` (standard error)
    at most every ``line_s`` wall-clock seconds, with simulated time, requests done, rate and time left,
    and one when each run ends. Either way, before a long run starts (``runs`` simulations of its
    requests at :data:`DOCUMENTED_REQUESTS_PER_S`, more than :data:`LONG_RUN_S`), a line that says how long
    it will take.
    """
    out = stream if stream is not None else sys.stderr
    told = [False]

    def announce(p: simulation.Progress) -> None:
        if not told[0]:
            told[0] = True
            line = estimate_line(p, runs)
            if line is not None:
                print(line, file=out, flush=True)

    if not console.is_terminal or os.environ.get("CI"):

        def lines(label: str) -> Callable[[simulation.Progress], None]:
            run_ = _RunProgress(label)
            printed = [time.monotonic()]

            def update(p: simulation.Progress) -> None:
                announce(p)
                now = time.monotonic()
                if p.ended or now - printed[0] >= line_s:
                    printed[0] = now
                    print(run_.line(p), file=out, flush=True)

            return update

        yield lines
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:

        def factory(label: str) -> Callable[[simulation.Progress], None]:
            run_ = _RunProgress(label)
            tasks: dict[str, TaskID] = {}

            def update(p: simulation.Progress) -> None:
                announce(p)
                if "window" not in tasks:
                    tasks["window"] = bar.add_task(label, total=p.horizon_s / 3600.0, info="")
                window = min(p.now_s, p.horizon_s) / 3600.0
                eta = run_.eta_s(p)
                info = (
                    f"{window:,.1f} / {p.horizon_s / 3600:,.1f} simulated h, {p.finished:,} / {p.requests:,} requests"
                )
                if math.isfinite(eta) and p.now_s < p.horizon_s and p.now_s > 0:
                    info += f", about {_duration(eta)} left"
                bar.update(tasks["window"], completed=window, info=info)
                if p.now_s >= p.horizon_s and p.now_s > 0:
                    if "drain" not in tasks:
                        tasks["drain"] = bar.add_task(f"{label}: drain", total=None, info="")
                    drain = f"+{_sim_duration(p.now_s - p.horizon_s)}"
                    if p.ended:  # a finished task stops its clock
                        bar.update(tasks["drain"], total=1, completed=1, info=f"{drain}, every request finished")
                    else:
                        bar.update(tasks["drain"], info=f"{drain}, {p.requests - p.finished:,} requests in flight")

            return update

        yield factory


def sweep_job(cfg: RunConfig, folder: Path, sweep_dir: Path) -> str:
    """One job of a Hydra multirun: an experiment's run (``experiment.run`` set) or a single run.

    Skips a job already done in ``folder`` (unless ``redo``) and records a failure instead of raising, so
    that the other jobs of the sweep go on (:func:`carbonsim.sweep.guarded`).
    """
    exp = cfg.experiment
    identity: dict[str, Any] = {"policy": cfg.policy.name, "seed": cfg.seed}
    if exp is not None and exp.run >= 0:
        identity.update(experiment=exp.name, variant_index=exp.variant, run_index=exp.run)

        def work() -> None:
            experiment_job(cfg, exp.variant, exp.run, cfg.seed, folder, sweep_dir / ".cache")

    else:

        def work() -> None:
            out = run(cfg)
            write_outputs(out, folder, cfg.write_requests)
            report_warnings(out.summary, f"carbonsim: job {folder.name}")

    return guarded(folder, work, identity, cfg.redo)


def _raise(exc: Exception) -> None:
    raise exc


def hydra_task(cfg: DictConfig) -> None:
    """The Hydra task function: validate, run, write into Hydra's output directory.

    Bad input ends as one line on stderr and exit status 2 (:mod:`carbonsim._errors`); in a sweep it is
    recorded in the job's ``failed.json`` instead, and the sweep goes on. A sweep job whose folder would be
    outside ``hydra.sweep.dir`` writes nothing and counts as missing.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    mark_started()
    hc = HydraConfig.get()
    folder = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun:
        sweep_dir = Path(hc.sweep.dir)
        if not folder.resolve().is_relative_to(sweep_dir.resolve()):
            print(
                f"carbonsim: hydra.sweep.subdir: expected a job folder inside hydra.sweep.dir {sweep_dir}, got"
                f" {folder}; the job did not run",
                file=sys.stderr,
            )
            return
    try:
        run_cfg = config_from_hydra(cfg)
    except ConfigError as exc:
        if not multirun:
            if debugging():
                raise
            report("carbonsim", exc)
            raise SystemExit(EXIT_BAD_INPUT) from None
        # One bad job of a sweep is recorded like any failed job; the others go on.
        print(f"carbonsim: job {folder.name}: {one_line(exc)}", file=sys.stderr)
        identity = {"overrides": " ".join(hc.overrides.task)}
        guarded(folder, functools.partial(_raise, exc), identity, redo=True)
        return
    if multirun and not (run_cfg.experiment is not None and run_cfg.experiment.run < 0):
        state = sweep_job(run_cfg, folder, Path(hc.sweep.dir))
        print(f"carbonsim: job {folder.name}: {state}")
        if state == "failed":
            print(f"carbonsim: job {folder.name}: {recorded_failure(folder)[0]}", file=sys.stderr)
        return
    if run_cfg.experiment is not None and run_cfg.experiment.run >= 0:
        if sweep_job(run_cfg, folder, folder) == "failed":
            error, bad_input = recorded_failure(folder)
            print(f"carbonsim: {error}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT if bad_input else EXIT_JOBS_NOT_DONE)
        return
    with exit_on_user_error("carbonsim"):
        execute(run_cfg, folder)


JOBS_TOTAL_FILE = ".jobs_total"


def count_jobs(overrides: list[str]) -> int:
    """Jobs of a basic sweep over these overrides: the product of each swept key's number of values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sizes: dict[str, int] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        sizes[key] = len(list(override.sweep_string_iterator())) if override.is_sweep_override() else 1
    total = 1
    for n in sizes.values():
        total *= n
    return total


BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def expected_jobs(overrides: list[str]) -> list[dict[str, str]]:
    """The overrides of every job Hydra's basic sweeper launches for these overrides, as key -> value."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return [
        dict(item.split("=", 1) for item in job)
        for batch in BasicSweeper.split_arguments(parsed, None)
        for job in batch
    ]


#: Fields of an experiment's learned shifting run, checked when a sweep starts (:func:`check_learned_run`).
LEARNED_RUN_FIELDS = ("experiment.shifting_checkpoint", "experiment.shifting_weights")


def check_learned_run(config: DictConfig, overrides: list[str]) -> None:
    """Checks an experiment's learned shifting run before the sweep starts; bad input exits with status 2.

    An invalid :data:`LEARNED_RUN_FIELDS` value, a checkpoint that is missing or not a shifting network, or a
    sweep whose ``experiment.run`` values leave out the learned run's index prints one
    line and exits with status 2, before any job runs and before the sweep folder is made. Other invalid
    values of the sweep are left to the jobs, which record them (:func:`hydra_task`).

    Args:
        config: The sweep's composed configuration (with ``hydra``).
        overrides: The overrides of the sweep (its parameters, then the command line's).
    """
    data = OmegaConf.to_container(config, resolve=False)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    try:
        exp = config_from_hydra(OmegaConf.create(data)).experiment
        if exp is None or not exp.shifting_checkpoint:
            return
        check_shifting_checkpoint(exp)
        if config.hydra.sweeper.get("_target_") == BASIC_SWEEPER:
            swept = {job["experiment.run"] for job in expected_jobs(overrides) if "experiment.run" in job}
            if swept and str(len(exp.runs)) not in swept:
                values = ", ".join(sorted(swept, key=lambda v: (len(v), v)))
                raise ConfigError(
                    f"experiment.shifting_checkpoint: the sweep's experiment.run values ({values})"
                    f" leave out the learned shifting run (index {len(exp.runs)}); expected a sweep over every run,"
                    f" e.g. hydra.sweeper.params.experiment.run=range(0,{len(exp.all_runs)})"
                )
    except ConfigError as exc:
        if not str(exc).startswith(LEARNED_RUN_FIELDS):
            return
        report("carbonsim", exc)
        raise SystemExit(EXIT_BAD_INPUT) from None


class SweepCallback(Callback):
    """Hydra callback: after a multirun, collects every job of the sweep directory and writes the tables.

    Writes ``results.parquet``, ``results.csv`` and the other tables of :func:`carbonsim.experiment.analyse`
    into ``hydra.sweep.dir`` and prints them; jobs that failed or never finished are listed and the command
    exits with status 1 once everything else is written.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Checks the learned run (:func:`check_learned_run`), lists the jobs, removes stale tables.

        Writes the number of jobs (for the jobs-done display of :meth:`on_job_end`) and, with Hydra's basic
        sweeper, the overrides of every job (:data:`carbonsim.sweep.EXPECTED_FILE`), against which the
        collection checks that each job is there exactly once.
        """
        mark_started()
        params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
        overrides = [*params, *config.hydra.overrides.task]
        check_learned_run(config, overrides)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:  # tables of an earlier run of the sweep would be stale until collected again
            (sweep_dir / name).unlink(missing_ok=True)
        write_text(sweep_dir / JOBS_TOTAL_FILE, f"{count_jobs(overrides)}\n")
        expected = sweep_dir / EXPECTED_FILE
        if config.hydra.sweeper.get("_target_") == BASIC_SWEEPER:
            write_text(expected, json.dumps(expected_jobs(overrides), indent=1) + "\n")
        else:
            expected.unlink(missing_ok=True)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Prints how many of the sweep's jobs have finished (it runs in the job's process)."""
        from hydra.core.hydra_config import HydraConfig

        try:
            sweep_dir = Path(str(HydraConfig.get().sweep.dir))
        except ValueError:
            return
        total_file = sweep_dir / JOBS_TOTAL_FILE
        if total_file.is_file():
            finished = sum(1 for name in ("summary.json", "failed.json") for _ in sweep_dir.glob(f"*/{name}"))
            print(f"carbonsim: jobs finished: {finished} / {total_file.read_text().strip()}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Aggregates the sweep; exits with status 1 if a job is not done.

        Hydra turns an exception of a callback into a warning and carries on, so a bug here would end the
        sweep with status 0: it is printed in full and the command exits with status 1 instead.
        """
        try:
            self._aggregate(config)
        except Exception:  # a bug, not the user's input: show it whole, and fail
            traceback.print_exc()
            raise SystemExit(EXIT_JOBS_NOT_DONE) from None

    def _aggregate(self, config: DictConfig) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        data = OmegaConf.to_container(config, resolve=False)
        assert isinstance(data, dict)
        data.pop("hydra", None)
        try:
            run_cfg: RunConfig | None = config_from_hydra(OmegaConf.create(data))
        except ConfigError:
            # The sweep's own values are invalid (so is every job, each recorded as failed): collect anyway.
            run_cfg = None
        tables_ = analyse(run_cfg, sweep_dir, baseline=str(data.get("baseline") or ""))
        console = make_console()
        if run_cfg is not None:
            name = run_cfg.experiment.name if run_cfg.experiment is not None else "sweep"
            print_tables(console, tables_, f"{name} on {run_cfg.scenario.name} ({run_cfg.sim_hours:g} h)")
        else:
            print_tables(console, tables_, "sweep")
        console.print(f"report: {write_report(sweep_dir)}")
        console.print(f"results in {sweep_dir}")
        results = tables_["results"]
        if len(results) and (results["status"] != "done").any():
            raise SystemExit(EXIT_JOBS_NOT_DONE)
