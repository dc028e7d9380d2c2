"""Evaluate the learned shifting scheduler against the batch baselines on held-out windows (2024 by default).

For every scenario and window, the same jobs (same seed) run under ``carbon_agnostic``, ``pcaps``,
``casper_batch`` and ``learned_shifting`` (the checkpoint, at ``--weights``); the clairvoyant bound of the
window's jobs (:func:`carbonsim.job_bound.job_bounds`, any region and home only) is computed with
``--bound``. Scenarios: ``dag_tpch`` and ``gpu_training`` (the presets), and ``dag_tpch_europe`` and
``gpu_training_europe``, the same job streams on the two European regions of the ``europe`` preset (London,
Frankfurt; 100-CPU clusters, or 64 A100s and 32 A100s + 32 H100s; homes 50/50): a region set (and a number
of regions) the networks never saw in training. Prints a Markdown table per scenario (sums over
windows) and writes every row to ``--out`` (CSV).

    python experiments/eval_shifting.py --checkpoint outputs/train_shifting/shifting.npz
    python experiments/eval_shifting.py --checkpoint ... --scenarios dag_tpch --hours 2 \\
        --starts 2024-02-05T00:00:00Z 2024-05-06T12:00:00Z --bound
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

DEFAULT_STARTS = ("2024-02-05T00:00:00Z", "2024-05-06T12:00:00Z", "2024-08-05T06:00:00Z")
BASELINES = ("carbon_agnostic", "pcaps", "casper_batch")


def scenario_run(name: str, start_utc: str, hours: float, seed: int, max_drain_hours: float) -> Any:
    """The run configuration of one window of a scenario (drained, as the environment's episodes)."""
    import carbonsim

    if name in ("dag_tpch_europe", "gpu_training_europe"):
        base = carbonsim.load_config([f"scenario={name.removesuffix('_europe')}"])
        eu = carbonsim.load_config(["scenario=europe"]).scenario
        if name == "dag_tpch_europe":
            regions = tuple(dataclasses.replace(r, batch_cpus=100) for r in eu.regions)
        else:  # as gpu_training's clusters: one all-A100, one half A100 half H100
            gpus = ({"A100": 64}, {"A100": 32, "H100": 32})
            regions = tuple(
                dataclasses.replace(r, batch_cpus=1024, batch_gpus=g) for r, g in zip(eu.regions, gpus, strict=True)
            )
        shares = {r.name: 1.0 / len(regions) for r in regions}
        batch = dataclasses.replace(base.scenario.batch, home_shares=shares)
        scenario = dataclasses.replace(
            base.scenario,
            name=name,
            regions=regions,
            origins=eu.origins,
            prices=eu.prices,
            batch=batch,
        )
        base = dataclasses.replace(base, scenario=scenario)
    else:
        base = carbonsim.load_config([f"scenario={name}"])
    scenario = dataclasses.replace(base.scenario, start_utc=start_utc)
    return dataclasses.replace(
        base, scenario=scenario, seed=seed, sim_hours=hours, drain=True, max_drain_hours=max_drain_hours
    )


def main() -> None:
    """Parses the options, runs every policy on every window, prints and writes the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=["dag_tpch", "gpu_training", "dag_tpch_europe", "gpu_training_europe"],
    )
    parser.add_argument("--starts", nargs="+", default=list(DEFAULT_STARTS))
    parser.add_argument("--hours", type=float, default=2.0, help="arrival window per start (dag scenarios)")
    parser.add_argument("--gpu-hours", type=float, default=12.0, help="arrival window per start (gpu_training)")
    parser.add_argument("--weights", type=float, nargs=3, default=[1.0, 1.0, 1.0])
    parser.add_argument(
        "--sweep",
        nargs="*",
        default=[],
        help="further weightings of the same network, each 'alpha,beta,gamma' (a row learned_shifting(a,b,g))",
    )
    parser.add_argument("--no-baselines", action="store_true", help="only the network (and the bound)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", action="store_true", help="also the clairvoyant bound (a linear program)")
    parser.add_argument("--out", default="eval_shifting.csv")
    args = parser.parse_args()

    import pandas as pd
    import torch

    from carbonsim import batch_policy_config, make_batch_policy
    from carbonsim.job_bound import job_bounds
    from carbonsim.learn import shifting_model as sm
    from carbonsim.learn.shifting_policy import LearnedShifting, LearnedShiftingConfig
    from carbonsim.learn.shifting_train import run_batch_policy, totals
    from carbonsim.runner import prepare

    torch.set_num_threads(1)
    model, _ = sm.load(args.checkpoint)
    weights = tuple(args.weights)
    rows: list[dict[str, Any]] = []
    for scenario in args.scenarios:
        gpu = scenario.startswith("gpu_training")
        hours = args.gpu_hours if gpu else args.hours
        drain = 72.0 if gpu else 24.0
        for i, start in enumerate(args.starts):
            run = scenario_run(scenario, start, hours, args.seed + i, drain)
            names = ("carbon_agnostic",) if args.no_baselines else BASELINES
            policies: dict[str, Any] = {n: make_batch_policy(batch_policy_config({"name": n})) for n in names}
            policies["learned_shifting"] = LearnedShifting(LearnedShiftingConfig(weights=weights), model=model)
            for spec in args.sweep:
                w = tuple(float(x) for x in spec.split(","))
                policies[f"learned_shifting({spec})"] = LearnedShifting(LearnedShiftingConfig(weights=w), model=model)
            for name, policy in policies.items():
                result, wall = run_batch_policy(run, policy)
                t = totals(result)
                rows.append(
                    {
                        "scenario": scenario,
                        "start_utc": start,
                        "hours": hours,
                        "policy": name,
                        **t,
                        "wall_s": wall,
                        "epochs": result.batch_epochs,
                        "ms_per_epoch": 1e3 * wall / max(result.batch_epochs, 1),
                    }
                )
                print(f"{scenario} {start} {name}: {t} ({wall:.1f} s)", flush=True)
            if args.bound:
                world, _, jobs = prepare(run)
                t0 = time.perf_counter()
                b = job_bounds(world, jobs)
                for rule, kg in b.items():
                    rows.append(
                        {
                            "scenario": scenario,
                            "start_utc": start,
                            "hours": hours,
                            "policy": f"bound_{rule}",
                            "carbon_kg": kg,
                            "wall_s": time.perf_counter() - t0,
                        }
                    )
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    for scenario, part in df.groupby("scenario", sort=False):
        sums = part.groupby("policy", sort=False)[["carbon_kg", "cost_usd", "lateness_h", "migrations", "wall_s"]].sum()
        met = part.groupby("policy", sort=False)["deadline_met_pct"].mean()
        agn = sums.loc["carbon_agnostic", "carbon_kg"]
        print(f"\n### {scenario} ({len(args.starts)} windows)\n")
        print(
            "| policy | carbon kg | vs agnostic % | deadlines met % (mean) | lateness job-h | cost USD "
            "| moves | wall s |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in sums.iterrows():
            red = 100.0 * (1 - r["carbon_kg"] / agn) if agn > 0 else float("nan")
            print(
                f"| {name} | {r['carbon_kg']:.4g} | {red:.1f} | {met.get(name, float('nan')):.1f} | "
                f"{r['lateness_h']:.3g} | {r['cost_usd']:.3g} | {r['migrations']:.0f} | {r['wall_s']:.1f} |"
            )


if __name__ == "__main__":
    main()
