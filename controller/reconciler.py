"""Reconcile of one monitor: finalizer, validation, node selection, DaemonSet, status.

``reconcile`` reads only the informers' caches and writes only what differs from
them, so it can run as often as changes arrive. It raises on failure and returns
the seconds after which the monitor must be looked at again (an agent that will go
quiet, a deletion that is waiting for agents), or None. The worker owns the retry
policy; nothing here sleeps or retries except the status conflict loop, which must
re-send the same computed status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.agentconfig import FINALIZER_RESTORE_VFS
from controller import finalizer
from controller.daemonset import (
    AgentSettings,
    daemonset_name,
    desired_daemonset,
    monitor_uid_of,
    stored_hash,
)
from controller.events import EventRecorder
from controller.informer import Informer
from controller.kube import APPLY_PATCH, Client, NotFoundError
from controller.metrics import Telemetry
from controller.reports import ReportCache
from controller.resources import DAEMONSETS
from controller.selection import Coverage, resolve
from controller.status import DEFAULT_REPORT_TIMEOUT, StatusInput, compute_status, next_stale_in
from controller.statuswriter import StatusWriter
from controller.validation import InvalidSpecError, validate_spec

logger = logging.getLogger(__name__)

FIELD_MANAGER = "pf-status-relay-controller"
# Extra seconds after a report's timeout before re-checking, so the check lands past it.
STALE_CHECK_MARGIN = 1.0


class MonitorLogger(logging.LoggerAdapter[logging.Logger]):
    """Adds the monitor's namespace and name to every record."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def monitor_logger(key: str) -> MonitorLogger:
    namespace, _, name = key.partition("/")
    return MonitorLogger(logger, {"namespace": namespace, "monitor": name})


@dataclass
class ReconcilerSettings:
    """Behaviour of the reconciler; durations in seconds."""

    agent: AgentSettings
    report_timeout: float = DEFAULT_REPORT_TIMEOUT
    deletion_timeout: float = 30.0
    status_write_attempts: int = 5


@dataclass
class Caches:
    """The informers and report cache the reconciler reads."""

    monitors: Informer
    daemonsets: Informer
    nodes: Informer
    reports: ReportCache


@dataclass
class Reconciler:
    client: Client
    caches: Caches
    settings: ReconcilerSettings
    telemetry: Telemetry
    recorder: EventRecorder
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    _deleting_since: dict[str, float] = field(default_factory=dict)
    # DaemonSet name -> (desired hash applied, resourceVersion the cache had then).
    _applied: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.status_writer = StatusWriter(
            self.client, self.telemetry, self.settings.status_write_attempts
        )

    def coverage_of(self, key: str) -> Coverage:
        monitors = list(self.caches.monitors.store)
        return resolve(monitors, self.caches.nodes.store).get(key, Coverage())

    async def reconcile(self, key: str) -> float | None:
        """Bring the world in line with monitor ``key``; return seconds until the next look."""
        log = monitor_logger(key)
        monitor = self.caches.monitors.store.get(key)
        if monitor is None:
            await self._clean_up_gone(key, log)
            return None
        metadata = monitor.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            return await self._finalize(key, monitor, log)
        if not finalizer.has_finalizer(monitor):
            await finalizer.add_finalizer(self.client, monitor)
            log.info("finalizer %s added", FINALIZER_RESTORE_VFS)
            return None  # the update event brings the monitor back with the finalizer
        try:
            spec = validate_spec(monitor.get("spec"))
        except InvalidSpecError as error:
            log.warning("monitor spec is invalid, its DaemonSet is left as it is: %s", error)
            await self.recorder.record(monitor, "Warning", "InvalidSpec", str(error))
            await self._write_status(monitor, Coverage(), None, str(error), log)
            return None
        coverage = self.coverage_of(key)
        await self._record_selection(monitor, coverage)
        if coverage.covered:
            await self._apply_daemonset(key, monitor, spec, coverage, log)
        else:
            await self._delete_daemonset(key, log, "no node left to cover")
        return await self._write_status(monitor, coverage, spec, "", log)

    async def _record_selection(self, monitor: dict[str, Any], coverage: Coverage) -> None:
        if coverage.conflicts:
            await self.recorder.record(
                monitor, "Warning", "NodeConflict", coverage.conflict_message()
            )
        elif not coverage.matched:
            selector = (monitor.get("spec") or {}).get("nodeSelector") or {}
            await self.recorder.record(
                monitor, "Warning", "NoMatchingNodes", f"no node matches nodeSelector {selector}"
            )
        else:
            await self.recorder.record(
                monitor,
                "Normal",
                "NodesSelected",
                f"agents run on {len(coverage.covered)} nodes",
            )

    async def _apply_daemonset(
        self, key: str, monitor: dict[str, Any], spec: Any, coverage: Coverage, log: MonitorLogger
    ) -> None:
        namespace, _, name = key.partition("/")
        desired = desired_daemonset(monitor, spec, coverage.lost, self.settings.agent)
        ds_name = desired["metadata"]["name"]
        ds_key = f"{self.settings.agent.namespace}/{ds_name}"
        existing = self.caches.daemonsets.store.get(ds_key)
        want = stored_hash(desired)
        if existing is None and self._applied.get(ds_name) == (want, ""):
            return  # created moments ago; the informer has not seen it yet
        if existing is not None:
            uid = str(monitor["metadata"]["uid"])
            if monitor_uid_of(existing) != uid:
                # A monitor of the same name was deleted and created again; the selector
                # of a DaemonSet is immutable, so replace it.
                await self._delete_daemonset(key, log, "it belongs to an earlier monitor")
                return
            version = str(existing["metadata"].get("resourceVersion", ""))
            if stored_hash(existing) == want or self._applied.get(ds_name) == (want, version):
                return
        path = DAEMONSETS.path(self.settings.agent.namespace, ds_name)
        await self.client.request(
            "PATCH",
            path,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=desired,
            content_type=APPLY_PATCH,
        )
        version = "" if existing is None else str(existing["metadata"].get("resourceVersion", ""))
        self._applied[ds_name] = (want, version)
        action = "created" if existing is None else "updated"
        self.telemetry.daemonset_written(action)
        log.info(
            "agent DaemonSet %s %s: %d nodes, %d excluded",
            ds_name,
            action,
            len(coverage.covered),
            len(coverage.lost),
            extra={"daemonset": ds_name, "monitor_namespace": namespace, "monitor_name": name},
        )

    async def _delete_daemonset(self, key: str, log: MonitorLogger, reason: str) -> None:
        namespace, _, name = key.partition("/")
        ds_name = daemonset_name(namespace, name)
        if self.caches.daemonsets.store.get(f"{self.settings.agent.namespace}/{ds_name}") is None:
            return
        try:
            await self.client.request(
                "DELETE",
                DAEMONSETS.path(self.settings.agent.namespace, ds_name),
                body={"propagationPolicy": "Background"},
            )
        except NotFoundError:
            log.debug("agent DaemonSet %s was already gone", ds_name)
            return
        self._applied.pop(ds_name, None)
        self.telemetry.daemonset_written("deleted")
        log.info("agent DaemonSet %s deleted: %s", ds_name, reason)

    async def _write_status(
        self,
        monitor: dict[str, Any],
        coverage: Coverage,
        spec: Any,
        invalid: str,
        log: MonitorLogger,
        deleting: bool = False,
    ) -> float | None:
        metadata = monitor["metadata"]
        data = StatusInput(
            generation=int(metadata.get("generation") or 0),
            spec=spec,
            coverage=coverage,
            reports=self.caches.reports.for_monitor(str(metadata.get("uid"))),
            now=self.clock(),
            report_timeout=self.settings.report_timeout,
            invalid_message=invalid,
            deleting=deleting,
            previous=monitor.get("status") or {},
        )
        status = compute_status(data)
        current = self.status_writer.is_current(monitor, status)
        if not current and await self.status_writer.write(monitor, status, log):
            log.info(
                "status written: %d nodes, %d up, %d down, %d unknown",
                status.get("nodeCount", 0),
                status.get("interfacesUp", 0),
                status.get("interfacesDown", 0),
                status.get("interfacesUnknown", 0),
            )
        stale_in = next_stale_in(data)
        return None if stale_in is None else stale_in + STALE_CHECK_MARGIN

    async def _finalize(
        self, key: str, monitor: dict[str, Any], log: MonitorLogger
    ) -> float | None:
        if not finalizer.has_finalizer(monitor):
            return None
        uid = str(monitor["metadata"].get("uid"))
        since = self._deleting_since.setdefault(uid, self.monotonic())
        waiting = finalizer.unconfirmed_nodes(self.caches.reports.for_monitor(uid))
        remaining = self.settings.deletion_timeout - (self.monotonic() - since)
        if waiting and remaining > 0:
            coverage = self.coverage_of(key)
            try:
                spec = validate_spec(monitor.get("spec"))
            except InvalidSpecError:
                spec = None
            await self._write_status(monitor, coverage, spec, "", log, deleting=True)
            log.debug("waiting up to %.0f s for %d nodes to restore VFs", remaining, len(waiting))
            return min(remaining, 5.0)
        if waiting:
            log.warning(
                "nodes did not confirm that VFs were restored within %.0f s: %s",
                self.settings.deletion_timeout,
                ", ".join(waiting),
            )
            await self.recorder.record(
                monitor,
                "Warning",
                "RestoreUnconfirmed",
                f"{len(waiting)} nodes did not confirm that VFs were restored: "
                f"{', '.join(waiting[:10])}",
            )
        else:
            log.info("every agent confirmed that VFs were restored")
        await self._delete_daemonset(key, log, "monitor deleted")
        await finalizer.remove_finalizer(self.client, monitor)
        log.info("finalizer %s removed", FINALIZER_RESTORE_VFS)
        self._forget(uid)
        return None

    async def _clean_up_gone(self, key: str, log: MonitorLogger) -> None:
        """Delete the DaemonSet of a monitor that disappeared without our finalizer."""
        await self._delete_daemonset(key, log, "its monitor no longer exists")

    def daemonset_deleted(self, daemonset: dict[str, Any]) -> None:
        """Forget what was applied to a DaemonSet that is gone, so it is created again."""
        self._applied.pop(str((daemonset.get("metadata") or {}).get("name")), None)

    def _forget(self, uid: str) -> None:
        self._deleting_since.pop(uid, None)
        self.caches.reports.forget_monitor(uid)
        self.status_writer.forget(uid)
        self.recorder.forget(uid)
