"""Events the controller writes about monitors, for ``kubectl describe`` and alerting.

The controller reports conflicts, invalid specs and deletion outcomes as
events.k8s.io/v1 Events regarding the monitor. Reconciles repeat often (every agent
report triggers one), so an Event is written only when the (reason, message) of a
monitor differs from the last one written for it. These Events carry no
``pfstatusrelay.openshift.io/monitor`` label, so the informer that watches agent
reports never sees them.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from api.v1alpha1.types import API_VERSION, GROUP, KIND
from controller.kube import APIError, Client, FencedError
from controller.resources import EVENTS

logger = logging.getLogger(__name__)

REPORTING_CONTROLLER = f"{GROUP}/controller"
MAX_NOTE = 1024


class EventRecorder:
    """Writes one Event per change of a monitor's (reason, message)."""

    def __init__(self, client: Client, instance: str) -> None:
        self._client = client
        self._instance = instance[:128]
        self._last: dict[str, tuple[str, str]] = {}

    async def record(
        self, monitor: dict[str, Any], event_type: str, reason: str, note: str
    ) -> None:
        """Write an Event regarding ``monitor`` unless the same one was the last written.

        A failed write is logged and dropped: Events are informational.
        """
        metadata = monitor.get("metadata") or {}
        uid = str(metadata.get("uid") or "")
        if self._last.get(uid) == (reason, note):
            return
        namespace = str(metadata.get("namespace") or "default")
        name = str(metadata.get("name") or "")
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "name": f"{name[:200]}.{secrets.token_hex(8)}",
                "namespace": namespace,
            },
            "eventTime": now,
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self._instance,
            "action": "Reconcile",
            "reason": reason,
            "type": event_type,
            "note": note[:MAX_NOTE],
            "regarding": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "namespace": namespace,
                "name": name,
                "uid": uid,
                "resourceVersion": str(metadata.get("resourceVersion") or ""),
            },
        }
        try:
            await self._client.request("POST", EVENTS.path(namespace), body=body)
        except (APIError, FencedError) as error:
            logger.warning(
                "event %s for monitor %s/%s not written: %s", reason, namespace, name, error
            )
            return
        self._last[uid] = (reason, note)

    def forget(self, uid: str) -> None:
        """Drop the memory of a monitor that no longer exists."""
        self._last.pop(uid, None)
