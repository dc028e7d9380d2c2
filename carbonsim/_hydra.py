"""Hydra wiring: schemas in the ConfigStore and the location of the YAML configs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from carbonsim._schema import ConfigError, build, thaw
from carbonsim.config import RunConfig, ScenarioConfig
from carbonsim.policies.registry import BATCH, ROUTING


def register_configs() -> None:
    """Stores the schemas that the YAML files in ``conf/`` extend.

    They are ``run_schema``, ``schema/scenario/scenario``, ``schema/policy/<name>`` for every registered
    routing policy and ``schema/batch_policy/<name>`` for every batch policy (YAML files extend them with
    ``- /schema/policy/<name>@_here_``); with them, Hydra rejects unknown keys and wrong types.
    """
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=thaw(RunConfig))
    # experiments/train_ppo.py and train_transformer.py (conf/train_*.yaml); torch-free modules only.
    from carbonsim.learn.config import CompareConfig, DriftConfig, TrainConfig, TrainTransformerConfig

    cs.store(name="train_schema", node=thaw(TrainConfig))
    cs.store(name="train_transformer_schema", node=thaw(TrainTransformerConfig))
    cs.store(name="drift_schema", node=thaw(DriftConfig))
    cs.store(name="compare_schedulers_schema", node=thaw(CompareConfig))
    # Schemas live in their own groups so that Hydra's lists of valid choices show only real configs.
    cs.store(group="schema/scenario", name="scenario", node=thaw(ScenarioConfig))
    for registry in (ROUTING, BATCH):
        for name, (_cls, config_cls) in registry.entries.items():
            cs.store(group=f"schema/{registry.field}", name=name, node=thaw(config_cls)(name=name))


class _WithOutDir(Protocol):
    out_dir: str


S = TypeVar("S", bound=_WithOutDir)


def script_main(prog: str, config_name: str, schema: type[S], work: Callable[[S, Path], None]) -> None:
    """Runs an experiment script: compose ``conf/<config_name>.yaml``, validate it, run ``work``.

    Hydra composes the configuration (with the command line's overrides), :func:`build` validates it into
    ``schema`` and ``work(config, output folder)`` runs. An invalid configuration prints ``<prog>: invalid
    configuration: ...`` (the field and what was expected) and exits with status 2. The output folder is
    the configuration's ``out_dir``, or Hydra's run folder.
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig

    register_configs()

    def task(cfg: DictConfig) -> None:
        try:
            built = build(schema, OmegaConf.to_container(cfg, resolve=True), "")
        except ConfigError as exc:
            print(f"{prog}: invalid configuration: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        out = Path(built.out_dir) if built.out_dir else Path(HydraConfig.get().runtime.output_dir)
        work(built, out)

    hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(task)()


def config_dir() -> Path:
    """The directory holding ``config.yaml``.

    An installed package carries the configs as ``carbonsim/conf``; a checkout (or an editable install)
    has them in ``conf/`` at the top of the repository.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"carbonsim configs not found in {here / 'conf'} or {here.parent / 'conf'}")


def load_config(overrides: list[str] | None = None) -> RunConfig:
    """Composes and validates a run configuration from Python, with command-line style overrides.

    Example: ``load_config(["scenario=reference", "sim_hours=168", "policy=carbon_first"])``.

    Args:
        overrides: Hydra overrides, as on the command line.

    Returns:
        The validated configuration.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    if GlobalHydra.instance().is_initialized():
        # Inside a Hydra application (experiments/train_ppo.py) whose search path is this same conf/.
        cfg = compose("config", overrides=list(overrides or []))
    else:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides or []))
    return config_from_hydra(cfg)


def config_from_hydra(cfg: DictConfig) -> RunConfig:
    """Validates a composed Hydra config into the frozen :class:`RunConfig`."""
    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return build(RunConfig, data, "")
