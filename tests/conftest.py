"""Test-wide settings (no test may reach the network: Hugging Face libraries are told to stay offline) and
the small finished sweeps that several test modules look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for a module, as training runs it (several threads are much slower on a busy
    machine); torch's setting is restored afterwards. Modules that use torch ask for it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Small finished sweeps with their reports, shared by the tests of tables, figures and reports (each is built
# once per test session, in-process, on a few simulated hours).


def _sweep(tmp_path_factory: pytest.TempPathFactory, name: str, overrides: list[str]) -> Path:
    from carbonsim import load_config
    from carbonsim.experiment import run_experiment
    from carbonsim.report import write_report

    out = tmp_path_factory.mktemp(name)
    run_experiment(load_config(overrides), out)
    write_report(out)
    return out


@pytest.fixture(scope="session")
def inference_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every inference policy of ``pareto_sweep`` on one simulated hour of the illustrative scenario, two seeds.

    A whole number of hours, so the jobs' ``hourly.csv`` and ``signals.csv`` carry a row for the hour after
    the arrival window (the few ms of drain); figures must leave it out.
    """
    overrides = ["+experiment=pareto_sweep", "scenario=illustrative", "sim_hours=1", "experiment.seeds=[0,1]"]
    return _sweep(tmp_path_factory, "inference_sweep", overrides)


@pytest.fixture(scope="session")
def batch_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``batch_shifting`` (every batch policy, four deadline rules, one seed) on 3 hours and 20 jobs."""
    overrides = ["+experiment=batch_shifting", "sim_hours=3", "max_drain_hours=6", "scenario.batch.max_jobs=20"]
    return _sweep(tmp_path_factory, "batch_sweep", overrides)


@pytest.fixture(scope="session")
def reference_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``reference_table`` (carbonsim beside the published table) on one simulated hour, one seed."""
    overrides = ["+experiment=reference_table", "sim_hours=1", "experiment.seeds=[0]"]
    return _sweep(tmp_path_factory, "reference_sweep", overrides)
