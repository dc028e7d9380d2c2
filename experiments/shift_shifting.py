"""Frozen vs continuously learning shifting schedulers when a grid becomes clean (issue 18's shift ablation).

The shift: from ``--from`` (UTC) the measured intensity of one region's grid (``--region``, default
``us-east``, PJM) is multiplied by ``--factor`` (default 0.3), both the direct and the life-cycle columns, in
a copy of the shipped Electricity Maps export written to ``<out>/data/``; the preset
(``--scenario``, default ``gpu_training``) is copied to ``<out>/conf/scenario/<scenario>_clean.yaml`` with
that region reading the copy (``carbon_source``). Training (2021-2022) never saw this grid.

* **frozen**: each checkpoint as trained.
* **continuous**: each checkpoint keeps learning after the shift: PPO in Shifting-v0 on the shifted
  scenario over the weeks from ``--from`` to the first evaluation window (``--ppo-timesteps`` steps, weights
  drawn per episode as in training), as a deployed scheduler would from the episodes it runs, then is
  evaluated with the weights it has at that point (``--continuous``: networks fine-tuned by an earlier run
  of this script, instead of fine-tuning again).
* **online** (``--online``): each checkpoint learns *during* the evaluation runs themselves
  (``batch_policy.online``, carbonsim/learn/shifting_online.py): from the checkpoint, it samples its choices,
  is rewarded with what its run accrues and makes PPO updates every ``--online-every-h`` simulated hours,
  carrying its network through the windows in order (one instance per checkpoint). No training before the
  windows: what it learns, it learns while it schedules.

The arms, and the seed study's baselines, run on the held-out 2024 windows of the shifted scenario
(carbonsim/learn/shifting_eval.py). Writes ``shift_eval.csv`` and ``shift_eval.md`` into ``--out``.

    python experiments/shift_shifting.py --checkpoint outputs/shifting_gpu_s*/shifting.npz --out outputs/shift
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import pandas as pd

INTENSITY_COLUMNS = ("Carbon Intensity gCO₂eq/kWh (direct)", "Carbon Intensity gCO₂eq/kWh (LCA)")


def shifted_scenario(out: Path, scenario: str, region: str, factor: float, from_utc: str) -> str:
    """Writes the shifted export and scenario; returns the scenario's name (found via ``hydra.searchpath``)."""
    from omegaconf import DictConfig, OmegaConf

    from carbonsim._hydra import config_dir
    from carbonsim._schema import ConfigError
    from carbonsim.data.carbon import ELECTRICITYMAPS_DIR
    from carbonsim.data.paths import traces_dir

    preset = OmegaConf.load(config_dir() / "scenario" / f"{scenario}.yaml")
    assert isinstance(preset, DictConfig)
    names = [str(r["name"]) for r in preset.regions]
    if region not in names:
        raise ConfigError(f"--region: expected one of {', '.join(names)}, got {region!r}")
    entry = preset.regions[names.index(region)]
    zone = str(entry["grid_zone"])
    source = traces_dir().joinpath(*ELECTRICITYMAPS_DIR, f"{zone}_2021-2024_hourly.csv.gz")
    with gzip.open(source, "rt", encoding="utf-8") as f:
        df = pd.read_csv(f)
    when = pd.to_datetime(df["Datetime (UTC)"], utc=True)
    after = when >= pd.Timestamp(from_utc)
    for column in INTENSITY_COLUMNS:
        df.loc[after, column] = (df.loc[after, column] * factor).round(2)
    data = out / "data" / f"{zone}_x{factor:g}_from_{from_utc[:10]}.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(data, index=False)
    name = f"{scenario}_clean"
    entry["carbon_source"] = {"kind": "file", "format": "electricitymaps", "path": str(data.resolve()), "zone": zone}
    preset.name = name
    preset.description = f"{preset.get('description', scenario)} Shift: {region} ({zone}) x {factor:g} from {from_utc}."
    folder = out / "conf" / "scenario"
    folder.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(preset, folder / f"{name}.yaml")
    return name


def main() -> None:
    """Parses the options, writes the shifted scenario, fine-tunes, evaluates."""
    from carbonsim.learn.shifting_eval import BASELINES, DEFAULT_STARTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", required=True, help="one per training seed")
    parser.add_argument("--scenario", default="gpu_training")
    parser.add_argument("--region", default="us-east")
    parser.add_argument("--factor", type=float, default=0.3)
    parser.add_argument("--from", dest="from_utc", default="2024-01-01T00:00:00Z")
    parser.add_argument("--starts", nargs="+", default=list(DEFAULT_STARTS))
    parser.add_argument("--gpu-hours", type=float, default=12.0)
    parser.add_argument("--episode-hours", type=float, default=6.0)
    parser.add_argument("--ppo-timesteps", type=int, default=2048)
    parser.add_argument("--continuous", nargs="+", help="fine-tuned networks of an earlier run, one per checkpoint")
    parser.add_argument("--online", action="store_true", help="add the arm that learns during the runs")
    parser.add_argument("--online-every-h", type=float, default=2.0)
    parser.add_argument("--online-lr", type=float, default=3e-4)
    parser.add_argument("--online-epsilon", type=float, default=0.05)
    parser.add_argument("--online-explore", choices=("stay", "all"), default="stay")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument("--out", default="outputs/shift")
    args = parser.parse_args()
    if not args.factor > 0:
        parser.error(f"--factor: expected a number > 0, got {args.factor}")
    if args.continuous and len(args.continuous) != len(args.checkpoint):
        parser.error(
            f"--continuous: expected one network per checkpoint ({len(args.checkpoint)}), got {len(args.continuous)}"
        )

    import torch

    from carbonsim._schema import ConfigError
    from carbonsim.learn.shifting_config import ShiftingEnvConfig, ShiftingOnlineConfig, TrainShiftingConfig
    from carbonsim.learn.shifting_eval import evaluate, markdown, summarise
    from carbonsim.learn.shifting_policy import load_network
    from carbonsim.learn.shifting_train import train

    torch.set_num_threads(1)
    out = Path(args.out)
    try:
        for ckpt in args.checkpoint:  # every checkpoint readable before anything is written
            load_network(ckpt, "--checkpoint")
        for ckpt in args.continuous or ():
            load_network(ckpt, "--continuous")
        learn = ShiftingOnlineConfig(
            enabled=True,
            update_every_h=args.online_every_h,
            learning_rate=args.online_lr,
            epsilon=args.online_epsilon,
            explore=args.online_explore,
        )
        name = shifted_scenario(out, args.scenario, args.region, args.factor, args.from_utc)
        search = f"hydra.searchpath=[file://{(out / 'conf').resolve()}]"
        tuned = list(args.continuous or ())
        for i, ckpt in enumerate(() if args.continuous else args.checkpoint):
            cfg = TrainShiftingConfig(
                seed=i,
                init_checkpoint=ckpt,
                teachers=(),
                imitation_steps=0,
                env=ShiftingEnvConfig(
                    scenario=name,
                    overrides=(search,),
                    episode_hours=args.episode_hours,
                    max_drain_hours=72.0,
                    window_start_utc=args.from_utc,
                    window_end_utc=min(args.starts),
                ),
                ppo_timesteps=args.ppo_timesteps,
                select_starts=(),
            )
            summary = train(cfg, out / f"continuous_{i}")
            tuned.append(summary["checkpoint"])
            print(f"shift_shifting: {ckpt} -> {summary['checkpoint']} ({summary['wall_s']:.0f} s)", flush=True)
        models = {"frozen": list(args.checkpoint), "continuous": tuned}
        if args.online:
            models["online"] = list(args.checkpoint)
        df = evaluate(
            models,
            [name],
            args.starts,
            gpu_hours=args.gpu_hours,
            dag_hours=args.gpu_hours,
            baselines=args.baselines,
            overrides=(search,),
            online={"online": learn} if args.online else None,
        )
    except ConfigError as exc:
        print(f"shift_shifting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    df.to_csv(out / "shift_eval.csv", index=False)
    text = markdown(summarise(df), len(args.starts))
    (out / "shift_eval.md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
