"""A safe file format for trained routing policies: arrays and JSON in a NumPy ``.npz``, nothing pickled.

stable-baselines3's own ``.zip`` files unpickle Python objects when loaded, so loading one from an
untrusted source can run arbitrary code. carbonsim's deployable checkpoint holds only what a decision
needs: the policy network's layers as float32 arrays and a JSON header, read with
``numpy.load(allow_pickle=False)``. The forward pass runs in NumPy, so ``policy=ppo`` needs neither torch
nor stable-baselines3.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "carbonsim-mlp-policy"
VERSION = 1
ACTIVATIONS = ("tanh", "relu")


class CheckpointError(ValueError):
    """A checkpoint file that is missing, malformed or does not fit the scenario."""


@dataclass(frozen=True)
class MLPPolicy:
    """A multilayer perceptron from observation to action logits.

    Attributes:
        weights: Per layer, the weight matrix of shape (outputs, inputs), float32.
        biases: Per layer, the bias vector, float32.
        activation: Between layers (not after the last): ``tanh`` or ``relu``.
        meta: The JSON header (features, region and workload names, training facts).
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str
    meta: dict[str, Any]

    @property
    def obs_size(self) -> int:
        """Length of the observation the network takes."""
        return int(self.weights[0].shape[1])

    @property
    def n_actions(self) -> int:
        """Number of actions (logits)."""
        return int(self.weights[-1].shape[0])

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """Action logits for one observation or a batch (last axis = features)."""
        x = np.asarray(obs, dtype=np.float32)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = x @ w.T + b
            if k < last:
                x = np.tanh(x) if self.activation == "tanh" else np.maximum(x, 0.0)
        return x

    def act(self, obs: np.ndarray) -> int:
        """The greedy action: the index of the largest logit (the lowest index on ties)."""
        return int(np.argmax(self.logits(obs)))


def random_policy(
    regions: list[str],
    workloads: list[str],
    features: dict[str, Any] | None = None,
    hidden: tuple[int, ...] = (64, 64),
    seed: int = 0,
) -> MLPPolicy:
    """An untrained network of the right shape for a scenario (Glorot-uniform weights, zero biases).

    A reference point (what does an agent route like before learning?) and a way to exercise
    ``policy=ppo`` on any scenario without training.
    """
    from carbonsim.learn.config import FeatureConfig
    from carbonsim.learn.features import feature_size

    feats = FeatureConfig(**(features or {}))
    rng = np.random.default_rng(seed)
    sizes = [feature_size(len(regions), len(workloads), feats), *hidden, len(regions)]
    weights, biases = [], []
    for n_in, n_out in itertools.pairwise(sizes):
        bound = float(np.sqrt(6.0 / (n_in + n_out)))
        weights.append(rng.uniform(-bound, bound, size=(n_out, n_in)).astype(np.float32))
        biases.append(np.zeros(n_out, dtype=np.float32))
    meta: dict[str, Any] = {
        "features": {"forecast_hours": feats.forecast_hours, "observe_weights": feats.observe_weights},
        "regions": list(regions),
        "workloads": list(workloads),
        "trained_steps": 0,
    }
    return MLPPolicy(tuple(weights), tuple(biases), "tanh", meta)


def write_atomically(path: str | Path, suffix: str, write: Callable[[str], None]) -> Path:
    """Calls ``write`` with a temporary file beside ``path``, then renames it to ``path``; returns the path.

    A reader never sees a half-written file, and an interrupted write leaves the previous file in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    write(tmp)
    os.replace(tmp, path)
    return path


def save(path: str | Path, policy: MLPPolicy) -> Path:
    """Writes a checkpoint atomically; returns its path."""
    header = {"format": FORMAT, "version": VERSION, "activation": policy.activation, **policy.meta}
    arrays: dict[str, np.ndarray] = {"header": np.array(json.dumps(header, sort_keys=True))}
    for k, (w, b) in enumerate(zip(policy.weights, policy.biases, strict=True)):
        arrays[f"layer{k}.weight"] = np.asarray(w, dtype=np.float32)
        arrays[f"layer{k}.bias"] = np.asarray(b, dtype=np.float32)
    return write_atomically(path, ".npz", lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]


def read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` checkpoint, read without unpickling.

    Args:
        path: The file.
        what: What the file should be, for the error (e.g. "a carbonsim policy checkpoint").

    Raises:
        CheckpointError: the file is missing, or is not an ``.npz`` of plain arrays (truncated or damaged zip,
            not a zip, a member that is not a NumPy array).
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        # Opened here, not by NumPy: NumPy leaves its file open when the zip turns out to be damaged.
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise CheckpointError(f"{path}: not {what}: {exc}") from None


def load(path: str | Path) -> MLPPolicy:
    """Reads and validates a checkpoint (no unpickling).

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    path = Path(path)
    arrays = read_npz(path, "a carbonsim policy checkpoint (.npz without pickled objects)")
    if "header" not in arrays:
        raise CheckpointError(f"{path}: no 'header' entry; expected a checkpoint written by carbonsim.learn.checkpoint")
    try:
        header = json.loads(str(arrays.pop("header")))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: header is not JSON: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: header format is {header.get('format') if isinstance(header, dict) else header!r}, "
            f"expected {FORMAT!r}"
        )
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {header.get('version')!r}, this carbonsim reads version {VERSION}")
    activation = header.pop("activation", None)
    if activation not in ACTIVATIONS:
        raise CheckpointError(f"{path}: activation {activation!r}, expected one of {', '.join(ACTIVATIONS)}")
    n_layers = len(arrays) // 2
    expected = {f"layer{k}.{p}" for k in range(n_layers) for p in ("weight", "bias")}
    if n_layers == 0 or set(arrays) != expected:
        raise CheckpointError(f"{path}: arrays {sorted(arrays)}; expected layer0.weight, layer0.bias, ... in sequence")
    weights, biases = [], []
    inputs = None
    for k in range(n_layers):
        w, b = arrays[f"layer{k}.weight"], arrays[f"layer{k}.bias"]
        if w.ndim != 2 or b.shape != (w.shape[0],) or (inputs is not None and w.shape[1] != inputs):
            raise CheckpointError(
                f"{path}: layer{k} has weight {w.shape} and bias {b.shape}; expected (out, {inputs or 'in'}) and (out,)"
            )
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise CheckpointError(f"{path}: layer{k} holds non-finite values")
        weights.append(w.astype(np.float32))
        biases.append(b.astype(np.float32))
        inputs = w.shape[0]
    for key in ("features", "regions", "workloads"):
        if key not in header:
            raise CheckpointError(f"{path}: header lacks {key!r}")
    if not isinstance(header["features"], dict):
        raise CheckpointError(f"{path}: header 'features': expected a mapping, got {header['features']!r}")
    for key in ("regions", "workloads"):
        names = header[key]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CheckpointError(f"{path}: header {key!r}: expected a list of names, got {names!r}")
    header.pop("format")
    header.pop("version")
    return MLPPolicy(tuple(weights), tuple(biases), str(activation), header)


__all__ = ["CheckpointError", "MLPPolicy", "load", "random_policy", "save", "write_atomically"]
