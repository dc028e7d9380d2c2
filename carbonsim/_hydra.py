"""Hydra wiring: schemas in the ConfigStore and the location of the YAML configs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from carbonsim._schema import build, thaw
from carbonsim.config import RunConfig, ScenarioConfig
from carbonsim.policies.registry import BATCH, ROUTING


def register_configs() -> None:
    """Stores the schemas that the YAML files in ``conf/`` extend.

    They are ``run_schema``, ``schema/scenario/scenario``, ``schema/policy/<name>`` for every registered
    routing policy and ``schema/batch_policy/<name>`` for every batch policy (YAML files extend them with
    ``- /schema/policy/<name>@_here_``); with them, Hydra rejects unknown keys and wrong types.
    """
    if not OmegaConf.has_resolver(JOB_DIR_RESOLVER):
        OmegaConf.register_new_resolver(JOB_DIR_RESOLVER, job_dir_name)
    if not OmegaConf.has_resolver(RUN_RANGE_RESOLVER):
        OmegaConf.register_new_resolver(RUN_RANGE_RESOLVER, run_range)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=thaw(RunConfig))
    # experiments/train_ppo.py and train_transformer.py (conf/train_*.yaml); torch-free modules only.
    from carbonsim.learn.config import CompareConfig, DriftConfig, TrainConfig, TrainTransformerConfig

    cs.store(name="train_schema", node=thaw(TrainConfig))
    cs.store(name="train_transformer_schema", node=thaw(TrainTransformerConfig))
    cs.store(name="drift_schema", node=thaw(DriftConfig))
    cs.store(name="compare_schedulers_schema", node=thaw(CompareConfig))
    from carbonsim.learn.shifting_config import TrainShiftingConfig

    cs.store(name="train_shifting_schema", node=thaw(TrainShiftingConfig))
    # Schemas live in their own groups so that Hydra's lists of valid choices show only real configs.
    cs.store(group="schema/scenario", name="scenario", node=thaw(ScenarioConfig))
    for registry in (ROUTING, BATCH):
        for name, (_cls, config_cls) in registry.entries.items():
            cs.store(group=f"schema/{registry.field}", name=name, node=thaw(config_cls)(name=name))


JOB_DIR_RESOLVER = "carbonsim.job_dir"
"""The resolver that names a sweep job's folder (``hydra.sweep.subdir`` in ``conf/config.yaml``)."""

#: Longest job folder name kept as is; longer ones are cut and end in a digest (file systems allow 255 bytes).
MAX_JOB_DIR_BYTES = 200


def job_dir_name(override_dirname: str, num: Any = 0) -> str:
    """The folder name of a sweep job: its overrides (Hydra's ``override_dirname``), made safe as one name.

    A swept value may hold ``/`` or ``..`` (``scenario.name=a/../../x``); used as it is, the job's folder
    would land outside ``hydra.sweep.dir``. Here ``%``, slash, backslash and NUL are percent-encoded, so the
    name is always one folder inside the sweep directory, and the same overrides always give the same name
    (a sweep run again finds its finished jobs). A name longer than :data:`MAX_JOB_DIR_BYTES` is cut and
    ends in a digest of the whole; a job without overrides is ``job<num>``.

    Args:
        override_dirname: Hydra's ``hydra.job.override_dirname``.
        num: Hydra's ``hydra.job.num``, for a job without overrides.
    """
    name = str(override_dirname)
    if any(c in name for c in "/\\\0"):
        name = name.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C").replace("\0", "%00")
    if not name or name in (".", ".."):
        return f"job{num}" if not name else name.replace(".", "%2E")
    if len(name.encode()) > MAX_JOB_DIR_BYTES:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = name.encode()[: MAX_JOB_DIR_BYTES - 17].decode(errors="ignore") + "_" + digest
    return name


RUN_RANGE_RESOLVER = "carbonsim.run_range"
"""The resolver that sweeps every run of an experiment (``experiment.run`` in ``conf/experiment/*.yaml``)."""


def run_range(experiment: Any) -> str:
    """``range(0,N)``, the sweep over an experiment's runs: ``runs`` and the learned shifting run if any.

    Used as ``experiment.run: ${carbonsim.run_range:${experiment}}`` in a sweep's parameters, so that the
    sweep launches one job per run of :attr:`carbonsim.config.ExperimentConfig.all_runs`: one more with a
    ``shifting_checkpoint``, exactly the ``runs`` without.

    Args:
        experiment: The composed ``experiment`` node.
    """
    runs = experiment.get("runs") or ()
    return f"range(0,{len(runs) + (1 if experiment.get('shifting_checkpoint') else 0)})"


class _WithOutDir(Protocol):
    out_dir: str


S = TypeVar("S", bound=_WithOutDir)


def script_main(prog: str, config_name: str, schema: type[S], work: Callable[[S, Path], None]) -> None:
    """Runs an experiment script: compose ``conf/<config_name>.yaml``, validate it, run ``work``.

    Hydra composes the configuration (with the command line's overrides), :func:`build` validates it into
    ``schema`` and ``work(config, output folder)`` runs. Bad input anywhere (an invalid configuration, a
    data file, a checkpoint, an override Hydra rejects) prints ``<prog>: <field or file>: ...`` on one line
    and exits with status 2 (:mod:`carbonsim._errors`). The output folder is the configuration's
    ``out_dir``, or Hydra's run folder.
    """
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from carbonsim._errors import exit_on_user_error, mark_started, run_hydra_app

    register_configs()

    def task(cfg: DictConfig) -> None:
        mark_started()
        with exit_on_user_error(prog):
            built = build(schema, OmegaConf.to_container(cfg, resolve=True), "")
            out = Path(built.out_dir) if built.out_dir else Path(HydraConfig.get().runtime.output_dir)
            work(built, out)

    run_hydra_app(prog, hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(task))


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
