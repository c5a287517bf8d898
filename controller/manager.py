"""The controller process: informers, leader election, workers and HTTP endpoints.

Every replica runs the informers, so its caches are warm and /readyz turns true on
its own. Only the replica that holds the Lease runs workers, and only it can write,
because the write fence stays closed on the others. One ``asyncio.TaskGroup`` owns every
long-running task: when one fails, above all when the Lease is lost, the group
cancels the rest and the error ends ``run``.

Handlers only queue keys. Agent Events queue their monitor after
``coalesce_delay`` seconds, so a burst of reports becomes one reconcile and one
status write. Changes to nodes, to a monitor's selector or to the set of monitors
queue every monitor, because they can move nodes from one monitor to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from api.report import LABEL_MONITOR
from controller.daemonset import DAEMONSET_SELECTOR, AgentSettings, monitor_key_of
from controller.events import EventRecorder
from controller.health import HTTPServer, health_server, metrics_server
from controller.informer import Handler, Informer
from controller.kube import APIError, ConflictError, FencedError, KubeClient, WriteFence
from controller.leader import LeaderElector, LeaderSettings
from controller.metrics import Telemetry
from controller.reconciler import Caches, Reconciler, ReconcilerSettings, monitor_logger
from controller.reflector import ReflectorSettings
from controller.reports import ReportCache
from controller.resources import DAEMONSETS, EVENTS, MONITORS, NODES
from controller.store import object_key
from controller.workqueue import ShutDownError, WorkQueue

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "openshift-pf-status-relay-operator"


@dataclass
class ControllerSettings:
    """Everything the command line sets; durations in seconds."""

    agent_image: str
    namespace: str = DEFAULT_NAMESPACE
    # Namespace whose monitors this replica serves; None serves every namespace.
    watch_namespace: str | None = None
    identity: str = "pf-status-relay-controller"
    leader_elect: bool = False
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    health_address: tuple[str, int] | None = ("0.0.0.0", 8081)
    metrics_address: tuple[str, int] | None = ("0.0.0.0", 8080)
    workers: int = 4
    coalesce_delay: float = 0.3
    report_timeout: float = 90.0
    deletion_timeout: float = 30.0
    resync_period: float = 600.0
    reflector: ReflectorSettings = field(default_factory=ReflectorSettings)


def _same_intent(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Return True when two versions of a monitor ask for the same thing.

    Resync deliveries (the same object twice) count as different, so they reconcile.
    """
    if old is new:
        return False
    fields = ("generation", "deletionTimestamp", "finalizers", "uid")
    before, after = old.get("metadata") or {}, new.get("metadata") or {}
    return all(before.get(name) == after.get(name) for name in fields)


class Controller:
    """One controller replica on one API client."""

    def __init__(
        self, settings: ControllerSettings, api_client: Any, lease_api_client: Any = None
    ) -> None:
        self.settings = settings
        self.fence = WriteFence(open_=not settings.leader_elect)
        self.client = KubeClient(api_client, self.fence)
        self.telemetry = Telemetry()
        self.queue: WorkQueue[str] = WorkQueue(on_depth=self.telemetry.queue_depth)
        restart = self.telemetry.watch_restarted

        def informer(resource: Any, **kwargs: Any) -> Informer:
            return Informer(
                self.client,
                resource,
                resync_period=settings.resync_period,
                settings=settings.reflector,
                on_watch_restart=restart,
                **kwargs,
            )

        self.monitors = informer(MONITORS, namespace=settings.watch_namespace)
        self.daemonsets = informer(
            DAEMONSETS, namespace=settings.namespace, label_selector=DAEMONSET_SELECTOR
        )
        self.nodes = informer(NODES)
        self.events = informer(
            EVENTS, namespace=settings.watch_namespace, label_selector=LABEL_MONITOR
        )
        self.informers = [self.monitors, self.daemonsets, self.nodes, self.events]
        self.reports = ReportCache()
        self.reconciler = Reconciler(
            client=self.client,
            caches=Caches(self.monitors, self.daemonsets, self.nodes, self.reports),
            settings=ReconcilerSettings(
                agent=AgentSettings(image=settings.agent_image, namespace=settings.namespace),
                report_timeout=settings.report_timeout,
                deletion_timeout=settings.deletion_timeout,
            ),
            telemetry=self.telemetry,
            recorder=EventRecorder(self.client, settings.identity),
        )
        self.elector: LeaderElector | None = None
        if settings.leader_elect:
            # The Lease is written through a client of its own whose fence stays open.
            lease_client = KubeClient(lease_api_client or api_client)
            self.elector = LeaderElector(
                lease_client,
                LeaderSettings(
                    namespace=settings.namespace,
                    identity=settings.identity,
                    lease_duration=settings.lease_duration,
                    renew_deadline=settings.renew_deadline,
                    retry_period=settings.retry_period,
                ),
                self.fence,
            )
        self._register_handlers()
        self.servers: list[HTTPServer] = []
        if settings.health_address:
            self.servers.append(health_server(settings.health_address, self.is_ready))
        if settings.metrics_address:
            self.servers.append(metrics_server(settings.metrics_address, self.telemetry.registry))

    def is_ready(self) -> bool:
        """Return True once every informer has synced."""
        return all(informer.has_synced for informer in self.informers)

    @property
    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader

    # Handlers: fast, no I/O, only queue keys.

    def _queue_all_monitors(self) -> None:
        for key in self.monitors.store.list_keys():
            self.queue.add(key)

    def _on_monitor_change(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        key = object_key(new or old or {})
        if old is not None and new is not None and _same_intent(old, new):
            # Only the status or unrelated metadata changed, most often by our own status
            # write: reconciling now would defeat the coalescing of agent reports.
            return
        self.queue.add(key)
        before = ((old or {}).get("spec") or {}).get("nodeSelector")
        after = ((new or {}).get("spec") or {}).get("nodeSelector")
        if old is None or new is None or before != after:
            self._queue_all_monitors()

    def _on_node_change(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        labels_before = ((old or {}).get("metadata") or {}).get("labels")
        labels_after = ((new or {}).get("metadata") or {}).get("labels")
        if old is None or new is None or labels_before != labels_after:
            self._queue_all_monitors()

    def _on_daemonset_change(self, daemonset: dict[str, Any]) -> None:
        key = monitor_key_of(daemonset)
        if key:
            self.queue.add(key)

    def _on_daemonset_deleted(self, daemonset: dict[str, Any]) -> None:
        self.reconciler.daemonset_deleted(daemonset)
        self._on_daemonset_change(daemonset)

    def _on_event(self, event: dict[str, Any]) -> None:
        report = self.reports.add_event(event)
        if report is not None:
            key = f"{report.monitor_namespace}/{report.monitor_name}"
            self.queue.add_after(key, self.settings.coalesce_delay)

    def _register_handlers(self) -> None:
        self.monitors.add_handler(
            Handler(
                on_add=lambda new: self._on_monitor_change(None, new),
                on_update=self._on_monitor_change,
                on_delete=lambda old: self._on_monitor_change(old, None),
            )
        )
        self.nodes.add_handler(
            Handler(
                on_add=lambda new: self._on_node_change(None, new),
                on_update=self._on_node_change,
                on_delete=lambda old: self._on_node_change(old, None),
            )
        )
        self.daemonsets.add_handler(
            Handler(
                on_add=self._on_daemonset_change,
                on_update=lambda _, new: self._on_daemonset_change(new),
                on_delete=self._on_daemonset_deleted,
            )
        )
        self.events.add_handler(
            Handler(on_add=self._on_event, on_update=lambda _, new: self._on_event(new))
        )

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDownError:
                return
            try:
                await self._process(key)
            except FencedError:
                # Leadership is gone and the elector is ending the process: stop quietly.
                logger.debug("worker stopped: this replica is no longer the leader")
                return
            finally:
                self.queue.done(key)

    async def _process(self, key: str) -> None:
        log = monitor_logger(key)
        started = time.monotonic()
        outcome = "success"
        with self.telemetry.tracer.start_as_current_span(
            "reconcile", attributes={"monitor": key}
        ) as span:
            try:
                requeue_after = await self.reconciler.reconcile(key)
            except FencedError:
                raise  # leadership lost: the elector ends the process
            except ConflictError as error:
                outcome = "conflict"
                log.debug("reconcile conflicted, retrying: %s", error)
                self.queue.add_rate_limited(key)
            except APIError as error:
                outcome = "error"
                span.record_exception(error)
                log.warning(
                    "reconcile failed (retry %d): %s", self.queue.num_requeues(key) + 1, error
                )
                self.queue.add_rate_limited(key)
            except Exception as error:
                outcome = "error"
                span.record_exception(error)
                log.exception("reconcile failed with an unexpected error")
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if requeue_after is not None:
                    self.queue.add_after(key, requeue_after)
            span.set_attribute("outcome", outcome)
        self.telemetry.reconciled(time.monotonic() - started, outcome)

    async def wait_for_sync(self) -> None:
        for informer in self.informers:
            await informer.wait_for_sync()

    async def run(self) -> None:
        """Run until cancelled or until the Lease is lost (LeadershipLostError)."""
        logger.info(
            "controller %s starting in namespace %s (leader election %s)",
            self.settings.identity,
            self.settings.namespace,
            "on" if self.elector else "off",
        )
        try:
            for server in self.servers:
                await server.start()
            async with asyncio.TaskGroup() as group:
                for informer in self.informers:
                    group.create_task(informer.run(), name=f"informer-{informer.resource.plural}")
                if self.elector is not None:
                    await self.elector.acquire()
                    group.create_task(self.elector.hold(), name="leader-elector")
                await self.wait_for_sync()
                logger.info("informers synced, starting %d workers", self.settings.workers)
                for number in range(self.settings.workers):
                    group.create_task(self._worker(), name=f"worker-{number}")
        finally:
            await asyncio.shield(self._shut_down())

    async def _shut_down(self) -> None:
        """Release the Lease and stop the servers, bounded in time."""
        self.queue.shut_down()
        self.fence.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                if self.elector is not None:
                    await self.elector.release()
                for server in self.servers:
                    await server.stop()
        self.telemetry.shutdown()
        logger.info("controller %s stopped", self.settings.identity)
