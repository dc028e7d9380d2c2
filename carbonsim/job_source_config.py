"""Configuration of a job trace read from the user's files: which format, which files, and how to map it.

Part of the scenario's batch section (``scenario.batch.source``); frozen dataclasses validated like the rest
of :mod:`carbonsim.config`. The importers that read the files live in :mod:`carbonsim.data.importers`;
``carbonsim.data.importers.load_job_trace(source)`` turns this configuration into a
:class:`~carbonsim.data.job_trace.JobTrace`. ``docs/own_data.md`` (Job traces) documents every format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from carbonsim._schema import ConfigError

#: Formats the importers read (``carbonsim.data.importers.FORMATS`` maps each to its loader).
JOB_FORMATS = ("google_2019", "google_2011", "alibaba_2018", "pai_2020", "swf", "slurm_sacct", "csv")
DURATION_STATS = ("mean", "max")
MISSING_PARENTS = ("error", "skip")
UNKNOWN_GPUS = ("skip", "error")
#: CPU cores per normalised CPU unit of the Google traces, used when the option is left at 0. Google does
#: not publish the core count of its largest machine (the normalisation constant); 96 is the number of
#: vCPUs of Compute Engine's largest general-purpose N1 shapes of the 2019 trace's time (n1-standard-96,
#: a two-socket Skylake host). An assumption, not a measurement: work and energy scale linearly with it.
GOOGLE_CPUS_PER_NORMALISED_UNIT = 96.0


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class JobImportOptions:
    """How an importer maps a trace onto carbonsim's jobs (options a format does not use are ignored).

    Attributes:
        start_s: Start of the time window in seconds after the trace's origin (see each format in
            ``docs/own_data.md``); jobs submitted earlier are left out and counted. The window's start
            becomes ``submit_s = 0``.
        end_s: End of the window (exclusive), seconds after the origin; None for the end of the trace.
        home: Region every job is placed in ("" = drawn by the scenario), or the fallback for pools that
            ``homes`` does not name.
        homes: The trace's machine pool (Slurm partition, SWF partition number) -> region name. With a
            non-empty mapping, a pool that is neither in it nor covered by ``home`` is an error.
        replay_failed: Also replay jobs that ran but did not succeed (failed, killed, timed out, preempted),
            with the run time they had; by default they are left out and counted.
        missing_parents: ``error``: a dependency on a task that is not in the trace is an error naming the
            file and row; ``skip``: the job is left out and counted (for samples and cut-outs).
        cpus_per_normalised_unit: Google traces: CPU cores per normalised CPU unit (requests are fractions
            of the largest machine); 0 uses ``GOOGLE_CPUS_PER_NORMALISED_UNIT`` (96, an assumption).
        gpu_types: The trace's GPU type -> a GPU of ``traces/catalog/gpus.csv`` ("" = any GPU). Added to
            the built-in mapping (catalog names map to themselves, case-insensitively; PAI's ``V100M32``
            maps to ``V100``).
        unknown_gpu: A GPU type with no mapping: ``skip`` the job and count it, or raise an ``error``.
        duration_stat: Google traces: the run time of a stage's tasks, from the measured run times of the
            instances it groups: ``mean`` (keeps the total work) or ``max`` (keeps the stage's length).
        timezone: Slurm: IANA zone of the timestamps sacct printed (sacct prints local time); "UTC" if
            sacct ran with ``TZ=UTC``.
    """

    start_s: float = 0.0
    end_s: float | None = None
    home: str = ""
    homes: dict[str, str] = field(default_factory=dict)
    replay_failed: bool = False
    missing_parents: str = "error"
    cpus_per_normalised_unit: float = 0.0
    gpu_types: dict[str, str] = field(default_factory=dict)
    unknown_gpu: str = "skip"
    duration_stat: str = "mean"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _check(math.isfinite(self.start_s) and self.start_s >= 0, "start_s", self.start_s, "seconds >= 0")
        if self.end_s is not None:
            _check(
                math.isfinite(self.end_s) and self.end_s > self.start_s,
                "end_s",
                self.end_s,
                f"seconds > start_s ({self.start_s:g}) or null",
            )
        _check(self.missing_parents in MISSING_PARENTS, "missing_parents", self.missing_parents, str(MISSING_PARENTS))
        _check(self.unknown_gpu in UNKNOWN_GPUS, "unknown_gpu", self.unknown_gpu, str(UNKNOWN_GPUS))
        _check(self.duration_stat in DURATION_STATS, "duration_stat", self.duration_stat, str(DURATION_STATS))
        _check(
            math.isfinite(self.cpus_per_normalised_unit) and self.cpus_per_normalised_unit >= 0,
            "cpus_per_normalised_unit",
            self.cpus_per_normalised_unit,
            "cores >= 0 (0 = the default)",
        )
        _check(bool(self.timezone), "timezone", self.timezone, "an IANA time zone name such as UTC")

    @property
    def google_cpus_per_unit(self) -> float:
        """CPU cores per normalised unit in effect for the Google traces."""
        return self.cpus_per_normalised_unit or GOOGLE_CPUS_PER_NORMALISED_UNIT


@dataclass(frozen=True)
class JobSourceConfig:
    """A job trace from files in a published schema.

    Attributes:
        format: One of ``JOB_FORMATS``; empty for none (the scenario then uses ``batch.trace``).
        paths: The per-task (or only) table's files, in order; a name may hold a ``*`` pattern for shards
            (``instance_events-*.json.gz``). google_2019: ``instance_events``; google_2011: ``task_events``;
            alibaba_2018: ``batch_task``; pai_2020: ``pai_task_table``; swf, slurm_sacct, csv: the file.
        job_paths: The per-job table's files: google_2019: ``collection_events`` (required); google_2011:
            ``job_events`` (optional); pai_2020: ``pai_job_table`` (optional); unused otherwise.
        options: How the trace is mapped (time window, home regions, failed jobs, units, GPU types).
    """

    format: str = ""
    paths: tuple[str, ...] = ()
    job_paths: tuple[str, ...] = ()
    options: JobImportOptions = field(default_factory=JobImportOptions)

    def __post_init__(self) -> None:
        if not self.format:
            _check(not self.paths and not self.job_paths, "format", self.format, "a format when paths are given")
            return
        _check(self.format in JOB_FORMATS, "format", self.format, f"one of {', '.join(JOB_FORMATS)} (or empty)")
        _check(bool(self.paths), "paths", self.paths, "at least one file")
        if self.format == "google_2019":
            _check(bool(self.job_paths), "job_paths", self.job_paths, "the collection_events file(s)")
        elif self.format not in ("google_2011", "pai_2020"):
            _check(not self.job_paths, "job_paths", self.job_paths, f"none for format {self.format}")
