"""The shifting network's inference in NumPy: what ``batch_policy=learned_shifting`` runs (no torch).

:class:`ShiftingNumpy` computes the choice logits and importance logits of
:meth:`carbonsim.learn.shifting_model.ShiftingNet.decide` for one unpadded epoch from the same parameters
(a checkpoint's arrays, or a :class:`~carbonsim.learn.shifting_model.ShiftingNet`'s ``state_dict``); torch
is needed only to train. The arithmetic is torch's: attention as
:func:`torch.nn.functional.scaled_dot_product_attention` with the same split into heads (scale
``1/sqrt(width/heads)``), LayerNorm with the backbone's eps (torch's 1e-5 for ``scratch``, BERT's 1e-12 for
``minilm``: :attr:`~carbonsim.learn.shifting_config.ShiftingModelConfig.layer_norm_eps`), the exact (erf) GELU,
tanh. At inference one epoch has no
padding, so the items' summary attends to every item and the global token.

It is rearranged for 1,000 items on one core (products associate, the softmax ignores a constant per row).
Item tokens are kept as columns (width, items), so that the per-item reductions (LayerNorm, the softmax over
keys) run along whole rows instead of as many short ones, and:

* the summary's learned queries are fixed, so their projection against the key weights is folded into one
  (heads x inducing, width) matrix ``U`` when the network is built: scoring the items is one ``U @ items``,
  and the summary's values are ``(softmax @ items^T) @ (W_v W_o)``, never an items x width projection of
  keys or values;
* the items' keys and values are the few context and summary tokens: per epoch they are folded with the
  query and output weights into a (heads x keys, width) and a (width, heads x keys) matrix, so the items'
  cross-attention is two thin products and a softmax over (heads, keys, items);
* the heads that read the item tokens (pointer, defer, importance) share one product.

Arithmetic is float32, like torch's forward and what the network was trained in: two to five times faster
than float64 here (the products and the element-wise functions). On random networks the logits agree with
torch's within about 1e-5, each being about 5e-6 from a float64 evaluation (``tests/test_learned_shifting.py``
checks 1e-4). Summation orders differ from torch's, so two choices whose logits tie to that precision may be
resolved differently (in a benchmark run of 525 epochs, one item's choice, whose two best logits were 2e-7
apart).

NumPy has no erf, and :func:`scipy.special.erf` costs about 15 ns per value (1 ms per GELU at 1,000 items),
so the GELU is ``x (1 + tanh(y(x))) / 2`` with ``y(x) = atanh(erf(x / sqrt 2))`` approximated by ``s Q(s^2)``,
``s = x / 6`` clipped to [-1, 1], ``Q`` of degree 6: the form of the usual tanh approximation of the GELU
(Hendrycks and Gimpel 2016, arXiv:1606.08415, whose ``Q`` is of degree 1), taken to the degree that makes it
accurate. ``Q`` is our own fit (weighted least squares with Lawson's iterative reweighting towards the
minimax error, in float64, over 0 < x <= 6, weighted by the GELU's sensitivity to ``y``). Its error on erf is
below 6e-8 over the real line in float64 (``tests/test_learned_shifting.py`` checks < 1e-7 against
:func:`scipy.special.erf`); in float32 the GELU is within 1e-6 of the exact one, as torch's own float32 GELU
is. It takes 20 array operations (an erfc-based one of the same accuracy took 33).

:meth:`ShiftingNumpy.decide` runs its products on one BLAS thread by default (threadpoolctl, for the call
only): OpenBLAS would split a (64, 32) x (32, 1,000) product over every core, and on a busy machine
waiting for the other threads made one such product take milliseconds instead of 40 us.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from carbonsim._schema import ConfigError
from carbonsim.learn.checkpoint import CheckpointError, read_npz
from carbonsim.learn.shifting_config import ShiftingModelConfig
from carbonsim.learn.shifting_features import (
    FORECAST_COLUMNS,
    FORECAST_PAIR_COLUMNS,
    GLOBAL_FEATURES,
    ITEM_FEATURES,
    PAIR_FEATURES,
    REGION_FEATURES,
)

#: Checkpoint header format and version (:func:`carbonsim.learn.shifting_model.save` writes them).
FORMAT = "carbonsim-shifting-policy"
VERSION = 2  # 2: four pair features and the defer head's pair term
#: Coefficients of ``Q`` (increasing powers of ``s^2``): ``atanh(erf(x / sqrt 2)) ~ s Q(s^2)``, ``s = x / 6``
#: clipped to [-1, 1] (the module docstring says how they were fitted).
GELU_Q = (
    4.787309648770869,
    7.847946266396339,
    -0.25345845907209846,
    -15.482195845446247,
    39.95549775932298,
    -47.98477789015791,
    22.93683887108695,
)
#: Where ``s`` is clipped: beyond 6, erf(x / sqrt 2) is within 2e-9 of 1.
GELU_CLIP = 6.0
_F = np.float32


def parameter_shapes(config: ShiftingModelConfig) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` names and shapes of :class:`~carbonsim.learn.shifting_model.ShiftingNet` of ``config``."""
    w, f = config.width, config.ffn
    shapes: dict[str, tuple[int, ...]] = {
        "queries": (config.inducing, w),
        "embed_item.weight": (w, ITEM_FEATURES),
        "embed_item.bias": (w,),
        "embed_region.weight": (w, REGION_FEATURES),
        "embed_region.bias": (w,),
        "embed_global.weight": (w, GLOBAL_FEATURES),
        "embed_global.bias": (w,),
    }
    for b in range(config.layers):
        p = f"blocks.{b}."
        for attn in ("summary", "context", "items"):
            shapes[f"{p}{attn}.in_proj_weight"] = (3 * w, w)
            shapes[f"{p}{attn}.in_proj_bias"] = (3 * w,)
            shapes[f"{p}{attn}.out_proj.weight"] = (w, w)
            shapes[f"{p}{attn}.out_proj.bias"] = (w,)
        for k in range(5):
            shapes[f"{p}norms.{k}.weight"] = (w,)
            shapes[f"{p}norms.{k}.bias"] = (w,)
        for ffn in ("ffn_context", "ffn_items"):
            shapes[f"{p}{ffn}.0.weight"] = (f, w)
            shapes[f"{p}{ffn}.0.bias"] = (f,)
            shapes[f"{p}{ffn}.2.weight"] = (w, f)
            shapes[f"{p}{ffn}.2.bias"] = (w,)
    shapes.update(
        {
            "point_item.weight": (w, w),
            "point_item.bias": (w,),
            "point_region.weight": (w, w),
            "point_pair.weight": (w, PAIR_FEATURES),
            "point_v.weight": (1, w),
            "defer.0.weight": (w, 2 * w),
            "defer.0.bias": (w,),
            "defer.2.weight": (1, w),
            "defer.2.bias": (1,),
            "defer_pair.weight": (1, 2 * PAIR_FEATURES),
            "importance.weight": (1, w),
            "importance.bias": (1,),
            "value.0.weight": (w, 2 * w),
            "value.0.bias": (w,),
            "value.2.weight": (1, w),
            "value.2.bias": (1,),
        }
    )
    return shapes


def check_parameters(
    config: ShiftingModelConfig, arrays: Mapping[str, Any], where: str, prefix: str = ""
) -> dict[str, np.ndarray]:
    """The network's parameters from ``arrays``, float32 copies by ``state_dict`` name, checked against ``config``.

    Args:
        config: The network's size.
        arrays: Every parameter under its ``state_dict`` name with ``prefix`` (nothing else).
        where: What holds them, for the error (a file).
        prefix: Of the names in ``arrays`` (a checkpoint's ``p.``).

    Raises:
        CheckpointError: ``where`` and the missing, unexpected, misshapen or non-finite parameters.
    """
    shapes = {f"{prefix}{k}": v for k, v in parameter_shapes(config).items()}
    if set(arrays) != set(shapes):
        missing, extra = sorted(set(shapes) - set(arrays)), sorted(set(arrays) - set(shapes))
        missing = [k.removeprefix(prefix) for k in missing]
        raise CheckpointError(f"{where}: arrays do not fit the network (missing {missing[:3]}, unexpected {extra[:3]})")
    out: dict[str, np.ndarray] = {}
    for key, shape in shapes.items():
        name = key.removeprefix(prefix)
        value = np.array(arrays[key], dtype=_F)  # a copy: a snapshot of the weights
        if value.shape != shape:
            raise CheckpointError(f"{where}: {name} has shape {value.shape}, expected {shape}")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{where}: {name} holds non-finite values")
        out[name] = value
    return out


def read_checkpoint(path: str | Path) -> tuple[ShiftingModelConfig, dict[str, np.ndarray], dict[str, Any]]:
    """Reads and validates a shifting checkpoint: the network's size, its parameters (float32) and the header.

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    path = Path(path)
    arrays = read_npz(path, "a carbonsim shifting checkpoint (.npz without pickles)")
    try:
        header = json.loads(str(arrays.pop("header")))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: no JSON 'header' entry ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        got = header.get("format") if isinstance(header, dict) else header
        raise CheckpointError(f"{path}: header format is {got!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {header.get('version')!r}, this carbonsim reads version {VERSION}")
    try:
        config = ShiftingModelConfig(**header["config"])
    except (KeyError, TypeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: header 'config': {exc}") from None
    return config, check_parameters(config, arrays, str(path), "p."), header


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm of a few tokens (rows) over the last axis (biased variance, epsilon ``eps``), in a new array."""
    mean_w = np.full((x.shape[-1], 1), 1.0 / x.shape[-1], dtype=x.dtype)  # means as products: fewer calls
    out: np.ndarray = x - x @ mean_w
    var = (out * out) @ mean_w
    var += _F(eps)
    out /= np.sqrt(var)
    out *= gamma
    out += beta
    return out


def _layer_norm_t(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm of tokens stored as columns (width, n), over axis 0, in place; returns ``x``.

    The means over the width are products with a constant row (a BLAS matrix-vector product each), not n short
    reductions.
    """
    mean_w = np.full(x.shape[0], 1.0 / x.shape[0], dtype=x.dtype)
    x -= mean_w @ x
    var = mean_w @ (x * x)
    var += _F(eps)
    np.sqrt(var, out=var)
    np.reciprocal(var, out=var)
    x *= var
    x *= gamma
    x += beta
    return x


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU, ``x Phi(x)``, in the dtype of ``x``: ``x (1 + tanh(s Q(s^2))) / 2`` (module docstring)."""
    dt = x.dtype.type
    s = x * dt(1.0 / GELU_CLIP)
    np.clip(s, dt(-1.0), dt(1.0), out=s)
    v = s * s
    p: np.ndarray = v * dt(GELU_Q[-1])
    p += dt(GELU_Q[-2])
    for c in GELU_Q[-3::-1]:
        p *= v
        p += dt(c)
    p *= s
    np.tanh(p, out=p)
    p += dt(1.0)
    p *= x
    p *= dt(0.5)
    return p


@functools.cache
def _controller() -> ThreadpoolController:
    """The thread pools of the libraries loaded so far (found once: finding them takes tens of ms)."""
    return ThreadpoolController()


@contextlib.contextmanager
def limit_blas_threads(threads: int) -> Iterator[None]:
    """Limits the BLAS libraries (NumPy's) to ``threads`` threads inside the block (0: no change)."""
    if threads <= 0:
        yield
        return
    with _controller().limit(limits=threads, user_api="blas"):
        yield


def _softmax(s: np.ndarray, axis: int) -> np.ndarray:
    """Softmax along ``axis``, in place; returns ``s``."""
    s -= s.max(axis=axis, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=axis, keepdims=True)
    return s


def _t(m: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy of the transpose."""
    return np.ascontiguousarray(m.T, dtype=_F)


def _col(v: np.ndarray) -> np.ndarray:
    """A vector as a float32 column, to add to tokens stored as columns."""
    return np.asarray(v, dtype=_F).reshape(-1, 1)


class _Attention:
    """One :class:`torch.nn.MultiheadAttention`'s parameters, split by head for the products below."""

    def __init__(self, p: Mapping[str, np.ndarray], prefix: str, heads: int) -> None:
        self.wq, self.wk, self.wv = np.split(p[f"{prefix}.in_proj_weight"], 3)  # rows h*d:(h+1)*d: head h
        self.bq, self.bk, self.bv = np.split(p[f"{prefix}.in_proj_bias"], 3)
        self.wo, self.bo = p[f"{prefix}.out_proj.weight"], p[f"{prefix}.out_proj.bias"]
        w = self.wo.shape[0]
        self.heads, self.d = heads, w // heads
        self.scale = 1.0 / math.sqrt(self.d)
        self.wq_t, self.wo_t = _t(self.wq), _t(self.wo)
        self.wkv_t = _t(np.concatenate([self.wk, self.wv]))  # keys and values in one product
        self.bkv = np.concatenate([self.bk, self.bv])
        # For folded(): per head, the scaled query weights (heads, d, w) and bias (heads, d, 1), and the output
        # weights (heads, w, d).
        scale = _F(self.scale)
        self.wq_heads = self.wq.reshape(heads, self.d, w) * scale
        self.bq_heads = self.bq.reshape(heads, self.d, 1) * scale
        self.wo_heads = np.ascontiguousarray(self.wo.reshape(w, heads, self.d).transpose(1, 0, 2))
        self.bo_col = _col(self.bo)

    def head(self, h: int) -> slice:
        """Head ``h``'s rows of the projections."""
        return slice(h * self.d, (h + 1) * self.d)

    def __call__(self, query: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """A few tokens (rows) attending to a few tokens (rows): the plain computation."""
        nq, nk, h, d = query.shape[0], keys.shape[0], self.heads, self.d
        q = query @ self.wq_t
        q += self.bq
        kv = keys @ self.wkv_t
        kv += self.bkv
        k = kv[:, : h * d].reshape(nk, h, d).transpose(1, 2, 0)
        v = kv[:, h * d :].reshape(nk, h, d).transpose(1, 0, 2)
        s = q.reshape(nq, h, d).transpose(1, 0, 2) @ k
        s *= _F(self.scale)
        out = _softmax(s, -1) @ v  # (h, nq, d)
        result: np.ndarray = out.transpose(1, 0, 2).reshape(nq, h * d) @ self.wo_t
        result += self.bo
        return result

    def folded(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For many queries against a few ``keys`` (rows): ``(S, c, V)``, each float32.

        A query token ``x`` (a column) scores ``S @ x + c`` (rows: head h's keys at ``h*k:(h+1)*k``); with
        ``p`` those scores softmaxed per head, the attention's output is ``V @ p + b_o``.
        """
        nk, h, d = keys.shape[0], self.heads, self.d
        kv = keys @ self.wkv_t
        kv += self.bkv
        k = kv[:, : h * d].reshape(nk, h, d).transpose(1, 0, 2)  # (heads, keys, d)
        v = kv[:, h * d :].reshape(nk, h, d).transpose(1, 2, 0)  # (heads, d, keys)
        s = (k @ self.wq_heads).reshape(h * nk, -1)  # (heads * keys, w)
        c = (k @ self.bq_heads).reshape(h * nk, 1)
        vo = (self.wo_heads @ v).transpose(1, 0, 2).reshape(-1, h * nk)  # (w, heads * keys)
        return s, c, vo


class _Block:
    """One block's parameters, with the products of its fixed summary queries folded in."""

    def __init__(self, p: Mapping[str, np.ndarray], b: int, config: ShiftingModelConfig, queries: np.ndarray) -> None:
        pre = f"blocks.{b}."
        self.summary = _Attention(p, pre + "summary", config.heads)
        self.context = _Attention(p, pre + "context", config.heads)
        self.items = _Attention(p, pre + "items", config.heads)
        eps = config.layer_norm_eps
        self.norms = [(p[f"{pre}norms.{k}.weight"], p[f"{pre}norms.{k}.bias"], eps) for k in range(5)]
        self.norms_col = [(_col(g), _col(b), eps) for g, b, _ in self.norms]
        c = f"{pre}ffn_context."
        self.ffn_context = (_t(p[c + "0.weight"]), p[c + "0.bias"], _t(p[c + "2.weight"]), p[c + "2.bias"])
        i = f"{pre}ffn_items."
        self.ffn_items = (p[i + "0.weight"], _col(p[i + "0.bias"]), p[i + "2.weight"], _col(p[i + "2.bias"]))
        # The summary's queries are fixed: head h scores key x as (q_h . (W_k,h x + b_k,h)) * scale, where the
        # b_k term is the same for every key of a query (the softmax drops it): rows U_h = q_h W_k,h * scale.
        a, f64 = self.summary, np.float64  # folded in float64, then rounded once to float32
        wk, wv, wo = a.wk.astype(f64), a.wv.astype(f64), a.wo.astype(f64)
        q = queries.astype(f64) @ a.wq.T.astype(f64) + a.bq
        h_rows = [a.head(h) for h in range(a.heads)]
        self.summary_u = (np.concatenate([q[:, r] @ wk[r] for r in h_rows]) * a.scale).astype(_F)
        # Its values: sum over heads of (softmax_h @ keys) @ (W_v,h^T W_o,h^T), plus b_v W_o^T + b_o.
        self.summary_vo = np.stack([wv[r].T @ wo[:, r].T for r in h_rows]).astype(_F)  # (heads, w, w)
        self.summary_b = (a.bv.astype(f64) @ wo.T + a.bo).astype(_F)
        self.queries = queries

    def __call__(self, ctx: np.ndarray, xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One block: context tokens as rows (1 + R, w), item tokens as columns (w, n) (updated in place)."""
        n1, n2, n3, _, _ = self.norms
        _, _, _, n4, n5 = self.norms_col
        heads, m = self.summary.heads, self.queries.shape[0]
        # 1. The fixed queries attend to the global token and the items (no padding at inference).
        g = ctx[0]
        s = self.summary_u @ xt  # (heads * m, n)
        s_g = self.summary_u @ g
        top = np.maximum(s.max(axis=1, initial=-np.inf), s_g)
        s -= top[:, None]
        e = np.exp(s, out=s)
        e_g = np.exp(s_g - top)
        pooled = e @ xt.T  # (heads * m, w)
        pooled += e_g[:, None] * g
        pooled /= (e.sum(axis=1) + e_g)[:, None]
        out = np.matmul(pooled.reshape(heads, m, -1), self.summary_vo).sum(axis=0)
        out += self.summary_b
        summary = _layer_norm(self.queries + out, *n1)
        # 2. The context attends to itself and the summary.
        both = np.concatenate([ctx, summary])
        ctx = _layer_norm(ctx + self.context(ctx, both), *n2)
        w1, b1, w2, b2 = self.ffn_context
        ctx = _layer_norm(ctx + gelu(ctx @ w1 + b1) @ w2 + b2, *n3)
        # 3. Every item attends to the context and the summary: two thin products (see _Attention.folded).
        both = np.concatenate([ctx, summary])
        s_mat, c, vo = self.items.folded(both)
        s = s_mat @ xt
        s += c
        k = both.shape[0]
        p = _softmax(s.reshape(heads, k, -1), 1).reshape(heads * k, -1)
        att = vo @ p
        att += self.items.bo_col
        xt += att
        _layer_norm_t(xt, *n4)
        w1, b1, w2, b2 = self.ffn_items
        hidden = w1 @ xt
        hidden += b1
        ffn = w2 @ gelu(hidden)
        ffn += b2
        xt += ffn
        return ctx, _layer_norm_t(xt, *n5)


class ShiftingNumpy:
    """The network's decision path (choice and importance logits) in NumPy; see the module docstring.

    Args:
        config: Its size.
        params: Its parameters (arrays) by ``state_dict`` name; copied, so later changes to the arrays (or to
            the torch network they came from, :func:`carbonsim.learn.shifting_model.to_numpy`) do not reach it.

    Raises:
        CheckpointError: the parameters do not fit ``config``.
    """

    def __init__(self, config: ShiftingModelConfig, params: Mapping[str, Any]) -> None:
        p = check_parameters(config, params, "parameters")
        self.config = config
        _controller()  # finds the BLAS libraries now rather than in the first decision
        self.embed_item = (p["embed_item.weight"], _col(p["embed_item.bias"]))
        embed_region, point_pair, defer_pair = p["embed_region.weight"], p["point_pair.weight"], p["defer_pair.weight"]
        if not config.forecasts:  # the ablation: the forecast columns' weights are zero, as if the inputs were
            embed_region[:, list(FORECAST_COLUMNS)] = 0.0
            point_pair[:, list(FORECAST_PAIR_COLUMNS)] = 0.0
            defer_pair[:, [c + k * PAIR_FEATURES for k in (0, 1) for c in FORECAST_PAIR_COLUMNS]] = 0.0
        self.embed_region = (_t(embed_region), p["embed_region.bias"])
        self.embed_global = (_t(p["embed_global.weight"]), p["embed_global.bias"])
        self.blocks = [_Block(p, b, config, p["queries"]) for b in range(config.layers)]
        w = config.width
        defer_w = p["defer.0.weight"]
        # The heads that read the item tokens, in one product: pointer (w rows), defer's hidden layer (w), importance.
        self.item_heads = np.ascontiguousarray(
            np.concatenate([p["point_item.weight"], defer_w[:, :w], p["importance.weight"]])
        )
        self.point_item_b = p["point_item.bias"]
        self.importance_b = p["importance.bias"]
        self.defer_g_t = _t(defer_w[:, w:])
        self.defer_b = p["defer.0.bias"]
        self.defer_out = p["defer.2.weight"][0]
        self.defer_out_b = p["defer.2.bias"]
        self.point_region = p["point_region.weight"]
        self.point_pair = point_pair
        self.defer_pair = defer_pair[0]
        self.point_v = p["point_v.weight"][0]

    @classmethod
    def load(cls, path: str | Path) -> tuple[ShiftingNumpy, dict[str, Any]]:
        """The network of a checkpoint and its header.

        Raises:
            CheckpointError: naming the file and what is wrong with it.
        """
        config, params, header = read_checkpoint(path)
        return cls(config, params), header

    def decide(
        self,
        items: np.ndarray,
        pairs: np.ndarray,
        regions: np.ndarray,
        globals_: np.ndarray,
        blas_threads: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Choice logits (n, 1 + R) and importance logits (n,), float64, of one epoch.

        Args:
            items: (n, ITEM_FEATURES).
            pairs: (n, R, PAIR_FEATURES): home, runs there, what waiting saves there.
            regions: (R, REGION_FEATURES).
            globals_: (GLOBAL_FEATURES,).
            blas_threads: BLAS threads during the call (0: leave NumPy's setting).
        """
        with limit_blas_threads(blas_threads):
            return self._forward(items, pairs, regions, globals_)

    def _forward(
        self, items: np.ndarray, pairs: np.ndarray, regions: np.ndarray, globals_: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        pairs = np.asarray(pairs, dtype=_F)
        n, r, w = pairs.shape[0], pairs.shape[1], self.config.width
        # Item tokens are columns (w, n) throughout: per-item reductions then run along whole rows.
        wi, bi = self.embed_item
        xt = wi @ np.asarray(items, dtype=_F).T
        xt += bi
        wr, br = self.embed_region
        wg, bg = self.embed_global
        g0 = np.asarray(globals_, dtype=_F) @ wg + bg
        ctx = np.concatenate([g0[None], np.asarray(regions, dtype=_F) @ wr + br])
        for block in self.blocks:
            ctx, xt = block(ctx, xt)
        g, c = ctx[0], ctx[1:]
        bias = np.concatenate([self.point_item_b, self.defer_g_t.T @ g + self.defer_b, self.importance_b])
        y = self.item_heads @ xt  # (2w + 1, n)
        y += bias[:, None]
        # Pointer: v . tanh(A x_i + B c_r + P pair_ir), as (R, w, n).
        a = np.matmul(self.point_pair, pairs.transpose(1, 2, 0))
        a += (c @ self.point_region.T)[:, :, None]
        a += y[None, :w]
        np.tanh(a, out=a)
        logits = np.empty((1 + r, n), dtype=np.float64)
        logits[1:] = np.matmul(self.point_v, a)
        defer = self.defer_out @ np.tanh(y[w : 2 * w])
        defer += self.defer_out_b
        p = self.defer_pair.size // 2  # what waiting saves, pooled over the regions (mean and maximum)
        defer += pairs.mean(axis=1) @ self.defer_pair[:p]
        defer += pairs.max(axis=1) @ self.defer_pair[p:]
        logits[0] = defer
        return np.ascontiguousarray(logits.T), y[2 * w].astype(np.float64)


__all__ = [
    "FORMAT",
    "GELU_Q",
    "VERSION",
    "ShiftingNumpy",
    "check_parameters",
    "gelu",
    "limit_blas_threads",
    "parameter_shapes",
    "read_checkpoint",
]
