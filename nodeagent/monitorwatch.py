"""Follows the agent's own PFLACPMonitor and restores the VFs when it is deleted.

The controller keeps the finalizer ``FINALIZER_RESTORE_VFS`` on a monitor until each
agent reports ``restored=True``. When the agent sees ``deletionTimestamp`` with that
finalizer, or the monitor is gone (not found, or re-created with another UID), it
stops managing VFs, puts every ``disable`` VF back to ``auto`` and reports it. A plain
restart (SIGTERM) changes nothing: the next agent resumes from the kernel's state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from api.agentconfig import FINALIZER_RESTORE_VFS
from nodeagent.reporting import MonitorIdentity

log = logging.getLogger(__name__)

DEFAULT_MONITOR_POLL_S = 5.0


class MonitorReadError(Exception):
    """Reading the monitor failed for a reason other than not found."""


class MonitorSource(Protocol):
    """Reads the monitor (``nodeagent.kube.KubeMonitorSource`` in production)."""

    async def get(self) -> dict[str, Any] | None:
        """Return the monitor object, or None when it does not exist."""
        ...


def deletion_cause(monitor: dict[str, Any] | None, identity: MonitorIdentity) -> str | None:
    """Return why the agent must restore its VFs, or None while the monitor is live."""
    if monitor is None:
        return "monitor not found"
    metadata = monitor.get("metadata") or {}
    uid = metadata.get("uid")
    if identity.uid and uid and uid != identity.uid:
        return f"monitor was re-created with uid {uid}"
    if metadata.get("deletionTimestamp") and FINALIZER_RESTORE_VFS in (
        metadata.get("finalizers") or []
    ):
        return "monitor is being deleted"
    return None


class MonitorWatcher:
    """Polls the monitor and calls ``on_deleted`` until it returns True."""

    def __init__(
        self,
        source: MonitorSource,
        identity: MonitorIdentity,
        on_deleted: Callable[[str], Awaitable[bool]],
        on_generation: Callable[[int], None] | None = None,
        interval_s: float = DEFAULT_MONITOR_POLL_S,
    ) -> None:
        self._source = source
        self._identity = identity
        self._on_deleted = on_deleted
        self._on_generation = on_generation
        self._interval_s = interval_s
        self._failing = False
        self.done = False

    async def run(self) -> None:
        """Poll until the VFs are restored after a deletion, or until cancelled."""
        log.info(
            "monitor watch started",
            extra={"monitor": self._identity.name, "namespace": self._identity.namespace},
        )
        while not self.done:
            await self.check_once()
            if not self.done:
                await asyncio.sleep(self._interval_s)
        log.info("monitor watch stopped: vfs restored", extra={"monitor": self._identity.name})

    async def check_once(self) -> None:
        """Read the monitor once and restore the VFs when it is being deleted."""
        try:
            monitor = await self._source.get()
        except MonitorReadError as error:
            if not self._failing:
                log.warning(
                    "reading monitor failed, retrying",
                    extra={"monitor": self._identity.name, "error": str(error)},
                )
            self._failing = True
            return
        if self._failing:
            log.info("reading monitor works again", extra={"monitor": self._identity.name})
            self._failing = False
        if monitor is not None and self._on_generation is not None:
            self._on_generation(int((monitor.get("metadata") or {}).get("generation") or 0))
        cause = deletion_cause(monitor, self._identity)
        if cause is None:
            return
        log.info("restoring vfs", extra={"monitor": self._identity.name, "cause": cause})
        self.done = await self._on_deleted(cause)
