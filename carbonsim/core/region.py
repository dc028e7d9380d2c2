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

from carbonsim.core.recorder import COMPLETED, DROPPED, RequestRecords


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
    """Counters shared between the regions and the decision view (plain lists for speed)."""

    def __init__(self, n_regions: int) -> None:
        self.qlen = [0] * n_regions
        self.busy = [0] * n_regions
        self.outstanding = 0


class SinglePoolRegion:
    """One pool, FIFO, no batching."""

    def __init__(
        self,
        env: simpy.Environment,
        index: int,
        pool: PoolSpec,
        max_queue_length: float,
        records: RequestRecords,
        state: RegionState,
        on_finished: Callable[[], None],
    ) -> None:
        self.env = env
        self.index = index
        self.free = pool.count
        self.service_s = pool.service_ms
        self.max_queue_length = max_queue_length
        self.queue: deque[int] = deque()
        self.records = records
        self.state = state
        self.on_finished = on_finished
        self.pool_count = 1

    def arrive(self, event: Event) -> None:
        """Callback: request ``event.value`` reaches the region."""
        i: int = event.value  # type: ignore[assignment]
        if self.free > 0:
            self.free -= 1
            self.state.busy[self.index] += 1
            self.records.pool[i] = 0
            self._start(i)
        elif len(self.queue) >= self.max_queue_length:
            self.records.status[i] = DROPPED
            self.on_finished()
        else:
            self.queue.append(i)
            self.state.qlen[self.index] += 1

    def _start(self, i: int) -> None:
        self.records.start_s[i] = self.env.now
        Timeout(self.env, float(self.service_s[i]) * 1e-3, i).callbacks.append(self._complete)

    def _complete(self, event: Event) -> None:
        i: int = event.value  # type: ignore[assignment]
        rec = self.records
        rec.end_s[i] = self.env.now
        rec.status[i] = COMPLETED
        if self.queue:
            self.state.qlen[self.index] -= 1
            j = self.queue.popleft()
            rec.pool[j] = 0
            self._start(j)
        else:
            self.free += 1
            self.state.busy[self.index] -= 1
        self.on_finished()


class MultiPoolRegion:
    """Several pools and/or dynamic batching.

    The queue is FIFO by arrival at the region. When a server frees up (or a request arrives), the oldest
    waiting request's workload is served next, on the free pool that is fastest for that workload. If that
    pool batches and fewer than ``max_batch_size`` requests of the workload wait, the server waits until
    the batch fills or the oldest request has waited ``max_queue_delay_s`` (Triton-style dynamic
    batching). A batch's service time is ``batch_factor[b - 1]`` times the mean single-request service
    time of its members; its energy is shared equally among them.
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
        on_finished: Callable[[], None],
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
        self.on_finished = on_finished
        self.timer_at = math.inf
        self.pool_count = len(pools)

    def arrive(self, event: Event) -> None:
        """Callback: request ``event.value`` reaches the region."""
        i: int = event.value  # type: ignore[assignment]
        if self.waiting >= self.max_queue_length:
            self.records.status[i] = DROPPED
            self.on_finished()
            return
        self.queues[int(self.workload_of[i])].append((i, self.env.now))
        self.waiting += 1
        self.state.qlen[self.index] = self.waiting
        self._dispatch()

    def _oldest_workload(self) -> int:
        best, best_t = -1, math.inf
        for w, q in enumerate(self.queues):
            if q and q[0][1] < best_t:
                best, best_t = w, q[0][1]
        return best

    def _dispatch(self) -> None:
        now = self.env.now
        while self.waiting:
            w = self._oldest_workload()
            pool = next((p for p in self.pool_order[w] if self.free[p] > 0), -1)
            if pool < 0:
                return
            spec = self.pools[pool]
            q = self.queues[w]
            if spec.max_batch_size > 1 and len(q) < spec.max_batch_size:
                deadline = q[0][1] + spec.max_queue_delay_s
                if now < deadline:
                    if deadline < self.timer_at:
                        self.timer_at = deadline
                        Timeout(self.env, deadline - now).callbacks.append(self._on_timer)
                    return
            size = min(spec.max_batch_size, len(q))
            members = [q.popleft()[0] for _ in range(size)]
            self.waiting -= size
            self.state.qlen[self.index] = self.waiting
            self._start(pool, w, members)

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
            rec.status[i] = COMPLETED
        self.free[pool] += 1
        self.state.busy[self.index] -= 1
        self._dispatch()
        for _ in members:
            self.on_finished()
