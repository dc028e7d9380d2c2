"""Fixtures for the user's-own-data tests: files in the published schemas, and a local API server.

Every file is written by the tests, in the shape its publisher documents:

* Electricity Maps data-portal export (the columns of the shipped ``electricitymaps_hourly`` files);
* WattTime API v3 ``/v3/historical`` JSON (``data`` of ``{point_time, value}``, ``meta`` with ``units`` and
  ``data_point_period_seconds``) and its CSV form, and v2 CSV (``timestamp``, ``MOER``, ...);
* Carbon Aware SDK ``/emissions/bylocations`` JSON (``[{location, time, rating, duration}]``);
* Electricity Maps v3 ``/v3/carbon-intensity/past-range`` responses (``{"zone", "data": [{"datetime",
  "carbonIntensity", ...}]}``) and WattTime v3 responses, served by :class:`RecordedApi` on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pandas as pd

EM_EXPORT_HEADER = (
    "Datetime (UTC)",
    "Country",
    "Zone Name",
    "Zone Id",
    "Carbon Intensity gCO₂eq/kWh (direct)",
    "Carbon Intensity gCO₂eq/kWh (LCA)",
    "Low Carbon Percentage",
    "Renewable Percentage",
    "Data Source",
    "Data Estimated",
    "Data Estimation Method",
)


def hours(start: str, n: int, freq: str = "1h") -> pd.DatetimeIndex:
    """``n`` UTC timestamps from ``start``."""
    return pd.date_range(pd.Timestamp(start, tz="UTC"), periods=n, freq=freq)


def write_em_export(path: Path, start: str, direct: Sequence[float], freq: str = "1h", zone: str = "DE") -> Path:
    """An Electricity Maps export: naive UTC timestamps, direct and LCA intensity (LCA = direct + 50)."""
    lines = [",".join(EM_EXPORT_HEADER)]
    for t, v in zip(hours(start, len(direct), freq), direct, strict=True):
        lines.append(
            f"{t.strftime('%Y-%m-%d %H:%M:%S')},Germany,Germany,{zone},{v},{v + 50},60.1,45.2,entsoe.eu,false,"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def watttime_response(region: str, start: str, values: Sequence[float], period_s: int = 300) -> dict[str, Any]:
    """A WattTime v3 ``/v3/historical`` (or ``/v3/forecast``) response body."""
    times = hours(start, len(values), f"{period_s}s")
    return {
        "data": [{"point_time": t.isoformat(), "value": v} for t, v in zip(times, values, strict=True)],
        "meta": {
            "data_point_period_seconds": period_s,
            "region": region,
            "signal_type": "co2_moer",
            "units": "lbs_co2_per_mwh",
            "warnings": [],
            "model": {"date": "2023-03-01", "type": "binned_regression"},
        },
    }


def em_response(zone: str, start: str, values: Sequence[float], key: str = "data") -> dict[str, Any]:
    """An Electricity Maps v3 carbon-intensity response (``data`` for past-range, ``forecast`` for forecast)."""
    rows = []
    for t, v in zip(hours(start, len(values)), values, strict=True):
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        row: dict[str, Any] = {"datetime": stamp, "carbonIntensity": v}
        if key != "forecast":
            row.update(
                zone=zone,
                updatedAt=stamp,
                createdAt=stamp,
                emissionFactorType="direct",
                isEstimated=False,
                estimationMethod=None,
            )
        rows.append(row)
    return {"zone": zone, key: rows}


def sdk_emissions(
    locations: dict[str, Sequence[float]], start: str, duration: str = "01:00:00"
) -> list[dict[str, Any]]:
    """A Carbon Aware SDK ``/emissions/bylocations`` response: entries per location, in time order."""
    step = pd.Timedelta(duration)
    out = []
    for location, values in locations.items():
        for t, v in zip(hours(start, len(values), step), values, strict=True):
            out.append({"location": location, "time": t.isoformat(), "rating": v, "duration": duration})
    return out


@dataclass
class Reply:
    """One recorded response."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request the server received."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]


class RecordedApi:
    """An HTTP server on 127.0.0.1 that replays recorded responses, in order, per path and query.

    ``add(path, params, *replies)`` records what the server answers to a GET of ``path`` with exactly
    ``params`` (``None``: any query): each request takes the next reply, the last one repeats. Anything not
    recorded gets a 404 with a JSON error body, as the real APIs answer. Every request is logged in ``seen``.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, tuple[tuple[str, str], ...] | None], list[Reply]] = {}
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                api.seen.append(Seen(url.path, params, {k.lower(): v for k, v in self.headers.items()}))
                replies = api.routes.get((url.path, tuple(sorted(params.items())))) or api.routes.get((url.path, None))
                if not replies:
                    reply = Reply(404, {"message": f"no recorded response for {url.path} {params}"})
                else:
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                payload = data.encode("utf-8")
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, path: str, params: dict[str, str] | None, *replies: Reply) -> None:
        key = (path, None if params is None else tuple(sorted(params.items())))
        self.routes[key] = list(replies)

    def __enter__(self) -> RecordedApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def serving() -> Iterator[RecordedApi]:
    """A started :class:`RecordedApi`, shut down afterwards (for a pytest fixture)."""
    with RecordedApi() as api:
        yield api


def run_config(scenario: dict[str, Any], **top: Any) -> Any:
    """A run configuration of ``scenario`` with latency-first routing, no baseline run, a short drain."""
    from carbonsim import RunConfig, build

    data = {
        "scenario": scenario,
        "policy": {"name": "latency_first"},
        "baseline": "",
        "sim_hours": 2.0,
        "max_drain_hours": 1.0,
        **top,
    }
    return build(RunConfig, data, "")
