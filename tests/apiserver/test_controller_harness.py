"""Helpers for the controller tests against the real API server; this module has no tests.

The controller runs in-process as the controller's ServiceAccount, so gaps in
config/rbac fail the tests. No controller-manager or kubelet runs, so Nodes are
plain objects created by the admin and agents are simulated by posting the agents'
real report Events (api.report.build_event) as the agent's ServiceAccount.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes_asyncio.client import ApiClient

from api.agentconfig import FINALIZER_RESTORE_VFS
from api.report import NodeReport, ReportReason, build_event
from api.v1alpha1.types import InterfaceStatus, LACPState
from controller.daemonset import daemonset_name
from controller.kube import JSON_PATCH, MERGE_PATCH, KubeClient, NotFoundError
from controller.manager import Controller, ControllerSettings
from controller.reflector import ReflectorSettings
from controller.resources import DAEMONSETS, EVENTS, MONITORS, NODES

OPERATOR_NAMESPACE = "openshift-pf-status-relay-operator"
AGENT_IMAGE = "registry.example/pf-status-relay-agent:test"
T = TypeVar("T")


def controller_settings(**overrides: Any) -> ControllerSettings:
    """Settings for an in-process controller: no HTTP servers, short delays."""
    values: dict[str, Any] = {
        "agent_image": AGENT_IMAGE,
        "namespace": OPERATOR_NAMESPACE,
        "identity": f"test-{uuid.uuid4().hex[:6]}",
        "health_address": None,
        "metrics_address": None,
        "coalesce_delay": 0.3,
        "deletion_timeout": 10.0,
        "reflector": ReflectorSettings(watch_timeout=30.0, watchdog_margin=5.0),
    }
    values.update(overrides)
    return ControllerSettings(**values)


@contextlib.asynccontextmanager
async def running(
    settings: ControllerSettings, api_client: ApiClient
) -> AsyncIterator[tuple[Controller, asyncio.Task[None]]]:
    """Run a controller until the block ends; fail the block if it dies early."""
    controller = Controller(settings, api_client)
    task = asyncio.create_task(controller.run(), name=f"controller-{settings.identity}")
    try:
        yield controller, task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def eventually(
    probe: Callable[[], Awaitable[T | None]], within: float = 15.0, interval: float = 0.1
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within} s; last value: {last!r}")


class Cluster:
    """Admin and agent access to the test API server."""

    def __init__(self, admin_api: ApiClient, agent_api: ApiClient, namespace: str) -> None:
        self.admin = KubeClient(admin_api)
        self.agent = KubeClient(agent_api)
        self.namespace = namespace
        self.prefix = uuid.uuid4().hex[:6]

    async def create_nodes(self, names: list[str], labels: dict[str, str]) -> None:
        async def create(name: str) -> None:
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": labels},
            }
            await self.admin.request("POST", NODES.path(), body=body)

        await gather_limited([create(n) for n in names], 20)

    async def label_node(self, name: str, labels: dict[str, str | None]) -> None:
        body = {"metadata": {"labels": labels}}
        await self.admin.request(
            "PATCH", NODES.path(None, name), body=body, content_type=MERGE_PATCH
        )

    async def create_monitor(
        self, name: str, selector: dict[str, str], interfaces: list[str] | None = None, **spec: Any
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "pfstatusrelay.openshift.io/v1alpha1",
            "kind": "PFLACPMonitor",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "interfaces": interfaces or ["ens5f0", "ens5f1"],
                "nodeSelector": selector,
                **spec,
            },
        }
        return await self.admin.request("POST", MONITORS.path(self.namespace), body=body)

    async def monitor(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.admin.request("GET", MONITORS.path(self.namespace, name))
        except NotFoundError:
            return None

    async def patch_monitor(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        path = MONITORS.path(self.namespace, name)
        return await self.admin.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    async def delete_monitor(self, name: str) -> None:
        await self.admin.request("DELETE", MONITORS.path(self.namespace, name))

    async def daemonset(self, monitor_name: str) -> dict[str, Any] | None:
        name = daemonset_name(self.namespace, monitor_name)
        try:
            return await self.admin.request("GET", DAEMONSETS.path(OPERATOR_NAMESPACE, name))
        except NotFoundError:
            return None

    async def events(self, reason: str) -> list[dict[str, Any]]:
        listed = await self.admin.request("GET", EVENTS.path(self.namespace))
        return [e for e in listed.get("items") or [] if e.get("reason") == reason]

    async def report(
        self,
        monitor: dict[str, Any],
        node: str,
        states: list[LACPState],
        *,
        sequence: int = 1,
        restored: bool = False,
        instance: str = "agent-1",
    ) -> None:
        """Post one agent report for ``node`` as the agent's ServiceAccount."""
        metadata = monitor["metadata"]
        spec_interfaces = monitor["spec"]["interfaces"]
        report = NodeReport(
            monitor_namespace=metadata["namespace"],
            monitor_name=metadata["name"],
            monitor_uid=metadata["uid"],
            monitor_generation=int(metadata.get("generation") or 0),
            node=node,
            instance=instance,
            sequence=sequence,
            observed_at=datetime.now(UTC),
            restored=restored,
            interfaces=[
                InterfaceStatus(name=name, lacp_state=state, reason="Test", bond="bond0")
                for name, state in zip(spec_interfaces, states, strict=False)
            ],
        )
        reason = ReportReason.VFS_RESTORED if restored else ReportReason.STATE_REPORT
        event = build_event(report, reason, f"report {sequence} from {node}")
        await self.agent.request("POST", EVENTS.path(metadata["namespace"]), body=event)

    async def remove_all_monitors(self) -> None:
        """Delete this test's monitors and strip the finalizer, so they do not outlive the test."""
        listed = await self.admin.request("GET", MONITORS.path(self.namespace))
        for item in listed.get("items") or []:
            name = item["metadata"]["name"]
            finalizers = item["metadata"].get("finalizers") or []
            if FINALIZER_RESTORE_VFS in finalizers:
                ops = [
                    {
                        "op": "remove",
                        "path": f"/metadata/finalizers/{finalizers.index(FINALIZER_RESTORE_VFS)}",
                    }
                ]
                with contextlib.suppress(Exception):
                    await self.admin.request(
                        "PATCH",
                        MONITORS.path(self.namespace, name),
                        body=ops,
                        content_type=JSON_PATCH,
                    )
            with contextlib.suppress(NotFoundError):
                await self.delete_monitor(name)


async def gather_limited(coroutines: list[Awaitable[Any]], limit: int) -> list[Any]:
    """Await ``coroutines`` with at most ``limit`` running at once."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Awaitable[Any]) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


def condition(status: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """Return the condition of type ``kind`` from a status, or an empty dict."""
    for item in (status or {}).get("conditions") or []:
        if item.get("type") == kind:
            return dict(item)
    return {}
