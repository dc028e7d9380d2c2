"""Base schedulers of the stage-level batch policies: a probability distribution over the runnable stages.

PCAPS (Lechowicz et al., SIGCOMM 2025) wraps a *probabilistic* scheduler such as Decima (Mao et al.,
SIGCOMM 2019): at every scheduling event the scheduler gives each runnable stage a probability, a stage is
drawn, and PCAPS weighs the drawn stage's probability against the most likely one's. CAP wraps any
scheduler through the order in which it would hand out the cluster. A :class:`StageScorer` is that
scheduler: it gives every row of ``view.stages`` (one runnable stage) a *logit*, and its distribution is
their softmax. Logits rather than probabilities, because both policies draw stage after stage without
replacement, renormalising over the stages left; in log space a degenerate distribution such as FIFO's
(all the mass on the first stage left) stays well defined after its first stage is taken.

Scorers are selected by name (``batch_policy.base``) from :data:`SCORERS`; a learned scheduler (e.g. a
pointer head over stage tokens) registers itself with :func:`register_scorer` and receives the policy's
config, the :class:`~carbonsim.core.jobs.JobContext` (its random stream is ``context.rng``) and each view.
:func:`draw_order` turns logits into the order of a draw without replacement (the Gumbel-top-k trick:
sorting ``logit + Gumbel noise`` samples the sequence of draws exactly) with every draw's relative
importance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import BatchPolicyConfig
from carbonsim.core.jobs import JobContext, JobView

#: Logit step between consecutive stages of FIFO's degenerate distribution: exp(-1000) is 0 in float64, so
#: every stage but the first left has probability (and relative importance) 0, and Gumbel noise (a few
#: units) never reorders them.
FIFO_STEP = 1000.0
#: Relative importance of a draw when every logit left is -inf (a scorer that gives no stage any mass).
_NO_MASS = 0.0


@runtime_checkable
class StageScorer(Protocol):
    """A base scheduler: logits over the runnable stages of a view (its distribution is their softmax)."""

    def reset(self, context: JobContext) -> None:
        """Receives the scenario's static facts (and the policy's random stream, ``context.rng``)."""

    def logits(self, view: JobView) -> np.ndarray:
        """One finite logit (or -inf: never) per row of ``view.stages``, float64."""
        ...


S = TypeVar("S", bound=type)
#: Scorer classes by name; each takes the policy's :class:`StageSchedulerConfig` as its only argument.
SCORERS: dict[str, type] = {}


def register_scorer(name: str) -> Callable[[S], S]:
    """Class decorator that registers a base scheduler under ``name`` (the values of ``batch_policy.base``)."""

    def deco(cls: S) -> S:
        if name in SCORERS:
            raise ValueError(f"base scheduler {name!r} is already registered by {SCORERS[name].__name__}")
        SCORERS[name] = cls
        return cls

    return deco


@dataclass(frozen=True)
class StageSchedulerConfig(BatchPolicyConfig):
    """Parameters of a batch policy that wraps a base scheduler of stages.

    Attributes:
        name: The policy's registered name.
        base: Base scheduler (a name in :data:`SCORERS`): ``fifo`` (jobs in arrival order, each job's stages
            in topological order) or ``critical_path`` (softmax over stage features, see
            :class:`CriticalPathScorer`).
        temperature: Softmax temperature of ``critical_path`` (> 0; smaller is more peaked).
        work_weight: Weight of the job's share of the work left in ``critical_path``'s logits (>= 0; 0 for
            the critical path alone).
        checkpoint: Network of a learned base scheduler (``base: learned``, the importance head of
            :mod:`carbonsim.learn.shifting_model`); empty for the others.
        weights: The learned base's operator weights [alpha, beta, gamma] (carbon per kg, lateness per
            job-hour, cost per USD); empty: those its checkpoint was selected at.
    """

    base: str = "fifo"
    temperature: float = 0.25
    work_weight: float = 1.0
    checkpoint: str = ""
    weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.base not in SCORERS:
            raise ConfigError(f"base: expected one of {', '.join(sorted(SCORERS))}, got {self.base!r}")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"temperature: expected a number > 0, got {self.temperature!r}")
        if not (np.isfinite(self.work_weight) and self.work_weight >= 0):
            raise ConfigError(f"work_weight: expected a number >= 0, got {self.work_weight!r}")
        if self.checkpoint and self.base != "learned":
            raise ConfigError(f"checkpoint: only base learned reads a network; base is {self.base!r}")
        if len(self.weights) not in (0, 3) or not all(np.isfinite(w) and w >= 0 for w in self.weights):
            raise ConfigError(f"weights: expected [alpha, beta, gamma] >= 0 or [], got {list(self.weights)!r}")


def make_scorer(cfg: StageSchedulerConfig) -> StageScorer:
    """The base scheduler ``cfg.base`` names."""
    scorer: StageScorer = SCORERS[cfg.base](cfg)
    return scorer


@register_scorer("fifo")
class FifoScorer:
    """FIFO as a degenerate distribution: all the mass on the first runnable stage in arrival order.

    Rows of ``view.stages`` come jobs in arrival order and each job's stages in topological order (Spark's
    FIFO order); row ``i`` gets logit ``-FIFO_STEP x i``.
    """

    def __init__(self, cfg: StageSchedulerConfig) -> None:
        self.cfg = cfg

    def reset(self, context: JobContext) -> None:
        """Nothing to prepare."""

    def logits(self, view: JobView) -> np.ndarray:
        """``-FIFO_STEP x row``."""
        return -FIFO_STEP * np.arange(len(view.stages), dtype=np.float64)


@register_scorer("critical_path")
class CriticalPathScorer:
    """Softmax over two stage features: on its job's critical path, and the job's share of the work left.

    ``logit = (path_s / job_path_s - work_weight x job_work_s / max job_work_s) / temperature``, where
    ``path_s`` is the stage's remaining critical path (its time plus the longest chain after it),
    ``job_path_s`` the longest of those among its job's runnable stages (the job's remaining critical path)
    and ``job_work_s`` the task-seconds its job has left (the largest over the view normalises it). The
    first term is 1 on the job's critical path and falls for stages with slack; the second is 0 for a job
    with no work left and ``work_weight`` for the largest job. These are the two intuitions of Decima (Mao
    et al., SIGCOMM 2019), whose learned policy favours critical-path stages and short jobs (it learns
    shortest-remaining-work first across jobs). Both terms are ratios, so ``temperature`` is unit-free: a
    stage whose features are ``d`` behind the best stage's has relative importance ``exp(-d / temperature)``.
    """

    def __init__(self, cfg: StageSchedulerConfig) -> None:
        self.temperature = cfg.temperature
        self.work_weight = cfg.work_weight

    def reset(self, context: JobContext) -> None:
        """Nothing to prepare."""

    def logits(self, view: JobView) -> np.ndarray:
        """The logits of the class docstring."""
        st = view.stages
        n = len(st)
        if not n:
            return np.zeros(0)
        # Rows of a job are contiguous (jobs in arrival order): reduce per run of equal job ids.
        starts = np.flatnonzero(np.concatenate([[True], st.job[1:] != st.job[:-1]]))
        job_path = np.repeat(np.maximum.reduceat(st.path_s, starts), np.diff(np.append(starts, n)))
        critical = np.divide(st.path_s, job_path, out=np.ones(n), where=job_path > 0)
        top = float(st.job_work_s.max())
        share = st.job_work_s / top if top > 0 else np.zeros(n)
        return np.asarray((critical - self.work_weight * share) / self.temperature, dtype=np.float64)


def softmax(logits: np.ndarray) -> np.ndarray:
    """The distribution of ``logits`` (all zeros if every logit is -inf)."""
    if not logits.size:
        return np.zeros(0)
    top = float(logits.max())
    if not np.isfinite(top):
        return np.zeros(logits.size)
    e = np.exp(logits - top)
    return np.asarray(e / e.sum(), dtype=np.float64)


def draw_order(logits: np.ndarray, rows: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """The order in which stages ``rows`` are drawn one by one, without replacement, from softmax(logits).

    With ``rng``, a sample (Gumbel-top-k: sorting ``logit + Gumbel noise`` decreasing has the law of
    drawing, renormalising over the rows left, drawing again ...); without, rows by decreasing logit.
    Ties keep row order.
    """
    keys = logits[rows].astype(np.float64, copy=True)
    if rng is not None and rows.size:
        keys += rng.gumbel(size=rows.size)
    return rows[np.argsort(-keys, kind="stable")]


def relative_importance(logits: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``p(row) / max p`` over ``rows`` for softmax(logits): ``exp(logit - max logit)``."""
    if not rows.size:
        return np.zeros(0)
    sub = logits[rows]
    top = float(sub.max())
    if not np.isfinite(top):
        return np.full(rows.size, _NO_MASS)
    return np.asarray(np.exp(sub - top), dtype=np.float64)


def sequential_draws(logits: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> Iterator[tuple[int, float]]:
    """Draws ``rows`` one by one from softmax(logits) renormalised over the rows not drawn yet.

    Yields ``(row, r)`` with ``r = p(row) / max p`` over the rows left at that draw (so the most likely row
    left has ``r = 1``): the scheduling events of the Decima simulator, where a stage chosen at an instant
    leaves the candidates of the next choice at the same instant.
    """
    order = draw_order(logits, rows, rng)
    by_logit = rows[np.argsort(-logits[rows], kind="stable")]
    taken = np.zeros(logits.size, dtype=bool)
    best = 0
    for row in order.tolist():
        while taken[by_logit[best]]:
            best += 1
        top = float(logits[by_logit[best]])
        r = float(np.exp(logits[row] - top)) if np.isfinite(top) else _NO_MASS
        taken[row] = True
        yield row, r
