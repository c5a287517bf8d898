"""Newest agent report per monitor and node, fed by the Event informer.

Every agent Event carries the agent's full view of its node, so only the newest
report of each node matters. Reports are ordered by ``NodeReport.order_key``
(observed time, agent instance, sequence); an older Event arriving late, or the same
Event seen again after a relist, changes nothing.

Freshness is measured on the controller's own clock, at the time a report was first
seen, so clock skew between nodes and the controller cannot mark an agent quiet.
After a controller restart every report counts as just seen, so an agent that
stopped earlier is marked unreachable one report timeout after the restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.report import NodeReport, ReportFormatError, parse_event

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeenReport:
    """A report and the controller's wall-clock time (seconds) when it was first seen."""

    report: NodeReport
    seen_at: float


class ReportCache:
    """Newest report per (monitor UID, node)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._reports: dict[str, dict[str, SeenReport]] = {}
        self.invalid_events = 0

    def add_event(self, event: dict[str, Any]) -> NodeReport | None:
        """Parse an agent Event and keep its report if it is the newest of its node.

        Returns the report when it replaced the previous one, else None.
        """
        try:
            report = parse_event(event)
        except ReportFormatError as error:
            self.invalid_events += 1
            logger.warning("ignored agent event: %s", error)
            return None
        if report is None:
            return None
        nodes = self._reports.setdefault(report.monitor_uid, {})
        current = nodes.get(report.node)
        if current is not None and current.report.order_key() >= report.order_key():
            return None
        nodes[report.node] = SeenReport(report, self._clock())
        return report

    def for_monitor(self, uid: str) -> dict[str, SeenReport]:
        """Return the newest report of every node for monitor ``uid``."""
        return dict(self._reports.get(uid, {}))

    def forget_monitor(self, uid: str) -> None:
        """Drop the reports of a monitor that no longer exists."""
        self._reports.pop(uid, None)
