"""The validated data layer: loaders for the real traces in ``traces/``.

Each loader reads one kind of file, checks it (header, timestamps, grid, gaps, units, plausible ranges) and
returns a pandas or numpy object with stated units, or raises :class:`DataError` naming the file, the row
or timestamp, and what was expected. Nothing is filled, clipped or dropped silently; filling is explicit
(:func:`fill_gaps`) and reports how many points it filled. Every loader accepts a ``path`` (or ``root``)
so that tests and users can read other copies of the files.

Provenance, licences and transformations of each source are in ``traces/README.md`` and ``docs/data/``.
"""

from __future__ import annotations

from carbonsim.data.carbon import available_zones, load_eia930, load_electricitymaps, load_watttime_moer
from carbonsim.data.errors import DataError
from carbonsim.data.network import load_rtt_matrix, regions, rtt_ms
from carbonsim.data.paths import traces_dir
from carbonsim.data.prices import available_markets, load_price
from carbonsim.data.profiles import load_inference_profiles, service_profile
from carbonsim.data.timeseries import CARBON_INTENSITY, PRICE, ValueRange, fill_gaps, require_span
from carbonsim.data.user_arrivals import load_arrival_trace
from carbonsim.data.user_signals import load_signal_file, read_signal_file
from carbonsim.data.workloads import (
    available_gaia_traces,
    available_load_shapes,
    load_gaia_jobs,
    load_llm_arrivals,
    load_llm_requests,
    load_load_shape,
)

__all__ = [
    "CARBON_INTENSITY",
    "PRICE",
    "DataError",
    "ValueRange",
    "available_gaia_traces",
    "available_load_shapes",
    "available_markets",
    "available_zones",
    "fill_gaps",
    "load_arrival_trace",
    "load_eia930",
    "load_electricitymaps",
    "load_gaia_jobs",
    "load_inference_profiles",
    "load_llm_arrivals",
    "load_llm_requests",
    "load_load_shape",
    "load_price",
    "load_rtt_matrix",
    "load_signal_file",
    "load_watttime_moer",
    "read_signal_file",
    "regions",
    "require_span",
    "rtt_ms",
    "service_profile",
    "traces_dir",
]
