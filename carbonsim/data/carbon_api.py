"""Clients for the Electricity Maps and WattTime carbon APIs (on ``requests``), used by ``fetch-carbon`` only.

Runs never import this module: they read the cache (:mod:`carbonsim.data.carbon_cache`) that
``carbonsim fetch-carbon`` fills with these clients.

* **Electricity Maps** (API v3, https://api.electricitymaps.com): ``GET /v3/carbon-intensity/past-range``
  (``zone``, ``start``, ``end``, ``emissionFactorType`` ``direct``/``lifecycle``, ``temporalGranularity``),
  ``/history`` (the last 24 hours) and ``/forecast``, authenticated by the ``auth-token`` header. Responses
  hold a list of ``{"datetime", "carbonIntensity", ...}`` under ``data`` (past-range), ``history`` or
  ``forecast``, intensity in gCO2eq/kWh. A past-range request may span at most 10 days of hourly data, so
  longer ranges are fetched in 10-day pieces.
* **WattTime** (API v3, https://api.watttime.org): ``GET /login`` with HTTP basic auth returns a token
  (valid 30 minutes; renewed once on a 401), then ``/v3/historical`` (``region``, ``start``, ``end``,
  ``signal_type=co2_moer``), ``/v3/forecast`` and ``/v3/signal-index`` with ``Authorization: Bearer``.
  Responses are ``{"data": [{"point_time", "value"}], "meta": {"units", "data_point_period_seconds", ...}}``,
  MOER in lbs CO2/MWh. Historical requests are limited to about a month, so ranges are fetched in 30-day
  pieces (as WattTime's own Python client does).

Keys come only from the environment: ``ELECTRICITYMAPS_API_KEY``; ``WATTTIME_USERNAME`` (or
``WATTTIME_USER``, the name WattTime's client reads) and ``WATTTIME_PASSWORD``. The base URLs can be
overridden with ``CARBONSIM_ELECTRICITYMAPS_URL`` and ``CARBONSIM_WATTTIME_URL`` (the tests point them at
a local server replaying recorded responses).

HTTP 429 (rate limit) and 502/503/504 are retried up to :data:`MAX_RETRIES` times, waiting what the
``Retry-After`` header says (seconds or an HTTP date) or 1, 2, 4, ... s, each wait capped at
:data:`MAX_WAIT_S`. Any other error status, a missing key and an unreachable host raise
:class:`CarbonApiError` with one line naming the provider, the request and the server's message.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import requests

from carbonsim.data.errors import DataError

ELECTRICITYMAPS_URL = "https://api.electricitymaps.com"
WATTTIME_URL = "https://api.watttime.org"
ELECTRICITYMAPS_URL_ENV = "CARBONSIM_ELECTRICITYMAPS_URL"
WATTTIME_URL_ENV = "CARBONSIM_WATTTIME_URL"
ELECTRICITYMAPS_KEY_ENV = "ELECTRICITYMAPS_API_KEY"
WATTTIME_USER_ENVS = ("WATTTIME_USERNAME", "WATTTIME_USER")
WATTTIME_PASSWORD_ENV = "WATTTIME_PASSWORD"

ELECTRICITYMAPS_MAX_RANGE = pd.Timedelta(days=10)
"""Longest range of one hourly past-range request (Electricity Maps API documentation)."""
WATTTIME_MAX_RANGE = pd.Timedelta(days=30)
"""Range of one historical request (WattTime's Python client splits ranges into 30-day chunks)."""
MAX_RETRIES = 5
MAX_WAIT_S = 60.0
TIMEOUT_S = 30.0
EM_METRICS = {"direct": "direct", "lca": "lifecycle"}
EM_UNIT = "gCO2eq/kWh"


class CarbonApiError(DataError):
    """A carbon API could not be used: no key, no network, or an error response (one line)."""


@dataclass(frozen=True)
class ApiSeries:
    """A series as an API returned it.

    Attributes:
        values: Values on a UTC index, in ``unit``.
        unit: The provider's unit (``gCO2eq/kWh`` for Electricity Maps, ``meta.units`` for WattTime).
        step: Spacing of the points when the provider states it (WattTime's ``data_point_period_seconds``).
    """

    values: pd.Series
    unit: str
    step: pd.Timedelta | None = None


def _utc(t: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(t)
    if stamp.tzinfo is None:
        raise CarbonApiError(f"time {t!r} has no time zone; give a UTC time such as 2024-01-01T00:00Z")
    return stamp.tz_convert("UTC")


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(start: pd.Timestamp, end: pd.Timestamp, size: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    out = []
    while start < end:
        out.append((start, min(end, start + size)))
        start = out[-1][1]
    return out


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _server_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text) or response.reason or ""
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "errors"):
            if body.get(key):
                return _one_line(str(body[key]))
    return _one_line(str(body))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Http:
    """GET with bounded retries on rate limits and one-line errors."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        session: requests.Session | None,
        sleep: Callable[[float], None],
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.sleep = sleep
        self.max_retries = max_retries

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        url = f"{self.base_url}{path}"
        shown = f"{path}?{'&'.join(f'{k}={v}' for k, v in (params or {}).items())}" if params else path
        for attempt in range(self.max_retries + 1):
            try:
                response = self.session.get(
                    url, params=dict(params or {}), headers=dict(headers or {}), auth=auth, timeout=TIMEOUT_S
                )
            except requests.Timeout:
                raise CarbonApiError(
                    f"{self.provider}: no answer from {self.base_url} within {TIMEOUT_S:g} s ({shown}); "
                    "check the network and try again"
                ) from None
            except requests.RequestException as exc:
                raise CarbonApiError(
                    f"{self.provider}: cannot reach {self.base_url} ({type(exc).__name__}); check the network "
                    "connection (only fetch-carbon needs it: runs read the cache)"
                ) from None
            if response.status_code in (429, 502, 503, 504) and attempt < self.max_retries:
                wait = _retry_after(response)
                self.sleep(min(MAX_WAIT_S, wait if wait is not None else 2.0**attempt))
                continue
            if response.status_code == 429:
                raise CarbonApiError(
                    f"{self.provider}: rate limited (HTTP 429) on {shown} after {self.max_retries} retries; "
                    f"try again later ({_server_message(response)})"
                )
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def fail(self, response: requests.Response, shown: str, hint: str = "") -> CarbonApiError:
        """The one-line error of an error response."""
        reason = f"HTTP {response.status_code}"
        message = _server_message(response)
        tail = f"; {hint}" if hint else ""
        return CarbonApiError(f"{self.provider}: {reason} on {shown}: {message}{tail}")

    def json(self, response: requests.Response, shown: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise CarbonApiError(
                f"{self.provider}: {shown}: response is not JSON: {_one_line(response.text)!r}"
            ) from None


def _points(
    provider: str,
    entries: Any,
    time_key: str,
    value_key: str,
    where: str,
) -> pd.Series:
    if not isinstance(entries, list):
        raise CarbonApiError(f"{provider}: {where}: expected a list of points, got {type(entries).__name__}")
    times, values = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or time_key not in entry or value_key not in entry:
            raise CarbonApiError(f"{provider}: {where}: point {i + 1} lacks {time_key!r} or {value_key!r}: {entry!r}")
        value = entry[value_key]
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            raise CarbonApiError(f"{provider}: {where}: point {i + 1} ({entry[time_key]}): {value_key} is {value!r}")
        times.append(entry[time_key])
        values.append(float(value))
    try:
        index = pd.DatetimeIndex(pd.to_datetime(pd.Series(times, dtype=object), utc=True, format="ISO8601"))
    except (ValueError, TypeError) as exc:
        raise CarbonApiError(f"{provider}: {where}: unreadable {time_key}: {exc}") from None
    return pd.Series(np.asarray(values, dtype=np.float64), index=index.as_unit("ns").rename("time_utc"))


def _merge(parts: list[pd.Series]) -> pd.Series:
    merged = pd.concat(parts) if parts else pd.Series(dtype=np.float64)
    merged = merged[~merged.index.duplicated(keep="first")].sort_index()
    return merged


class ElectricityMapsClient:
    """Electricity Maps API v3 carbon intensity (average, consumption-based, gCO2eq/kWh).

    Args:
        api_key: The key; ``None`` reads ``ELECTRICITYMAPS_API_KEY``.
        base_url: API root; ``None`` reads ``CARBONSIM_ELECTRICITYMAPS_URL``, else the public API.
        session: A ``requests.Session`` to use (one is made otherwise).
        sleep: Waits between retries (tests pass a recorder).

    Raises:
        CarbonApiError: if no key is given or set.
    """

    provider = "electricitymaps"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ELECTRICITYMAPS_KEY_ENV, "")
        if not key:
            raise CarbonApiError(
                f"electricitymaps: no API key: set {ELECTRICITYMAPS_KEY_ENV} in the environment (keys are read "
                "from there only)"
            )
        self._headers = {"auth-token": key}
        url = base_url or os.environ.get(ELECTRICITYMAPS_URL_ENV) or ELECTRICITYMAPS_URL
        self.http = _Http(self.provider, url, session, sleep)

    def _get(self, path: str, params: dict[str, str], key: str) -> pd.Series:
        shown = f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        response = self.http.get(path, params, self._headers)
        if response.status_code in (401, 403):
            raise self.http.fail(response, shown, f"check {ELECTRICITYMAPS_KEY_ENV} and what your plan includes")
        if response.status_code >= 400:
            raise self.http.fail(response, shown)
        body = self.http.json(response, shown)
        if not isinstance(body, dict):
            raise CarbonApiError(f"electricitymaps: {shown}: expected a JSON object, got {type(body).__name__}")
        entries = next((body[k] for k in (key, "data", "history", "forecast") if k in body), None)
        if entries is None:
            raise CarbonApiError(f"electricitymaps: {shown}: no {key!r} list in the response (keys {sorted(body)})")
        return _points(self.provider, entries, "datetime", "carbonIntensity", shown)

    @staticmethod
    def _metric(metric: str) -> str:
        if metric not in EM_METRICS:
            raise CarbonApiError(f"electricitymaps: unknown metric {metric!r}; expected one of {sorted(EM_METRICS)}")
        return EM_METRICS[metric]

    def past_range(
        self, zone: str, start: pd.Timestamp | str, end: pd.Timestamp | str, metric: str = "direct"
    ) -> ApiSeries:
        """Hourly intensity of ``zone`` over ``[start, end)``, fetched in pieces of at most 10 days.

        Raises:
            CarbonApiError: on an error response, or if the API leaves an hour of the range without a value.
        """
        t0, t1 = _utc(start), _utc(end)
        if not t1 > t0:
            raise CarbonApiError(f"electricitymaps: empty range [{_iso(t0)}, {_iso(t1)})")
        parts = []
        for a, b in _chunks(t0, t1, ELECTRICITYMAPS_MAX_RANGE):
            params = {
                "zone": zone,
                "start": _iso(a),
                "end": _iso(b),
                "emissionFactorType": self._metric(metric),
                "temporalGranularity": "hourly",
            }
            points = self._get("/v3/carbon-intensity/past-range", params, "data")
            parts.append(points[(points.index >= a) & (points.index < b)])
        return ApiSeries(_merge(parts), EM_UNIT, pd.Timedelta(hours=1))

    def history(self, zone: str, metric: str = "direct") -> ApiSeries:
        """The last 24 hours of hourly intensity of ``zone``."""
        params = {"zone": zone, "emissionFactorType": self._metric(metric)}
        return ApiSeries(
            _merge([self._get("/v3/carbon-intensity/history", params, "history")]), EM_UNIT, pd.Timedelta(hours=1)
        )

    def forecast(self, zone: str, metric: str = "direct", horizon_hours: int | None = None) -> ApiSeries:
        """The current hourly intensity forecast of ``zone`` (up to 72 h ahead, by plan)."""
        params = {"zone": zone, "emissionFactorType": self._metric(metric)}
        if horizon_hours is not None:
            params["horizonHours"] = str(horizon_hours)
        return ApiSeries(
            _merge([self._get("/v3/carbon-intensity/forecast", params, "forecast")]), EM_UNIT, pd.Timedelta(hours=1)
        )


class WattTimeClient:
    """WattTime API v3: marginal operating emissions rate (MOER), its forecast and its signal index.

    Args:
        username: ``None`` reads ``WATTTIME_USERNAME`` (or ``WATTTIME_USER``).
        password: ``None`` reads ``WATTTIME_PASSWORD``.
        base_url: API root; ``None`` reads ``CARBONSIM_WATTTIME_URL``, else the public API.
        session: A ``requests.Session`` to use.
        sleep: Waits between retries.

    Raises:
        CarbonApiError: if the username or password is missing.
    """

    provider = "watttime"

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        user = (
            username
            if username is not None
            else next((os.environ[e] for e in WATTTIME_USER_ENVS if os.environ.get(e)), "")
        )
        word = password if password is not None else os.environ.get(WATTTIME_PASSWORD_ENV, "")
        if not user or not word:
            raise CarbonApiError(
                f"watttime: no credentials: set {WATTTIME_USER_ENVS[0]} and {WATTTIME_PASSWORD_ENV} in the "
                "environment (they are read from there only)"
            )
        self._auth = (user, word)
        self._token = ""
        url = base_url or os.environ.get(WATTTIME_URL_ENV) or WATTTIME_URL
        self.http = _Http(self.provider, url, session, sleep)

    def login(self) -> None:
        """Gets a token from ``/login`` with basic auth."""
        response = self.http.get("/login", auth=self._auth)
        if response.status_code in (401, 403):
            raise self.http.fail(response, "/login", f"check {WATTTIME_USER_ENVS[0]} and {WATTTIME_PASSWORD_ENV}")
        if response.status_code >= 400:
            raise self.http.fail(response, "/login")
        body = self.http.json(response, "/login")
        token = body.get("token") if isinstance(body, dict) else None
        if not token:
            raise CarbonApiError("watttime: /login: no token in the response")
        self._token = str(token)

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        shown = f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
        if not self._token:
            self.login()
        response = self.http.get(path, params, {"Authorization": f"Bearer {self._token}"})
        if response.status_code == 401:  # the token expired (they last 30 minutes): log in once more
            self.login()
            response = self.http.get(path, params, {"Authorization": f"Bearer {self._token}"})
        if response.status_code in (401, 403):
            raise self.http.fail(response, shown, "check that your WattTime plan covers this region and signal")
        if response.status_code >= 400:
            raise self.http.fail(response, shown)
        body = self.http.json(response, shown)
        if not isinstance(body, dict) or "data" not in body:
            raise CarbonApiError(f"watttime: {shown}: expected an object with 'data' and 'meta'")
        return body

    @staticmethod
    def _meta(body: dict[str, Any]) -> tuple[str, pd.Timedelta | None]:
        meta = body.get("meta") or {}
        period = meta.get("data_point_period_seconds")
        return str(meta.get("units") or "lbs_co2_per_mwh"), pd.Timedelta(seconds=int(period)) if period else None

    def historical(
        self, region: str, start: pd.Timestamp | str, end: pd.Timestamp | str, signal_type: str = "co2_moer"
    ) -> ApiSeries:
        """The signal of ``region`` over ``[start, end)``, fetched in 30-day pieces.

        Raises:
            CarbonApiError: on an error response or if the pieces disagree on units or step.
        """
        t0, t1 = _utc(start), _utc(end)
        if not t1 > t0:
            raise CarbonApiError(f"watttime: empty range [{_iso(t0)}, {_iso(t1)})")
        parts, metas = [], set()
        for a, b in _chunks(t0, t1, WATTTIME_MAX_RANGE):
            params = {"region": region, "signal_type": signal_type, "start": _iso(a), "end": _iso(b)}
            body = self._get("/v3/historical", params)
            metas.add(self._meta(body))
            points = _points(self.provider, body["data"], "point_time", "value", f"/v3/historical {_iso(a)}")
            parts.append(points[(points.index >= a) & (points.index < b)])
        if len(metas) > 1:
            raise CarbonApiError(
                f"watttime: /v3/historical pieces disagree on units or step: {sorted(map(str, metas))}"
            )
        unit, step = metas.pop()
        return ApiSeries(_merge(parts), unit, step)

    def forecast(self, region: str, signal_type: str = "co2_moer", horizon_hours: int | None = None) -> ApiSeries:
        """The most recent forecast of ``region`` (``meta.generated_at`` says when it was made)."""
        params = {"region": region, "signal_type": signal_type}
        if horizon_hours is not None:
            params["horizon_hours"] = str(horizon_hours)
        body = self._get("/v3/forecast", params)
        unit, step = self._meta(body)
        return ApiSeries(
            _merge([_points(self.provider, body["data"], "point_time", "value", "/v3/forecast")]), unit, step
        )

    def signal_index(self, region: str, signal_type: str = "co2_moer") -> ApiSeries:
        """The current signal index of ``region``: where the MOER stands among recent values, a percentile 0-100."""
        body = self._get("/v3/signal-index", {"region": region, "signal_type": signal_type})
        unit, step = self._meta(body)
        return ApiSeries(_points(self.provider, body["data"], "point_time", "value", "/v3/signal-index"), unit, step)


__all__ = [
    "ELECTRICITYMAPS_KEY_ENV",
    "ELECTRICITYMAPS_URL_ENV",
    "WATTTIME_PASSWORD_ENV",
    "WATTTIME_URL_ENV",
    "WATTTIME_USER_ENVS",
    "ApiSeries",
    "CarbonApiError",
    "ElectricityMapsClient",
    "WattTimeClient",
]
