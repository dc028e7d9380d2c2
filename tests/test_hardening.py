"""Bad input of every kind ends as one line and exit status 2, nothing escapes, every preset runs.

The command line runs in this process (:func:`carbonsim.__main__.main` with ``sys.argv`` set), from an empty
working folder, into a run folder inside it. Each case of the table states the bad input (command-line
overrides, a data file broken in a copy of the traces, a broken checkpoint, a sweep), the exit status and
the start of the one line on stderr (``carbonsim: <field or file>: ...``) plus a fragment of it; every case
also checks that nothing was written outside the run folder. A Hypothesis test feeds malformed CSV rows to
every loader of the data layer.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import re
import shlex
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli
from hydra.core.global_hydra import GlobalHydra
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonsim import sweep as sweep_module
from carbonsim._hydra import job_dir_name
from carbonsim.data import (
    DataError,
    load_eia930,
    load_electricitymaps,
    load_gaia_jobs,
    load_inference_profiles,
    load_llm_requests,
    load_load_shape,
    load_price,
    load_rtt_matrix,
    load_watttime_moer,
)
from carbonsim.data.paths import TRACES_ENV, traces_dir
from carbonsim.learn import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
TRACES = traces_dir()
TINY = ("sim_hours=0.01", "write_requests=false")
ILLUSTRATIVE = ("scenario=illustrative", *TINY)
US = ("scenario=us", *TINY, "baseline=")
PJM = "carbon_intensity/electricitymaps_hourly/US-MIDA-PJM_2021-2024_hourly.csv.gz"
PJM_PRICE = "electricity_prices/hourly_usd_per_mwh/US-MIDA-PJM_2020-2024_hourly_prices.csv.gz"
GOOGLE = "workloads/sustaindc_GoogleClusteData_CPU_Data_Hourly_1.csv.gz"
PAI = "workloads/gaia_batch_jobs_pai_1k.csv.gz"
LLM = "workloads/azure_llm_inference_2023_code.csv.gz"
WATTTIME = "carbon_intensity/watttime_moer_caiso_north_2023-06-08_2023-07-08_5min.csv.gz"
PROFILES = "inference_profiles/nvidia_dle_inference_latency_bert_resnet50.csv"
PAI_RUN = ("scenario=batch_us", "scenario.batch.trace=pai_1k", "sim_hours=0.5", "write_requests=false", "baseline=")
REPLAY = (*ILLUSTRATIVE, "scenario.arrivals.kind=replay", "scenario.arrivals.trace=azure_llm_code")
LOAD_SHAPE = (*ILLUSTRATIVE, "scenario.arrivals.load_shape=google_1", "scenario.arrivals.hourly_profile=[]")


# --- the command line, in this process ------------------------------------------------------------------------


#: The progress lines a run prints to stderr when it is not a terminal (carbonsim.cli.sim_progress).
PROGRESS = re.compile(
    r"carbonsim: (.*: (done in |drain after |[\d,.]+ / [\d,.]+ simulated h)|[\d,]+ requests over .* simulated hours)"
)


@dataclass
class Outcome:
    """What a command did: exit status, its output, and its run (or sweep) folder."""

    code: int
    stdout: str
    stderr: str
    out: Path

    @property
    def errors(self) -> list[str]:
        """The lines on stderr that are neither warnings nor progress (a run's progress lines go there too)."""
        return [
            line for line in self.stderr.splitlines() if line and ": warning: " not in line and not PROGRESS.match(line)
        ]

    @property
    def warnings(self) -> list[str]:
        """The warning lines on stderr."""
        return [line for line in self.stderr.splitlines() if ": warning: " in line]


def carbonsim_cli(work: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """Runs ``python -m carbonsim *args`` in-process from ``work`` into ``work/out`` (run or sweep folder)."""
    out = work / "out"
    multirun = "--multirun" in args or any(a.startswith("+experiment=") for a in args)
    if not any(a.startswith(("hydra.run.dir=", "hydra.sweep.dir=")) for a in args):
        args = (*args, f"hydra.{'sweep' if multirun else 'run'}.dir={out}")
    return Outcome(*run_cli(work, monkeypatch, *args), out)


def written_outside(root: Path, inside: Path, allowed: Sequence[Path] = ()) -> list[str]:
    """Files and folders below ``root`` that are neither ``inside`` nor below it, nor in ``allowed``."""
    keep = {inside, *allowed}
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if not any(p == k or p.is_relative_to(k) or k.is_relative_to(p) for k in keep)
    )


# --- broken copies of the traces --------------------------------------------------------------------------------

Edit = Callable[[list[str]], list[str]]


def _read_lines(path: Path) -> list[str]:
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
    return text.splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)


def broken_traces(folder: Path, relpath: str, edit: Edit | bytes | None) -> Path:
    """A trace folder like the shipped one (links to its files) with ``relpath`` edited, replaced or deleted."""
    for src in TRACES.rglob("*"):
        if src.is_file():
            dst = folder / src.relative_to(TRACES)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    target = folder / relpath
    target.unlink()
    if isinstance(edit, bytes):
        target.write_bytes(edit)
    elif edit is not None:
        _write_lines(target, edit(_read_lines(TRACES / relpath)))
    return target


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]))


def _join(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def extra_field(row: int) -> Edit:
    """Data row ``row`` (1-based) gets one more field."""
    return lambda lines: [*lines[:row], lines[row] + ",1", *lines[row + 1 :]]


def missing_field(row: int) -> Edit:
    """Data row ``row`` loses its last field."""
    return lambda lines: [*lines[:row], _join(_cells(lines[row])[:-1]), *lines[row + 1 :]]


def blank_line(row: int) -> Edit:
    """A blank line before data row ``row``."""
    return lambda lines: [*lines[:row], "", *lines[row:]]


def set_cell(row: int, column: int, value: str) -> Edit:
    """Cell ``column`` (0-based) of data row ``row`` becomes ``value``."""

    def edit(lines: list[str]) -> list[str]:
        cells = _cells(lines[row])
        cells[column] = value
        return [*lines[:row], _join(cells), *lines[row + 1 :]]

    return edit


def duplicate_row(row: int) -> Edit:
    return lambda lines: [*lines[: row + 1], lines[row], *lines[row + 1 :]]


def drop_row(row: int) -> Edit:
    return lambda lines: [*lines[:row], *lines[row + 1 :]]


def swap_rows(row: int) -> Edit:
    return lambda lines: [*lines[:row], lines[row + 1], lines[row], *lines[row + 2 :]]


def header(text: str) -> Edit:
    return lambda lines: [text, *lines[1:]]


def _truncated_gzip(relpath: str) -> bytes:
    return (TRACES / relpath).read_bytes()[:5000]


# --- broken checkpoints -----------------------------------------------------------------------------------------

ILLUSTRATIVE_REGIONS = ["us-east", "us-west", "eu-west", "eu-north", "singapore"]
ILLUSTRATIVE_WORKLOADS = ["bert-base", "bert-large", "resnet-50"]


def good_checkpoint(folder: Path, scale: float = 1.0, **meta: Any) -> Path:
    policy = ckpt.random_policy(ILLUSTRATIVE_REGIONS, ILLUSTRATIVE_WORKLOADS)
    policy = ckpt.MLPPolicy(
        tuple(w * np.float32(scale) for w in policy.weights), policy.biases, policy.activation, {**policy.meta, **meta}
    )
    return ckpt.save(folder / "policy.npz", policy)


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def checkpoint_bytes(kind: str, folder: Path) -> bytes:
    """The bytes of a broken ``.npz`` checkpoint of the given kind."""
    good = good_checkpoint(folder / "good").read_bytes() if kind != "none" else b""
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "text":
        return b"model weights, trust me\n"
    if kind == "crc":
        return good[:200] + bytes([good[200] ^ 0xFF]) + good[201:]
    if kind == "empty":
        return b""
    if kind == "no_header":
        return _npz({"layer0.weight": np.zeros((2, 2), np.float32), "layer0.bias": np.zeros(2, np.float32)})
    if kind == "pickled":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            item = io.BytesIO()
            np.save(item, np.array([{"a": 1}], dtype=object), allow_pickle=True)
            z.writestr("header.npy", item.getvalue())
        return buf.getvalue()
    if kind == "header_not_json":
        return _npz({"header": np.array("{not json"), "layer0.weight": np.zeros((2, 2)), "layer0.bias": np.zeros(2)})
    raise ValueError(kind)


def _checkpoint_file(folder: Path, kind: str) -> Path:
    if kind == "missing":
        return folder / "nowhere.npz"
    if kind == "folder":
        (folder / "adir").mkdir(exist_ok=True)
        return folder / "adir"
    if kind == "other_regions":
        return ckpt.save(folder / "other.npz", ckpt.random_policy(["a", "b"], ["x"]))
    if kind == "nan":
        policy = ckpt.random_policy(ILLUSTRATIVE_REGIONS, ILLUSTRATIVE_WORKLOADS)
        weights = (np.full_like(policy.weights[0], np.nan), *policy.weights[1:])
        return ckpt.save(folder / "nan.npz", ckpt.MLPPolicy(weights, policy.biases, "tanh", policy.meta))
    if kind == "regions_not_a_list":
        return good_checkpoint(folder, regions=5)
    path = folder / f"{kind}.npz"
    path.write_bytes(checkpoint_bytes(kind, folder))
    return path


# --- the table ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments, what to break first, the exit status and the start of the message.

    ``where`` is the start of the message after ``carbonsim: `` (a field path, or ``FILE`` for the broken
    file's path); ``fragment`` must appear in the same line.
    """

    id: str
    args: tuple[str, ...]
    where: str
    fragment: str = ""
    code: int = 2
    data: tuple[str, Edit | bytes | None] | None = None
    checkpoint: str = ""
    lines: int = 1


def C(id: str, args: Sequence[str], where: str, fragment: str = "", **kw: Any) -> Case:  # noqa: N802
    return Case(id, tuple(args), where, fragment, **kw)


CONFIG_CASES = [
    C("seed-not-int", ["seed=abc", *ILLUSTRATIVE], "seed: expected an integer", "'abc'"),
    C("sim-hours-huge", ["sim_hours=1e9", "scenario=illustrative"], "sim_hours:", "10 years"),
    C("drain-huge", ["max_drain_hours=1e9", *ILLUSTRATIVE], "max_drain_hours: expected a number of hours"),
    C("planning-interval-tiny", ["planning_interval_min=1e-9", *ILLUSTRATIVE], "planning_interval_min:", "millisecond"),
    C("policy-unknown", ["policy=nope"], "policy: expected one of", "latency_first"),
    C("policy-key-typo", ["policy.alhpa=0.3"], "policy.alhpa: expected a known key"),
    C("policy-key-appended", ["+policy.alhpa=0.3", *ILLUSTRATIVE], "policy: unknown field", "alhpa"),
    C("alpha-out-of-range", ["policy.alpha=1.5", *ILLUSTRATIVE], "policy.alpha: expected a weight in [0, 1]", "1.5"),
    C("baseline-unknown", ["baseline=nope", *ILLUSTRATIVE], "baseline: expected a policy name", "'nope'"),
    C("batch-policy-unknown", ["batch_policy=nope"], "batch_policy: expected one of", "carbon_agnostic"),
    C("scenario-unknown", ["scenario=nope"], "scenario: expected one of", "illustrative"),
    C("experiment-unknown", ["+experiment=nope"], "experiment: expected one of", "pareto_sweep"),
    C("experiment-key-without-experiment", ["experiment.run=3"], "command line:", "null"),
    C("override-unparsable", ["a=["], "command line: expected overrides such as key=value"),
    C("list-index-past-end", ["scenario.regions.9.pue=2"], "scenario.regions[9]: expected an element of the list"),
    C("bool-not-bool", ["drain=maybe"], "drain: expected true or false", "'maybe'"),
    C("zone-path", ["scenario.regions.0.grid_zone=../../../etc/passwd", *US], "scenario.regions[0].grid_zone:", "'/'"),
    C("zone-unknown", ["scenario.regions.0.grid_zone=NOPE", *US], "scenario.regions[0].grid_zone: expected an Elec"),
    C(
        "gpu-not-profiled",
        [*US, "scenario.workloads.0.service.t4.measured.gpu=H100"],
        "scenario.workloads[0].service.t4",
    ),
    C("market-unknown", ["scenario.regions.0.price_market=NOPE", *US], "scenario.regions[0].price_market: expected"),
    C("start-after-data", ["scenario.start_utc=2030-01-01T00:00:00Z", *US], "scenario.start_utc: Electricity Maps"),
    C("start-at-data-end", ["scenario.start_utc=2024-12-31T23:00:00Z", *US], "scenario.start_utc: Electricity", "wrap"),
    C("start-garbage", ["scenario.start_utc=garbage", *US], "scenario.start_utc: expected an ISO 8601 UTC time"),
    C(
        "forecast-history-before-data",
        ["scenario.forecast.kind=learned", "scenario.start_utc=2021-01-02T00:00:00Z", *US],
        "scenario.forecast.kind: Electricity Maps",
        "671 h",
    ),
    C("rate-huge", ["scenario.arrivals.rate_per_s=1e12", *ILLUSTRATIVE], "scenario.arrivals.rate_per_s: expected at"),
    C("replay-without-trace", ["scenario.arrivals.kind=replay", *ILLUSTRATIVE], "scenario.arrivals.trace: expected"),
    C("servers-huge", ["scenario.regions.0.pools.0.count=1000000000", *ILLUSTRATIVE], "scenario.regions[0].pools[0]"),
    C("jobs-without-homes", ["scenario.batch.trace=pai_1k", *ILLUSTRATIVE], "scenario.batch.home_shares: expected"),
    C(
        "intensity-implausible",
        ["scenario.carbon.base_gco2_per_kwh.US-EAST=5000", *ILLUSTRATIVE],
        "scenario.carbon.base_gco2_per_kwh.US-EAST: expected an intensity in [0, 2000]",
    ),
    C("run-dir-impossible", ["hydra.run.dir=/proc/carbonsim/out", *ILLUSTRATIVE], "/proc/carbonsim"),
]

DATA_CASES = [
    # Electricity Maps (read by scenario=us after the profiles).
    C("em-extra-field", US, "FILE: row 5 (line 6): 12 field(s); expected 11", data=(PJM, extra_field(5))),
    C("em-missing-field", US, "FILE: row 9 (line 10): 10 field(s); expected 11", data=(PJM, missing_field(9))),
    C("em-blank-line", US, "FILE: line 4: blank line between data rows", data=(PJM, blank_line(3))),
    C(
        "em-intensity-5000",
        US,
        "FILE: row 7 (line 8)",
        "outside the plausible range",
        data=(PJM, set_cell(7, 4, "5000")),
    ),
    C("em-intensity-inf", US, "FILE: row 2 (line 3)", "value inf", data=(PJM, set_cell(2, 4, "inf"))),
    C("em-duplicate-hour", US, "FILE: duplicated timestamp", data=(PJM, duplicate_row(4))),
    C("em-gap", US, "FILE: gap in the", "missing", data=(PJM, drop_row(4))),
    C("em-wrong-zone-id", US, "FILE: row 2 (line 3): Zone Id 'DE'", data=(PJM, set_cell(2, 3, "DE"))),
    C("em-header", US, "FILE: line 1: unexpected header", data=(PJM, header("time,zone,value"))),
    C("em-truncated-gzip", US, "FILE: cannot parse as CSV", data=(PJM, _truncated_gzip(PJM))),
    C("em-empty-file", US, "FILE: file is empty", data=(PJM, b"")),
    C("em-not-utf8", US, "FILE:", "UTF-8", data=(PJM, gzip.compress(b"\xff\xfe\x00garbage\n"))),
    C("em-missing-file", US, "scenario.regions[0].grid_zone: expected an Electricity Maps zone", data=(PJM, None)),
    # Market prices (after the carbon files).
    C("price-below-floor", US, "FILE: row 2 (line 3)", "-5000", data=(PJM_PRICE, set_cell(2, 2, "-5000"))),
    # Load shape.
    C("load-above-one", LOAD_SHAPE, "FILE: row 4 (line 5)", "1.5", data=(GOOGLE, set_cell(4, 1, "1.5"))),
    C("load-hour-skipped", LOAD_SHAPE, "FILE: row 5 (line 6)", "hour(s) missing", data=(GOOGLE, drop_row(5))),
    C("load-shape-too-short", [*US, "scenario.arrivals.load_shape_offset_h=100000"], "scenario.arrivals.load_shape_of"),
    # GAIA jobs.
    C("jobs-100k-cpus", PAI_RUN, "FILE: row 3 (line 4)", "100000", data=(PAI, set_cell(3, 2, "100000"))),
    C("jobs-out-of-order", PAI_RUN, "FILE: row 6 (line 7)", "non-decreasing", data=(PAI, swap_rows(5))),
    # Azure LLM arrivals (replayed).
    C("llm-fractional-tokens", REPLAY, "FILE: row 3 (line 4)", "whole tokens", data=(LLM, set_cell(3, 1, "2.5"))),
    # WattTime marginal signal.
    C(
        "moer-negative",
        ["scenario=marginal", *TINY, "baseline="],
        "FILE: row 2 (line 3)",
        "negative",
        data=(WATTTIME, set_cell(2, 1, "-5")),
    ),
    # NVIDIA latency profiles (measured workloads).
    C(
        "profile-unknown-precision",
        US,
        "FILE: row 2 (line 3): unknown precision",
        data=(PROFILES, set_cell(2, 6, "fp7")),
    ),
]

PPO = ("policy=ppo", *ILLUSTRATIVE)
CHECKPOINT_CASES = [
    C("ppo-no-checkpoint", PPO, "policy.checkpoint: expected the path of a trained policy"),
    C("ppo-missing", PPO, "policy.checkpoint: CKPT: no such checkpoint file", checkpoint="missing"),
    C("ppo-truncated", PPO, "policy.checkpoint: CKPT: not a carbonsim policy checkpoint", checkpoint="truncated"),
    C("ppo-not-a-zip", PPO, "policy.checkpoint: CKPT: not a carbonsim policy checkpoint", checkpoint="text"),
    C("ppo-bad-crc", PPO, "policy.checkpoint: CKPT: not a carbonsim policy checkpoint", "CRC", checkpoint="crc"),
    C("ppo-pickled", PPO, "policy.checkpoint: CKPT: not a carbonsim policy checkpoint", checkpoint="pickled"),
    C("ppo-header-not-json", PPO, "policy.checkpoint: CKPT: header is not JSON", checkpoint="header_not_json"),
    C("ppo-other-regions", PPO, "policy.checkpoint: CKPT was trained for regions", checkpoint="other_regions"),
    C("ppo-nan-weights", PPO, "policy.checkpoint: CKPT: layer0 holds non-finite values", checkpoint="nan"),
    C("ppo-regions-not-list", PPO, "policy.checkpoint: CKPT: header 'regions'", checkpoint="regions_not_a_list"),
    C("ppo-as-baseline", ["baseline=ppo", *ILLUSTRATIVE], "baseline=ppo: policy.checkpoint: expected the path"),
]

SLASH = "scenario.name=a/../../../x"  # a swept value that would lead a job folder out of the sweep folder
SWEEP_CASES = [
    C(
        "sweep-bad-jobs-and-a-slash",
        ["--multirun", "hydra/launcher=basic", "seed=0,1", "policy.alpha=1.5", f"{SLASH},b", *ILLUSTRATIVE],
        "job policy.alpha=1.5,scenario.name=",
        "policy.alpha: expected a weight in [0, 1], got 1.5",
        code=1,
        lines=4,
    ),
]

TABLE = CONFIG_CASES + DATA_CASES + CHECKPOINT_CASES + SWEEP_CASES


def test_the_table_is_long_enough():
    assert len(TABLE) >= 60
    assert len({case.id for case in TABLE}) == len(TABLE)


@pytest.mark.parametrize("case", TABLE, ids=[case.id for case in TABLE])
def test_bad_input_ends_in_one_line_and_its_exit_status(case: Case, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    args = list(case.args)
    where = case.where
    if case.data is not None:
        relpath, edit = case.data
        broken = broken_traces(tmp_path / "traces", relpath, edit)
        monkeypatch.setenv(TRACES_ENV, str(tmp_path / "traces"))
        where = where.replace("FILE", str(broken))
    if case.checkpoint:
        (tmp_path / "ckpt").mkdir()
        path = _checkpoint_file(tmp_path / "ckpt", case.checkpoint)
        args.append(f"policy.checkpoint={path}")
        where = where.replace("CKPT", str(path))
    result = carbonsim_cli(work, *args, monkeypatch=monkeypatch)
    assert result.code == case.code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = result.errors
    assert len(errors) == case.lines, errors
    for line in errors:
        assert line.startswith(f"carbonsim: {where}"), line
        assert case.fragment in line, line
    assert written_outside(work, result.out) == []
    assert written_outside(tmp_path, work, [tmp_path / "traces", tmp_path / "ckpt"]) == []
    if "--multirun" in args:
        # Each bad job: its one line in failed.json; every job folder one level inside the sweep folder.
        failed = [json.loads(p.read_text()) for p in result.out.glob("*/failed.json")]
        assert len(failed) == case.lines and all(f["bad_input"] for f in failed)
        assert {line.split(": ", 2)[2] for line in errors} == {f["error"] for f in failed}
        assert sorted(pd.read_csv(result.out / "results.csv")["status"]) == ["failed"] * case.lines
        if any(a.startswith(SLASH) for a in args):
            assert len([p for p in result.out.iterdir() if "%2F..%2F" in p.name]) == case.lines // 2


# --- sweeps verify themselves ---------------------------------------------------------------------------------


README_SWEEP = ["--multirun", "policy=hybrid", "policy.alpha=0.2,0.5,0.7"]


@dataclass
class ReadmeSweep:
    """The README's sweep at a tiny horizon, then run again after one job's summary was cut short."""

    root: Path
    first: Outcome
    again: Outcome
    stamp: int  # summary.json of an untouched job after the first run, its mtime


@pytest.fixture(scope="module")
def readme_sweep(tmp_path_factory: pytest.TempPathFactory) -> ReadmeSweep:
    root = tmp_path_factory.mktemp("sweep")
    work = root / "work"
    work.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        first = carbonsim_cli(work, *_tiny(README_SWEEP), monkeypatch=mp)
        sweep = first.out
        cut = next(sweep.glob("policy.alpha=0.2,*/summary.json"))
        stamp = next(sweep.glob("policy.alpha=0.5,*/summary.json")).stat().st_mtime_ns
        cut.write_text(cut.read_text()[:40])
        (sweep / "comparison.md").write_text("stale\n")
        again = carbonsim_cli(work, *_tiny(README_SWEEP), monkeypatch=mp)
    return ReadmeSweep(root, first, again, stamp)


def test_the_readme_sweep_runs_to_completion(readme_sweep):
    first = readme_sweep.first
    assert first.code == 0, first.stderr
    assert first.errors == []
    assert (pd.read_csv(first.out / "results.csv")["status"] == "done").sum() == 3
    assert written_outside(readme_sweep.root, first.out) == []


def test_a_truncated_summary_is_redone_and_no_table_is_stale(readme_sweep):
    again, sweep = readme_sweep.again, readme_sweep.again.out
    assert again.code == 0, again.stderr
    redone = next(sweep.glob("policy.alpha=0.2,*/summary.json"))
    assert json.loads(redone.read_text())["label"] == "hybrid(alpha=0.2)"
    kept = next(sweep.glob("policy.alpha=0.5,*/summary.json"))
    assert kept.stat().st_mtime_ns == readme_sweep.stamp  # done, so skipped
    assert (sweep / "comparison.md").read_text() != "stale\n"
    assert sorted(pd.read_csv(sweep / "results.csv")["status"]) == ["done"] * 3
    assert written_outside(readme_sweep.root, sweep) == []


def _job(folder: Path, overrides: list[str], summary: dict[str, Any] | str | None, identity: dict[str, Any]) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (folder / "job.json").write_text(json.dumps(identity))
    if summary is not None:
        (folder / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return folder


def test_collection_checks_every_expected_job_once_and_every_summary(tmp_path):
    summary = {"policy": "hybrid", "label": "hybrid", "seed": 0, "scenario": "s", "requests": 1}
    _job(tmp_path / "seed=0", ["seed=0"], summary, {"seed": 0})
    _job(tmp_path / "seed=1", ["seed=1"], {**summary, "seed": 0}, {"seed": 1})  # a summary of another job
    _job(tmp_path / "copy_of_seed=0", ["seed=0"], summary, {"seed": 0})  # the same job twice
    _job(tmp_path / "seed=2", ["seed=2"], '{"policy": "hyb', {"seed": 2})  # cut short
    _job(tmp_path / "seed=3", ["seed=3"], '{"requests": 1}', {"seed": 3})  # not a carbonsim summary
    _job(tmp_path / "seed=4", ["seed=4"], None, {"seed": 4})  # started, never finished
    expected = [{"seed": str(s)} for s in range(6)]  # seed=5 never started (or was written elsewhere)
    df = sweep_module.collect(tmp_path, expected)
    status = {(row["job"] or f"seed={row['override.seed']}"): row["status"] for _, row in df.iterrows()}
    assert status == {
        "copy_of_seed=0": "done",
        "seed=0": "duplicate",
        "seed=1": "failed",
        "seed=3": "failed",
        "seed=2": "failed",
        "seed=4": "missing",
        "seed=5": "missing",
    }
    errors = df.set_index("job")["error"]
    assert "a summary of another job" in errors["seed=1"]
    assert "not valid JSON" in errors["seed=2"]
    assert "expected a carbonsim summary" in errors["seed=3"]
    assert "copy_of_seed=0" in errors["seed=0"]
    # A failed or foreign job is run again by the next run of the sweep; a done one is skipped.
    ran: list[str] = []
    for name in ("seed=1", "copy_of_seed=0"):
        sweep_module.guarded(tmp_path / name, lambda n=name: ran.append(n), {"seed": 0})
    assert ran == ["seed=1"]


def test_tables_are_rewritten_even_when_no_job_is_done(tmp_path):
    for name in sweep_module.RESULT_FILES:
        (tmp_path / name).write_text("stale\n")
    df = pd.DataFrame({"job": ["a"], "status": ["failed"], "error": ["x"]})
    sweep_module.write_tables(df, tmp_path)
    assert pd.read_csv(tmp_path / "results.csv")["status"].tolist() == ["failed"]
    for name in sweep_module.RESULT_FILES:
        path = tmp_path / name
        assert not path.exists() or path.read_bytes() != b"stale\n", name


@pytest.mark.parametrize(
    ("dirname", "expected"),
    [
        ("policy.alpha=0.2,seed=1", "policy.alpha=0.2,seed=1"),
        ("scenario.name=a/../../x", "scenario.name=a%2F..%2F..%2Fx"),
        ("name=/etc", "name=%2Fetc"),
        ("name=50%/x", "name=50%25%2Fx"),
        ("name=a\\b", "name=a%5Cb"),
        ("", "job7"),
    ],
)
def test_job_folder_names_stay_one_folder(dirname, expected):
    assert job_dir_name(dirname, 7) == expected


def test_long_job_folder_names_are_cut_with_a_digest():
    long = "x=" + "v" * 400
    name = job_dir_name(long)
    assert len(name.encode()) <= 200 and name != job_dir_name(long + "w") and "/" not in name


# --- runs that are legal but surely not meant: warnings ---------------------------------------------------------


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def test_an_outage_after_the_run_is_a_warning(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    outage = "scenario.faults.outages=[{region: us-east, start_h: 5, duration_h: 1}]"
    result = carbonsim_cli(tmp_path / "w", outage, *ILLUSTRATIVE, monkeypatch=monkeypatch)
    assert result.code == 0, result.stderr
    summary = _summary(result.out)
    assert summary["warning_count"] == 1
    assert summary["warnings"][0].startswith("scenario.faults.outages[0].start_h: 5 h is after the run ended")
    assert result.warnings == [f"carbonsim: warning: {summary['warnings'][0]}"]


def test_every_job_larger_than_every_cluster_is_a_warning(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    small = [f"scenario.regions.{i}.batch_cpus=1" for i in range(3)]
    args = ("scenario=batch_us", "sim_hours=0.5", *small)
    result = carbonsim_cli(tmp_path / "w", *args, monkeypatch=monkeypatch)
    assert result.code == 0, result.stderr
    summary = _summary(result.out)
    assert summary["jobs"] > 0 and summary["jobs_failed"] == summary["jobs"]
    assert summary["warnings"] == [
        f"scenario.regions[*].batch_cpus: all {summary['jobs']} batch jobs need more CPUs than the largest batch"
        " cluster (1 CPUs) and fail"
    ]
    assert len(result.warnings) == 1


def test_a_network_that_overflows_is_a_warning(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    path = good_checkpoint(tmp_path, scale=3e38)
    result = carbonsim_cli(tmp_path / "w", *PPO, f"policy.checkpoint={path}", monkeypatch=monkeypatch)
    assert result.code == 0, result.stderr
    summary = _summary(result.out)
    assert summary["policy_nonfinite_decisions"] > 0
    assert summary["warnings"][0].startswith(f"policy: {summary['policy_nonfinite_decisions']:.0f} of")
    assert result.warnings


def test_zero_requests_and_zero_jobs_write_every_file_with_its_columns(tmp_path, monkeypatch):
    (tmp_path / "w").mkdir()
    # The batch preset with the job trace's window after its end: no requests (the preset has none), no jobs.
    args = ("scenario=batch_us", "sim_hours=0.5", "scenario.batch.trace_offset_h=9000", "write_requests=true")
    result = carbonsim_cli(tmp_path / "w", *args, monkeypatch=monkeypatch)
    assert result.code == 0, result.stderr
    out = result.out
    summary = _summary(out)
    assert (summary["requests"], summary["jobs"]) == (0, 0)
    requests = pd.read_parquet(out / "requests.parquet")
    assert len(requests) == 0 and {"arrival_s", "region", "carbon_g"} <= set(requests.columns)
    jobs = pd.read_csv(out / "jobs.csv")
    assert len(jobs) == 0 and {"job", "cpus", "status", "carbon_g"} <= set(jobs.columns)
    for name in ("per_workload", "per_region", "hourly", "routing", "latency_quantiles", "timeline", "signals"):
        assert (out / f"{name}.csv").read_text().strip(), name  # at least the header
    assert [w.split(":")[0] for w in summary["warnings"]] == ["scenario.batch.trace", "scenario.arrivals.rate_per_s"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != ".hydra"]


# --- the README's commands and every preset ---------------------------------------------------------------------


def readme_commands() -> list[list[str]]:
    """The ``python -m carbonsim`` commands of the README's "Everyday use" block, as argument lists."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Everyday use", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("python -m carbonsim"):
            commands.append(shlex.split(line)[3:])
    return commands


def _tiny(args: list[str]) -> list[str]:
    """The command at a tiny horizon, without the per-request table (a sweep: one seed, in this process)."""
    kept = [a for a in args if not a.startswith(("sim_hours=", "write_requests="))]
    hours = "sim_hours=0.001" if "scenario=fleet" in args else "sim_hours=0.01"  # 3,000 requests/s
    tiny = [*kept, hours, "write_requests=false"]
    if "--multirun" in args:
        tiny = [*tiny, "hydra/launcher=basic"]  # the jobs in this process, one after the other
    elif any(a.startswith("+experiment=") for a in args):
        # Composes the experiment and prints its configuration; tests/test_configs.py runs every experiment.
        tiny = ["--cfg", "job", *tiny]
    return tiny


SCENARIOS = sorted(p.stem for p in (ROOT / "conf" / "scenario").glob("*.yaml"))


def test_readme_has_commands():
    commands = readme_commands()
    assert len(commands) >= 10
    assert ["scenario=batch_us", "batch_policy=lets_wait_awhile"] in commands
    assert README_SWEEP in commands  # run by the readme_sweep fixture


@pytest.mark.parametrize(
    "args", [c for c in readme_commands() if c != README_SWEEP], ids=lambda a: " ".join(a) or "(no arguments)"
)
def test_readme_command_runs_to_completion(args, tmp_path, monkeypatch):
    result = carbonsim_cli(tmp_path, *_tiny(args), monkeypatch=monkeypatch)
    assert result.code == 0, result.stderr
    assert result.errors == []
    if "--multirun" in args:
        assert (pd.read_csv(result.out / "results.csv")["status"] == "done").all()
    elif "--cfg" not in _tiny(args):
        assert _summary(result.out)["sim_hours"] in (0.01, 0.001)


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if s != "default" and not any(f"scenario={s}" in c for c in readme_commands())],
)
def test_every_other_preset_runs_from_the_command_line(scenario, tmp_path, monkeypatch):
    hours = "sim_hours=0.001" if scenario == "fleet" else "sim_hours=0.01"
    result = carbonsim_cli(
        tmp_path, f"scenario={scenario}", hours, "write_requests=true", "policy=latency_first", monkeypatch=monkeypatch
    )
    assert result.code == 0, result.stderr
    assert (result.out / "requests.parquet").is_file() and (result.out / "summary.json").is_file()


# --- every loader, random malformed rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Loader:
    """A loader and a small valid file for it (the first rows of the shipped one)."""

    name: str
    relpath: str
    rows: int | None
    load: Callable[[Path], Any]


LOADERS = [
    Loader("electricitymaps", PJM, 30, lambda p: load_electricitymaps("US-MIDA-PJM", path=p)),
    Loader("eia930", "carbon_intensity/eia930_sustaindc_hourly_2022.csv.gz", 30, lambda p: load_eia930("AZPS", path=p)),
    Loader("watttime", WATTTIME, 30, lambda p: load_watttime_moer(path=p)),
    Loader("price", PJM_PRICE, 30, lambda p: load_price("US-MIDA-PJM", path=p)),
    Loader("llm", LLM, 30, lambda p: load_llm_requests("code", path=p)),
    Loader("load_shape", GOOGLE, 30, lambda p: load_load_shape("google_1", path=p)),
    Loader("gaia", PAI, 30, lambda p: load_gaia_jobs("pai_1k", path=p)),
    Loader("profiles", PROFILES, 30, lambda p: load_inference_profiles(path=p)),
    Loader("rtt", "network/azure_inter_region_rtt_p50_ms_2026-07-30_matrix.csv", None, lambda p: load_rtt_matrix(p)),
]

_LINES: dict[str, list[str]] = {}


def loader_lines(loader: Loader) -> list[str]:
    if loader.relpath not in _LINES:
        lines = _read_lines(TRACES / loader.relpath)
        _LINES[loader.relpath] = lines if loader.rows is None else lines[: loader.rows + 1]
    return _LINES[loader.relpath]


@pytest.mark.parametrize("loader", LOADERS, ids=[loader.name for loader in LOADERS])
def test_every_loader_accepts_its_small_file(loader, tmp_path):
    path = tmp_path / Path(loader.relpath).name.removesuffix(".gz")
    _write_lines(path, loader_lines(loader))
    assert loader.load(path) is not None


_CELLS = st.one_of(
    st.sampled_from(["", "nan", "inf", "-inf", "1e400", "-1", "0", "1e9", "abc", "2021-13-45 99:99:99", '"', " "]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=8),
)


@st.composite
def mutations(draw: st.DrawFn, n_rows: int, n_fields: int) -> tuple[str, int, Any]:
    kind = draw(st.sampled_from(["more_fields", "fewer_fields", "cell", "blank", "empty_line_content"]))
    row = draw(st.integers(1, n_rows))
    if kind == "more_fields":
        return kind, row, draw(st.lists(_CELLS, min_size=1, max_size=3))
    if kind == "fewer_fields":
        return kind, row, draw(st.integers(1, n_fields - 1))
    if kind == "cell":
        return kind, row, (draw(st.integers(0, n_fields - 1)), draw(_CELLS))
    return kind, row, None


def _apply(lines: list[str], kind: str, row: int, arg: Any) -> list[str]:
    cells = _cells(lines[row])
    if kind == "more_fields":
        cells = [*cells, *arg]
    elif kind == "fewer_fields":
        cells = cells[: len(cells) - arg]
    elif kind == "cell":
        column, value = arg
        cells[column] = value
    elif kind == "blank":
        return [*lines[:row], "", *lines[row:]]
    else:
        return [*lines[:row], "   ", *lines[row + 1 :]]
    return [*lines[:row], _join(cells), *lines[row + 1 :]]


@pytest.mark.parametrize("loader", LOADERS, ids=[loader.name for loader in LOADERS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_malformed_row_is_rejected_with_its_file_and_line_or_read_correctly(loader, data, tmp_path):
    lines = loader_lines(loader)
    n_fields = len(_cells(lines[0]))
    kind, row, arg = data.draw(mutations(len(lines) - 1, n_fields))
    path = tmp_path / Path(loader.relpath).name.removesuffix(".gz")
    _write_lines(path, _apply(lines, kind, row, arg))
    try:
        loaded = loader.load(path)
    except DataError as exc:
        message = str(exc)
        assert str(path) in message
        if kind in ("more_fields", "fewer_fields", "empty_line_content"):
            # Counted by the CSV module, so it is exactly the line written.
            assert f"(line {row + 1})" in message or f"line {row + 1}:" in message, message
        if kind == "blank":
            assert f"line {row + 1}: blank line" in message, message
        return
    # Accepted: only a cell changed, to a value that is valid where it is; the table still has every row.
    assert kind == "cell", (kind, row, arg)
    size = len(loaded) if not isinstance(loaded, tuple) else len(loaded[0])
    assert size >= 1


# --- the experiment scripts and the documentation -----------------------------------------------------------------


def run_script(name: str, work: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """Runs ``experiments/<name>.py *args`` in-process from ``work`` into ``work/out``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "experiments" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", [name, *args, f"hydra.run.dir={work / 'out'}"])
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            module.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), work / "out")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["ppo.n_envs=0"], "train_ppo: ppo.n_envs: expected a positive integer, got 0"),
        (["seed=abc"], "train_ppo: seed: expected an integer, got 'abc'"),
        (["ppo=nope"], "train_ppo: ppo: expected a mapping"),
    ],
)
def test_an_experiment_script_reports_bad_input_in_one_line(args, line, tmp_path, monkeypatch):
    result = run_script("train_ppo", tmp_path, *args, monkeypatch=monkeypatch)
    assert result.code == 2, result.stderr
    assert len(result.errors) == 1 and result.errors[0].startswith(line), result.stderr
    assert written_outside(tmp_path, result.out) == []


def test_every_bound_is_documented():
    from carbonsim import limits

    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    names = [n for n in limits.__all__ if n.isupper()]
    assert len(names) >= 15
    for name in names:
        assert f"| `{name}` |" in doc, name
    assert "docs/errors.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_an_experiment_run_in_one_process_names_its_failed_job(tmp_path, capsys):
    from carbonsim import load_config
    from carbonsim.experiment import run_experiment

    runs = "experiment.runs=[{name: latency_first}, {name: ppo}]"  # ppo without its checkpoint: bad input
    tables = run_experiment(load_config(["+experiment=pareto_sweep", runs, *ILLUSTRATIVE]), tmp_path)
    errors = [line for line in capsys.readouterr().err.splitlines() if not PROGRESS.match(line)]
    assert errors == [
        "carbonsim: job ppo_seed0: policy.checkpoint: expected the path of a trained policy (policy.npz), got ''"
    ]
    # execute() (python -m carbonsim +experiment=... hydra.mode=RUN) exits with status 1 on this table.
    assert sorted(tables["results"]["status"]) == ["done", "failed"]
