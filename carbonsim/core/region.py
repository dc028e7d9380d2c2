"""A region's servers and its FIFO queue, driven by SimPy timeouts with callbacks.

Each request costs two events here (arrival at the region, end of service) and no SimPy process: the
callbacks below move requests from the queue to servers directly. This keeps the event count per request
low while the ordering of everything still comes from SimPy's event heap.

Two implementations share one interface: :class:`SinglePoolRegion` (one pool, no batching, the hot path)
and :class:`MultiPoolRegion` (several pools and/or dynamic batching).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy
from simpy.events import Event, Timeout

from carbonsim.core.recorder import DROPPED, RequestRecords, float_items


@dataclass(frozen=True)
class PoolSpec:
    """A pool of identical servers as the simulator uses it.

    Attributes:
        hardware: Hardware type.
        count: Servers (``inf`` for unlimited).
        service_ms: Single-request service time of every request on this hardware, in ms.
        max_batch_size: Largest batch (1 = no batching).
        max_queue_delay_s: Longest wait of the oldest request for a batch to fill, in s.
        batch_factor: Per workload, batch service time relative to one request for sizes 1..max.
    """

    hardware: str
    count: float
    service_ms: np.ndarray
    max_batch_size: int = 1
    max_queue_delay_s: float = 0.0
    batch_factor: tuple[tuple[float, ...], ...] = ()


class RegionState:
    """Counters shared between the regions and the decision view (plain lists for speed).

    Attributes:
        qlen: Waiting requests per region.
        busy: Busy servers per region.
        outstanding: Requests routed but not finished (on the network, queued or in service).
    """

    def __init__(self, n_regions: int) -> None:
        self.qlen = [0] * n_regions
        self.busy = [0] * n_regions
        self.outstanding = 0


class SinglePoolRegion:
    """One pool, FIFO, no batching: the per-request hot path.

    Per-request columns are accessed through ``memoryview`` s of the numpy arrays: item reads and writes
    then exchange plain Python floats with the arrays' buffers, without creating numpy scalars. The
    ``pool`` and ``status`` columns of requests served here are filled in after the run (pool 0; completed
    where an end time exists), so the hot path writes only the start and end times.
    """

    def __init__(
        self,
        env: simpy.Environment,
        index: int,
        pool: PoolSpec,
        max_queue_length: float,
        records: RequestRecords,
        state: RegionState,
        on_idle: Callable[[], None],
    ) -> None:
        self.env = env
        self.index = index
        self.free: float = pool.count
        self.max_queue_length = max_queue_length
        self.queue: deque[int] = deque()
        self.records = records
        self.state = state
        self.on_idle = on_idle
        self._service_ms = float_items(pool.service_ms)
        self._start_s = float_items(records.start_s)
        self._end_s = float_items(records.end_s)
        self._busy = state.busy
        self._qlen = state.qlen

    def arrive(self, event: Event) -> None:
        """Callback: request ``event.value`` reaches the region."""
        i: int = event.value  # type: ignore[assignment]
        if self.free > 0:
            self.free -= 1
            self._busy[self.index] += 1
            self._start_s[i] = self.env.now
            Timeout(self.env, self._service_ms[i] * 1e-3, i).callbacks.append(self._complete)
        elif len(self.queue) >= self.max_queue_length:
            self.records.status[i] = DROPPED
            self._done()
        else:
            self.queue.append(i)
            self._qlen[self.index] += 1

    def _complete(self, event: Event) -> None:
        i: int = event.value  # type: ignore[assignment]
        now = self.env.now
        self._end_s[i] = now
        if self.queue:
            self._qlen[self.index] -= 1
            j = self.queue.popleft()
            self._start_s[j] = now
            Timeout(self.env, self._service_ms[j] * 1e-3, j).callbacks.append(self._complete)
        else:
            self.free += 1
            self._busy[self.index] -= 1
        state = self.state
        state.outstanding -= 1
        if not state.outstanding:
            self.on_idle()

    def _done(self) -> None:
        state = self.state
        state.outstanding -= 1
        if not state.outstanding:
            self.on_idle()


class MultiPoolRegion:
    """Several pools and/or dynamic batching.

    The queue is FIFO by arrival at the region. When a server frees up (or a request arrives), the oldest
    waiting request's workload is served next, on the free pool that is fastest for that workload. If that
    pool batches and fewer than ``max_batch_size`` requests of the workload wait, that workload waits until
    its batch fills or its oldest request has waited ``max_queue_delay_s`` (Triton-style dynamic
    batching); meanwhile the free server may serve another workload whose requests can go now. Requests
    waiting for a batch to fill count as queued (also for ``max_queue_length``). A batch's service time is
    ``batch_factor[b - 1]`` times the mean single-request service time of its members; its energy is shared
    equally among them.
    """

    def __init__(
        self,
        env: simpy.Environment,
        index: int,
        pools: list[PoolSpec],
        pool_order: list[list[int]],
        workload_of: np.ndarray,
        max_queue_length: float,
        records: RequestRecords,
        state: RegionState,
        on_idle: Callable[[], None],
    ) -> None:
        self.env = env
        self.index = index
        self.pools = pools
        self.free = [p.count for p in pools]
        self.pool_order = pool_order
        self.workload_of = workload_of
        self.max_queue_length = max_queue_length
        self.queues: list[deque[tuple[int, float]]] = [deque() for _ in pool_order]
        self.waiting = 0
        self.records = records
        self.state = state
        self.on_idle = on_idle
        self.timer_at = math.inf

    def arrive(self, event: Event) -> None:
        """Callback: request ``event.value`` reaches the region."""
        i: int = event.value  # type: ignore[assignment]
        q = self.queues[int(self.workload_of[i])]
        q.append((i, self.env.now))
        self.waiting += 1
        self._dispatch()
        # A request no server could take now, arriving with the queue already at its limit, is dropped. It is
        # still at the tail of its workload's queue (dispatching only takes from the heads).
        if self.waiting > self.max_queue_length and q and q[-1][0] == i:
            q.pop()
            self.waiting -= 1
            self.records.status[i] = DROPPED
            self._done(1)
        self.state.qlen[self.index] = self.waiting

    def _dispatch(self) -> None:
        """Starts every batch that can start now.

        Workloads are considered in the order of their oldest waiting request (first come, first served).
        A workload whose batch is still filling on a batching pool sets a timer for its deadline and does
        not hold the free server back from the next workload whose requests can be served now.
        """
        now = self.env.now
        started = True
        while self.waiting and started:
            started = False
            for _oldest, w in sorted((q[0][1], w) for w, q in enumerate(self.queues) if q):
                pool = next((p for p in self.pool_order[w] if self.free[p] > 0), -1)
                if pool < 0:
                    continue
                spec = self.pools[pool]
                q = self.queues[w]
                if spec.max_batch_size > 1 and len(q) < spec.max_batch_size:
                    deadline = q[0][1] + spec.max_queue_delay_s
                    if now < deadline:
                        if deadline < self.timer_at:
                            self.timer_at = deadline
                            Timeout(self.env, deadline - now).callbacks.append(self._on_timer)
                        continue
                size = min(spec.max_batch_size, len(q))
                members = [q.popleft()[0] for _ in range(size)]
                self.waiting -= size
                self.state.qlen[self.index] = self.waiting
                self._start(pool, w, members)
                started = True
                break

    def _on_timer(self, event: Event) -> None:
        self.timer_at = math.inf
        self._dispatch()

    def _start(self, pool: int, workload: int, members: list[int]) -> None:
        spec = self.pools[pool]
        self.free[pool] -= 1
        self.state.busy[self.index] += 1
        rec = self.records
        now = self.env.now
        total_ms = 0.0
        for i in members:
            rec.start_s[i] = now
            rec.pool[i] = pool
            rec.batch_size[i] = len(members)
            total_ms += float(spec.service_ms[i])
        factor = spec.batch_factor[workload][len(members) - 1] if spec.max_batch_size > 1 else 1.0
        duration_s = factor * total_ms / len(members) * 1e-3
        Timeout(self.env, duration_s, (pool, members)).callbacks.append(self._complete)

    def _complete(self, event: Event) -> None:
        pool, members = event.value  # type: ignore[misc]
        rec = self.records
        now = self.env.now
        for i in members:
            rec.end_s[i] = now
        self.free[pool] += 1
        self.state.busy[self.index] -= 1
        self._dispatch()
        self._done(len(members))

    def _done(self, count: int) -> None:
        state = self.state
        state.outstanding -= count
        if not state.outstanding:
            self.on_idle()
