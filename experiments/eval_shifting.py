"""Evaluate learned shifting schedulers against the batch baselines on held-out windows (2024 by default).

For every scenario and window, the same jobs (same seed) run under the seed study's batch policies and under
each model group (``--model LABEL CKPT [CKPT ...]``: one checkpoint per training seed; ``--checkpoint CKPT
...`` is ``--model learned_shifting CKPT ...``) at ``--weights`` (default: the weights each checkpoint was
selected at); ``--bound`` adds the clairvoyant bounds of
the window's jobs (home region, any region). Prints a Markdown table per scenario (sums over the windows;
model groups: mean over their checkpoints with a 95 % confidence interval of the saving) and writes every
run to ``--out`` (CSV) and the tables next to it (``.md``). See carbonsim/learn/shifting_eval.py for the
scenarios (``*_europe``: two European regions never seen in training).

    python experiments/eval_shifting.py --checkpoint outputs/shifting_gpu_s*/shifting.npz --scenarios gpu_training
    python experiments/eval_shifting.py --model "imitation only" outputs/shifting_gpu_s*/imitation.npz \\
        --model "PPO" outputs/shifting_gpu_s*/ppo.npz --scenarios gpu_training gpu_training_europe --bound
    python experiments/eval_shifting.py --model "capacity decode" outputs/shifting_gpu_s*/shifting.npz \
        --decode "capacity decode" capacity --scenarios gpu_training
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _weights(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(x) for x in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected 'alpha,beta,gamma' (three numbers >= 0), got {text!r}")
    return (values[0], values[1], values[2])


def main() -> None:
    """Parses the options, runs every policy on every window, prints and writes the tables."""
    from carbonsim.learn.shifting_eval import BASELINES, DEFAULT_STARTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", default=[], help="checkpoints of group learned_shifting")
    parser.add_argument("--model", nargs="+", action="append", default=[], metavar=("LABEL", "CKPT"))
    parser.add_argument("--scenarios", nargs="+", default=["gpu_training", "gpu_training_europe"])
    parser.add_argument("--starts", nargs="+", default=list(DEFAULT_STARTS))
    parser.add_argument("--hours", type=float, default=2.0, help="arrival window per start (DAG scenarios)")
    parser.add_argument("--gpu-hours", type=float, default=12.0, help="arrival window per start (gpu scenarios)")
    parser.add_argument(
        "--weights", type=_weights, default=None, help="alpha,beta,gamma (default: each checkpoint's own)"
    )
    parser.add_argument("--sweep", nargs="*", type=_weights, default=[], help="further weightings of the first group")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bound", action="store_true", help="also the clairvoyant bounds (linear programs)")
    parser.add_argument(
        "--decode",
        nargs=2,
        action="append",
        default=[],
        metavar=("LABEL", "MODE"),
        help="decoding of a model group: independent (default) or capacity",
    )
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides of every scenario")
    parser.add_argument("--out", default="eval_shifting.csv")
    args = parser.parse_args()
    models: dict[str, list[str]] = {}
    if args.checkpoint:
        models["learned_shifting"] = list(args.checkpoint)
    for spec in args.model:
        if len(spec) < 2:
            parser.error(f"--model {' '.join(spec)}: expected a label and at least one checkpoint")
        models.setdefault(spec[0], []).extend(spec[1:])

    import torch

    from carbonsim._schema import ConfigError
    from carbonsim.learn.shifting_eval import evaluate, markdown, summarise

    torch.set_num_threads(1)
    try:
        df = evaluate(
            models,
            args.scenarios,
            args.starts,
            dag_hours=args.hours,
            gpu_hours=args.gpu_hours,
            weights=args.weights,
            sweep=args.sweep,
            baselines=args.baselines,
            seed=args.seed,
            bound=args.bound,
            overrides=args.override,
            decode=dict(args.decode),
        )
    except ConfigError as exc:
        print(f"eval_shifting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    text = markdown(summarise(df), len(args.starts))
    out.with_suffix(".md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
