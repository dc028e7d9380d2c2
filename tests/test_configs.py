"""Every shipped config composes with Hydra, validates, and every policy runs on every scenario."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from helpers import batch_policies_without_checkpoint, policy_spec
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from rich.console import Console

import carbonsim
from carbonsim import RunConfig, policy_config, policy_names, runner
from carbonsim._hydra import config_dir, register_configs
from carbonsim.cli import config_from_hydra, execute
from carbonsim.experiment import Prepared, instance_key
from carbonsim.policies import batch_policy_config, batch_policy_names
from carbonsim.runner import run

CONF = config_dir()


def yaml_names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.endswith("schema"))


SCENARIOS = yaml_names("scenario")
EXPERIMENTS = yaml_names("experiment")
POLICY_FILES = yaml_names("policy")


def hydra_compose(*overrides: str) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def load(*overrides: str) -> RunConfig:
    return config_from_hydra(hydra_compose(*overrides))


def test_shipped_groups_are_not_empty():
    assert SCENARIOS and EXPERIMENTS and POLICY_FILES
    assert "default" in SCENARIOS


def test_registry_names_equal_policy_config_files():
    assert policy_names() == POLICY_FILES


def test_default_config_validates():
    cfg = load()
    assert isinstance(cfg, RunConfig)
    assert cfg.scenario.name == "default"
    assert cfg.policy.name == "hybrid"


def test_config_yaml_values_equal_dataclass_defaults():
    cfg = load()
    for f in dataclasses.fields(RunConfig):
        if f.default is not dataclasses.MISSING:
            assert getattr(cfg, f.name) == f.default, f.name


def test_command_line_overrides_reach_the_dataclasses():
    cfg = load(
        "policy=hybrid",
        "policy.alpha=0.3",
        "policy.normalisation=global",
        "scenario.regions.1.pools.0.count=7",
        "seed=4",
        "drain=false",
    )
    assert (cfg.policy.alpha, cfg.policy.normalisation) == (0.3, "global")
    assert cfg.scenario.regions[1].pools[0].count == 7
    assert (cfg.seed, cfg.drain) == (4, False)


@pytest.mark.parametrize("name", POLICY_FILES)
def test_policy_yaml_defaults_equal_dataclass_defaults(name):
    # The YAML only fills values; the values it states must be the dataclass defaults, not new ones.
    assert load(f"policy={name}").policy == policy_config({"name": name})


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_name_matches_file_name(scenario):
    assert load(f"scenario={scenario}").scenario.name == scenario


_PREPARED: dict[str, Prepared] = {}


@pytest.fixture
def shared_instances(monkeypatch):
    """``runner.run`` draws each instance once and shares it between the policies run on it.

    ``prepare`` reads only what :func:`carbonsim.experiment.instance_key` digests (scenario, horizon, drain,
    seed), never the policies, and experiments share its result between their policies the same way; so
    each policy still runs the whole of ``run`` on the instance it would draw itself, and the measured
    scenarios' data files are read once per scenario instead of once per policy and scenario.
    """
    real = runner.prepare

    def prepare(cfg: RunConfig, seed: int | None = None) -> Prepared:
        seed = cfg.seed if seed is None else seed
        key = instance_key(cfg, seed)
        if key not in _PREPARED:
            _PREPARED[key] = real(cfg, seed)
        return _PREPARED[key]

    monkeypatch.setattr(runner, "prepare", prepare)


def policy_overrides(policy: str, scenario: str, folder: Path) -> list[str]:
    """``policy=<name>`` and what the policy needs to run untrained (:func:`helpers.policy_spec`)."""
    sc = load(f"scenario={scenario}").scenario
    spec = policy_spec(policy, folder, sc.region_names, sc.workload_names)
    return [f"policy={policy}", *(f"policy.{k}={v}" for k, v in spec.items() if k != "name")]


def _policy_scenario_pairs() -> list[tuple[str, str]]:
    """Every routing policy on every scenario with inference traffic; on a batch-only scenario (no requests,
    so no routing decision) the default policy alone, which checks that an empty request stream completes."""
    pairs = []
    default = load().policy.name
    for scenario in SCENARIOS:
        traffic = load(f"scenario={scenario}").scenario.arrivals.rate_per_s > 0
        pairs += [(p, scenario) for p in (policy_names() if traffic else [default])]
    return pairs


@pytest.mark.parametrize(("policy", "scenario"), _policy_scenario_pairs())
def test_every_policy_runs_on_every_scenario(policy, scenario, tmp_path, shared_instances):
    # 72 s of arrivals reach what six minutes did: one planning call, inside the first hour; at most about
    # 5,000 requests (the fleet preset's 3,000 requests/s get under 2 s).
    rate = load(f"scenario={scenario}").scenario.arrivals.rate_per_s
    hours = min(0.02, 5000.0 / rate / 3600.0) if rate > 0 else 0.02
    cfg = load(f"scenario={scenario}", *policy_overrides(policy, scenario, tmp_path), f"sim_hours={hours}", "seed=1")
    assert (cfg.scenario.name, cfg.policy.name) == (scenario, policy)
    out = run(cfg)
    s = out.summary
    # Batch-only scenarios have no inference traffic; every other scenario has some in 72 s.
    assert (s["requests"] > 0) == (cfg.scenario.arrivals.rate_per_s > 0)
    assert s["requests"] == s["completed"] + s["rejected"] + s["failed"] + s["in_flight"]
    # Drained with a 24 h bound and unbounded queues: everything completes.
    assert (s["completed"], s["rejected"], s["in_flight"]) == (s["requests"], 0, 0)
    assert len(out.requests) == s["requests"]
    assert out.per_region["requests"].sum() == s["requests"]
    assert s["energy_kwh"] > 0
    assert s["baseline_policy"] == "latency_first"


BATCH_SCENARIOS = [name for name in SCENARIOS if load(f"scenario={name}").scenario.batch.trace]


@pytest.mark.parametrize("scenario", BATCH_SCENARIOS)
@pytest.mark.parametrize("batch_policy", batch_policies_without_checkpoint())
def test_every_batch_policy_runs_on_every_batch_scenario(batch_policy, scenario, shared_instances):
    cfg = load(f"scenario={scenario}", f"batch_policy={batch_policy}", "sim_hours=1", "seed=1")
    s = run(cfg).summary
    assert s["jobs"] > 0 and s["batch_policy"] == batch_policy
    assert s["jobs"] == s["jobs_completed"] + s["jobs_failed"] + s["jobs_in_flight"]
    assert s["jobs"] == s["jobs_deadline_met"] + s["jobs_deadline_missed"] + s["jobs_deadline_pending"]
    assert s["baseline_batch_policy"] == "carbon_agnostic"


def test_batch_policy_files_equal_the_batch_registry():
    assert yaml_names("batch_policy") == batch_policy_names()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_validates(experiment):
    cfg = load(f"+experiment={experiment}")
    assert cfg.experiment is not None
    assert cfg.experiment.name == experiment
    for i, spec in enumerate(cfg.experiment.runs):
        params = {k: v for k, v in spec.items() if k not in ("label", "batch_policy")}
        if params:
            assert policy_config(params, f"experiment.runs[{i}]").name in policy_names()
        if "batch_policy" in spec:
            assert batch_policy_config(spec["batch_policy"]).name in batch_policy_names()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_briefly(experiment, tmp_path: Path):
    # A few simulated minutes of requests; six of jobs (a batch trace needs a few arrivals), the first five
    # of them: every run, variant and seed still runs, each on a small instance.
    batch = bool(load(f"+experiment={experiment}").scenario.batch.trace)
    hours = 0.1 if batch else 0.02
    cfg = load(f"+experiment={experiment}", f"sim_hours={hours}", *(["scenario.batch.max_jobs=5"] if batch else []))
    assert cfg.sim_hours == hours
    execute(cfg, tmp_path, Console(file=io.StringIO()))
    exp = cfg.experiment
    n_runs = len(exp.runs) * len(exp.seeds or (cfg.seed,)) * len(exp.variants or ({},))
    comparison = (tmp_path / "comparison.csv").read_text().splitlines()
    assert len(comparison) == 1 + n_runs
    assert len(list((tmp_path / "runs").iterdir())) == n_runs
    if exp.published:
        assert (tmp_path / "reference_table.csv").is_file()
    if cfg.scenario.batch.trace:
        assert len((tmp_path / "jobs_comparison.csv").read_text().splitlines()) == 1 + n_runs


def test_reference_experiment_uses_the_reference_scenario():
    cfg = load("+experiment=reference_table")
    assert cfg.scenario.name == "reference"
    assert cfg.sim_hours == 168.0


def test_load_config_equals_hydra_composition():
    overrides = ["scenario=reference", "policy=carbon_first", "sim_hours=2"]
    assert carbonsim.load_config(overrides) == load(*overrides)


def test_public_api_is_exported():
    for name in carbonsim.__all__:
        assert hasattr(carbonsim, name), name


def test_every_shipped_folder_is_an_installed_package():
    # setuptools installs only the folders listed in pyproject.toml: a new conf/ or traces/ folder that is
    # not listed would be missing from a wheel while every test run from the checkout still passes.
    import tomllib

    root = Path(__file__).resolve().parents[1]
    setup = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = set(setup["packages"])
    for top, package in (("conf", "carbonsim.conf"), ("traces", "carbonsim.traces"), ("carbonsim", "carbonsim")):
        for folder in [root / top, *(p for p in (root / top).rglob("*") if p.is_dir())]:
            if folder.name == "__pycache__" or not any(f.is_file() for f in folder.iterdir()):
                continue
            name = ".".join([package, *folder.relative_to(root / top).parts])
            assert name in packages, f"{folder.relative_to(root)} is not listed in pyproject.toml packages"
