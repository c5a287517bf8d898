"""Jittered exponential backoff, shared by the reflector, the leader elector and the queue.

Many replicas and many watches that fail together (an API server restart) must not
come back together, so every delay is spread by a random factor. The clock and the
random source are injectable so tests run on fake time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay that doubles after each failure, up to ``maximum`` seconds, reset on success."""

    initial: float = 0.8
    maximum: float = 30.0
    factor: float = 2.0
    # Each delay is multiplied by a random value in [1, 1 + jitter).
    jitter: float = 0.5
    rand: Callable[[], float] = field(default=random.random, repr=False)
    failures: int = 0

    def next_delay(self, at_least: float = 0.0) -> float:
        """Record one failure and return the seconds to wait before the next try.

        ``at_least`` is a lower bound from the server, such as a Retry-After header.
        """
        base = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        delay = min(self.maximum, base * (1.0 + self.jitter * self.rand()))
        return max(delay, at_least)

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0
