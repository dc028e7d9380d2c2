"""Columnar per-request records.

One preallocated numpy column per field keeps recording cheap (an index assignment per field) and compact:
21 bytes per request here, plus the request stream's own columns. Derived quantities (latency parts,
energy, carbon) are computed from these columns after the run.
"""

from __future__ import annotations

from typing import cast

import numpy as np

IN_FLIGHT = 0
COMPLETED = 1
REJECTED = 2
FAILED = 3
STATUS_NAMES = ("in_flight", "completed", "rejected", "failed")


class RequestRecords:
    """Outcome columns for ``n`` requests (index = request id).

    Attributes:
        region: Region index the policy chose (-1 until routed).
        pool: Server pool index within the region that served it (-1 if never started).
        status: One of ``IN_FLIGHT``, ``COMPLETED``, ``REJECTED``, ``FAILED``.
        batch_size: Size of the batch the request was served in (1 without batching).
        start_s: Service start time in seconds (NaN if never started).
        end_s: Service end time in seconds (NaN if not finished).
        retries: Times the request was routed again after a fault (region down, server failed, cut off).
        rerouted_s: For each request routed again, the time of its last routing (sparse: few requests).
        lost_service: Service that a fault interrupted: (request, region, pool, start s, end s, share of the
            server), one entry per request and interruption. The energy it drew counts (busy power), the
            request is served again elsewhere or fails.
        offline: Changes of the number of servers without power (failed, or in a region that is down):
            (region, pool, time s, servers offline from then on).
    """

    def __init__(self, n: int) -> None:
        self.region = np.full(n, -1, dtype=np.int8)
        self.pool = np.full(n, -1, dtype=np.int8)
        self.status = np.zeros(n, dtype=np.int8)
        self.batch_size = np.ones(n, dtype=np.uint16)
        self.start_s = np.full(n, np.nan)
        self.end_s = np.full(n, np.nan)
        self.retries = np.zeros(n, dtype=np.uint8)
        self.rerouted_s: dict[int, float] = {}
        self.lost_service: list[tuple[int, int, int, float, float, float]] = []
        self.offline: list[tuple[int, int, float, float]] = []

    @property
    def nbytes(self) -> int:
        """Memory held by the columns in bytes."""
        return int(
            sum(
                a.nbytes
                for a in (self.region, self.pool, self.status, self.batch_size, self.start_s, self.end_s, self.retries)
            )
        )


def float_items(column: np.ndarray) -> memoryview[float]:
    """A memoryview of a contiguous float64 column: item access exchanges plain Python floats.

    Reading or writing single elements through it avoids creating numpy scalars, which matters on the
    per-request path.
    """
    if column.dtype != np.float64 or not column.flags.c_contiguous:
        raise ValueError(f"expected a contiguous float64 column, got {column.dtype}")
    return cast("memoryview[float]", column.data)


def int_items(column: np.ndarray) -> memoryview[int]:
    """A memoryview of a contiguous integer column: item access exchanges plain Python ints."""
    if column.dtype.kind not in "iu" or not column.flags.c_contiguous:
        raise ValueError(f"expected a contiguous integer column, got {column.dtype}")
    return column.data
