"""Experiments: several policies on the same arrivals, compared in one table."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from carbonsim import sweep
from carbonsim._schema import ConfigError, build
from carbonsim.analysis import tables
from carbonsim.bounds import inference_bound, job_bounds
from carbonsim.config import BatchPolicyConfig, ExperimentConfig, PolicyConfig, PublishedRow, RunConfig
from carbonsim.core.arrivals import Requests
from carbonsim.core.jobs import Jobs
from carbonsim.core.world import World
from carbonsim.policies import batch_policy_config, policy_config
from carbonsim.runner import (
    add_reductions,
    baseline_policies,
    is_baseline,
    prepare,
    report_warnings,
    run_label,
    simulate_policy,
    write_json,
    write_outputs,
    write_text,
)
from carbonsim.sweep import guarded


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")


def _run_specs(cfg: RunConfig) -> list[tuple[str, PolicyConfig, BatchPolicyConfig]]:
    """(label, routing policy, batch policy) of every run of the experiment."""
    assert cfg.experiment is not None
    with_jobs = cfg.scenario.batch.has_jobs
    specs = []
    n = len(cfg.experiment.runs)
    for i, run in enumerate(cfg.experiment.all_runs):
        where = f"experiment.runs[{i}]" if i < n else "experiment.shifting_checkpoint"
        routing = {k: v for k, v in run.items() if k not in ("label", "batch_policy")}
        pc = policy_config(routing, where) if routing else cfg.policy
        bc = (
            batch_policy_config(run["batch_policy"], f"{where}.batch_policy" if i < n else where)
            if "batch_policy" in run
            else cfg.batch_policy
        )
        label = str(run.get("label") or run_label(pc, bc if with_jobs else None))
        specs.append((label, pc, bc))
    return specs


def apply_variant(cfg: RunConfig, variant: Mapping[str, Any]) -> RunConfig:
    """The run configuration with dotted paths set (e.g. ``scenario.batch.window_h``), validated again.

    A path may index a list by position (``scenario.regions.0.pue``) or set every element with ``*``
    (``scenario.regions.*.pools.*.count``). A ``label`` entry only names the variant.
    """
    data = dataclasses.asdict(cfg)
    for path, value in variant.items():
        if path == "label":
            continue
        _set_path(data, path.split("."), value, path)
    return build(RunConfig, data)


def _set_path(node: Any, keys: list[str], value: Any, path: str) -> None:
    key, rest = keys[0], keys[1:]
    if isinstance(node, list | tuple):
        if key == "*":
            targets = list(range(len(node)))
        elif key.isdigit() and int(key) < len(node):
            targets = [int(key)]
        else:
            raise ConfigError(f"experiment.variants: {path!r}: {key!r} is not an index of a {len(node)}-element list")
        items = list(node)
        for i in targets:
            if rest:
                _set_path(items[i], rest, value, path)
            else:
                items[i] = value
        if isinstance(node, list):
            node[:] = items
        return
    if not isinstance(node, dict) or key not in node:
        raise ConfigError(f"experiment.variants: unknown configuration path {path!r}")
    if rest:
        if isinstance(node[key], tuple):
            node[key] = list(node[key])
        _set_path(node[key], rest, value, path)
    else:
        node[key] = value


def variant_label(variant: Mapping[str, Any]) -> str:
    """Label of a variant: its ``label`` entry, else the last path component and value of each entry."""
    if "label" in variant:
        return str(variant["label"])
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in variant.items())


def experiment_units(cfg: RunConfig) -> list[tuple[int, int, int]]:
    """Every job of the experiment as (variant index or -1, run index, seed), in sweep order."""
    exp = cfg.experiment
    if exp is None:
        raise ValueError("experiment_units needs cfg.experiment")
    variants = range(len(exp.variants)) if exp.variants else (-1,)
    return [(v, r, seed) for v in variants for seed in exp.seeds or (cfg.seed,) for r in range(len(exp.all_runs))]


def check_shifting_checkpoint(exp: ExperimentConfig) -> None:
    """Reads the experiment's ``shifting_checkpoint`` (if any) as a shifting network, before any job runs.

    Raises:
        ConfigError: naming ``experiment.shifting_checkpoint``: the file is missing or is not a shifting
            checkpoint (another format, damaged, arrays that do not fit the network).
    """
    if exp.shifting_checkpoint:
        from carbonsim.learn.shifting_policy import load_network

        load_network(exp.shifting_checkpoint, "experiment.shifting_checkpoint")


def instance_key(cfg: RunConfig, seed: int) -> str:
    """A digest of everything that fixes a run's instance (scenario, horizon, drain, seed), not its policies.

    Jobs of a sweep that share it share the instance, hence its clairvoyant bounds; jobs that differ in any
    of it (another scenario preset, another variant value) never do.
    """
    data = {
        "scenario": dataclasses.asdict(cfg.scenario),
        "sim_hours": cfg.sim_hours,
        "drain": cfg.drain,
        "max_drain_hours": cfg.max_drain_hours,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _bounds(vcfg: RunConfig, seed: int, cache: Path | None, compute: Any) -> dict[str, float]:
    """The clairvoyant bounds of a variant and seed, cached in ``cache`` (shared by the jobs of a sweep)."""
    if cache is not None and cache.is_file():
        return {k: float(v) for k, v in json.loads(cache.read_text(encoding="utf-8")).items()}
    values: dict[str, float] = compute()
    if cache is not None:
        write_json(cache, values)
    return values


Prepared = tuple[World, Requests, Jobs]


def experiment_job(
    cfg: RunConfig,
    variant_index: int,
    run_index: int,
    seed: int,
    folder: Path,
    cache_dir: Path,
    prepared: Callable[[RunConfig, int], Prepared] = prepare,
) -> None:
    """Runs one job of an experiment (one run on one variant and seed) and writes it into ``folder``.

    The summary names the job (``label``, ``variant``, ``seed``, ``run_index``), says whether it ran the
    baseline policies (``is_baseline``) and carries the clairvoyant bounds of its instance, so that
    :func:`carbonsim.sweep.finish` can add the reductions and the bound shares. If the baseline is not one of
    the experiment's runs, the job runs it too and adds its reductions itself. ``prepared`` draws the
    world, requests and jobs of a variant and seed (:func:`carbonsim.runner.prepare`; an in-process
    experiment passes one that reuses them across the runs of the same variant and seed).
    """
    exp = cfg.experiment
    assert exp is not None
    variant = exp.variants[variant_index] if variant_index >= 0 else {}
    vcfg = apply_variant(cfg, variant) if variant else cfg
    specs = _run_specs(vcfg)
    label, pc, bc = specs[run_index]
    if run_index >= len(exp.runs):  # the learned run: a checkpoint gone bad since the start names its field
        check_shifting_checkpoint(exp)
    world, requests, jobs = prepared(vcfg, seed)
    vslug = _slug(variant_label(variant)) + "_" if variant else ""

    def compute_bounds() -> dict[str, float]:
        out: dict[str, float] = {}
        for rule, kg in job_bounds(world, jobs, exp.bound_precedence).items():
            out[f"bound_{rule}_job_carbon_kg"] = kg
        if len(requests):
            out["bound_carbon_kg"] = inference_bound(world, requests, vcfg.sim_hours * 3600.0).carbon_g / 1e3
        return out

    flat = "" if exp.bound_precedence else "noprec_"  # the looser bound is another value
    bounds = _bounds(
        vcfg, seed, cache_dir / f"bounds_{vslug}{flat}seed{seed}_{instance_key(vcfg, seed)}.json", compute_bounds
    )
    out = simulate_policy(vcfg, pc, world, requests, seed, label, jobs=jobs, batch_policy=bc)
    pair = baseline_policies(vcfg)
    summary = out.summary
    summary.update(
        experiment=exp.name,
        variant=variant_label(variant) if variant else "",
        variant_index=variant_index,
        run_index=run_index,
        is_baseline=is_baseline(pair, pc, bc, jobs, requests),
        bound_precedence=exp.bound_precedence,
    )
    summary.update(bounds)
    if pair is not None and not any(is_baseline(pair, p, b, jobs, requests) for _, p, b in specs):
        base = simulate_policy(vcfg, pair[0], world, requests, seed, jobs=jobs, batch_policy=pair[1])
        add_reductions(summary, base.summary, vcfg)
        sweep.add_bound_shares(summary)
    write_outputs(out, folder, write_requests=False)
    report_warnings(summary, f"carbonsim: job {folder.name}")


def job_folder_name(cfg: RunConfig, variant_index: int, run_index: int, seed: int) -> str:
    """Folder of a job in an in-process experiment: ``<variant>_<label>_seed<seed>``."""
    exp = cfg.experiment
    assert exp is not None
    variant = exp.variants[variant_index] if variant_index >= 0 else {}
    label = _run_specs(apply_variant(cfg, variant) if variant else cfg)[run_index][0]
    return f"{_slug(variant_label(variant)) + '_' if variant else ''}{_slug(label)}_seed{seed}"


def run_experiment(cfg: RunConfig, out_dir: Path) -> dict[str, pd.DataFrame]:
    """Runs every job of ``cfg.experiment`` in this process, then collects and writes the tables.

    Every policy sees the same requests and jobs for a given variant and seed (common random numbers).
    Each job's files go to ``runs/<variant>_<label>_seed<seed>/``; jobs already done there are skipped
    (unless ``cfg.redo``) and a job that fails is recorded and does not stop the others
    (:mod:`carbonsim.sweep`). The tables (``results``, ``results_by_policy``, ``comparison``,
    ``comparison_per_workload``, ``jobs_comparison`` with batch jobs, ``reference_table`` with published
    results) go to ``out_dir``. A bad ``experiment.shifting_checkpoint`` raises before any job runs.

    Returns:
        The tables by name (``results``, ``comparison``, ``per_workload``, and if present ``by_policy``,
        ``jobs`` and ``reference``).
    """
    if cfg.experiment is None:
        raise ValueError("run_experiment needs cfg.experiment")
    check_shifting_checkpoint(cfg.experiment)
    write_text(out_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(dataclasses.asdict(cfg))))
    last: list[tuple[tuple[int, int], Prepared]] = []  # the prepared inputs of the last variant and seed

    def reuse(v: int, vcfg: RunConfig, seed: int) -> Prepared:
        if not last or last[0][0] != (v, seed):
            last[:] = [((v, seed), prepare(vcfg, seed))]
        return last[0][1]

    folders: dict[str, tuple[int, int, int]] = {}
    for unit in experiment_units(cfg):
        name = job_folder_name(cfg, *unit)
        if name in folders:
            # Two jobs in one folder: the second would find the first done and never run.
            raise ConfigError(
                f"experiment.runs: jobs {folders[name]} and {unit} (variant, run, seed) share the folder {name!r};"
                " expected labels that differ"
            )
        folders[name] = unit
    for v, r, seed in experiment_units(cfg):
        folder = out_dir / "runs" / job_folder_name(cfg, v, r, seed)
        identity = {"experiment": cfg.experiment.name, "variant_index": v, "run_index": r, "seed": seed}
        work = functools.partial(
            experiment_job, cfg, v, r, seed, folder, out_dir / ".cache", functools.partial(reuse, v)
        )
        if guarded(folder, work, identity, cfg.redo) == "failed":
            print(f"carbonsim: job {folder.name}: {sweep.recorded_failure(folder)[0]}", file=sys.stderr)
    return analyse(cfg, out_dir)


#: Experiments with their own tables and figures: name -> module whose ``write_study(out_dir, results)``
#: :func:`analyse` calls after the sweep's tables (the report embeds what it lists in ``study.json``).
STUDIES = {"seed_study": "carbonsim.analysis.seed_study"}


def analyse(cfg: RunConfig | None, out_dir: Path, baseline: str = "") -> dict[str, pd.DataFrame]:
    """Collects every job below ``out_dir``, adds reductions and bound shares, writes and returns the tables.

    Args:
        cfg: The sweep's configuration; None if it is invalid (every job then failed), in which case the
            jobs are collected against ``baseline``.
        out_dir: The sweep's folder.
        baseline: The baseline policy's name when ``cfg`` is None.
    """
    df = sweep.finish(sweep.collect(out_dir), cfg.baseline if cfg is not None else baseline)
    result = sweep.write_tables(df, out_dir)
    rows = []
    for job in df[df["status"] == "done"]["job"] if len(df) else []:
        path = out_dir / str(job) / "per_workload.csv"
        if path.is_file():
            wl = pd.read_csv(path)
            row = df[df["job"] == job].iloc[0]
            for col in ("seed", "variant", "label"):
                if col in df.columns:
                    wl.insert(0, col, row[col])
            rows.append(wl)
    empty = pd.DataFrame(columns=["seed", "variant", "label", "workload", "requests", "completed"])
    result["per_workload"] = pd.concat(rows, ignore_index=True) if rows else empty
    write_text(out_dir / "comparison_per_workload.csv", result["per_workload"].to_csv(index=False, float_format="%.6g"))
    write_text(out_dir / "comparison_per_workload.md", tables.markdown(tables.human_table(result["per_workload"])))
    if cfg is not None and cfg.experiment is not None and cfg.experiment.name in STUDIES and len(df):
        importlib.import_module(STUDIES[cfg.experiment.name]).write_study(out_dir, df)
    if cfg is not None and cfg.experiment is not None and cfg.experiment.published:
        ref = reference_table(result["comparison"], cfg.experiment.published)
        write_text(out_dir / "reference_table.csv", ref.to_csv(index=False, float_format="%.6g"))
        write_text(out_dir / "reference_table.md", tables.markdown(tables.human_table(ref)))
        result["reference"] = ref
    return result


def reference_table(comparison: pd.DataFrame, published: Sequence[PublishedRow]) -> pd.DataFrame:
    """Rows of carbonsim beside the published ones, one row per policy and source.

    The reduction compared is ``intensity_reduction_pct``, of the mean serving-region intensity against the
    baseline, which is how the published table defines it (the reduction of total emissions,
    ``carbon_reduction_pct``, is in the comparison table). With several seeds, carbonsim's row is
    the mean over seeds.
    """
    cols = [
        "mean_latency_ms",
        "p95_latency_ms",
        "slo_violation_pct",
        "mean_intensity_gco2_per_kwh",
        "intensity_reduction_pct",
    ]
    ours = comparison.groupby("label", sort=False)[cols].mean().reset_index()
    published_by_label = {pub.policy: pub for pub in published}
    rows = []
    for _, m in ours.iterrows():
        rows.append(
            {
                "policy": m["label"],
                "source": "carbonsim",
                "mean_latency_ms": m["mean_latency_ms"],
                "p95_latency_ms": m["p95_latency_ms"],
                "slo_violation_pct": m["slo_violation_pct"],
                "mean_intensity_gco2_per_kwh": m["mean_intensity_gco2_per_kwh"],
                "intensity_reduction_pct": m["intensity_reduction_pct"],
            }
        )
        pub = published_by_label.get(m["label"])
        if pub is not None:
            rows.append(
                {
                    "policy": pub.policy,
                    "source": "published",
                    "mean_latency_ms": pub.mean_latency_ms,
                    "p95_latency_ms": pub.p95_latency_ms,
                    "slo_violation_pct": pub.slo_violation_pct,
                    "mean_intensity_gco2_per_kwh": pub.mean_intensity_gco2_per_kwh,
                    "intensity_reduction_pct": pub.intensity_reduction_pct,
                }
            )
    missing = sorted(set(published_by_label) - set(ours["label"]))
    if missing:
        raise ValueError(f"experiment.published: no run is labelled {', '.join(map(repr, missing))}")
    return pd.DataFrame(rows, columns=list(tables.REFERENCE_COLUMNS))
