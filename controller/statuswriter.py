"""Writes of a monitor's status through the status subresource.

The status is written with the resourceVersion the controller last saw, so a
concurrent change is detected (409 Conflict) instead of overwritten. Because the
controller owns the whole status and has already computed it from its caches, a
conflict is retried by reading the monitor again and sending the same computed
status with the new resourceVersion; no node entry can be lost that way.

Writes are coalesced before they get here: agent Events queue their monitor with a
short delay, so a burst of reports becomes one reconcile and one write. After a
write the informer's copy of the monitor is stale until the watch delivers the
change; ``StatusWriter`` remembers what it wrote on which version so a reconcile in
that window does not write the same status again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controller.kube import JSON, Client, ConflictError
from controller.metrics import Telemetry
from controller.resources import MONITORS
from controller.store import resource_version

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 5


class StatusWriter:
    """Sends computed statuses, retrying conflicts with the same computed status."""

    def __init__(self, client: Client, telemetry: Telemetry, attempts: int = DEFAULT_ATTEMPTS):
        self._client = client
        self._telemetry = telemetry
        self._attempts = attempts
        # Monitor UID -> (status written, resourceVersion it was written on).
        self._written: dict[str, tuple[JSON, str]] = {}

    def is_current(self, monitor: Mapping[str, Any], status: JSON) -> bool:
        """Return True when ``status`` is already stored or already written on this version."""
        if monitor.get("status") == status:
            return True
        uid = str((monitor.get("metadata") or {}).get("uid") or "")
        written = self._written.get(uid)
        return written is not None and written == (status, resource_version(dict(monitor)))

    async def write(
        self, monitor: Mapping[str, Any], status: JSON, log: logging.LoggerAdapter[Any]
    ) -> bool:
        """Write ``status`` for ``monitor``; return False when the monitor no longer exists.

        Raises ConflictError when every attempt conflicted, other APIErrors as they come.
        """
        metadata = monitor.get("metadata") or {}
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        uid = str(metadata.get("uid") or "")
        current: JSON = dict(monitor)
        for attempt in range(1, self._attempts + 1):
            body = dict(current)
            body["status"] = status
            try:
                await self._client.request(
                    "PUT", MONITORS.path(namespace, name, "status"), body=body
                )
            except ConflictError:
                self._telemetry.status_written("conflict")
                log.debug(
                    "status write conflicted (attempt %d), reading the monitor again", attempt
                )
                current = await self._client.request("GET", MONITORS.path(namespace, name))
                if str((current.get("metadata") or {}).get("uid") or "") != uid:
                    log.info("monitor was replaced while its status was written")
                    return False
                continue
            self._telemetry.status_written("success")
            self._written[uid] = (status, resource_version(dict(monitor)))
            return True
        raise ConflictError(
            409, "Conflict", f"status of {namespace}/{name}: gave up after conflicts"
        )

    def forget(self, uid: str) -> None:
        """Drop the memory of a monitor that no longer exists."""
        self._written.pop(uid, None)
