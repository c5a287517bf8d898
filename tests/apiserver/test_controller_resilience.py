"""The controller when the API server misbehaves: relist after etcd compaction (410 in the
watch stream, field case C11), watchdog on a silent watch, and leader hand-over.

Silence and partitions come from a TCP proxy on loopback between the controller and
the API server that can stop forwarding bytes on chosen connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import new_client_from_config

from api.v1alpha1.types import LACPState
from controller.kube import KubeClient
from controller.leader import LeadershipLostError
from controller.manager import Controller
from controller.reflector import ReflectorSettings
from hack.testbed.apiserver import APIServer
from tests.apiserver.test_controller_harness import (
    Cluster,
    controller_settings,
    eventually,
    running,
)

pytestmark = pytest.mark.usefixtures("require_crds")
UP, DOWN = LACPState.UP, LACPState.DOWN


class FreezableProxy:
    """TCP proxy that can stop forwarding on existing connections, or on all of them."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._ids = itertools.count()
        self._open: set[int] = set()
        self._frozen: set[int] = set()
        self.freeze_new = False
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.thaw()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def freeze_existing(self) -> None:
        self._frozen |= self._open
        self._thawed.clear()

    def freeze_all(self) -> None:
        self.freeze_new = True
        self.freeze_existing()

    def thaw(self) -> None:
        self.freeze_new = False
        self._frozen.clear()
        self._thawed.set()

    async def _pipe(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(65536):
                while number in self._frozen:
                    await self._thawed.wait()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = next(self._ids)
        self._open.add(number)
        if self.freeze_new:
            self._frozen.add(number)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.close()
            return
        tasks = [
            asyncio.create_task(self._pipe(number, reader, up_writer)),
            asyncio.create_task(self._pipe(number, up_reader, writer)),
        ]
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._tasks.difference_update(tasks)
            self._open.discard(number)


@pytest.fixture
async def proxy(apiserver: APIServer) -> AsyncIterator[FreezableProxy]:
    proxy = FreezableProxy(apiserver.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


@contextlib.asynccontextmanager
async def controller_client_via(
    apiserver: APIServer, proxy: FreezableProxy
) -> AsyncIterator[ApiClient]:
    client = await new_client_from_config(
        config_file=str(apiserver.kubeconfig("controller")), persist_config=False
    )
    client.configuration.host = f"https://127.0.0.1:{proxy.port}"
    try:
        yield client
    finally:
        await client.close()


async def _status_field(
    cluster: Cluster, name: str, field: str, value: Any
) -> dict[str, Any] | None:
    monitor = await cluster.monitor(name)
    return monitor if ((monitor or {}).get("status") or {}).get(field) == value else None


async def test_relist_after_etcd_compaction(
    cluster: Cluster, controller_api: ApiClient, apiserver: APIServer
) -> None:
    """Field case C11: after compaction the watch gets 410 and the controller lists again."""
    key = f"pfsr-test-{cluster.prefix}"
    node = f"{cluster.prefix}-c1"
    await cluster.create_nodes([node], {key: "yes"})
    settings = controller_settings(
        reflector=ReflectorSettings(watch_timeout=1.0, watchdog_margin=2.0)
    )
    async with running(settings, controller_api) as (controller, _):
        await cluster.create_monitor("compacted", {key: "yes"})
        monitor = await eventually(lambda: _status_field(cluster, "compacted", "nodeCount", 1))
        await cluster.report(monitor, node, [UP, UP])
        await eventually(lambda: _status_field(cluster, "compacted", "interfacesUp", 2))
        lists_before = controller.monitors.reflector.lists
        # Advance etcd past every informer's resourceVersion, then drop the history.
        admin = cluster.admin
        for i in range(5):
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"filler-{i}"}}
            await admin.request(
                "POST", f"/api/v1/namespaces/{cluster.namespace}/configmaps", body=body
            )
        apiserver.compact_etcd()

        async def relisted() -> bool:
            return controller.monitors.reflector.lists > lists_before

        await eventually(relisted, within=15.0)
        assert controller.telemetry.counts.watch_restart_reasons.get("gone", 0) >= 1
        # Work continues from the new resourceVersion and nothing was lost on the way.
        await cluster.report(monitor, node, [UP, DOWN], sequence=2)
        done = await eventually(lambda: _status_field(cluster, "compacted", "interfacesDown", 1))
        assert done["status"]["nodeCount"] == 1
        assert controller.reports.for_monitor(monitor["metadata"]["uid"])[node].report.sequence == 2


async def test_watchdog_restarts_silent_watch(
    cluster: Cluster, apiserver: APIServer, proxy: FreezableProxy
) -> None:
    key = f"pfsr-test-{cluster.prefix}"
    node = f"{cluster.prefix}-s1"
    await cluster.create_nodes([node], {key: "yes"})
    settings = controller_settings(
        reflector=ReflectorSettings(watch_timeout=1.0, watchdog_margin=1.0)
    )
    async with (
        controller_client_via(apiserver, proxy) as client,
        running(settings, client) as (
            controller,
            _,
        ),
    ):
        await cluster.create_monitor("silent", {key: "yes"})
        monitor = await eventually(lambda: _status_field(cluster, "silent", "nodeCount", 1))
        proxy.freeze_existing()
        try:
            await eventually(
                lambda: _true(
                    controller.telemetry.counts.watch_restart_reasons.get("silent", 0) >= 1
                ),
                within=10.0,
            )
            await cluster.report(monitor, node, [UP, UP])
            await eventually(
                lambda: _status_field(cluster, "silent", "interfacesUp", 2), within=20.0
            )
        finally:
            proxy.thaw()


async def _true(value: bool) -> bool:
    return value


async def test_leader_hand_over(
    cluster: Cluster, controller_api: ApiClient, apiserver: APIServer, proxy: FreezableProxy
) -> None:
    key = f"pfsr-test-{cluster.prefix}"
    await cluster.create_nodes([f"{cluster.prefix}-l1"], {key: "yes"})
    timing = {
        "leader_elect": True,
        "lease_duration": 3.0,
        "renew_deadline": 2.0,
        "retry_period": 0.5,
    }
    lease = KubeClient(controller_api)
    await _release_stale_lease(lease)
    async with controller_client_via(apiserver, proxy) as client_a:
        first = Controller(controller_settings(identity="replica-a", **timing), client_a)
        second = Controller(controller_settings(identity="replica-b", **timing), controller_api)
        task_a = asyncio.create_task(first.run())
        try:
            await eventually(lambda: _true(first.is_leader), within=20.0)
            task_b = asyncio.create_task(second.run())
            try:
                await eventually(lambda: _true(second.is_ready()))
                assert not second.is_leader
                await cluster.create_monitor("led-a", {key: "yes"})
                await eventually(lambda: cluster.daemonset("led-a"))
                # Only the leader writes; the count may include orphans of earlier tests.
                assert first.telemetry.counts.daemonset_writes >= 1
                assert second.telemetry.counts.daemonset_writes == 0
                assert second.telemetry.counts.status_writes == 0

                # Cut the leader off: it must stop writing and end with LeadershipLostError.
                proxy.freeze_all()
                with pytest.raises(ExceptionGroup) as ended:
                    await asyncio.wait_for(task_a, 15.0)
                assert ended.value.subgroup(LeadershipLostError) is not None
                assert not first.fence.is_open
                await eventually(lambda: _true(second.is_leader), within=15.0)
                await cluster.create_monitor("led-b", {key: "other"})
                await eventually(lambda: _status_field(cluster, "led-b", "observedGeneration", 1))
                assert second.telemetry.counts.status_writes >= 1
            finally:
                task_b.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task_b
        finally:
            proxy.thaw()
            task_a.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception, BaseExceptionGroup):
                await task_a


async def _release_stale_lease(client: KubeClient) -> None:
    """Delete the Lease a previous test may have left, so replica-a can take it at once."""
    from controller.kube import NotFoundError
    from controller.resources import LEASES

    with contextlib.suppress(NotFoundError):
        await client.request(
            "DELETE",
            LEASES.path("openshift-pf-status-relay-operator", "pf-status-relay-controller"),
        )
