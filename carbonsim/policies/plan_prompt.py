"""The prompt of the LLM planner: the facts of one planning step, written as a short chat.

Pure Python (no torch). The prompt is kept compact because the model is small (135M parameters) and
every prompt token costs prefill time at every planning step: one table row per region (intensity now and
forecast, price, servers, queue, capacity), the expected load, the SLOs, which regions meet each origin's
SLO, and the exact answer format. An example is in docs/llm_planner.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from carbonsim.policies.llm_generator import Message


@dataclass(frozen=True)
class PlanningFacts:
    """What the planner tells the model at one planning step.

    Attributes:
        regions: Region names, in the simulator's order.
        interval_min: Length of the planned interval in minutes.
        expected_rate_per_s: Expected arrival rate in requests/s.
        intensity_gco2_per_kwh: Per region, the intensity now and the forecast for the next hours.
        price_usd_per_kwh: Electricity price per region now.
        servers: Servers per region (``inf`` for unlimited).
        queue_length: Waiting requests per region now.
        capacity_per_s: Capacity estimate per region in requests/s.
        slo_ms: Per workload, its name and latency SLO in ms.
        origins: Per origin, its name, its share of the expected load in percent and the regions that meet
            its SLO for every workload it sends.
    """

    regions: tuple[str, ...]
    interval_min: float
    expected_rate_per_s: float
    intensity_gco2_per_kwh: tuple[tuple[float, ...], ...]
    price_usd_per_kwh: tuple[float, ...]
    servers: tuple[float, ...]
    queue_length: tuple[int, ...]
    capacity_per_s: tuple[float, ...]
    slo_ms: tuple[tuple[str, float], ...]
    origins: tuple[tuple[str, float, tuple[str, ...]], ...]


def _num(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "?"
    if math.isinf(value):
        return "unlimited"
    return f"{value:.{digits}f}"


def answer_format(regions: Sequence[str]) -> str:
    """The answer shape shown to the model: every region with a placeholder for its percentage."""
    return "{" + ", ".join(f'"{r}": N' for r in regions) + "}"


def skeleton(regions: Sequence[str]) -> list[str]:
    """The literal pieces of a plan around its numbers (template decoding): ``{"a": `` ... ``, "b": `` ... ``}``."""
    return ["{" + f'"{regions[0]}": ', *(f', "{r}": ' for r in regions[1:]), "}"]


def prompt_messages(facts: PlanningFacts) -> list[Message]:
    """The chat sent to the model: one user message.

    There is no system message, so the chat template adds the model's own default (SmolLM2's: "You are a
    helpful AI assistant named SmolLM, trained by Hugging Face"). With a system message of ours ("You are
    a cloud scheduler. You answer with one JSON object and nothing else.") SmolLM2-135M answered in prose
    at all seven planning steps of a 4-hour trial on the default scenario; without it, it began with a JSON
    object at every one (docs/llm_planner.md).
    """
    hours = max(len(f) for f in facts.intensity_gco2_per_kwh)
    leads = " ".join(["now", *(f"+{h}h" for h in range(1, hours))])
    lines = [
        f"Split the next {facts.interval_min:g} min of inference requests between cloud regions. "
        f"Expected load: {facts.expected_rate_per_s:.1f} requests/s.",
        "Goal: the lowest carbon intensity, without planning more load on a region than its capacity, "
        "and only to regions that meet the latency SLO of some origin.",
        "",
        f"region | gCO2/kWh {leads} | USD/kWh | servers | queue | capacity req/s",
    ]
    for i, name in enumerate(facts.regions):
        carbon = " ".join(_num(x) for x in facts.intensity_gco2_per_kwh[i])
        lines.append(
            f"{name} | {carbon} | {facts.price_usd_per_kwh[i]:.3f} | {_num(facts.servers[i])} | "
            f"{facts.queue_length[i]} | {_num(facts.capacity_per_s[i])}"
        )
    lines += ["", "SLOs: " + ", ".join(f"{w} {_num(slo)} ms" for w, slo in facts.slo_ms) + "."]
    lines.append("Regions that meet each origin's SLO (origin, share of the load: regions):")
    for name, share_pct, ok in facts.origins:
        lines.append(f"{name}, {share_pct:.0f}%: {', '.join(ok) if ok else 'none'}")
    lines += [
        "",
        "Answer with only a JSON object that gives every region an integer percent of the requests, "
        "the percents summing to 100, in this form:",
        answer_format(facts.regions),
    ]
    return [{"role": "user", "content": "\n".join(lines)}]


__all__ = ["PlanningFacts", "answer_format", "prompt_messages", "skeleton"]
