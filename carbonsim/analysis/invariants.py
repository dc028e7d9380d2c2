"""Accounting invariants, checked at the end of every run.

Three books must balance, whatever the policy and whatever failed:

* **Requests**: every request that arrived is exactly one of completed, rejected (admission control),
  failed or still in flight: ``requests = completed + rejected + failed + in_flight``, in the records and in
  the summary alike.
* **Energy**: the energy of the regions adds up to the run's total, busy and idle alike, and no hour of a
  region has more busy and offline server-seconds than its servers have (idle energy is never negative).
* **Carbon**: the emissions equal the integral of facility power x intensity over the run, computed two
  ways that share no arithmetic: per request (each service interval's exact integral of the hourly
  intensity, :meth:`~carbonsim.core.signals.HourlySignal.integral`) plus the idle energy of every hour at
  that hour's intensity, against the per-hour busy and idle energy at the hour's intensity.

A run that breaks one raises :class:`AccountingError` naming the book, the two numbers and their gap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from carbonsim.core.energy import J_PER_KWH, EnergyAccount
from carbonsim.core.recorder import COMPLETED, FAILED, IN_FLIGHT, REJECTED
from carbonsim.core.simulation import SimResult

#: Relative tolerance of the floating-point comparisons (sums of millions of terms in different orders).
RTOL = 1e-9


class AccountingError(RuntimeError):
    """A run whose books do not balance: a bug in the simulator or the analysis, never a user error."""


def _close(name: str, a: float, b: float, scale: float | None = None) -> None:
    tol = RTOL * max(abs(a), abs(b), scale or 0.0, 1e-12)
    if not abs(a - b) <= tol:
        raise AccountingError(f"{name}: {a!r} != {b!r} (gap {a - b:.3e}, tolerance {tol:.3e})")


def check_run(result: SimResult, energy: EnergyAccount, summary: dict[str, Any]) -> None:
    """Raises :class:`AccountingError` unless the run's requests, energy and carbon books balance."""
    status = result.records.status
    counts = {name: int((status == code).sum()) for name, code in _STATUS}
    n = len(result.requests)
    if sum(counts.values()) != n:
        raise AccountingError(f"requests: {n} arrived, but the records hold {counts} (sum {sum(counts.values())})")
    for name, value in counts.items():
        if summary.get(name) != value:
            raise AccountingError(f"requests: summary says {name} = {summary.get(name)}, the records {value}")
    if summary.get("requests") != n:
        raise AccountingError(f"requests: summary says {summary.get('requests')}, the request stream holds {n}")

    busy_kwh = energy.busy_kwh.sum(axis=1)
    idle_kwh = energy.idle_kwh.sum(axis=1)
    total_kwh = float(summary["energy_kwh"])
    _close("energy: sum over regions vs total (kWh)", float(busy_kwh.sum() + idle_kwh.sum()), total_kwh)
    _close(
        "energy: busy energy of the requests vs of the regions (kWh)",
        float(energy.request_energy_j.sum()) / J_PER_KWH,
        float(energy.busy_kwh.sum()),
    )
    if (energy.idle_kwh < -RTOL * max(float(np.abs(energy.idle_kwh).max(initial=0.0)), 1e-12)).any():
        r, h = np.unravel_index(int(np.argmin(energy.idle_kwh)), energy.idle_kwh.shape)
        raise AccountingError(
            f"energy: region {result.world.scenario.region_names[r]} hour {h} has negative idle energy "
            f"{energy.idle_kwh[r, h]:.3e} kWh (more busy and offline server-seconds than servers)"
        )

    per_request_g = float(energy.request_carbon_g.sum()) + float(energy.idle_g.sum())
    hours = energy.busy_kwh.shape[1]
    intensity = result.world.carbon.values[:, :hours]
    per_hour_g = float(((energy.busy_kwh + energy.idle_kwh) * intensity).sum())
    _close("carbon: per-request integrals + idle vs power x intensity per hour (g)", per_request_g, per_hour_g)
    _close("carbon: summary vs power x intensity per hour (g)", float(summary["carbon_kg"]) * 1e3, per_hour_g)


_STATUS = (("completed", COMPLETED), ("rejected", REJECTED), ("failed", FAILED), ("in_flight", IN_FLIGHT))

__all__ = ["RTOL", "AccountingError", "check_run"]
