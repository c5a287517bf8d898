"""De-duplicating, delaying, rate-limited work queue in the manner of client-go's workqueue.

Handlers only ``add`` keys; workers ``get`` a key, reconcile it and call ``done``.
The queue guarantees what the reconciler relies on:

- a key waiting in the queue is stored once, however often it is added, so a burst
  of changes to one monitor becomes one reconcile;
- a key being processed is never handed to a second worker; if it is added again
  meanwhile it is marked dirty and queued again when ``done`` is called;
- ``add_after`` delays a key (the earliest requested time wins), which is how status
  writes are coalesced and how agents that went quiet are re-checked on time;
- ``add_rate_limited`` delays a key by its own exponential backoff, bounded by an
  overall token bucket, until ``forget`` resets it. The retry policy lives in the
  worker that calls these, never in the business logic.

All of it runs on one event loop, so no locks are needed; the clock is injectable.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDownError(Exception):
    """``get`` was called on a queue that has been shut down and drained."""


@dataclass
class ItemExponentialLimiter(Generic[K]):
    """Per-key delay: ``base * 2**failures``, capped at ``maximum`` seconds."""

    base: float = 0.005
    maximum: float = 300.0
    _failures: dict[K, int] = field(default_factory=dict)

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Cap the exponent too: 2**1100 overflows a float.
        return min(self.maximum, self.base * 2.0 ** min(failures, 64))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


@dataclass
class TokenBucketLimiter:
    """Overall limit of ``rate`` retries per second with bursts of ``burst``."""

    rate: float = 10.0
    burst: int = 100
    clock: Callable[[], float] = time.monotonic
    # Tokens left; negative when callers have reserved tokens of the future.
    _tokens: float = 0.0
    _last: float | None = None

    def reserve(self) -> float:
        """Take one token and return how many seconds the caller must wait for it."""
        now = self.clock()
        if self._last is None:
            self._tokens, self._last = float(self.burst), now
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class WorkQueue(Generic[K]):
    """Rate-limiting delaying queue of keys; see the module docstring for its contract."""

    def __init__(
        self,
        *,
        item_limiter: ItemExponentialLimiter[K] | None = None,
        bucket: TokenBucketLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self._clock = clock
        self._item_limiter = item_limiter or ItemExponentialLimiter()
        self._bucket = bucket or TokenBucketLimiter(clock=clock)
        self._on_depth = on_depth
        self._queue: list[K] = []
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        # Delayed keys: heap of (ready time, tie-breaker, key), plus the earliest time per key.
        self._waiting: list[tuple[float, int, K]] = []
        self._ready_at: dict[K, float] = {}
        self._counter = itertools.count()
        self._changed = asyncio.Event()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def _report_depth(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._queue))

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is already queued; mark it dirty if it is being processed."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._report_depth()
        self._changed.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending time for it wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready = self._clock() + delay
        current = self._ready_at.get(key)
        if current is not None and current <= ready:
            return
        self._ready_at[key] = ready
        heapq.heappush(self._waiting, (ready, next(self._counter), key))
        self._changed.set()

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after the longer of its own backoff and the overall bucket's wait."""
        delay = max(self._item_limiter.when(key), self._bucket.reserve())
        self.add_after(key, delay)

    def forget(self, key: K) -> None:
        """Reset the backoff of ``key`` after it was processed successfully."""
        self._item_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """Return how many times ``key`` was rate-limited since it was last forgotten."""
        return self._item_limiter.num_requeues(key)

    def _move_ready(self) -> float | None:
        """Move delayed keys that are due into the queue; return seconds until the next one."""
        now = self._clock()
        while self._waiting:
            ready, _, key = self._waiting[0]
            if self._ready_at.get(key) != ready:
                heapq.heappop(self._waiting)  # superseded by an earlier time
                continue
            if ready > now:
                return ready - now
            heapq.heappop(self._waiting)
            del self._ready_at[key]
            self.add(key)
        return None

    async def get(self) -> K:
        """Wait for a key, mark it as processing and return it.

        Raises ShutDownError once the queue is shut down and holds no more keys.
        """
        while True:
            next_due = self._move_ready()
            if self._queue:
                key = self._queue.pop(0)
                self._dirty.discard(key)
                self._processing.add(key)
                self._report_depth()
                return key
            if self._shutting_down:
                raise ShutDownError
            self._changed.clear()
            try:
                async with asyncio.timeout(next_due):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def done(self, key: K) -> None:
        """Finish processing ``key``; queue it again if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._report_depth()
            self._changed.set()

    def shut_down(self) -> None:
        """Stop accepting keys and wake every waiting ``get``; delayed keys are dropped."""
        self._shutting_down = True
        self._waiting.clear()
        self._ready_at.clear()
        self._changed.set()
