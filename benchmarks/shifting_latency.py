"""Decision latency of the learned shifting scheduler: wall time per batch epoch against runnable items.

``N`` one-task jobs (1 CPU, 0.5 to 2 hours, deadline 24 hours) arrive at once in the dag_tpch preset's three regions,
whose clusters hold ``capacity`` CPUs each, so that about ``N - 3 x capacity`` items stay runnable and
waiting epoch after epoch. At each epoch the engine's construction of ``view.stages`` (which every
stage-level policy pays) and then the policy's ``schedule`` call (features, the network in NumPy on one
BLAS thread, the deadline guard, the decisions) are timed; medians (and the policy's 90th percentile) are
printed per number of items, with the policy's CPU time (this thread's; it leaves out the time the process
waited for a core on a busy machine). A network is built at random (torch) unless ``--checkpoint`` is given
(the latency does not depend on the weights); ``--torch`` times the torch network's forward instead (one
torch thread), for comparison.

    python benchmarks/shifting_latency.py                       # 1,000 items
    python benchmarks/shifting_latency.py --items 100 1000 5000 --checkpoint outputs/.../shifting.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np


def main() -> None:
    """Parses the options and prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000])
    parser.add_argument("--capacity", type=int, default=20, help="CPUs per region's cluster")
    parser.add_argument("--epochs", type=int, default=30, help="epochs timed per size")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--torch", action="store_true", help="time the torch network's forward instead")
    args = parser.parse_args()

    import carbonsim
    from carbonsim.core.jobs import Decision, JobContext, Jobs, JobView, Stages
    from carbonsim.learn.shifting_config import ShiftingModelConfig
    from carbonsim.learn.shifting_numpy import ShiftingNumpy, parameter_shapes
    from carbonsim.learn.shifting_policy import LearnedShifting, LearnedShiftingConfig
    from carbonsim.policies import make_policy
    from carbonsim.runner import make_simulation, prepare

    if args.checkpoint and not args.torch:
        model: Any = ShiftingNumpy.load(args.checkpoint)[0]
    else:
        import torch

        from carbonsim.learn import shifting_model as sm

        torch.set_num_threads(1)
        net = sm.load(args.checkpoint)[0] if args.checkpoint else sm.build(ShiftingModelConfig(), 0)
        model = net if args.torch else sm.to_numpy(net)

    class TorchForward:
        def decide(self, *inputs: np.ndarray, **_: Any) -> tuple[np.ndarray, np.ndarray]:
            return model.decide(*inputs)

    class Timed:
        def __init__(self, inner: LearnedShifting, limit: int) -> None:
            self.inner, self.limit = inner, limit
            self.rows: list[tuple[int, float, float, float]] = []

        def reset(self, context: JobContext) -> None:
            self.inner.reset(context)

        def schedule(self, view: JobView) -> Mapping[Any, Decision]:
            if len(self.rows) >= self.limit:
                return {j.id: j.home for j in view.active}  # timing done: finish quickly
            t0 = time.perf_counter()
            n = len(view.stages)  # the engine builds the columns on first access (every stage policy pays it)
            t1, c1 = time.perf_counter(), time.thread_time()
            out = self.inner.schedule(view)
            self.rows.append((n, t1 - t0, time.perf_counter() - t1, time.thread_time() - c1))
            return out

    forward = "torch (one thread)" if args.torch else "NumPy (one BLAS thread)"
    size = sum(math.prod(shape) for shape in parameter_shapes(model.config).values())
    print(f"network: {forward}, {size} parameters")
    print(
        "| runnable items (median) | epochs | view.stages ms (engine) | policy ms median | policy ms p90 "
        "| policy CPU ms median |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.items:
        cfg = carbonsim.load_config(["scenario=dag_tpch", "sim_hours=12", "drain=false"])
        regions = tuple(dataclasses.replace(r, batch_cpus=args.capacity) for r in cfg.scenario.regions)
        cfg = dataclasses.replace(cfg, scenario=dataclasses.replace(cfg.scenario, regions=regions))
        world, requests, _ = prepare(cfg)
        rng = np.random.default_rng(0)
        stages = Stages.single(rng.uniform(1800.0, 7200.0, n), np.ones(n))
        jobs = Jobs.from_stages(
            arrival_s=np.zeros(n),
            deadline_s=np.full(n, 24 * 3600.0),
            interruptible=np.ones(n, bool),
            home=rng.integers(0, 3, n),
            stages=stages,
        )
        inner = LearnedShifting(LearnedShiftingConfig(weights=(1.0, 1.0, 1.0)), model=model)
        if args.torch:
            inner.model = TorchForward()
        policy = Timed(inner, args.epochs)
        sim = make_simulation(cfg, world, requests, make_policy(cfg.policy), 0, jobs=jobs, batch_policy=policy)
        sim.run()
        rows = [r for r in policy.rows if r[0] >= n // 2] or policy.rows
        items = int(np.median([r[0] for r in rows]))
        view_ms = np.median([r[1] for r in rows]) * 1e3
        ms = np.array([r[2] for r in rows]) * 1e3
        cpu_ms = np.median([r[3] for r in rows]) * 1e3
        print(
            f"| {items} | {len(rows)} | {view_ms:.2f} | {np.median(ms):.2f} | {np.percentile(ms, 90):.2f} "
            f"| {cpu_ms:.2f} |"
        )


if __name__ == "__main__":
    main()
