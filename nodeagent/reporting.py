"""Sends the agent's state to the controller as Kubernetes Events, off the VF path.

The reconcile pass only calls ``Reporter.notify``, which stores the newest request and
returns at once; a separate task builds and sends the Events. Each Event carries the
full state of every PF, so when requests arrive faster than the rate limit allows,
sending only the newest one later loses nothing. A periodic full-state report heals
a dropped Event or a restarted controller. When the API server is unreachable the
newest state waits and is sent when it returns; VF protection never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from api.report import NodeReport, ReportReason, build_event
from api.v1alpha1.types import InterfaceStatus
from nodeagent.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_REPORT_INTERVAL_S = 30.0
DEFAULT_BURST = 10
DEFAULT_RATE_PER_S = 1.0
RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0


class ReportSendError(Exception):
    """Sending an Event failed; the reporter keeps the state and retries."""


class EventSink(Protocol):
    """Destination of Events (``nodeagent.kube.KubeEventSink`` in production)."""

    async def send(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class MonitorIdentity:
    """The PFLACPMonitor the agent works for."""

    namespace: str
    name: str
    uid: str


class TokenBucket:
    """Allows ``burst`` sends at once, then ``rate`` per second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()

    def take(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class Reporter:
    """Coalescing, rate-limited sender of the node's full state."""

    def __init__(
        self,
        identity: MonitorIdentity,
        node: str,
        sink: EventSink,
        snapshot: Callable[[], list[InterfaceStatus]],
        metrics: Metrics,
        interval_s: float = DEFAULT_REPORT_INTERVAL_S,
        bucket: TokenBucket | None = None,
    ) -> None:
        self.identity = identity
        self.node = node
        self.instance = secrets.token_hex(6)
        self.restored = False
        self.monitor_generation = 0
        self._sink = sink
        self._snapshot = snapshot
        self._metrics = metrics
        self._interval_s = interval_s
        self._bucket = bucket or TokenBucket(DEFAULT_RATE_PER_S, DEFAULT_BURST)
        self._pending: tuple[ReportReason, str] | None = None
        self._wake = asyncio.Event()
        self._sequence = 0
        self._failing_since: float | None = None
        self.sent = 0

    def notify(self, reason: ReportReason, note: str) -> None:
        """Request a report; replaces a request not yet sent. Never blocks."""
        self._pending = (reason, note)
        self._wake.set()

    async def run(self) -> None:
        """Send requested and periodic reports until cancelled."""
        log.info(
            "reporter started",
            extra={
                "monitor": self.identity.name,
                "node": self.node,
                "interval_s": self._interval_s,
            },
        )
        retry_s = RETRY_MIN_S
        try:
            while True:
                await self._wait_for_request()
                await self._wait_for_token()
                if await self.send_pending():
                    retry_s = RETRY_MIN_S
                    continue
                await asyncio.sleep(retry_s)
                retry_s = min(RETRY_MAX_S, retry_s * 2)
        finally:
            log.info("reporter stopped")

    async def _wait_for_request(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
        except TimeoutError:
            if self._pending is None:
                self._pending = (ReportReason.STATE_REPORT, "periodic state report")
        self._wake.clear()

    async def _wait_for_token(self) -> None:
        # Requests that arrive while waiting replace the pending one: the newest
        # full state is what gets sent.
        delay = self._bucket.take()
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self._bucket.take()

    async def send_pending(self) -> bool:
        """Send the pending request now; return False when sending failed."""
        if self._pending is None:
            return True
        reason, note = self._pending
        self._pending = None
        event = build_event(self.build_report(), reason, note)
        try:
            await self._sink.send(event)
        except ReportSendError as error:
            if self._pending is None:
                self._pending = (reason, note)
            self._metrics.record_report("error")
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                log.warning(
                    "sending report failed, VFs stay protected, retrying",
                    extra={"error": str(error), "reason": reason.value},
                )
            else:
                log.debug("sending report failed again", extra={"error": str(error)})
            return False
        self._metrics.record_report("ok")
        self.sent += 1
        if self._failing_since is not None:
            log.info(
                "kubernetes api reachable again, report sent",
                extra={"unreachable_s": round(time.monotonic() - self._failing_since, 1)},
            )
            self._failing_since = None
        log.debug("report sent", extra={"reason": reason.value, "event": event["metadata"]["name"]})
        return True

    def build_report(self) -> NodeReport:
        """Return the node's full state as the next report in sequence."""
        self._sequence += 1
        return NodeReport(
            monitor_namespace=self.identity.namespace,
            monitor_name=self.identity.name,
            monitor_uid=self.identity.uid,
            monitor_generation=self.monitor_generation,
            node=self.node,
            instance=self.instance,
            sequence=self._sequence,
            observed_at=datetime.now(UTC),
            restored=self.restored,
            interfaces=self._snapshot(),
        )
