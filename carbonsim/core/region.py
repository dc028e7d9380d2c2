"""A region's servers and its FIFO queue, driven by SimPy timeouts with callbacks.

Each request costs two events here (arrival at the region, end of service) and no SimPy process: the
callbacks below move requests from the queue to servers directly. This keeps the event count per request
low while the ordering of everything still comes from SimPy's event heap.

Two implementations share one interface: :class:`SinglePoolRegion` (one pool, no batching, the hot path)
and :class:`MultiPoolRegion` (several pools and/or dynamic batching).

Faults (:mod:`carbonsim.core.faults`) act on a region through :meth:`fail_server`, :meth:`repair_server`,
:meth:`go_down` and :meth:`come_up`. A request they hit (its service interrupted, its queue emptied, or
arriving while the region is down) is handed to the ``on_lost`` callback, which routes it again or counts
it as failed. Services in progress are kept by request (single pool) or by batch (several pools), so that a
failing server interrupts one of them and a completion event of an interrupted service is ignored.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import simpy
from simpy.events import Event, Timeout

from carbonsim.core.recorder import REJECTED, RequestRecords, float_items


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
        working: Servers that can serve per region (``inf`` for unlimited pools; fewer while servers are
            failed; 0 while the region is down).
        up: Whether each region is up (not in an outage).
        outstanding: Requests routed but not finished (on the network, queued or in service).
        version: Incremented whenever ``working`` or ``up`` changes (views refresh what they derive from them).
    """

    def __init__(self, n_regions: int) -> None:
        self.qlen = [0] * n_regions
        self.busy = [0] * n_regions
        self.working = [0.0] * n_regions
        self.up = [True] * n_regions
        self.outstanding = 0
        self.version = 0


K = TypeVar("K")


def _nth(items: dict[K, Any], k: int) -> K:
    """The ``k``-th key of a dict (insertion order)."""
    return next(itertools.islice(iter(items), k, None))


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
        on_lost: Callable[[int], None] | None = None,
    ) -> None:
        self.env = env
        self.index = index
        self.count = pool.count
        self.free: float = pool.count
        self.failed = 0
        self.max_queue_length = max_queue_length
        self.queue: deque[int] = deque()
        self.records = records
        self.state = state
        self.on_idle = on_idle
        self.on_lost = on_lost or _unexpected_loss
        self._service_ms = float_items(pool.service_ms)
        self._start_s = float_items(records.start_s)
        self._end_s = float_items(records.end_s)
        self._busy = state.busy
        self._qlen = state.qlen
        # Request -> its completion event, while in service.
        self._serving: dict[int, Event] = {}
        state.working[index] = pool.count
        state.up[index] = True

    def arrive(self, event: Event) -> None:
        """Callback: request ``event.value`` reaches the region."""
        i: int = event.value  # type: ignore[assignment]
        if self.free > 0:
            self.free -= 1
            self._busy[self.index] += 1
            self._start(i, self.env.now)
        elif not self.state.up[self.index]:
            self.on_lost(i)
        elif len(self.queue) >= self.max_queue_length:
            self.records.status[i] = REJECTED
            self._done()
        else:
            self.queue.append(i)
            self._qlen[self.index] += 1

    def _start(self, i: int, now: float) -> None:
        self._start_s[i] = now
        ev = Timeout(self.env, self._service_ms[i] * 1e-3, i)
        ev.callbacks.append(self._complete)
        self._serving[i] = ev

    def _complete(self, event: Event) -> None:
        i: int = event.value  # type: ignore[assignment]
        current = self._serving.pop(i, None)
        if current is not event:
            # The service was interrupted by a fault; the request was handed on.
            if current is not None:  # a later service of the same request (routed here again)
                self._serving[i] = current
            return
        now = self.env.now
        self._end_s[i] = now
        if self.queue:
            self._qlen[self.index] -= 1
            self._start(self.queue.popleft(), now)
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

    # -- faults ---------------------------------------------------------------------------------------------

    def working(self, pool: int = 0) -> float:
        """Servers of the pool that can serve now."""
        return 0.0 if not self.state.up[self.index] else self.count - self.failed

    def _interrupt(self, i: int) -> None:
        """Stops request ``i``'s service now (its server failed) and hands the request on."""
        now = self.env.now
        self._serving.pop(i)
        self.records.lost_service.append((i, self.index, 0, self._start_s[i], now, 1.0))
        self._start_s[i] = math.nan
        self._busy[self.index] -= 1
        self.on_lost(i)

    def _log_offline(self) -> None:
        offline = self.count if not self.state.up[self.index] else self.failed
        self.records.offline.append((self.index, 0, self.env.now, float(offline)))

    def fail_server(self, pool: int, rng: np.random.Generator) -> bool:
        """One working server fails; returns whether it was serving (its request is handed on)."""
        working = self.count - self.failed
        self.failed += 1
        self.state.working[self.index] = self.working()
        self.state.version += 1
        self._log_offline()
        if not self.state.up[self.index]:
            return False
        # The failing server is one of the working ones, idle or busy alike.
        if rng.random() * working < self.free:
            self.free -= 1
            return False
        self._interrupt(_nth(self._serving, int(rng.integers(len(self._serving)))))
        return True

    def repair_server(self, pool: int) -> None:
        """A failed server works again."""
        self.failed -= 1
        self.state.working[self.index] = self.working()
        self.state.version += 1
        self._log_offline()
        if self.state.up[self.index]:
            self.free += 1
            self._serve_queue()

    def _serve_queue(self) -> None:
        now = self.env.now
        while self.free > 0 and self.queue:
            self.free -= 1
            self._busy[self.index] += 1
            self._qlen[self.index] -= 1
            self._start(self.queue.popleft(), now)

    def go_down(self) -> None:
        """Region outage: every service stops and every queued request is handed on."""
        self.state.up[self.index] = False
        self.state.working[self.index] = 0.0
        self.state.version += 1
        self._log_offline()
        self.free = 0.0
        for i in list(self._serving):
            self._interrupt(i)
        while self.queue:
            self._qlen[self.index] -= 1
            self.on_lost(self.queue.popleft())

    def come_up(self) -> None:
        """The outage ends: the servers not failed work again."""
        self.state.up[self.index] = True
        self.state.working[self.index] = self.working()
        self.state.version += 1
        self._log_offline()
        self.free = self.count - self.failed
        self._serve_queue()


def _unexpected_loss(i: int) -> None:
    raise RuntimeError(f"request {i} was hit by a fault, but the region has no on_lost handler")


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
        on_lost: Callable[[int], None] | None = None,
    ) -> None:
        self.env = env
        self.index = index
        self.pools = pools
        self.free = [p.count for p in pools]
        self.failed = [0] * len(pools)
        self.pool_order = pool_order
        self.workload_of = workload_of
        self.max_queue_length = max_queue_length
        self.queues: list[deque[tuple[int, float]]] = [deque() for _ in pool_order]
        self.waiting = 0
        self.records = records
        self.state = state
        self.on_idle = on_idle
        self.on_lost = on_lost or _unexpected_loss
        self.timer_at = math.inf
        # Per pool: completion event -> the batch's members, while in service.
        self._serving: list[dict[Event, list[int]]] = [{} for _ in pools]
        state.working[index] = self._working_total()
        state.up[index] = True

    def arrive(self, event: Event) -> None:
        """Callback: request ``event.value`` reaches the region."""
        i: int = event.value  # type: ignore[assignment]
        if not self.state.up[self.index]:
            self.on_lost(i)
            return
        q = self.queues[int(self.workload_of[i])]
        q.append((i, self.env.now))
        self.waiting += 1
        self._dispatch()
        # A request no server could take now, arriving with the queue already at its limit, is rejected. It is
        # still at the tail of its workload's queue (dispatching only takes from the heads).
        if self.waiting > self.max_queue_length and q and q[-1][0] == i:
            q.pop()
            self.waiting -= 1
            self.records.status[i] = REJECTED
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
        ev = Timeout(self.env, duration_s, (pool, members))
        ev.callbacks.append(self._complete)
        self._serving[pool][ev] = members

    def _complete(self, event: Event) -> None:
        pool, members = event.value  # type: ignore[misc]
        if self._serving[pool].pop(event, None) is None:
            return  # interrupted by a fault; its requests were handed on
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

    # -- faults ---------------------------------------------------------------------------------------------

    def working(self, pool: int) -> float:
        """Servers of the pool that can serve now."""
        return 0.0 if not self.state.up[self.index] else self.pools[pool].count - self.failed[pool]

    def _working_total(self) -> float:
        return float(sum(self.working(p) for p in range(len(self.pools))))

    def _log_offline(self, pool: int) -> None:
        offline = self.pools[pool].count if not self.state.up[self.index] else self.failed[pool]
        self.records.offline.append((self.index, pool, self.env.now, float(offline)))

    def _interrupt(self, pool: int, event: Event) -> None:
        """Stops a batch's service now (its server failed) and hands its requests on."""
        members = self._serving[pool].pop(event)
        rec = self.records
        now = self.env.now
        share = 1.0 / len(members)
        for i in members:
            rec.lost_service.append((i, self.index, pool, float(rec.start_s[i]), now, share))
            rec.start_s[i] = math.nan
            rec.pool[i] = -1
            rec.batch_size[i] = 1
        self.state.busy[self.index] -= 1
        for i in members:
            self.on_lost(i)

    def fail_server(self, pool: int, rng: np.random.Generator) -> bool:
        """One working server of ``pool`` fails; returns whether it was serving (its batch is handed on)."""
        working = self.pools[pool].count - self.failed[pool]
        self.failed[pool] += 1
        self.state.working[self.index] = self._working_total()
        self.state.version += 1
        self._log_offline(pool)
        if not self.state.up[self.index]:
            return False
        if rng.random() * working < self.free[pool]:
            self.free[pool] -= 1
            return False
        serving = self._serving[pool]
        self._interrupt(pool, _nth(serving, int(rng.integers(len(serving)))))
        return True

    def repair_server(self, pool: int) -> None:
        """A failed server of ``pool`` works again."""
        self.failed[pool] -= 1
        self.state.working[self.index] = self._working_total()
        self.state.version += 1
        self._log_offline(pool)
        if self.state.up[self.index]:
            self.free[pool] += 1
            self._dispatch()

    def go_down(self) -> None:
        """Region outage: every service stops and every queued request is handed on."""
        self.state.up[self.index] = False
        self.state.working[self.index] = 0.0
        self.state.version += 1
        for pool in range(len(self.pools)):
            self._log_offline(pool)
            self.free[pool] = 0.0
            for event in list(self._serving[pool]):
                self._interrupt(pool, event)
        lost = sorted((t, i) for q in self.queues for i, t in q)
        for q in self.queues:
            q.clear()
        self.waiting = 0
        self.state.qlen[self.index] = 0
        for _t, i in lost:
            self.on_lost(i)

    def come_up(self) -> None:
        """The outage ends: the servers not failed work again."""
        self.state.up[self.index] = True
        for pool, spec in enumerate(self.pools):
            self.free[pool] = spec.count - self.failed[pool]
            self._log_offline(pool)
        self.state.working[self.index] = self._working_total()
        self.state.version += 1
        self._dispatch()
