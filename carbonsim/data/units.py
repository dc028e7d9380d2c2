"""Units of the user's signal files, and the factors that convert them to carbonsim's units.

carbonsim works in gCO2eq/kWh for carbon intensity (average or marginal) and in USD/MWh for prices (turned
into USD/kWh when a run starts). The accepted spellings are matched without case, spaces, ``eq``/``e``
after CO2, and with the subscript ``₂`` read as ``2``; anything else is rejected, never guessed.

Conversions: 1 kgCO2/MWh = 1 gCO2/kWh; 1 kg/kWh = 1 t/MWh = 1,000 g/kWh; 1 lb = 453.59237 g exactly
(international avoirdupois pound), so 1 lbs/MWh = 0.45359237 g/kWh (WattTime's MOER unit). Prices in
another currency are converted at the exchange rate the user states (there is no built-in rate).
"""

from __future__ import annotations

import re

from carbonsim.data.errors import DataError

GRAMS_PER_POUND = 453.59237
"""International avoirdupois pound (exact by definition since 1959)."""

CARBON_UNITS: dict[str, float] = {
    "gco2/kwh": 1.0,
    "g/kwh": 1.0,
    "kgco2/mwh": 1.0,
    "kg/mwh": 1.0,
    "kgco2/kwh": 1000.0,
    "kg/kwh": 1000.0,
    "tco2/mwh": 1000.0,
    "t/mwh": 1000.0,
    "lbsco2/mwh": GRAMS_PER_POUND / 1000.0,
    "lbco2/mwh": GRAMS_PER_POUND / 1000.0,
    "lbs/mwh": GRAMS_PER_POUND / 1000.0,
    "lb/mwh": GRAMS_PER_POUND / 1000.0,
    "lbs_co2_per_mwh": GRAMS_PER_POUND / 1000.0,
    "gco2_per_kwh": 1.0,
}
"""Normalised carbon-intensity unit -> factor to gCO2eq/kWh (``lbs_co2_per_mwh`` is WattTime v3's ``meta.units``)."""

PRICE_UNITS: dict[str, float] = {"usd/mwh": 1.0, "usd/kwh": 1000.0}
"""Normalised price unit in USD -> factor to USD/MWh; other currencies need an exchange rate."""

_PRICE = re.compile(r"([a-z]{3})/(mwh|kwh)")


def normalise_unit(unit: str) -> str:
    """A unit in the canonical spelling of this module's tables (``gCO₂eq / kWh`` -> ``gco2/kwh``)."""
    text = unit.strip().lower().replace("₂", "2").replace(" ", "")
    text = text.replace("co2eq", "co2").replace("co2e", "co2").replace("$", "usd")
    return text


def is_price_unit(unit: str) -> bool:
    """Whether ``unit`` is an energy price: ``<currency>/MWh`` or ``<currency>/kWh`` (ISO 4217 code)."""
    return bool(_PRICE.fullmatch(normalise_unit(unit)))


def carbon_factor(unit: str, source: str) -> float:
    """Factor that converts ``unit`` to gCO2eq/kWh.

    Raises:
        DataError: naming ``source`` if the unit is not a known carbon-intensity unit.
    """
    factor = CARBON_UNITS.get(normalise_unit(unit))
    if factor is None:
        raise DataError(
            f"{source}: unknown carbon-intensity unit {unit!r}; expected one of gCO2/kWh, gCO2eq/kWh, g/kWh, "
            "kgCO2/MWh, kgCO2/kWh, tCO2/MWh, lbsCO2/MWh"
        )
    return factor


def price_factor(unit: str, exchange_rate_usd: float, source: str) -> float:
    """Factor that converts ``unit`` to USD/MWh.

    Args:
        unit: ``USD/MWh``, ``USD/kWh``, or another ISO 4217 currency per MWh or kWh.
        exchange_rate_usd: USD per unit of the currency (required, > 0, for a currency other than USD).
        source: File or field for messages.

    Raises:
        DataError: unknown unit, or another currency without a positive exchange rate.
    """
    match = _PRICE.fullmatch(normalise_unit(unit))
    if match is None:
        raise DataError(f"{source}: unknown price unit {unit!r}; expected USD/MWh, USD/kWh or <currency>/MWh")
    currency, energy = match.groups()
    per_mwh = 1000.0 if energy == "kwh" else 1.0
    if currency == "usd":
        return per_mwh
    if not exchange_rate_usd > 0:
        raise DataError(
            f"{source}: prices in {currency.upper()} need exchange_rate_usd (USD per {currency.upper()}); "
            "carbonsim has no built-in exchange rate"
        )
    return per_mwh * exchange_rate_usd


__all__ = [
    "CARBON_UNITS",
    "GRAMS_PER_POUND",
    "PRICE_UNITS",
    "carbon_factor",
    "is_price_unit",
    "normalise_unit",
    "price_factor",
]
